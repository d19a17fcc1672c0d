"""The app's handle on the model: loaded in a background thread after start-up, warmed, locked.

The app starts without torch; this module imports the compute side only inside its thread. When
the artifact's weights cannot be found, uploads and saliency say why and the rest of the app works.
"""
from __future__ import annotations

import threading
import time

LOADING, READY, UNAVAILABLE = "loading", "ready", "unavailable"


class PlacementService:
    def __init__(self, artifact, *, start: bool = True):
        self.artifact = artifact
        self.state = LOADING
        self.message = "Loading the model and the UMAP reducer…"
        self.placer = None
        self.load_seconds = None
        self._lock = threading.Lock()  # one forward / backward pass at a time
        self._thread = threading.Thread(target=self._load, name="cxrviz-model", daemon=True)
        if start:
            self._thread.start()
        else:
            self.state = UNAVAILABLE
            self.message = ("Placing new images is switched off on this server (--no-model); "
                            "the map works as usual.")

    def _load(self):
        started = time.perf_counter()
        try:
            from cxrviz.compute.model import WeightsUnavailable
            from cxrviz.compute.placement import Placer

            try:
                self.placer = Placer(self.artifact).load()
            except WeightsUnavailable as exc:
                self.state, self.message = UNAVAILABLE, (
                    f"Placing new images and saliency are unavailable: {exc}")
                return
            self.load_seconds = time.perf_counter() - started
            self.state = READY
            self.message = (f"Model ready ({self.artifact.manifest['weights']['name']}, loaded "
                            f"in {self.load_seconds:.0f} s).")
        except Exception as exc:  # never take the app down with it
            self.state = UNAVAILABLE
            self.message = f"Placing new images is unavailable: {type(exc).__name__}: {exc}"

    def wait(self, timeout: float | None = None) -> str:
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
