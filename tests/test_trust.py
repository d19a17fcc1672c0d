"""An artifact is data, never code: a poisoned umap.joblib and a manifest naming a pickled weights
file run nothing; a changed byte in any checked file is refused naming it; damaged files give
ArtifactError, not a traceback."""
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxrviz import schema as S
from cxrviz.hashing import sha256_bytes, sha256_file
from cxrviz.io.artifact import CHECKED_FILES, ArtifactError, read_artifact

ROOT = Path(__file__).resolve().parents[1]


class Poison:
    """Unpickling this runs a shell command that creates `marker` (what an attacker's file does)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(autouse=True)
def own_hash_cache(tmp_path, monkeypatch):
    """Each test its own hash cache (the user's cache folder stays untouched)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def copy_artifact(src: Path, dst: Path, display: bool = True) -> Path:
    shutil.copytree(src, dst, ignore=None if display else shutil.ignore_patterns(S.DISPLAY_DIR))
    return dst


def rewrite_manifest(art_dir: Path, change) -> None:
    path = art_dir / S.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest, indent=2))


def one_collection_row(art):
    covid = art.images[art.images[S.SOURCE] == S.SOURCE_COVID]
    return covid.drop_duplicates(S.FILENAME, keep=False).iloc[len(covid) // 3]


def test_the_poison_works(tmp_path):
    """The control: unpickling the poison does create the marker (so its absence means
    something in the tests below)."""
    marker = tmp_path / "ran"
    blob = tmp_path / "poison.pkl"
    blob.write_bytes(pickle.dumps(Poison(marker)))
    subprocess.run([sys.executable, "-c", f"import joblib; joblib.load({str(blob)!r})"],
                   check=True, timeout=60)
    assert marker.exists()


# ---- a poisoned umap.joblib in an old (schema 2) artifact -----------------------------------
@pytest.fixture(scope="module")
def poisoned(covid_artifact, tmp_path_factory):
    root = tmp_path_factory.mktemp("poisoned")
    marker = root / "umap-ran"
    art_dir = copy_artifact(covid_artifact.out, root / "art")
    blob = pickle.dumps(Poison(marker))
    (art_dir / S.UMAP_FILE).write_bytes(blob)

    def as_written_before_14(m):
        m[S.M_FILES][S.UMAP_FILE] = sha256_bytes(blob)  # listed, with its (matching) sha256
        m[S.M_UMAP] = {k: m[S.M_UMAP][k] for k in UMAP_KEYS_BEFORE_14}

    rewrite_manifest(art_dir, as_written_before_14)
    return art_dir, marker


UMAP_KEYS_BEFORE_14 = ("input", "n_components", "n_neighbors", "n_neighbors_requested",
                       "min_dist", "random_state", "metric", "umap_version")


opened = []
watching = False


def _watch_opens(event, args):
    if watching and event == "open" and str(args[0]).endswith(S.UMAP_FILE):
        opened.append(args[0])


sys.addaudithook(_watch_opens)


def test_placement_service_never_opens_umap_joblib(poisoned, dataset, covid_artifact):
    """Never opened (an audit hook sees every open), and images are placed exactly as on the
    artifact that records every UMAP parameter (those an old manifest lacks are umap-learn's
    defaults, which it was fitted with)."""
    global watching
    from cxrviz.compute.placement import Placer
    from cxrviz.placement_service import READY, PlacementService

    art_dir, marker = poisoned
    watching = True
    try:
        art = read_artifact(art_dir)
        service = PlacementService(art).start()
        assert service.wait(300) == READY, service.message
        row = one_collection_row(art)
        placed = service.place((dataset / "images" / row[S.FILENAME]).read_bytes(), 8, "logits")
    finally:
        watching = False
    assert opened == [] and not marker.exists()
    assert placed.neighbours[0]["image_id"] == row[S.IMAGE_ID]
    diag = np.hypot(*np.ptp(art.images[[S.X, S.Y]].to_numpy(), axis=0))
    assert np.hypot(placed.x - row[S.X], placed.y - row[S.Y]) < 0.06 * diag
    recorded = Placer(read_artifact(covid_artifact.out)).umap
    np.testing.assert_array_equal(recorded.transform(placed.logits[None])[0],
                                  np.float32([placed.x, placed.y]))


def test_place_cli_ignores_umap_joblib(poisoned, dataset):
    art_dir, marker = poisoned
    row = one_collection_row(read_artifact(art_dir))
    done = subprocess.run([sys.executable, "-m", "precompute.place",
                           str(dataset / "images" / row[S.FILENAME]), "--artifact", str(art_dir),
                           "--json", "-k", "2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["neighbours"][0]["image_id"] == row[S.IMAGE_ID]
    assert not marker.exists()


def test_new_artifacts_hold_no_pickle(covid_artifact):
    """No umap.joblib; every file of the artifact is JSON, parquet, npy/npz without objects, or
    JPEG (read by their own readers here, with pickles refused)."""
    import pandas as pd
    from PIL import Image

    out = Path(covid_artifact.out)
    assert not (out / S.UMAP_FILE).exists()
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".parquet":
            pd.read_parquet(path)
        elif path.suffix in (".npy", ".npz"):
            loaded = np.load(path, allow_pickle=False)
            arrays = [loaded[k] for k in loaded.files] if path.suffix == ".npz" else [loaded]
            assert all(a.dtype != object for a in arrays)
        else:
            assert path.suffix == S.DISPLAY_SUFFIX, path
            with Image.open(path) as im:
                assert im.format == "JPEG"


def test_umap_cache_holds_data_only_and_a_rerun_refits_nothing(covid_artifact, dataset,
                                                              session_cache, tmp_path):
    """The pipeline's UMAP cache is npz (read with allow_pickle=False); a re-run uses the entry
    as it is (same file, not rewritten) and writes the same map and parameters."""
    from precompute.pipeline import Config, build_artifact

    entries = [p for p in (session_cache / "umap").rglob("*") if p.is_file()]
    assert entries and all(p.suffix == ".npz" for p in entries), entries
    stamp = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in entries}
    again = build_artifact(Config(dataset=str(dataset), out=str(tmp_path / "again"),
                                  weights="random", cache_dir=str(session_cache), progress=False))
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in entries} == stamp
    assert [p for p in (session_cache / "umap").rglob("*") if p.is_file()] == entries
    a, b = read_artifact(covid_artifact.out), read_artifact(again.out)
    assert a.manifest[S.M_UMAP] == b.manifest[S.M_UMAP]
    np.testing.assert_array_equal(a.images[[S.X, S.Y]].to_numpy(), b.images[[S.X, S.Y]].to_numpy())


# ---- a manifest naming a pickled weights file -------------------------------------------------
@pytest.fixture(scope="module")
def pickled_weights_artifact(dataset, tmp_path_factory):
    """Built from a plain state_dict file; then its manifest is made to name a pickled module
    with the same weights (and that file's sha256), whose unpickling creates a marker."""
    import torch
    import torchxrayvision as xrv

    from precompute.pipeline import Config, build_artifact

    root = tmp_path_factory.mktemp("pickled-weights")
    torch.manual_seed(11)
    model = xrv.models.DenseNet(num_classes=18).eval()
    tensors = root / "tensors.pt"
    torch.save(model.state_dict(), tensors)
    out = build_artifact(Config(dataset=str(dataset), out=str(root / "art"),
                                weights=str(tensors), weights_pretrained=False, limit=8,
                                cache_dir=str(root / "cache"), progress=False)).out
    marker = root / "weights-ran"
    model.poison = Poison(marker)  # pickled with the module: unpickling runs the command
    module_file = root / "module.pt"
    torch.save(model, module_file)
    tensors.unlink()

    def name_the_module(m):
        m[S.M_WEIGHTS][S.W_PATH] = str(module_file)
        m[S.M_WEIGHTS][S.W_SHA256] = sha256_file(module_file)

    rewrite_manifest(out, name_the_module)
    return out, module_file, marker


def test_manifest_weights_path_to_a_pickle_is_not_loaded(pickled_weights_artifact):
    from cxrviz.compute.model import WeightsUnavailable
    from cxrviz.compute.placement import Placer
    from cxrviz.placement_service import UNAVAILABLE, PlacementService

    out, module_file, marker = pickled_weights_artifact
    art = read_artifact(out)
    with pytest.raises(WeightsUnavailable) as err:
        Placer(art).load()
    assert f"--weights {module_file}" in str(err.value)
    service = PlacementService(art).start()
    assert service.wait(300) == UNAVAILABLE
    assert "--weights" in service.message and "unavailable" in service.message
    assert not marker.exists()


def test_place_cli_loads_a_pickle_only_when_given_with_weights(pickled_weights_artifact,
                                                               dataset):
    out, module_file, marker = pickled_weights_artifact
    art = read_artifact(out)
    row = art.images.iloc[2]
    image = str(dataset / "images" / row[S.FILENAME])
    cmd = [sys.executable, "-m", "precompute.place", image, "--artifact", str(out), "--json"]
    refused = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 4 and "--weights" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and not marker.exists()
    given = subprocess.run(cmd + ["--weights", str(module_file)], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)
    assert given.returncode == 0, given.stderr
    assert marker.exists()  # the user chose to trust it: it was unpickled
    (result,) = json.loads(given.stdout)["results"]
    logits = [result["outputs"][p] for p in art.pathologies]
    np.testing.assert_array_equal(np.float32(logits), row[[S.logit_column(p) for p in
                                                             art.pathologies]].to_numpy(np.float32))


# ---- hashes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CHECKED_FILES)
def test_a_changed_byte_is_refused_naming_the_file(covid_artifact, tmp_path, name):
    """Opened once (its hashes remembered), then one byte changed with the file's size and
    mtime kept: refused, with the file named."""
    art_dir = copy_artifact(covid_artifact.out, tmp_path / "art", display=False)
    read_artifact(art_dir)
    cache = json.loads((tmp_path / "xdg-cache" / "cxrviz" / "file-sha256.json").read_text())
    remembered = {Path(json.loads(k)[0]).name: v for k, v in cache.items()}
    assert remembered == {n: sha256_file(art_dir / n) for n in CHECKED_FILES}
    target = art_dir / name
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size and target.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(ArtifactError, match=f"{name} does not match the manifest's sha256"):
        read_artifact(art_dir)


def test_manifest_without_a_files_entry_is_refused(covid_artifact, tmp_path):
    art_dir = copy_artifact(covid_artifact.out, tmp_path / "art", display=False)
    rewrite_manifest(art_dir, lambda m: m[S.M_FILES].pop(S.FEATURES_FILE))
    with pytest.raises(ArtifactError, match=f"lists no sha256 for {S.FEATURES_FILE}"):
        read_artifact(art_dir)


# ---- damaged files --------------------------------------------------------------------------
def _object_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.array([{"a": 1}], dtype=object), y=np.zeros(3), z=np.zeros((3, 3)),
             bad_xy=np.zeros((1, 2)), bandwidth=np.array(1.0))
    return buf.getvalue()


DAMAGE = {
    "truncated": lambda data: data[:len(data) // 2],
    "garbage": lambda data: np.random.default_rng(0).bytes(len(data)),
}


@pytest.mark.parametrize("name", [S.IMAGES_FILE, S.TRAJECTORIES_FILE, S.PATIENTS_FILE,
                                  S.DENSITY_FILE, S.FEATURES_FILE])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_file_listed_with_its_own_hash_gives_artifact_error(covid_artifact, tmp_path,
                                                                    name, damage):
    """Damaged and re-listed with its new sha256 (so the hash check passes): reading it fails
    with ArtifactError naming the file, not with the parser's traceback."""
    art_dir = copy_artifact(covid_artifact.out, tmp_path / "art", display=False)
    target = art_dir / name
    target.write_bytes(DAMAGE[damage](target.read_bytes()))
    rewrite_manifest(art_dir, lambda m: m[S.M_FILES].__setitem__(name, sha256_file(target)))
    with pytest.raises(ArtifactError, match=f"{name} is not a readable"):
        read_artifact(art_dir)


def test_density_with_a_pickled_array_is_refused(covid_artifact, tmp_path):
    art_dir = copy_artifact(covid_artifact.out, tmp_path / "art", display=False)
    (art_dir / S.DENSITY_FILE).write_bytes(_object_npz())
    rewrite_manifest(art_dir, lambda m: m[S.M_FILES].__setitem__(
        S.DENSITY_FILE, sha256_file(art_dir / S.DENSITY_FILE)))
    with pytest.raises(ArtifactError, match=f"{S.DENSITY_FILE} is not a readable.*allow_pickle"):
        read_artifact(art_dir)


def test_app_start_up_prints_the_message_and_exits(covid_artifact, tmp_path):
    art_dir = copy_artifact(covid_artifact.out, tmp_path / "art", display=False)
    target = art_dir / S.IMAGES_FILE
    target.write_bytes(target.read_bytes()[:1000])
    rewrite_manifest(art_dir, lambda m: m[S.M_FILES].__setitem__(S.IMAGES_FILE,
                                                                 sha256_file(target)))
    done = subprocess.run([sys.executable, "app.py", "--artifact", str(art_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert f"{S.IMAGES_FILE} is not a readable parquet table" in done.stderr
    assert "python -m precompute" in done.stderr and "Traceback" not in done.stderr
    # the same artifact under gunicorn (README's "for teams"): the message, no traceback
    gunicorn = Path(sys.executable).with_name("gunicorn")
    served = subprocess.run([str(gunicorn), "app:server", "-w", "1", "-b", "127.0.0.1:0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "CXRVIZ_ARTIFACT": str(art_dir)})
    assert served.returncode != 0
    assert f"{S.IMAGES_FILE} is not a readable parquet table" in served.stderr
    assert "Traceback" not in served.stderr
