"""config -> load -> features -> UMAP -> states / trajectories / density -> artifact."""
from __future__ import annotations

import json
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.compute import killpoint
from cxrviz.compute.cache import ResultCache, key_of
from cxrviz.compute.derive import derive
from cxrviz.compute.embedding import MIN_DIST, N_NEIGHBORS
from cxrviz.compute.features import display_version, embed_files
from cxrviz.compute.model import DEFAULT_WEIGHTS, load_embedder
from cxrviz.compute.states import STATE_RULES
from cxrviz.data.covid import UNKNOWN_PATIENT_PREFIX
from cxrviz.hashing import sha256_bytes
from cxrviz.io.artifact import write_artifact
from precompute import sources
from precompute.summary import Summary


@dataclass
class Config:
    dataset: str  # KIND:PATH (KIND a cohort kind of precompute.sources.READERS) or PATH (covid)
    out: str = "artifacts/covid"
    reference: str | None = None  # KIND:PATH of a reference kind (rsna)
    rsna: str | None = None  # the same as reference="rsna:PATH" (today's --rsna)
    mimic_iv: str | None = None  # MIMIC-IV root for --dataset mimic:PATH
    rsna_subset: str = "pneumonia"
    weights: str = DEFAULT_WEIGHTS
    weights_pretrained: bool | None = None  # override for local files
    precision: str = "fp32"
    device: str = "cpu"  # auto | cpu | cuda | cuda:N | mps (the CLI's default is auto)
    batch_size: int | None = None  # None: the device's default (cxrviz.compute.device)
    workers: int | None = None  # None: the cores less what the model needs (the same)
    display_size: int | None = S.DISPLAY_MAX_SIDE  # None: --display none (no display JPEGs)
    features_dtype: str = "float32"  # or float16 (features.npy; the cache keeps float32)
    seed: int = 0
    umap_neighbors: int = N_NEIGHBORS
    umap_min_dist: float = MIN_DIST
    umap_fit_sample: int | None = None  # None: all up to embedding.FIT_ALL_MAX, else a sample
    limit: int | None = None
    cache_dir: str | None = None  # default: <out>/../.cache
    progress: bool = True
    allow_download: bool = True
    engine: str = "local"  # local (this machine) | ray (Ray Data: cxrviz.compute.ray_engine)
    ray_address: str | None = None  # --engine ray: a cluster's address; None starts a local Ray

    def resolved_cache_dir(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return Path(self.out).expanduser().resolve().parent / ".cache"

    def sources(self) -> list:
        """[(kind, path)]: the cohort first, then the reference cloud if any."""
        if self.rsna and self.reference:
            raise ValueError("give --reference or --rsna, not both")
        out = [sources.parse(self.dataset, S.ROLE_COHORT, sources.DEFAULT_KIND)]
        reference = self.reference or (f"{S.SOURCE_RSNA}:{self.rsna}" if self.rsna else None)
        if reference:
            out.append(sources.parse(reference, S.ROLE_REFERENCE))
        if self.mimic_iv and out[0][0] != S.SOURCE_MIMIC:
            raise ValueError("--mimic-iv goes with --dataset mimic:PATH")
        return out


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
    """Coordinates, parameters and fit-set mask for these logits and settings, fitted at most
    once (on every image, or on a seeded sample beyond embedding.FIT_ALL_MAX or with
    --umap-fit-sample, the rest transformed).

    The cache holds data only (the coordinates, the mask and the parameters as JSON, in an npz
    read with allow_pickle=False), as the artifact does; entries of older versions (a pickled
    reducer beside them) are keyed differently and never read.
    """
    from importlib.metadata import version

    key = key_of("umap-data-v2", _array_sha(logits), cfg.umap_neighbors, cfg.umap_min_dist,
                 cfg.seed, cfg.umap_fit_sample, version("umap-learn"))
    hit = cache.get_arrays("umap", key)
    if hit is not None:
        return hit["coords"], json.loads(str(hit["params"])), hit["fit"]
    from cxrviz.compute.embedding import fit_umap

    coords, params, fit = fit_umap(logits, n_neighbors=cfg.umap_neighbors,
                                   min_dist=cfg.umap_min_dist, seed=cfg.seed,
                                   fit_sample=cfg.umap_fit_sample)
    cache.put_arrays("umap", key, coords=coords, params=np.array(json.dumps(params)), fit=fit)
    return coords, params, fit


def _embed_engine(cfg: Config):
    """embed_files of the engine asked for; both fill and read the same cache."""
    if cfg.engine == "ray":
        from functools import partial

        from cxrviz.compute import ray_engine

        return partial(ray_engine.embed_files, address=cfg.ray_address)
    if cfg.engine != "local":
        raise ValueError(f"engine must be local or ray, not {cfg.engine!r}")
    return embed_files


def _array_sha(arr) -> str:
    return sha256_bytes(np.ascontiguousarray(arr, np.float32).tobytes())


def build_artifact(cfg: Config) -> Summary:
    timings: dict = {}
    notes: list = []
    cache = ResultCache(cfg.resolved_cache_dir())

    with _timed(timings, "load"):
        options = {"mimic_iv": cfg.mimic_iv, "rsna_subset": cfg.rsna_subset}
        read = [(kind, path, sources.read(kind, path, options).limited(cfg.limit))
                for kind, path in cfg.sources()]
        cohort = read[0][2]
        excluded = [g for _, _, src in read for g in src.excluded]
        for _, _, src in read[1:]:
            notes += src.notes
        table = pd.concat([src.frame for _, _, src in read], ignore_index=True)

    run = run_settings(cfg)
    with _timed(timings, "weights"):
        embedder = load_embedder(cfg.weights, precision=cfg.precision,
                                 batch_size=run["batch_size"], seed=cfg.seed,
                                 allow_download=cfg.allow_download,
                                 pretrained=cfg.weights_pretrained, id_cache=cache,
                                 device=run["device"])

    with _timed(timings, "features"):
        result = _embed_engine(cfg)(table["path"].tolist(), embedder, cache,
                                    workers=run["workers"], progress=cfg.progress,
                                    display_size=cfg.display_size)
    killpoint.reached("umap")

    # never opened (outside the folder, not found, no label), then those the model could not read
    skipped = [entry for _, _, src in read for entry in src.skipped]
    keep = table[S.PATH].isin(result.features.keys())
    failed = table.loc[~keep, [S.SOURCE, S.FILENAME, S.PATH]]
    skipped += [{"source": source, "filename": name, "reason": result.skipped.get(p, "unknown")}
                for source, name, p in failed.itertuples(index=False)]
    images = table[keep].reset_index(drop=True)
    if len(images) < 4:
        raise RuntimeError(f"only {len(images)} images could be embedded; a map needs at least 4."
                           " See the skipped list:\n" + "\n".join(
                               f"  {s['filename']}: {s['reason']}" for s in skipped))
    features, logits = assemble_outputs(images["path"], result, cfg.features_dtype)
    display = None if cfg.display_size is None else {  # image id -> the cached JPEG's file
        iid: result.display[p] for iid, p in zip(images[S.IMAGE_ID], images["path"])}
    shown_from = display_sources(images, read) if display is None else None

    with _timed(timings, "umap"):
        coords, umap_params, umap_fit = _umap_cached(logits, cfg, cache)

    with _timed(timings, "derive"):
        derived = derive(images, coords, logits, embedder.pathologies)
    if not umap_fit.all():  # the fit sample, as data: placement transforms against these rows
        derived.images[S.UMAP_FIT] = umap_fit

    made_unknown = cohort.made_unknown
    blank_ids = [g for g in made_unknown if g[S.E_COLUMN] == S.PATIENTID]
    if blank_ids:
        n = sum(g[S.E_COUNT] for g in blank_ids)
        notes.append(
            f"{n} metadata rows have no patient id; each is a patient of its own "
            f"('{UNKNOWN_PATIENT_PREFIX}<filename>'), never merged with another: "
            + ", ".join(f for g in blank_ids for f in g[S.E_FILENAMES]))
    shared_files = cohort.extra.get("shared_files", [])
    if shared_files:
        notes.append(
            f"{len(shared_files)} image files are listed under more than one metadata row "
            "(different patient ids); each row is its own point with the same image: "
            + "; ".join(f"{name}: {', '.join(ids)}" for name, ids in shared_files))
    notes += cohort.notes
    per_source = _per_source(read, images, skipped)
    mine = per_source[0]
    counts = {  # the cohort's, under the names the app reads (M_SOURCES: every source's)
        S.C_METADATA_ROWS: mine[S.SRC_ROWS],
        S.C_FRONTAL_XRAY: mine[S.SRC_ROWS] - mine[S.SRC_EXCLUDED],
        S.C_EMBEDDED_COVID: mine[S.SRC_EMBEDDED],
        S.C_EMBEDDED_RSNA: int((images[S.SOURCE] == S.SOURCE_RSNA).sum()),
        S.C_EXCLUDED: mine[S.SRC_EXCLUDED],
        S.C_SKIPPED_COVID: mine[S.SRC_SKIPPED],
        S.C_SKIPPED: len(skipped),
    }
    cohort_kind, cohort_path = read[0][0], read[0][1]
    reference = read[1] if len(read) > 1 else None
    manifest = {
        S.M_SCHEMA_VERSION: S.SCHEMA_VERSION,
        S.M_CREATED: datetime.now(timezone.utc).isoformat(timespec="seconds"),
        S.M_INPUTS: {"dataset": _resolved(cohort_path), "dataset_kind": cohort_kind,
                     "metadata_sha256": cohort.inputs.get("metadata_sha256"),
                     "mimic_iv": _resolved(cfg.mimic_iv) if cfg.mimic_iv else None,
                     "rsna": _resolved(reference[1]) if reference else None,
                     "rsna_subset": cfg.rsna_subset if reference else None,
                     "limit": cfg.limit},
        S.M_SOURCES: per_source,
        S.M_WEIGHTS: embedder.spec.to_manifest(),
        S.M_PATHOLOGIES: list(embedder.pathologies),
        S.M_DEVICE: run,
        S.M_DISPLAY: {S.DISPLAY_SIZE: cfg.display_size},
        S.M_FEATURES_DTYPE: cfg.features_dtype,
        S.M_PREPROCESS: {"version": S.PREPROCESS_VERSION,
                         "display": display_version(cfg.display_size),
                         "outputs": "features2 (1024-d) and classifier logits; op_threshs=None",
                         "steps": "normalize(img, maxval of real bit depth) -> first channel -> "
                                  "XRayCenterCrop -> XRayResizer(224, skimage)"},
        S.M_UMAP: umap_params,
        S.M_KDE: derived.kde_params,
        S.M_STATE_RULES: STATE_RULES,
        S.M_COUNTS: counts,
        S.M_EXCLUDED: excluded,
        S.M_SKIPPED: skipped,
        S.M_MADE_UNKNOWN: made_unknown,
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
                             features=features, display=display, display_sources=shown_from)
    embedded = {src[S.SRC_NAME]: src[S.SRC_EMBEDDED] for src in per_source}
    return Summary(out, embedded, skipped, excluded, timings, result.computed, result.from_cache,
                   embedder.spec.pretrained, embedder.spec.label, notes, made_unknown, run)


def run_settings(cfg: Config) -> dict:
    """Where and how this run embeds (written to the manifest): the torch device (DeviceUnavailable
    when absent), its name, the batch size and decoding workers (the device's defaults unless
    given), and the cores this process may use."""
    from cxrviz.compute.device import (default_batch_size, default_workers, device_name,
                                       resolve_device, usable_cores)

    device = resolve_device(cfg.device)
    return {"requested": cfg.device, "device": device, "name": device_name(device),
            "batch_size": cfg.batch_size or default_batch_size(device),
            "workers": default_workers(device) if cfg.workers is None else cfg.workers,
            "cores": usable_cores()}


def assemble_outputs(paths, result, features_dtype: str) -> tuple:
    """(features (n, d) features_dtype, logits (n, k) float32), filled row by row from the cache:
    the final arrays are the only copy (nothing is stacked from a list of rows)."""
    if features_dtype not in S.FEATURES_DTYPES:
        raise ValueError(f"features dtype must be one of {S.FEATURES_DTYPES}")
    paths = list(paths)
    first_f, first_l = result.features[paths[0]], result.logits[paths[0]]
    features = np.empty((len(paths), first_f.shape[-1]), features_dtype)
    logits = np.empty((len(paths), first_l.shape[-1]), np.float32)
    for row, path in enumerate(paths):
        features[row], logits[row] = result.features[path], result.logits[path]
    return features, logits


def display_sources(images: pd.DataFrame, read) -> pd.DataFrame:
    """--display none: per image its source and its file relative to that source's folder (the
    folder the manifest's sources name), for the app to open through the inside-the-folder rule."""
    roots = {src.name: Path(_resolved(path)) for _, path, src in read}
    files = [Path(p).relative_to(roots[name]).as_posix()
             for name, p in zip(images[S.SOURCE], images[S.PATH])]
    return pd.DataFrame({S.IMAGE_ID: images[S.IMAGE_ID].to_numpy(),
                         S.SOURCE: images[S.SOURCE].to_numpy(), S.FILE: files})


def _resolved(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def _per_source(read, images: pd.DataFrame, skipped: list) -> list:
    """manifest["sources"]: per source, embedded + excluded + skipped == rows (checked)."""
    out = []
    for kind, path, src in read:
        entry = {S.SRC_NAME: src.name, S.SRC_KIND: kind, S.SRC_ROLE: src.role,
                 S.SRC_PATH: _resolved(path), S.SRC_ROWS: int(src.input_rows),
                 S.SRC_EMBEDDED: int((images[S.SOURCE] == src.name).sum()),
                 S.SRC_EXCLUDED: sum(g[S.E_COUNT] for g in src.excluded),
                 S.SRC_SKIPPED: sum(e["source"] == src.name for e in skipped),
                 S.SRC_PROVIDED: list(src.provided), S.SRC_INPUTS: src.inputs}
        total = entry[S.SRC_EMBEDDED] + entry[S.SRC_EXCLUDED] + entry[S.SRC_SKIPPED]
        if total != entry[S.SRC_ROWS]:
            raise AssertionError(f"{src.name}: {total} rows accounted for, {src.input_rows} read")
        out.append(entry)
    return out
