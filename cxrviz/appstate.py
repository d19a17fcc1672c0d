"""The one artifact a process serves, behind one getter.

`open_once` is called by cxrviz.app.create_app; everything else calls `current()`. A process
serves one artifact for its whole life: asking it for a second one is an error, so no test (or
worker) can see another's state. A test that needs another artifact runs its own server process.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class AlreadyServing(RuntimeError):
    """This process already serves another artifact."""


@dataclass(frozen=True)
class AppState:
    artifact_path: Path
    store: object  # cxrviz.store.Store
    service: object  # cxrviz.placement_service.PlacementService
    model: bool
    weights_path: str | None


_STATE: AppState | None = None


def open_once(artifact_path, *, model: bool = True, weights_path=None) -> AppState:
    """Load the artifact on the first call; later calls must ask for the same one."""
    global _STATE
    from cxrviz.placement_service import PlacementService
    from cxrviz.store import Store

    path = Path(artifact_path).expanduser().resolve()
    wanted = (path, model, str(weights_path) if weights_path else None)
    if _STATE is not None:
        if (_STATE.artifact_path, _STATE.model, _STATE.weights_path) != wanted:
            raise AlreadyServing(
                f"this process already serves {_STATE.artifact_path} (model "
                f"{'on' if _STATE.model else 'off'}); it cannot also serve {path} "
                f"(model {'on' if model else 'off'}). One artifact per process: start another "
                "process (python app.py --artifact ...) for another artifact.")
        return _STATE
    store = Store.open(path).warm()
    service = PlacementService(store.artifact, enabled=model, weights_path=weights_path)
    _STATE = AppState(path, store, service, model, wanted[2])
    return _STATE


def current() -> AppState:
    if _STATE is None:
        raise RuntimeError("no artifact loaded: start the app with cxrviz.app.create_app(path)")
    return _STATE
