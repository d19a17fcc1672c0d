"""Place a new chest X-ray on an artifact's map: same preprocessing, same model, and UMAP's
transform rebuilt from the artifact's stored arrays (cxrviz.compute.embedding.StoredUmap).

Used by the app (in a background thread, after start-up) and by `python -m precompute.place`.
Everything happens in memory: the image bytes are decoded, run and dropped.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from cxrviz import schema as S
from cxrviz.compute.density import BadStateDensity, percentile_of
from cxrviz.compute.embedding import StoredUmap, fit_set, placement_params
from cxrviz.compute.model import Embedder, embedder_from_spec
from cxrviz.compute.neighbours import nearest
from cxrviz.data.images import (MAX_UPLOAD_BYTES, XrayImage, decode_xray, display_pixels,
                                model_input)
from cxrviz.io.artifact import Artifact, ArtifactError

DEFAULT_K = 8
# Does an upload look like the collection? Its distance to its OOD_K-th nearest collection image
# in the 1024-d features (as log(1 + f): the post-ReLU averages span orders of magnitude), against
# the same distance of every collection image to the rest (leave one out); beyond the
# OOD_PERCENTILE-th percentile of those it is flagged.
OOD_K = 5
OOD_PERCENTILE = 99.0
OOD_SAMPLE = 2000  # collection images whose leave-one-out distance makes the reference
SALIENCY_SIGMA = 4.0  # px at 224: smooths the raw gradient into regions a person can read


class UploadRejected(Exception):
    """Not a readable X-ray (or too big); the message is shown to the user as it is."""


@dataclass
class Placement:
    x: float
    y: float
    logits: np.ndarray
    features: np.ndarray
    density: float
    percentile: float
    neighbours: list = field(default_factory=list)  # [{image_id, distance, rank, patientid,
    # episode}]
    ood_distance: float = float("nan")  # to the OOD_K-th nearest collection image
    ood_percentile: float = float("nan")  # of that distance among the collection's own
    out_of_distribution: bool = False
    image: XrayImage | None = field(default=None, repr=False)  # decoded once, for a preview

    def to_dict(self, pathologies) -> dict:
        return {"x": self.x, "y": self.y,
                "outputs": {p: float(v) for p, v in zip(pathologies, self.logits)},
                "bad_density": self.density, "bad_density_percentile": self.percentile,
                "neighbours": self.neighbours, "out_of_distribution": self.out_of_distribution,
                "ood_percentile": self.ood_percentile, "ood_distance": self.ood_distance,
                "ood_threshold_percentile": OOD_PERCENTILE}


class Placer:
    """umap-learn style: built on an artifact, `load()` once (slow), then `place()` many times.

    Nothing of the artifact but data is read: the UMAP is rebuilt from arrays, and the weights
    are found and trusted by cxrviz.compute.model.embedder_from_spec's rules."""

    def __init__(self, art: Artifact):
        self.art = art
        self.images = art.images
        logit_cols = [S.logit_column(p) for p in art.pathologies]
        self.logit_matrix = self.images[logit_cols].to_numpy(np.float32)
        cohort = (self.images[S.ROLE] == S.ROLE_COHORT).to_numpy()  # the map's percentile scale
        self.collection_density = np.sort(self.images.loc[cohort, S.BAD_DENSITY].to_numpy())
        self.kde = BadStateDensity.from_stored(art.density)  # the map's own density, not a refit
        self.embedder: Embedder | None = None

    @cached_property
    def umap(self) -> StoredUmap:
        """The map's UMAP as data: its fit set's logits and positions, the manifest's parameters."""
        try:
            params = placement_params(self.art.manifest[S.M_UMAP])
            fit = fit_set(self.images, params)  # all rows, or the sample it was fitted on
        except (KeyError, ValueError) as exc:
            raise ArtifactError(f"{self.art.path}: cannot place new images: {exc}") from None
        return StoredUmap(self.logit_matrix[fit],
                          self.images.loc[fit, [S.X, S.Y]].to_numpy(np.float32), params)

    def load(self, weights_path=None, allow_download: bool = False) -> "Placer":
        """The artifact's own weights, precision and batch size (outputs match bit for bit)."""
        self.embedder = embedder_from_spec(self.art.weights, weights_path=weights_path,
                                           allow_download=allow_download)
        # Warm everything the first upload would otherwise pay for: the network's first pass
        # (allocations, kernel choice) and numba's compilation of UMAP's transform (seconds).
        self.embedder.embed(np.zeros((1, 1, 224, 224), np.float32))
        self.umap.transform(self.logit_matrix[:1])
        self.features_sq_norms  # the 1024-d neighbour index, built now rather than on a click
        self.ood_reference  # noqa: B018  (seconds for large collections: not on a click)
        return self

    @cached_property
    def features_matrix(self) -> np.ndarray:
        features = self.art.features()
        if features.shape[1] == 0:  # benchmarks/make_artifact.py --no-features
            raise ArtifactError(f"{self.art.path}: cannot place new images: its features.npy "
                                "has no columns (written without features)")
        return np.ascontiguousarray(features, dtype=np.float32)

    @cached_property
    def features_sq_norms(self) -> np.ndarray:
        f = self.features_matrix.astype(np.float64)
        return np.einsum("ij,ij->i", f, f)

    @cached_property
    def _ood_space(self) -> tuple:
        matrix = np.log1p(np.maximum(self.features_matrix, 0)).astype(np.float32)
        return matrix, np.einsum("ij,ij->i", matrix.astype(np.float64), matrix.astype(np.float64))

    @cached_property
    def ood_reference(self) -> np.ndarray:
        """Sorted leave-one-out OOD_K-th nearest-neighbour distances of collection images (a
        fixed sample of OOD_SAMPLE for large collections)."""
        matrix, norms = self._ood_space
        n = len(matrix)
        rows = (np.arange(n) if n <= OOD_SAMPLE else
                np.sort(np.random.default_rng(0).choice(n, OOD_SAMPLE, replace=False)))
        k = min(OOD_K, n - 1)
        out = np.empty(len(rows))
        for i, r in enumerate(rows):
            _, dist = nearest(matrix, matrix[r], k + 1, norms)
            out[i] = dist[k]  # dist[0] is the image itself
        return np.sort(out)

    def out_of_distribution(self, features) -> tuple:
        """(distance, percentile among the collection's, flagged?) for new features. An image
        of the collection itself (distance 0 to a collection image) is measured without itself,
        as the reference is, and is never flagged: it is part of what defines "like"."""
        matrix, norms = self._ood_space
        query = np.log1p(np.maximum(features, 0)).astype(np.float32)
        k = min(OOD_K, len(matrix) - 1)  # as in the reference
        _, dist = nearest(matrix, query, k + 1, norms)
        member = dist[0] <= 1e-5 * max(1.0, float(np.sqrt(query.astype(np.float64) @ query)))
        d = float(dist[k] if member else dist[k - 1])
        pct = float(percentile_of([d], self.ood_reference)[0])
        flagged = not member and d > np.percentile(self.ood_reference, OOD_PERCENTILE)
        return d, pct, bool(flagged)

    def decode(self, data: bytes) -> XrayImage:
        if len(data) > MAX_UPLOAD_BYTES:
            raise UploadRejected(f"file too large ({len(data) / 2**20:.1f} MB; the limit is "
                                 f"{MAX_UPLOAD_BYTES // 2**20} MB)")
        from cxrviz.data.images import ImageSkip

        try:
            return decode_xray(data)
        except ImageSkip as exc:
            raise UploadRejected(f"not a readable X-ray: {exc}. PNG, JPEG or single-frame "
                                 "DICOM (MONOCHROME1/2, 8-16 bit) are accepted.") from None

    def place(self, data: bytes, k: int = DEFAULT_K, space: str = "logits") -> Placement:
        image = self.decode(data)
        features, logits = self.embedder.embed(model_input(image)[None])
        logits, features = logits[0], features[0]
        x, y = (float(v) for v in self.umap.transform(logits[None])[0])
        density = float(self.kde.score(np.array([[x, y]]))[0])
        ood = self.out_of_distribution(features)
        return Placement(x, y, logits, features, density, self.percentile(density),
                         self.neighbours(logits, features, k, space), *ood, image=image)

    def percentile(self, density: float) -> float:
        return float(percentile_of([density], self.collection_density)[0])

    def neighbours(self, logits, features, k: int = DEFAULT_K, space: str = "logits") -> list:
        if space == "features":
            idx, dist = nearest(self.features_matrix, features, k, self.features_sq_norms)
        else:
            idx, dist = nearest(self.logit_matrix, logits, k)
        ids = self.images[S.IMAGE_ID].to_numpy()
        patients, episodes = self._who
        return [{"image_id": str(ids[i]), "distance": float(d), "rank": r + 1,
                 "patientid": patients[i], "episode": episodes[i]}
                for r, (i, d) in enumerate(zip(idx, dist))]

    @cached_property
    def _who(self) -> tuple:
        """Per image: its patient and episode (None for a reference image, or an image in no
        episode): a neighbour is reported with the admission it belongs to, not only the
        patient, where a patient has several."""
        cohort = (self.images[S.ROLE] == S.ROLE_COHORT).to_numpy()
        patients = np.where(cohort, self.images[S.PATIENTID].astype(object), None)
        episodes = self.images[S.EPISODE].astype(object)
        episodes = np.where(cohort & episodes.notna().to_numpy(), episodes, None)
        return [None if p is None else str(p) for p in patients], \
            [None if e is None else str(e) for e in episodes]

    def saliency(self, image: XrayImage, output: int, size: tuple) -> np.ndarray:
        """|d logit / d input|, Gaussian-smoothed, on the model's 224 crop, resized to `size`
        (width, height) of the display image's centre square; values scaled to [0, 1]."""
        import torch
        from scipy.ndimage import gaussian_filter

        x = torch.from_numpy(model_input(image)[None]).requires_grad_(True)
        _, logits = self.embedder.forward(x, grad=True)
        (grad,) = torch.autograd.grad(logits[0, output], x)
        sal = gaussian_filter(grad[0, 0].abs().float().numpy().astype(np.float64),
                              SALIENCY_SIGMA)
        sal = (sal - sal.min()) / (np.ptp(sal) or 1.0)
        from PIL import Image

        return np.asarray(Image.fromarray((sal * 255).astype(np.uint8)).resize(
            size, Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


# ---- rendering a saliency overlay (used by the app and the CLI) -----------------------------
def _inferno_lut() -> np.ndarray:
    """A 256-entry perceptual colour map (inferno's anchor colours, linearly interpolated)."""
    anchors = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99],
                        [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]], float)
    pos = np.linspace(0, 255, len(anchors))
    return np.stack([np.interp(np.arange(256), pos, anchors[:, c]) for c in range(3)], 1)


LUT = _inferno_lut()


def overlay_png(image: XrayImage, saliency_fn, output: int, alpha: float = 0.45) -> bytes:
    """The display image (centre square, as the model sees it) with the saliency heatmap."""
    from PIL import Image

    grey = display_pixels(image)
    w, h = grey.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    grey = grey.crop((left, top, left + side, top + side))
    sal = saliency_fn(image, output, (side, side))
    heat = LUT[(sal * 255).astype(np.uint8)]
    base = np.stack([np.asarray(grey, np.float32)] * 3, -1)
    mixed = (1 - alpha * sal[..., None]) * base + alpha * sal[..., None] * heat
    buf = io.BytesIO()
    Image.fromarray(mixed.clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
