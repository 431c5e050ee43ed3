"""`wfgen deploy` on this machine: the workflow's steps run in place, one child process per job or leg.

runner (the pipeline) · steprun (one step in `python -I -S`) · legs (the bounded pool) · schedule (which leg
starts now) · progress (terminal output) · runlog (the run folder) · interrupts (Ctrl-C) · dryrun.
"""
