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

from cxrviz import figures, ids
from cxrviz import schema as S
from cxrviz.compute.placement import Placer, UploadRejected
from cxrviz.io.artifact import read_artifact
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


def test_collection_image_lands_on_its_own_outputs(art, placer, dataset):
    logit_cols = [S.logit_column(p) for p in art.pathologies]
    xy = art.images[[S.X, S.Y]].to_numpy()
    diag = np.hypot(*np.ptp(xy, axis=0))
    shifts = []
    for _, row in collection_rows(art).iterrows():
        placed = placer.place((dataset / "images" / row[S.FILENAME]).read_bytes())
        np.testing.assert_array_equal(placed.logits, row[logit_cols].to_numpy(np.float32))
        shifts.append(np.hypot(placed.x - row[S.X], placed.y - row[S.Y]) / diag)
        assert placed.neighbours[0]["image_id"] == row[S.IMAGE_ID]  # itself, first
        assert placed.neighbours[0]["distance"] == 0.0
        assert 0 <= placed.percentile <= 100
    assert np.median(shifts) < 0.05, shifts  # UMAP transform is approximate, but close


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
    from cxrviz.app import create_app
    from cxrviz.appstate import get_service

    app = create_app(covid_artifact.out)
    assert get_service().wait(300) == "ready", get_service().message
    return app


def data_url(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def test_upload_callback_places_and_writes_nothing_to_disk(app_ready, dataset, art, tmp_path):
    """The whole upload path, watched by an audit hook for any file opened for writing."""
    from cxrviz.pages import map as page

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
        uploads, message, reset = run_callback(
            page.place_upload, {f"{ids.UPLOAD}.contents": contents}, contents, None,
            "patient.png", [], 8, "logits")
        assert writes == [], writes
        (tmp_path / "control.txt").write_text("x")  # the hook does see a write
        assert writes and "control.txt" in str(writes[-1][0])
    finally:
        recording = False
    assert message.startswith("Placed image 1") and reset is None
    (u,) = uploads
    logit_cols = [S.logit_column(p) for p in art.pathologies]
    np.testing.assert_array_equal(np.float32(u["logits"]), row[logit_cols].to_numpy(np.float32))
    assert u["neighbours"][0]["image_id"] == row[S.IMAGE_ID] and len(u["neighbours"]) == 8
    panel, patch = run_callback(page.show_uploads, {f"{ids.UPLOADS}.data": uploads}, uploads)
    assert len(panel) == 1
    ops = json.dumps(patch.to_plotly_json())
    assert f'"data", {figures.TRACE["uploads"]}' in ops


def test_upload_callback_rejects_with_message(app_ready):
    from cxrviz.pages import map as page

    bad = data_url(b"GIF89a not really", "image/gif")
    uploads, message, _ = run_callback(page.place_upload, {f"{ids.UPLOAD}.contents": bad}, bad,
                                       None, "x.gif", [{"n": 1}], 8, "logits")
    assert message.startswith("Not placed: not a readable X-ray")
    assert uploads is no_update  # earlier uploads untouched


def test_saliency_overlay(app_ready, art):
    from cxrviz.pages import map as page

    image_id = collection_rows(art, 2).iloc[0][S.IMAGE_ID]
    out = run_callback(page.saliency_for_selected, {f"{ids.SALIENCY_BUTTON}.n_clicks": 1}, 1,
                       image_id, art.pathologies.index("Lung Opacity"))
    src = out.children[0].src
    png = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    display = Image.open(art.path / S.DISPLAY_DIR / f"{image_id}.jpg")
    assert png.size == (min(display.size),) * 2  # the model's centre square, at display size
    arr = np.asarray(png, dtype=float)
    assert arr.std() > 1  # not a blank image


def test_missing_weights_keep_the_rest_of_the_app(dataset, tmp_path):
    """An artifact whose weights file is gone: placement says why; the map still works."""
    import torch
    import torchxrayvision as xrv

    from precompute.pipeline import Config, build_artifact

    torch.manual_seed(3)
    weights = tmp_path / "w.pt"
    torch.save(xrv.models.DenseNet(num_classes=18).eval().state_dict(), weights)
    out = build_artifact(Config(dataset=str(dataset), out=str(tmp_path / "art"),
                                weights=str(weights), weights_pretrained=False, limit=12,
                                cache_dir=str(tmp_path / "cache"), progress=False)).out
    weights.unlink()
    from cxrviz.app import create_app
    from cxrviz.appstate import get_service

    app = create_app(out)
    assert get_service().wait(120) == "unavailable"
    assert "w.pt" in get_service().message and "unavailable" in get_service().message
    client = app.server.test_client()
    assert client.get("/").status_code == 200 and client.get("/_dash-layout").status_code == 200


def test_cli_json(covid_artifact, dataset, art):
    row = collection_rows(art, 2).iloc[1]
    done = subprocess.run(
        [sys.executable, "-m", "precompute.place", str(dataset / "images" / row[S.FILENAME]),
         "--artifact", str(covid_artifact.out), "--json", "-k", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    (r,) = info["results"]
    assert info["pretrained"] is False and len(r["outputs"]) == 18
    assert r["neighbours"][0]["image_id"] == row[S.IMAGE_ID] and len(r["neighbours"]) == 3
