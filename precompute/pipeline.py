"""config -> load -> features -> UMAP -> states / trajectories / density -> artifact."""
from __future__ import annotations

import json
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.compute import killpoint
from cxrviz.compute.cache import ResultCache, key_of
from cxrviz.compute.derive import derive
from cxrviz.compute.embedding import MIN_DIST, N_NEIGHBORS
from cxrviz.compute.features import DISPLAY_VERSION, embed_files
from cxrviz.compute.model import DEFAULT_BATCH_SIZE, DEFAULT_WEIGHTS, load_embedder
from cxrviz.compute.states import STATE_RULES
from cxrviz.data.covid import UNKNOWN_PATIENT_PREFIX, exclusions, read_covid
from cxrviz.data.paths import OUTSIDE_REASON
from cxrviz.hashing import sha256_bytes
from cxrviz.io.artifact import write_artifact


@dataclass
class Config:
    dataset: str
    out: str = "artifacts/covid"
    rsna: str | None = None
    rsna_subset: str = "pneumonia"
    weights: str = DEFAULT_WEIGHTS
    weights_pretrained: bool | None = None  # override for local files
    precision: str = "fp32"
    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int = 2
    seed: int = 0
    umap_neighbors: int = N_NEIGHBORS
    umap_min_dist: float = MIN_DIST
    limit: int | None = None
    cache_dir: str | None = None  # default: <out>/../.cache
    progress: bool = True
    allow_download: bool = True

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return Path(self.out).expanduser().resolve().parent / ".cache"


@dataclass
class Summary:
    out: Path
    embedded: dict
    skipped: list
    excluded: list
    timings: dict
    computed: int
    from_cache: int
    pretrained: bool
    weights_name: str
    notes: list = field(default_factory=list)
    made_unknown: list = field(default_factory=list)

    def text(self) -> str:
        lines = [f"artifact: {self.out}"]
        lines += [f"embedded {source}: {n} images" for source, n in self.embedded.items()]
        lines.append(f"model runs this time: {self.computed} images; from cache: "
                     f"{self.from_cache}")
        for group in self.excluded:
            lines.append(f"not on the map by design: {group[S.E_COUNT]} rows, {group[S.E_REASON]}"
                         f" ({group[S.E_RAW_VALUE] or 'blank'})")
        for group in self.made_unknown:
            lines.append(f"read as unknown: {group[S.E_COUNT]} {group[S.E_COLUMN]} values, "
                         f"{group[S.E_REASON]} ({group[S.E_RAW_VALUE] or 'blank'})")
        lines.append(f"skipped: {len(self.skipped)} images")
        for s in self.skipped:
            lines.append(f"  - [{s['source']}] {s['filename']}: {s['reason']}")
        lines.append("time per stage: " + ", ".join(f"{k} {v:.1f}s"
                                                    for k, v in self.timings.items()))
        if not self.pretrained:
            lines.append(f"WARNING: weights '{self.weights_name}' are not pretrained: the map is "
                         "not meaningful (fine for tests and demos).")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


@contextmanager
def _timed(timings: dict, stage: str):
    start = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - start, 3)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("cxrviz", "torch", "torchxrayvision", "umap-learn", "numpy", "pandas",
                "scikit-learn", "pyarrow", "pydicom", "pillow", "scikit-image"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _umap_cached(logits, cfg: Config, cache: ResultCache):
    """Coordinates and parameters for these logits and settings, fitted at most once.

    The cache holds data only (the coordinates and the parameters as JSON, in an npz read with
    allow_pickle=False), as the artifact does; entries of older versions (a pickled reducer
    beside them) are keyed differently and never read.
    """
    from importlib.metadata import version

    key = key_of("umap-data-v1", _array_sha(logits), cfg.umap_neighbors, cfg.umap_min_dist,
                 cfg.seed, version("umap-learn"))
    hit = cache.get_arrays("umap", key)
    if hit is not None:
        return hit["coords"], json.loads(str(hit["params"]))
    from cxrviz.compute.embedding import fit_umap

    coords, params = fit_umap(logits, n_neighbors=cfg.umap_neighbors,
                              min_dist=cfg.umap_min_dist, seed=cfg.seed)
    cache.put_arrays("umap", key, coords=coords, params=np.array(json.dumps(params)))
    return coords, params


def _array_sha(arr) -> str:
    return sha256_bytes(np.ascontiguousarray(arr, np.float32).tobytes())


def build_artifact(cfg: Config) -> Summary:
    timings: dict = {}
    notes: list = []
    cache = ResultCache(cfg.resolved_cache_dir())

    with _timed(timings, "load"):
        covid = read_covid(cfg.dataset)
        rows = covid.frame
        excluded = list(covid.excluded)
        if cfg.limit is not None and len(rows) > cfg.limit:
            beyond = rows.iloc[cfg.limit:]
            excluded += exclusions(pd.Series(S.EXCLUDED_LIMIT, index=beyond.index),
                                   pd.Series(str(cfg.limit), index=beyond.index),
                                   beyond[S.FILENAME])
            rows = rows.head(cfg.limit)
        frames = [rows]
        rsna_info = None
        if cfg.rsna:
            from cxrviz.data.rsna import read_rsna

            rsna_info = read_rsna(cfg.rsna, cfg.rsna_subset)
            r = rsna_info.frame if cfg.limit is None else rsna_info.frame.head(cfg.limit)
            frames.append(r)
            if rsna_info.labelled_absent:
                notes.append(f"RSNA: {rsna_info.labelled_absent} labelled images of subset "
                             f"'{cfg.rsna_subset}' are not in {cfg.rsna}")
        table = pd.concat(frames, ignore_index=True)

    with _timed(timings, "weights"):
        embedder = load_embedder(cfg.weights, precision=cfg.precision, batch_size=cfg.batch_size,
                                 seed=cfg.seed, allow_download=cfg.allow_download,
                                 pretrained=cfg.weights_pretrained, id_cache=cache)

    with _timed(timings, "features"):
        result = embed_files(table["path"].tolist(), embedder, cache, workers=cfg.workers,
                             progress=cfg.progress)
    killpoint.reached("umap")

    skipped = list(covid.outside)  # never opened: their path leaves the dataset folder
    if rsna_info is not None:
        skipped += [{"source": S.SOURCE_RSNA, "filename": f, "reason": OUTSIDE_REASON}
                    for f in rsna_info.outside]
        skipped += [{"source": S.SOURCE_RSNA, "filename": f,
                     "reason": "no label for this patientId in torchxrayvision's RSNA labels"}
                    for f in rsna_info.unlabelled]
    keep = table["path"].isin(result.features.keys())
    for _, row in table[~keep].iterrows():
        skipped.append({"source": row[S.SOURCE], "filename": row[S.FILENAME],
                        "reason": result.skipped.get(row["path"], "unknown")})
    images = table[keep].reset_index(drop=True)
    if len(images) < 4:
        raise RuntimeError(f"only {len(images)} images could be embedded; a map needs at least 4."
                           " See the skipped list:\n" + "\n".join(
                               f"  {s['filename']}: {s['reason']}" for s in skipped))
    features = np.stack([result.features[p] for p in images["path"]]).astype(np.float32)
    logits = np.stack([result.logits[p] for p in images["path"]]).astype(np.float32)
    display = {iid: result.display[p] for iid, p in zip(images[S.IMAGE_ID], images["path"])}

    with _timed(timings, "umap"):
        coords, umap_params = _umap_cached(logits, cfg, cache)

    with _timed(timings, "derive"):
        derived = derive(images, coords, logits, embedder.pathologies)

    blank_ids = [g for g in covid.made_unknown if g[S.E_COLUMN] == S.PATIENTID]
    if blank_ids:
        n = sum(g[S.E_COUNT] for g in blank_ids)
        notes.append(
            f"{n} metadata rows have no patient id; each is a patient of its own "
            f"('{UNKNOWN_PATIENT_PREFIX}<filename>'), never merged with another: "
            + ", ".join(f for g in blank_ids for f in g[S.E_FILENAMES]))
    if covid.shared_files:
        notes.append(
            f"{len(covid.shared_files)} image files are listed under more than one metadata row "
            "(different patient ids); each row is its own point with the same image: "
            + "; ".join(f"{name}: {', '.join(ids)}" for name, ids in covid.shared_files))
    embedded_covid = int((images[S.SOURCE] == S.SOURCE_COVID).sum())
    counts = {
        S.C_METADATA_ROWS: covid.metadata_rows,
        S.C_FRONTAL_XRAY: covid.frontal_rows,
        S.C_EMBEDDED_COVID: embedded_covid,
        S.C_EMBEDDED_RSNA: int((images[S.SOURCE] == S.SOURCE_RSNA).sum()),
        S.C_EXCLUDED: sum(group[S.E_COUNT] for group in excluded),
        S.C_SKIPPED_COVID: sum(s["source"] == S.SOURCE_COVID for s in skipped),
        S.C_SKIPPED: len(skipped),
    }
    manifest = {
        S.M_SCHEMA_VERSION: S.SCHEMA_VERSION,
        S.M_CREATED: datetime.now(timezone.utc).isoformat(timespec="seconds"),
        S.M_INPUTS: {"dataset": str(Path(cfg.dataset).expanduser().resolve()),
                     "metadata_sha256": covid.metadata_sha256,
                     "rsna": str(Path(cfg.rsna).expanduser().resolve()) if cfg.rsna else None,
                     "rsna_subset": cfg.rsna_subset if cfg.rsna else None,
                     "limit": cfg.limit},
        S.M_WEIGHTS: embedder.spec.to_manifest(),
        S.M_PATHOLOGIES: list(embedder.pathologies),
        S.M_PREPROCESS: {"version": S.PREPROCESS_VERSION, "display": DISPLAY_VERSION,
                         "outputs": "features2 (1024-d) and classifier logits; op_threshs=None",
                         "steps": "normalize(img, maxval of real bit depth) -> first channel -> "
                                  "XRayCenterCrop -> XRayResizer(224, skimage)"},
        S.M_UMAP: umap_params,
        S.M_KDE: derived.kde_params,
        S.M_STATE_RULES: STATE_RULES,
        S.M_COUNTS: counts,
        S.M_EXCLUDED: excluded,
        S.M_SKIPPED: skipped,
        S.M_MADE_UNKNOWN: covid.made_unknown,
        S.M_NOTES: notes,
        S.M_TIMINGS: timings,
        S.M_VERSIONS: _versions(),
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("progress",)},
    }
    killpoint.reached("write")
    with _timed(timings, "write"):
        out = write_artifact(cfg.out, manifest=manifest, images=derived.images,
                             trajectories=derived.trajectories, patients=derived.patients,
                             density=derived.density,
                             features=features, display=display)
    embedded = {"covid": embedded_covid}
    if cfg.rsna:
        embedded["rsna"] = counts[S.C_EMBEDDED_RSNA]
    return Summary(out, embedded, skipped, excluded, timings, result.computed, result.from_cache,
                   embedder.spec.pretrained, embedder.spec.label, notes, covid.made_unknown)
