"""Placing new images: equality with precompute, neighbours, DICOM, rejections, privacy, CLI."""
import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dash import no_update
from plotly.utils import PlotlyJSONEncoder

from cxrviz import ids
from cxrviz import schema as S
from cxrviz.compute.placement import Placer, UploadRejected
from cxrviz.io.artifact import read_artifact
from cxrviz.upload_queue import new_id
from tests.app_helpers import run_callback
from tests.dicoms import write_dicom

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def art(covid_artifact):
    return read_artifact(covid_artifact.out)


@pytest.fixture(scope="module")
def placer(art):
    return Placer(art).load()


def collection_rows(art, n=10):
    covid = art.images[art.images[S.SOURCE] == S.SOURCE_COVID]
    covid = covid.drop_duplicates(S.FILENAME, keep=False)  # not the rows sharing a file
    return covid.iloc[np.linspace(0, len(covid) - 1, n).astype(int)]


def kde_by_hand(bad_xy: np.ndarray, point, bandwidth: float) -> float:
    """A 2-D Gaussian KDE written out: mean over bad points of N(point; p, h^2 I)."""
    d2 = ((bad_xy - np.asarray(point)[None, :]) ** 2).sum(axis=1)
    return float(np.mean(np.exp(-d2 / (2 * bandwidth ** 2))) / (2 * np.pi * bandwidth ** 2))


def test_collection_image_lands_on_its_own_outputs(art, placer, dataset):
    logit_cols = [S.logit_column(p) for p in art.pathologies]
    xy = art.images[[S.X, S.Y]].to_numpy()
    diag = np.hypot(*np.ptp(xy, axis=0))
    bad_xy = art.images.loc[art.images[S.STATE] == "bad", [S.X, S.Y]].to_numpy(np.float64)
    collection = art.images[S.BAD_DENSITY].to_numpy()
    shifts = []
    for _, row in collection_rows(art).iterrows():
        placed = placer.place((dataset / "images" / row[S.FILENAME]).read_bytes())
        np.testing.assert_array_equal(placed.logits, row[logit_cols].to_numpy(np.float32))
        shifts.append(np.hypot(placed.x - row[S.X], placed.y - row[S.Y]) / diag)
        assert placed.neighbours[0]["image_id"] == row[S.IMAGE_ID]  # itself, first
        assert placed.neighbours[0]["distance"] == 0.0
        # the stored density, scored at the placed point, and its rank in the collection
        by_hand = kde_by_hand(bad_xy, (placed.x, placed.y), 1.0)
        assert placed.density == pytest.approx(by_hand, rel=1e-9)
        assert placed.percentile == pytest.approx(100 * np.mean(collection <= placed.density))
    # UMAP's transform optimises a new point against the map; a collection image starts at its
    # own position and moves a little (benchmarks/place.py, all 559: median 1.4%, max 3.4% of
    # the diagonal)
    assert np.median(shifts) < 0.025 and max(shifts) < 0.06, shifts


def test_placement_is_umap_learns_transform_and_deterministic(art, placer):
    """A reducer refitted here by umap-learn with the manifest's parameters reproduces the
    stored map, and its own transform gives our positions for collection images (to float
    rounding: neighbours at tied distances may come in another order, which reorders the layout's
    updates; measured at most 0.05% of the diagonal); the same logits always land on the same
    point."""
    import umap

    p = art.manifest[S.M_UMAP]
    rows = placer.logit_matrix
    reducer = umap.UMAP(n_components=2, n_neighbors=p["n_neighbors"], min_dist=p["min_dist"],
                        random_state=p["random_state"], transform_seed=p["transform_seed"],
                        n_jobs=1).fit(rows)
    np.testing.assert_array_equal(reducer.embedding_, art.images[[S.X, S.Y]].to_numpy())
    picks = np.linspace(0, len(rows) - 1, 12).astype(int)
    ours = np.vstack([placer.umap.transform(rows[i][None]) for i in picks])
    theirs = np.vstack([reducer.transform(rows[i][None]) for i in picks])
    diag = np.hypot(*np.ptp(art.images[[S.X, S.Y]].to_numpy(), axis=0))
    assert np.hypot(*(ours - theirs).T).max() < 1e-3 * diag
    again = Placer(read_artifact(art.path)).umap
    np.testing.assert_array_equal(np.vstack([again.transform(rows[i][None]) for i in picks]),
                                  ours)


@pytest.mark.parametrize("setting", [{"precision": "bf16", "batch_size": 2}, {"batch_size": 4}])
def test_placement_uses_the_artifacts_precision_and_batch_size(dataset, tmp_path, setting):
    """A bf16 (or batch-size-4) artifact places its own images on their own outputs exactly.
    Six images at batch size 4 (batches of 4 and 2). bf16 at batch size 2, four images (UMAP's
    least): this project's AVX2 machines emulate bf16 at seconds per image, and every forward
    pass, a placement's included, runs a whole (zero-padded) batch."""
    from precompute.pipeline import Config, build_artifact

    out = build_artifact(Config(dataset=str(dataset), out=str(tmp_path / "art"), weights="random",
                                limit=6 if "batch_size" in setting else 4,
                                cache_dir=str(tmp_path / "cache"), progress=False,
                                **setting)).out
    small = read_artifact(out)
    spec = small.manifest[S.M_WEIGHTS]
    assert {k: spec[k] for k in setting} == setting  # written into the manifest ...
    placer = Placer(small).load()
    assert {k: getattr(placer.embedder.spec, k) for k in setting} == setting  # ... read back
    logit_cols = [S.logit_column(p) for p in small.pathologies]
    rows = collection_rows(small, 2)
    assert len(rows) == 2
    for _, row in rows.iterrows():
        placed = placer.place((dataset / "images" / row[S.FILENAME]).read_bytes())
        np.testing.assert_array_equal(placed.logits, row[logit_cols].to_numpy(np.float32))


def test_neighbours_in_feature_space(art, placer, dataset):
    row = collection_rows(art, 3).iloc[1]
    placed = placer.place((dataset / "images" / row[S.FILENAME]).read_bytes(), k=5,
                          space="features")
    assert [n["rank"] for n in placed.neighbours] == [1, 2, 3, 4, 5]
    assert placed.neighbours[0]["image_id"] == row[S.IMAGE_ID]
    dists = [n["distance"] for n in placed.neighbours]
    assert dists == sorted(dists)


def test_dicom_written_by_the_test_equals_the_same_pixels_as_png(placer, tmp_path):
    rng = np.random.default_rng(1)
    pixels = (rng.random((300, 260)) * 65535).astype(np.uint16)
    dcm = write_dicom(tmp_path / "x.dcm", pixels, bits_stored=16)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    a, b = placer.place(dcm.read_bytes()), placer.place(buf.getvalue())
    np.testing.assert_array_equal(a.logits, b.logits)
    inverted = write_dicom(tmp_path / "m1.dcm", 65535 - pixels, bits_stored=16,
                           photometric="MONOCHROME1")
    np.testing.assert_array_equal(placer.place(inverted.read_bytes()).logits, a.logits)


@pytest.mark.parametrize("data,message", [
    (b"", "empty file"),
    (b"<html>not an x-ray</html>" * 20, "not a readable X-ray"),
    (b"\0" * (20 * 1024 * 1024 + 1), "file too large"),
])
def test_bad_uploads_rejected_with_a_message(placer, data, message):
    with pytest.raises(UploadRejected, match=message):
        placer.place(data)


@pytest.fixture(scope="module")
def app_ready(covid_artifact):
    from tests.app_helpers import app_with_model

    return app_with_model(covid_artifact.out, 300)


@pytest.fixture(scope="module")
def page(app_ready):
    from cxrviz.pages import map as page

    return page


def data_url(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def test_upload_callback_places_and_writes_nothing_to_disk(page, dataset, art, tmp_path):
    """The whole upload path, watched by an audit hook for any file opened for writing."""
    row = collection_rows(art, 3).iloc[0]
    contents = data_url((dataset / "images" / row[S.FILENAME]).read_bytes())
    writes = []

    def hook(event, args):
        if event == "open" and recording:
            path, mode, flags = (list(args) + [None, None])[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & 0o3 and flags != 0)
            if writing:
                writes.append((path, mode, flags))
        if event in ("os.rename", "os.replace", "os.remove", "os.mkdir") and recording:
            writes.append((event, args))

    recording = False
    sys.addaudithook(hook)
    recording = True
    try:
        uploads, message, reset, pending, _ = run_callback(
            page.uploads.place_upload, {f"{ids.UPLOAD}.contents": contents}, contents=contents,
            clear=None, ready=None, filename="patient.png", uploads=[], pending=0,
            session=new_id(), k=8, space="logits")
        assert writes == [], writes
        (tmp_path / "control.txt").write_text("x")  # the hook does see a write
        assert writes and "control.txt" in str(writes[-1][0])
    finally:
        recording = False
    assert message.startswith("Placed image 1") and reset is None and pending == 0
    (u,) = uploads
    logit_cols = [S.logit_column(p) for p in art.pathologies]
    np.testing.assert_array_equal(np.float32(u["logits"]), row[logit_cols].to_numpy(np.float32))
    assert u["neighbours"][0]["image_id"] == row[S.IMAGE_ID] and len(u["neighbours"]) == 8
    assert u["out_of_distribution"] is False
    panel = run_callback(page.uploads.show_uploads, {f"{ids.UPLOADS}.data": uploads},
                         uploads=uploads)
    # changing the number of neighbours or the distance updates the image already placed
    renewed = run_callback(page.uploads.renew_neighbours, {f"{ids.UPLOAD_K}.value": 3}, k=3,
                           space="features", uploads=uploads)
    assert [len(r["neighbours"]) for r in renewed] == [3] and renewed[0]["space"] == "features"
    assert renewed[0]["neighbours"][0]["image_id"] == row[S.IMAGE_ID]
    # one card, naming the position the map draws the upload at (the map reads the UPLOADS
    # store itself: mapUploads), near the collection's own position for this very image
    assert len(panel) == 1
    card = json.dumps(panel[0].to_plotly_json(), cls=PlotlyJSONEncoder)
    assert f"Map position ({u['x']:.2f}, {u['y']:.2f})" in card and "1. patient.png" in card
    diag = np.hypot(*np.ptp(art.images[[S.X, S.Y]].to_numpy(), axis=0))
    assert u["n"] == 1 and np.hypot(u["x"] - row[S.X], u["y"] - row[S.Y]) < 0.06 * diag


def test_upload_callback_rejects_with_message(page):
    bad = data_url(b"GIF89a not really", "image/gif")
    uploads, message, _, _, _ = run_callback(
        page.uploads.place_upload, {f"{ids.UPLOAD}.contents": bad}, contents=bad, clear=None,
        ready=None, filename="x.gif", uploads=[{"n": 1}], pending=0, session=new_id(), k=8,
        space="logits")
    assert message.startswith("Not placed: x.gif: not a readable X-ray")
    assert uploads is no_update  # earlier uploads untouched


def test_saliency_overlay(page, art):
    image_id = collection_rows(art, 2).iloc[0][S.IMAGE_ID]
    out = run_callback(page.detail.saliency_for_selected, {f"{ids.SALIENCY_BUTTON}.n_clicks": 1},
                       clicks=1, image_id=image_id,
                       output=art.pathologies.index("Lung Opacity"))
    src = out.children[0].src
    png = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    display = Image.open(art.path / S.DISPLAY_DIR / f"{image_id}.jpg")
    assert png.size == (min(display.size),) * 2  # the model's centre square, at display size
    arr = np.asarray(png, dtype=float)
    assert arr.std() > 1  # not a blank image


@pytest.fixture(scope="module")
def file_weights_artifact(dataset, tmp_path_factory):
    """An artifact built from a weights file the test writes (so it can be moved away)."""
    import torch
    import torchxrayvision as xrv

    from precompute.pipeline import Config, build_artifact

    root = tmp_path_factory.mktemp("portable")
    torch.manual_seed(3)
    weights = root / "w.pt"
    torch.save(xrv.models.DenseNet(num_classes=18).eval().state_dict(), weights)
    out = build_artifact(Config(dataset=str(dataset), out=str(root / "art"),
                                weights=str(weights), weights_pretrained=False, limit=12,
                                cache_dir=str(root / "cache"), progress=False)).out
    return out, weights


def test_weights_are_found_by_sha256_when_the_artifact_moves(file_weights_artifact, dataset,
                                                             tmp_path):
    from cxrviz.compute.model import WeightsUnavailable

    out, weights = file_weights_artifact
    moved = tmp_path / "elsewhere.pt"
    moved.write_bytes(weights.read_bytes())
    small = read_artifact(out)
    row = collection_rows(small, 1).iloc[0]
    image = (dataset / "images" / row[S.FILENAME]).read_bytes()
    logit_cols = [S.logit_column(p) for p in small.pathologies]
    recorded = Placer(small).load()  # at the recorded path
    given = Placer(small).load(weights_path=moved)  # at a path given by the user
    for placer in (recorded, given):
        np.testing.assert_array_equal(placer.place(image).logits,
                                      row[logit_cols].to_numpy(np.float32))
    other = tmp_path / "other.pt"
    import torch
    import torchxrayvision as xrv

    torch.manual_seed(4)
    torch.save(xrv.models.DenseNet(num_classes=18).state_dict(), other)
    with pytest.raises(WeightsUnavailable) as err:
        Placer(small).load(weights_path=other)
    from cxrviz.hashing import sha256_file

    assert small.weights.sha256 in str(err.value) and sha256_file(other) in str(err.value)


def test_release_weights_are_found_in_torchxrayvisions_cache_by_name(dataset, tmp_path,
                                                                     monkeypatch):
    """A release-kind artifact copied to another machine: its file is found in that machine's
    cache folder by name, and checked by sha256."""
    import torch
    import torchxrayvision as xrv

    from cxrviz.compute.model import WeightsUnavailable, weights_cache_path
    from precompute.pipeline import Config, build_artifact

    monkeypatch.setattr(xrv.utils, "get_cache_dir", lambda: str(tmp_path / "machine-a"))
    name = "densenet121-res224-all"
    torch.manual_seed(6)
    release = xrv.models.DenseNet(num_classes=18).eval()
    weights_cache_path(name).parent.mkdir(parents=True)
    torch.save(release, weights_cache_path(name))  # a stand-in file in the release format
    out = build_artifact(Config(dataset=str(dataset), out=str(tmp_path / "art"), weights=name,
                                weights_pretrained=False, limit=8, allow_download=False,
                                cache_dir=str(tmp_path / "cache"), progress=False)).out
    spec = read_artifact(out).weights
    assert (spec.kind, spec.name) == ("release", name)
    machine_b = tmp_path / "machine-b"
    monkeypatch.setattr(xrv.utils, "get_cache_dir", lambda: str(machine_b))
    weights_cache_path(name).parent.mkdir(parents=True)
    weights_cache_path(name).write_bytes((tmp_path / "machine-a" / weights_cache_path(name).name)
                                         .read_bytes())
    (tmp_path / "machine-a" / weights_cache_path(name).name).unlink()  # recorded path: gone
    placer = Placer(read_artifact(out)).load()
    assert placer.embedder.spec.path == str(weights_cache_path(name))
    weights_cache_path(name).unlink()
    with pytest.raises(WeightsUnavailable, match="cache folder"):
        Placer(read_artifact(out)).load()


def test_missing_weights_keep_the_rest_of_the_app(file_weights_artifact, tmp_path):
    """The weights file is gone: placement says why (in its own server process); the map
    still works; given --weights PATH, placement works again."""
    import requests

    from tests.app_helpers import ServerProcess

    out, weights = file_weights_artifact
    kept = tmp_path / "kept.pt"
    weights.rename(kept)
    try:
        with ServerProcess(out) as server:
            status = server.wait_model(180)
            assert status["model"]["state"] == "unavailable"
            assert "w.pt" in status["model"]["message"] and "--weights" in \
                status["model"]["message"]
            assert requests.get(server.url + "/").status_code == 200
            assert requests.get(server.url + "/_dash-layout").status_code == 200
        with ServerProcess(out, "--weights", str(kept)) as server:
            assert server.wait_model(300)["model"]["state"] == "ready"
    finally:
        kept.rename(weights)


def _png(im) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def synthetic_non_xrays() -> dict:
    """Drawn shapes; a photo-like colour gradient with grain; shapes on that gradient."""
    from PIL import ImageDraw

    shapes = Image.new("RGB", (600, 600), "white")
    d = ImageDraw.Draw(shapes)
    d.rectangle([50, 50, 300, 250], fill="red")
    d.ellipse([300, 300, 550, 550], fill="blue")
    d.line([0, 600, 600, 0], fill="green", width=20)
    gy, gx = np.mgrid[0:512, 0:512]
    rgb = np.stack([gx / 2, gy / 2, (gx + gy) / 4], -1)
    rgb += np.random.default_rng(0).normal(0, 8, rgb.shape)
    photo = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    both = photo.copy()
    d = ImageDraw.Draw(both)
    d.rectangle([100, 100, 300, 260], fill=(250, 250, 30))
    d.ellipse([280, 280, 480, 470], fill=(20, 20, 200))
    return {"shapes": _png(shapes), "photo-like gradient": _png(photo),
            "shapes on a gradient": _png(both)}


def test_uploads_that_are_not_chest_xrays_are_flagged(placer, art, dataset, samples):
    for name, data in synthetic_non_xrays().items():
        placed = placer.place(data)
        assert placed.out_of_distribution, (name, placed.ood_percentile)
        assert placed.ood_percentile > 99
    for _, row in collection_rows(art, 6).iterrows():
        placed = placer.place((dataset / "images" / row[S.FILENAME]).read_bytes())
        assert not placed.out_of_distribution, (row[S.FILENAME], placed.ood_percentile)
    for sample in ("00000001_000.png", "00027426_000.png"):  # NIH ChestX-ray14, another source
        placed = placer.place((samples / sample).read_bytes())
        assert not placed.out_of_distribution, (sample, placed.ood_percentile)
    # the reference: every collection image's distance to its 5th nearest other, by hand
    f = np.log1p(np.maximum(np.asarray(art.features(), np.float64), 0))
    sq = (f ** 2).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * f @ f.T, 0))
    np.fill_diagonal(d, np.inf)
    by_hand = np.sort(np.sort(d, axis=1)[:, 4])
    np.testing.assert_allclose(placer.ood_reference, by_hand, rtol=1e-3, atol=1e-3)


def test_cli_json(covid_artifact, dataset, art, tmp_path):
    row = collection_rows(art, 2).iloc[1]
    shapes = tmp_path / "shapes.png"
    shapes.write_bytes(synthetic_non_xrays()["shapes"])
    done = subprocess.run(
        [sys.executable, "-m", "precompute.place", str(dataset / "images" / row[S.FILENAME]),
         str(shapes), "--artifact", str(covid_artifact.out), "--json", "-k", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    xray, drawing = info["results"]
    assert info["pretrained"] is False and len(xray["outputs"]) == 18
    assert xray["neighbours"][0]["image_id"] == row[S.IMAGE_ID] and len(xray["neighbours"]) == 3
    assert xray["out_of_distribution"] is False and drawing["out_of_distribution"] is True
    assert drawing["ood_percentile"] > 99 >= xray["ood_percentile"]
