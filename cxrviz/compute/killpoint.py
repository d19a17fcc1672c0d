"""A test hook: SIGKILL this process at a named point of a precompute run.

Resuming after a kill is a promise (README: "kill a run at any moment"); a test that kills from
outside by polling lands wherever the scheduler puts it, so it tests a different moment on every
run. With CXRVIZ_KILL_AT=<stage>:<n> the run kills itself, with the same uncatchable SIGKILL a
user's `kill -9` sends, the first time `stage` reports n or more (tests/test_resume.py):

  features:<n>  after the n-th image whose outputs this run computed is in the cache
  umap:0        every image is embedded and cached; before the UMAP fit
  write:0       everything is computed; before the artifact is written
  writing:<n>   inside write_artifact, after the n-th display image is in the temp folder

Unset (always, outside tests) it costs one dictionary lookup per call.
"""
from __future__ import annotations

import os
import signal

ENV = "CXRVIZ_KILL_AT"


def reached(stage: str, done: int = 0) -> None:
    """Kill this process now if CXRVIZ_KILL_AT names `stage` and `done` has reached its count."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, count = wanted.partition(":")
    if name == stage and done >= int(count or 0):
        os.kill(os.getpid(), signal.SIGKILL)
