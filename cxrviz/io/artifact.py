"""Write and read the artifact: the one contract between precompute and the app.

Writing builds the whole folder under a temporary name beside the target and renames it into
place, so readers see either the previous artifact or the new one, never half of one. Reading
checks the schema version, that every data file is there with the sha256 the manifest lists,
and that each parses as what it should be; any failure is an ArtifactError naming the file.
An artifact is data only (parquet, npy / npz without pickles, JSON, JPEG): opening one runs
nothing from it. A `umap.joblib` left in an older artifact is never opened.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.compute import killpoint
from cxrviz.hashing import sha256_file, sha256_file_cached
from cxrviz.weights import WeightsSpec
from cxrviz.io.rebuild import rebuild_command

CHECKED_FILES = (S.IMAGES_FILE, S.TRAJECTORIES_FILE, S.PATIENTS_FILE, S.DENSITY_FILE,
                 S.FEATURES_FILE)
DENSITY_KEYS = (S.DENSITY_X, S.DENSITY_Y, S.DENSITY_Z, S.DENSITY_BAD_XY, S.DENSITY_BANDWIDTH)


class ArtifactError(Exception):
    """The folder is not a usable artifact; the message says what is wrong and how to fix it."""


def write_artifact(out_dir, *, manifest: dict, images: pd.DataFrame, trajectories: pd.DataFrame,
                   patients: pd.DataFrame, density: dict, features: np.ndarray,
                   display: dict | None, display_sources: pd.DataFrame | None = None) -> Path:
    """Write all files into a temp folder beside `out_dir`, then swap it into place.

    display: image id -> JPEG (bytes, or a file to copy: the cache's, never read whole), or None
    with `display_sources` (--display none: no JPEGs, where the app finds each source file).
    features: float32 or float16, written as they are (no copy).
    """
    if (display is None) == (display_sources is None):
        raise ValueError("give display JPEGs or display sources, not both or neither")
    if np.dtype(features.dtype).name not in S.FEATURES_DTYPES:
        raise ValueError(f"features must be one of {S.FEATURES_DTYPES}, not {features.dtype}")
    out_dir = Path(out_dir).expanduser().resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))
    try:
        images.to_parquet(tmp / S.IMAGES_FILE, index=False)
        trajectories.to_parquet(tmp / S.TRAJECTORIES_FILE, index=False)
        patients.to_parquet(tmp / S.PATIENTS_FILE, index=False)
        with open(tmp / S.DENSITY_FILE, "wb") as fh:
            np.savez_compressed(fh, **{k: np.asarray(density[k]) for k in DENSITY_KEYS})
        np.save(tmp / S.FEATURES_FILE, np.ascontiguousarray(features))
        if display is None:
            display_sources.to_parquet(tmp / S.DISPLAY_SOURCES_FILE, index=False)
        else:
            _write_display(tmp / S.DISPLAY_DIR, display)
        manifest = dict(manifest)
        manifest[S.M_FILES] = {name: sha256_file(tmp / name) for name in checked_files(manifest)}
        # The manifest goes last: a folder without one is, by definition, unfinished.
        (tmp / S.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=False,
                                                      default=_json_default))
        os.chmod(tmp, 0o755)
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _write_display(folder: Path, display) -> None:
    folder.mkdir()
    for written, (image_id, jpeg) in enumerate(display.items()):
        target = folder / f"{image_id}{S.DISPLAY_SUFFIX}"
        if isinstance(jpeg, (bytes, bytearray)):
            target.write_bytes(jpeg)
        else:
            shutil.copyfile(jpeg, target)
        killpoint.reached("writing", written + 1)


def checked_files(manifest: dict) -> tuple:
    """The data files whose sha256 the manifest lists (display_sources.parquet: --display none)."""
    none = (manifest.get(S.M_DISPLAY) or {}).get(S.DISPLAY_SIZE, S.DISPLAY_MAX_SIDE) is None
    return CHECKED_FILES + ((S.DISPLAY_SOURCES_FILE,) if none else ())


def _remove_leftovers(out_dir: Path) -> None:
    """Temp folders of killed runs (their process is gone) are deleted; live ones are left."""
    for stale in out_dir.parent.glob(f".{out_dir.name}.tmp-*-*"):
        pid = stale.name.split(".tmp-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


BUILD_HINT = ("Build one with:\n    python -m precompute --dataset PATH/covid-chestxray-dataset "
              "--out artifacts/covid\n(or `make run`, which builds the default artifact).")


@dataclass
class Artifact:
    path: Path
    manifest: dict
    images: pd.DataFrame
    trajectories: pd.DataFrame
    patients: pd.DataFrame
    density: dict
    # --display none: image id -> (source name, file relative to that source's folder)
    display_sources: dict | None = None

    @property
    def pathologies(self) -> list:
        return list(self.manifest[S.M_PATHOLOGIES])

    @property
    def artifact_id(self) -> str:
        """The folder's name and the start of its images table's sha256: names this build."""
        return f"{self.path.name}@{self.manifest.get(S.M_FILES, {}).get(S.IMAGES_FILE, '')[:12]}"

    @property
    def weights(self) -> WeightsSpec:
        return WeightsSpec.from_manifest(self.manifest[S.M_WEIGHTS])

    @property
    def pretrained(self) -> bool:
        return self.weights.pretrained

    def display_path(self, image_id: str) -> Path:
        return self.path / S.DISPLAY_DIR / f"{image_id}{S.DISPLAY_SUFFIX}"

    @property
    def display_size(self) -> int | None:
        """The display JPEGs' long side; None: built with --display none (no JPEGs)."""
        return (self.manifest.get(S.M_DISPLAY) or {}).get(S.DISPLAY_SIZE, S.DISPLAY_MAX_SIDE)

    def source_file(self, image_id: str) -> tuple:
        """(the image's source file, None) or (None, why it cannot be read here), for an artifact
        built with --display none. The file is looked up by id in display_sources.parquet and
        opened only inside the folder the manifest names for its source (cxrviz.data.paths)."""
        from cxrviz.data.paths import OUTSIDE_REASON, inside

        source, file = self.display_sources[image_id]
        folder = next((e[S.SRC_PATH] for e in self.manifest.get(S.M_SOURCES, [])
                       if e[S.SRC_NAME] == source), None)
        root = Path(folder).resolve() if folder else None
        if root is None or not root.is_dir():
            return None, (f"the {source} dataset folder ({Path(folder or '?').name}) is not "
                          "reachable from this server, and this map was built without display "
                          "images (--display none)")
        path = inside(root, file)
        if path is None:
            return None, OUTSIDE_REASON
        if not path.is_file():
            return None, f"{file} is missing from the {source} dataset folder"
        return path, None

    def features(self) -> np.ndarray:
        return np.load(self.path / S.FEATURES_FILE, mmap_mode="r", allow_pickle=False)

    def evaluation(self) -> dict | None:
        """evaluation/ as written by python -m precompute.evaluate, or None if not computed."""
        folder = self.path / S.EVAL_DIR
        if not (folder / S.EVAL_INFO).is_file():
            return None
        return {"summary": pd.read_csv(folder / S.EVAL_SUMMARY),
                "splits": pd.read_csv(folder / S.EVAL_SPLITS),
                "predictions": pd.read_parquet(folder / S.EVAL_PREDICTIONS),
                "info": json.loads((folder / S.EVAL_INFO).read_text())}


def read_manifest(path) -> dict:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ArtifactError(f"no artifact at {path}: the folder does not exist.\n{BUILD_HINT}")
    mpath = path / S.MANIFEST_FILE
    if not mpath.is_file():
        raise ArtifactError(f"{path} is not a finished artifact ({S.MANIFEST_FILE} is missing: an "
                            f"interrupted or foreign folder).\n{BUILD_HINT}")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{mpath} is unreadable ({exc}).\n{BUILD_HINT}") from None
    version = manifest.get(S.M_SCHEMA_VERSION)
    if version != S.SCHEMA_VERSION:
        raise ArtifactError(f"{path} has schema_version {version!r}; this cxrviz reads "
                            f"{S.SCHEMA_VERSION}. Rebuild it with:\n"
                            f"    {rebuild_command(manifest, path)}")
    return manifest


def read_artifact(path) -> Artifact:
    """Open an artifact: every data file present, equal to the manifest's sha256 and readable."""
    path = Path(path).expanduser().resolve()
    manifest = read_manifest(path)
    verify_files(path, manifest)
    images = _read_table(path, S.IMAGES_FILE, S.image_columns(manifest[S.M_PATHOLOGIES]))
    trajectories = _read_table(path, S.TRAJECTORIES_FILE, S.TRAJECTORY_COLUMNS)
    patients = _read_table(path, S.PATIENTS_FILE, S.PATIENT_COLUMNS)
    density = _read_density(path)
    _check_features(path, len(images), manifest.get(S.M_FEATURES_DTYPE, "float32"))
    art = Artifact(path, manifest, images, trajectories, patients, density,
                   _read_display_sources(path) if S.DISPLAY_SOURCES_FILE in checked_files(
                       manifest) else None)
    try:
        art.weights  # noqa: B018  (a typed spec, or a clear refusal now)
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}/{S.MANIFEST_FILE}: bad weights entry: {exc}") from None
    return art


def verify_files(path: Path, manifest: dict) -> None:
    """Each data file is there and has the sha256 the manifest lists (hashes of unchanged files
    are remembered in the user's cache folder: hashing.sha256_file_cached)."""
    listed = manifest.get(S.M_FILES) or {}
    for name in checked_files(manifest):
        if not (path / name).is_file():
            raise ArtifactError(f"{path} is incomplete: {name} is missing.\n{BUILD_HINT}")
        if name not in listed:
            raise ArtifactError(f"{path}/{S.MANIFEST_FILE} lists no sha256 for {name}; it cannot "
                                f"be checked.\n{BUILD_HINT}")
        try:
            actual = sha256_file_cached(path / name)
        except OSError as exc:
            raise ArtifactError(f"{path}/{name} cannot be read ({exc}).\n{BUILD_HINT}") from None
        if actual != listed[name]:
            raise ArtifactError(f"{path}/{name} does not match the manifest's sha256 (changed or "
                                f"damaged after it was written: sha256 {actual}, manifest "
                                f"{listed[name]}).\n{BUILD_HINT}")


def _unreadable(path: Path, name: str, what: str, exc: Exception) -> ArtifactError:
    return ArtifactError(f"{path}/{name} is not a readable {what} ({type(exc).__name__}: "
                         f"{exc}).\n{BUILD_HINT}")


def _read_table(path: Path, name: str, columns) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path / name)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise _unreadable(path, name, "parquet table", exc) from None
    lacking = [c for c in columns if c not in table.columns]
    if lacking:
        raise ArtifactError(f"{path}/{name} lacks columns {lacking}.\n{BUILD_HINT}")
    return table


def _read_display_sources(path: Path) -> dict:
    table = _read_table(path, S.DISPLAY_SOURCES_FILE, (S.IMAGE_ID, S.SOURCE, S.FILE))
    return dict(zip(table[S.IMAGE_ID], zip(table[S.SOURCE], table[S.FILE])))


def _read_density(path: Path) -> dict:
    try:
        with np.load(path / S.DENSITY_FILE, allow_pickle=False) as d:
            lacking = [k for k in DENSITY_KEYS if k not in d.files]
            density = {k: d[k] for k in DENSITY_KEYS if k in d.files}
    except Exception as exc:  # zipfile, zlib and numpy each raise their own types
        raise _unreadable(path, S.DENSITY_FILE, "npz archive of arrays", exc) from None
    if lacking:
        raise ArtifactError(f"{path}/{S.DENSITY_FILE} lacks {lacking}.\n{BUILD_HINT}")
    gx, gy, gz = (density[k] for k in (S.DENSITY_X, S.DENSITY_Y, S.DENSITY_Z))
    bad = density[S.DENSITY_BAD_XY]
    if gz.shape != (len(gy), len(gx)) or bad.ndim != 2 or bad.shape[1] != 2 \
            or density[S.DENSITY_BANDWIDTH].size != 1:
        raise ArtifactError(f"{path}/{S.DENSITY_FILE} has arrays of the wrong shapes (z "
                            f"{gz.shape} for a {len(gy)}x{len(gx)} grid, bad_xy {bad.shape})."
                            f"\n{BUILD_HINT}")
    return density


def _check_features(path: Path, n_images: int, dtype: str) -> None:
    """Only the header is read here (the app maps the file later, when placing images). float32,
    or float16 where the manifest says so (--features-dtype float16)."""
    if dtype not in S.FEATURES_DTYPES:
        raise ArtifactError(f"{path}/{S.MANIFEST_FILE}: features dtype {dtype!r} is not one of "
                            f"{S.FEATURES_DTYPES}.\n{BUILD_HINT}")
    try:
        features = np.load(path / S.FEATURES_FILE, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise _unreadable(path, S.FEATURES_FILE, ".npy array", exc) from None
    if features.ndim != 2 or len(features) != n_images or features.dtype != np.dtype(dtype):
        raise ArtifactError(f"{path}/{S.FEATURES_FILE} holds {features.dtype} {features.shape}; "
                            f"expected {dtype} ({n_images}, d), one row per image.\n{BUILD_HINT}")
