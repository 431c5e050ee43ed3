"""A Target that runs nothing: it records each argument list and answers from a table of canned results.

For table tests of command sequences (which docker commands, in which order, for each branch); what those
commands do to real containers is proven by the real-Docker tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from generator.steps.core.transport import CommandResult, Target

OK = CommandResult(0, "", "")


def result(stdout: str = "", returncode: int = 0, stderr: str = "") -> CommandResult:
    return CommandResult(returncode, stdout, stderr)


Answer = CommandResult | Sequence[CommandResult]
NO_SUCH = result(returncode=1, stderr="Error response from daemon: No such container: x")


class RecordingTarget(Target):
    """Answers a command with the result whose key is the longest prefix of its argv (OK when none matches).

    A list of results is consumed one per call; its last entry then answers every further call."""

    kind = "recording"
    description = "recording target"

    def __init__(self, answers: Mapping[tuple[str, ...], Answer] | None = None):
        self.answers = {
            key: list(value) if isinstance(value, Sequence) else [value]
            for key, value in (answers or {}).items()
        }
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str] | None] = []  # each call's extra environment, beside `calls`

    def _spawn(
        self, argv: list[str], *, env: dict[str, str] | None, timeout: float, **kwargs: Any
    ) -> CommandResult:
        self.calls.append(list(argv))
        self.envs.append(env)
        matches = [key for key in self.answers if tuple(argv[: len(key)]) == key]
        if not matches:
            return OK
        queue = self.answers[max(matches, key=len)]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def home_path(self, path: str) -> str:
        return path if path.startswith("/") else f"/home/deployer/{path}"
