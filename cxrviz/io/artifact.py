"""Write and read the artifact: the one contract between precompute and the app.

Writing builds the whole folder under a temporary name beside the target and renames it into
place, so readers see either the previous artifact or the new one, never half of one. Reading
checks the schema version, that every listed file is there and, on request, their hashes.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.hashing import sha256_file
from cxrviz.weights import WeightsSpec

CHECKED_FILES = (S.IMAGES_FILE, S.TRAJECTORIES_FILE, S.PATIENTS_FILE, S.DENSITY_FILE,
                 S.FEATURES_FILE, S.UMAP_FILE)
DENSITY_KEYS = (S.DENSITY_X, S.DENSITY_Y, S.DENSITY_Z, S.DENSITY_BAD_XY, S.DENSITY_BANDWIDTH)


class ArtifactError(Exception):
    """The folder is not a usable artifact; the message says what is wrong and how to fix it."""


def write_artifact(out_dir, *, manifest: dict, images: pd.DataFrame, trajectories: pd.DataFrame,
                   patients: pd.DataFrame, density: dict, features: np.ndarray,
                   umap_bytes: bytes, display: dict) -> Path:
    """Write all files into a temp folder beside `out_dir`, then swap it into place."""
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
        np.save(tmp / S.FEATURES_FILE, np.ascontiguousarray(features, dtype=np.float32))
        (tmp / S.UMAP_FILE).write_bytes(umap_bytes)
        (tmp / S.DISPLAY_DIR).mkdir()
        for image_id, jpeg in display.items():
            (tmp / S.DISPLAY_DIR / f"{image_id}{S.DISPLAY_SUFFIX}").write_bytes(jpeg)
        manifest = dict(manifest)
        manifest[S.M_FILES] = {name: sha256_file(tmp / name) for name in CHECKED_FILES}
        # The manifest goes last: a folder without one is, by definition, unfinished.
        (tmp / S.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=False,
                                                      default=_json_default))
        os.chmod(tmp, 0o755)
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


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

    def features(self) -> np.ndarray:
        return np.load(self.path / S.FEATURES_FILE, mmap_mode="r")

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


def rebuild_command(manifest: dict, path) -> str:
    """The precompute command that rebuilds an (older) artifact from what its manifest says."""
    config = manifest.get("config") or {}
    inputs = manifest.get(S.M_INPUTS) or {}
    dataset = inputs.get("dataset") or config.get("dataset") or "PATH/covid-chestxray-dataset"
    parts = ["python -m precompute", f"--dataset {shlex.quote(str(dataset))}",
             f"--out {shlex.quote(str(path))}"]
    for flag, key, default in (("--weights", "weights", None), ("--precision", "precision", "fp32"),
                               ("--batch-size", "batch_size", None), ("--rsna", "rsna", None),
                               ("--rsna-subset", "rsna_subset", "pneumonia"),
                               ("--seed", "seed", 0), ("--limit", "limit", None)):
        value = config.get(key)
        if value is not None and value != default:
            parts.append(f"{flag} {shlex.quote(str(value))}")
    if config.get("weights_pretrained") is False:
        parts.append("--weights-untrained")
    return " ".join(parts)


def read_artifact(path, *, verify_hashes: bool = False) -> Artifact:
    path = Path(path).expanduser().resolve()
    manifest = read_manifest(path)
    listed = manifest.get(S.M_FILES, {})
    for name in CHECKED_FILES:
        if not (path / name).is_file():
            raise ArtifactError(f"{path} is incomplete: {name} is missing.\n{BUILD_HINT}")
        if verify_hashes and listed.get(name) != sha256_file(path / name):
            raise ArtifactError(f"{path}/{name} does not match the manifest's sha256 (modified "
                                f"after it was written).\n{BUILD_HINT}")
    images = pd.read_parquet(path / S.IMAGES_FILE)
    want = S.image_columns(manifest[S.M_PATHOLOGIES])
    lacking = [c for c in want if c not in images.columns]
    if lacking:
        raise ArtifactError(f"{path}/{S.IMAGES_FILE} lacks columns {lacking}.\n{BUILD_HINT}")
    trajectories = pd.read_parquet(path / S.TRAJECTORIES_FILE)
    patients = pd.read_parquet(path / S.PATIENTS_FILE)
    with np.load(path / S.DENSITY_FILE) as d:
        lacking = [k for k in DENSITY_KEYS if k not in d.files]
        if lacking:
            raise ArtifactError(f"{path}/{S.DENSITY_FILE} lacks {lacking}.\n{BUILD_HINT}")
        density = {k: d[k] for k in DENSITY_KEYS}
    art = Artifact(path, manifest, images, trajectories, patients, density)
    try:
        art.weights  # noqa: B018  (a typed spec, or a clear refusal now)
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}/{S.MANIFEST_FILE}: bad weights entry: {exc}") from None
    return art
