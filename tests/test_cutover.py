"""The docker command sequence of every branch of Cutover.restore, against a recording target.

What these commands do to real containers is proven in tests/test_deploy_service.py; here each branch's exact
sequence is pinned down without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from generator.steps.core.transport import CommandFailed, CommandResult
from generator.steps.engine.cutover import Container, Cutover
from tests.support.manifests import manifest_toml, resolved_view
from tests.support.recording import NO_SUCH, RecordingTarget, result

RUNNING, CANDIDATE, PREVIOUS = "p-web", "p-web-candidate", "p-web-previous"
FORMAT = "{{.Image}}|{{.Config.Image}}|{{.State.Running}}|{{json .Config.Labels}}"
OLD = Container(image_id="sha256:old", image="p/web:old", running=True, labels={})


def inspect(name: str) -> tuple[str, ...]:
    return ("docker", "container", "inspect", "--format", FORMAT, name)


def found(running: bool) -> CommandResult:
    return result(f"sha256:old|p/web:old|{str(running).lower()}|{{}}\n")


RM_CANDIDATE = ["docker", "rm", "-f", CANDIDATE]
RM_RUNNING = ["docker", "rm", "-f", RUNNING]
STOP_PREVIOUS = ["docker", "stop", "-t", "1", PREVIOUS]  # inside a cancel's window: short
RENAME = ["docker", "rename", PREVIOUS, RUNNING]
START = ["docker", "start", RUNNING]


@dataclass
class Case:
    old: Container | None
    created: bool
    stopping: bool
    previous: CommandResult
    calls: list[tuple[str, ...] | list[str]]
    said: str
    after_start: CommandResult = field(default_factory=lambda: found(running=True))


CASES = {
    "candidate only": Case(OLD, False, False, NO_SUCH, [RM_CANDIDATE, inspect(PREVIOUS)], "running container untouched"),
    "previous, new one created": Case(
        OLD, True, False, found(running=True),
        [RM_CANDIDATE, inspect(PREVIOUS), RM_RUNNING, RENAME, START, inspect(RUNNING)],
        "previous container restored",
    ),
    "previous, killed before the create": Case(
        OLD, False, False, found(running=True),
        [RM_CANDIDATE, inspect(PREVIOUS), RENAME, START, inspect(RUNNING)],
        "previous container restored",
    ),
    "previous, stop cut short": Case(
        OLD, True, True, found(running=False),
        [RM_CANDIDATE, inspect(PREVIOUS), RM_RUNNING, STOP_PREVIOUS, RENAME, START, inspect(RUNNING)],
        "previous container restored",
    ),
    "previous was not running": Case(
        OLD.__class__(OLD.image_id, OLD.image, running=False, labels={}), True, False, found(running=False),
        [RM_CANDIDATE, inspect(PREVIOUS), RM_RUNNING, RENAME],
        "previous container restored",
    ),
    "previous restored but does not run": Case(
        OLD, True, False, found(running=True),
        [RM_CANDIDATE, inspect(PREVIOUS), RM_RUNNING, RENAME, START, inspect(RUNNING)],
        "previous container restored but it is not running",
        after_start=found(running=False),
    ),
    "nothing before, new one created": Case(
        None, True, False, NO_SUCH, [RM_CANDIDATE, inspect(PREVIOUS), RM_RUNNING],
        "new container removed; nothing was running before",
    ),
    "nothing before, nothing created": Case(
        None, False, False, NO_SUCH, [RM_CANDIDATE, inspect(PREVIOUS)], "nothing was running before"
    ),
}  # fmt: skip


def cutover(target: RecordingTarget, old: Container | None) -> Cutover:
    manifest = resolved_view(
        manifest_toml({"web": {"repository": "o/web", "port": 3000}}, project={"name": "p"})
    )
    cut = Cutover(target, manifest, manifest.services["web"], "p/web:new")
    cut.old, cut.touched = old, True
    return cut


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_restore_runs_exactly_these_commands(case: Case) -> None:
    target = RecordingTarget({inspect(PREVIOUS): case.previous, inspect(RUNNING): case.after_start})
    cut = cutover(target, case.old)
    cut.created, cut.stopping = case.created, case.stopping
    assert cut.restore() == case.said
    assert target.calls == [list(call) for call in case.calls]


def test_restore_stops_at_a_daemon_error_instead_of_taking_it_for_no_container() -> None:
    """'Cannot connect' is not 'no such container': removing the running one on that guess would down it."""
    down = result(returncode=1, stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock.")
    target = RecordingTarget({inspect(PREVIOUS): down})
    cut = cutover(target, None)
    cut.created = True
    with pytest.raises(CommandFailed, match="Cannot connect"):
        cut.restore()
    assert target.calls == [RM_CANDIDATE, list(inspect(PREVIOUS))]
