"""The one Store a running app serves (set at start-up by cxrviz.app.create_app)."""
from __future__ import annotations

_STORE = None
_SERVICE = None


def set_store(store) -> None:
    global _STORE
    _STORE = store


def get_store():
    if _STORE is None:
        raise RuntimeError("no artifact loaded: start the app with create_app(artifact_path)")
    return _STORE


def set_service(service) -> None:
    global _SERVICE
    _SERVICE = service


def get_service():
    if _SERVICE is None:
        raise RuntimeError("no placement service: start the app with create_app(artifact_path)")
    return _SERVICE
