"""The app's handle on the model: started by the app's start-up, loaded in a background thread,
warmed, locked.

The app starts without torch; this module imports the compute side only inside its thread. When
the artifact's weights cannot be found, uploads and saliency say why and the rest of the app works.
"""
from __future__ import annotations

import threading
import time

IDLE, LOADING, READY, UNAVAILABLE = "idle", "loading", "ready", "unavailable"


class PlacementService:
    def __init__(self, artifact, *, enabled: bool = True, weights_path=None):
        self.artifact = artifact
        self.enabled = enabled
        self.weights_path = weights_path
        self.placer = None
        self.load_seconds = None
        # set when this machine lacks the artifact's device class: said beside every result
        self.device_note = None
        self._lock = threading.Lock()  # one forward / backward pass at a time
        self._thread = None
        if enabled:
            self.state, self.message = IDLE, "The model has not been started."
        else:
            self.state = UNAVAILABLE
            self.message = ("Placing new images is switched off on this server (--no-model); "
                            "the map works as usual.")

    def start(self) -> "PlacementService":
        """Load in the background (idempotent); the map is served meanwhile."""
        if self.enabled and self._thread is None:
            self.state, self.message = LOADING, "Loading the model…"
            self._thread = threading.Thread(target=self._load, name="cxrviz-model", daemon=True)
            self._thread.start()
        return self

    def _load(self):
        started = time.perf_counter()
        try:
            from cxrviz.compute.model import WeightsUnavailable
            from cxrviz.compute.placement import Placer

            try:
                self.placer = Placer(self.artifact).load(weights_path=self.weights_path)
            except WeightsUnavailable as exc:
                self.state, self.message = UNAVAILABLE, (
                    f"Placing new images and saliency are unavailable: {exc}")
                return
            self.load_seconds = time.perf_counter() - started
            self.device_note = device_note(self.artifact.weights, self.placer.embedder.spec)
            self.state = READY
            self.message = (f"Model ready ({self.artifact.weights.label}, loaded in "
                            f"{self.load_seconds:.0f} s)." + (f" {self.device_note}"
                                                              if self.device_note else ""))
        except Exception as exc:  # never take the app down with it
            self.state = UNAVAILABLE
            self.message = f"Placing new images is unavailable: {type(exc).__name__}: {exc}"

    def wait(self, timeout: float | None = None) -> str:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    def require(self):
        if self.state != READY:
            raise RuntimeError(self.message)
        return self.placer

    def place(self, data: bytes, k: int, space: str):
        placer = self.require()
        with self._lock:
            return placer.place(data, k=k, space=space)

    def saliency_png(self, data: bytes, output: int) -> bytes:
        from cxrviz.compute.placement import overlay_png

        placer = self.require()
        image = placer.decode(data)
        with self._lock:
            return overlay_png(image, placer.saliency, output)


def device_note(built, here) -> str | None:
    """What to say when this machine runs the model on another device class (or precision) than
    the artifact was embedded with (cxrviz.compute.model.device_for), else None."""
    if (built.device, built.precision) == (here.device, here.precision):
        return None
    return (f"This map was embedded on {built.device} ({built.precision}); this machine has no "
            f"{built.device}, so new images are placed on {here.device} ({here.precision}). "
            "Their outputs can differ slightly from what the map's own run would give "
            "(README, Precompute: drift between devices).")
