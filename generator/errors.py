"""The one user-facing error type, and the exit codes every command returns."""

from __future__ import annotations

from generator.steps.core.steplib import Exit

ExitCode = Exit  # one set of exit codes for the commands and the step scripts they run


class WfgenError(Exception):
    """An error the user can act on: printed as one line, exit 2, no traceback."""

    exit_code = ExitCode.USAGE


class ManifestError(WfgenError):
    """One or more problems in the manifest, each already a `file:line: key: message` line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class InitError(WfgenError):
    """`wfgen init` cannot write a manifest: a bad compose file or folder, or one already there."""
