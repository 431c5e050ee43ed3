"""The steps of a deploy, run by the workflow's jobs and by `wfgen deploy`: stdlib only, Python >= 3.11.

`wfgen render` vendors this package into `.github/wfgen/steps/` with one small entry script per job beside it,
so a job runs `python3 -I -S .github/wfgen/<job>.py` with nothing installed.
"""

from __future__ import annotations

# The modules with a `main(argv) -> int` that a job (or the local runner) runs: a deploy's in pipeline order,
# then the rollback's.
JOBS = ("prepare", "check_infrastructure", "plan", "deploy_service", "deployment_summary", "rollback")
