"""The whole collection through precompute: counts, skips, states, trajectories, artifact schema."""
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxrviz import schema as S
from cxrviz.io.artifact import ArtifactError, read_artifact
from tests.test_covid_reader import MISSING_FRONTAL


@pytest.fixture(scope="module")
def art(covid_artifact):
    return read_artifact(covid_artifact.out, verify_hashes=True)


def test_counts_and_skips(art, covid_artifact):
    counts = art.manifest[S.M_COUNTS]
    assert counts == {"metadata_rows": 751, "frontal_xray": 570, "embedded_covid": 559,
                      "embedded_rsna": 0, "skipped": 11}
    skipped = art.manifest[S.M_SKIPPED]
    assert {s["filename"] for s in skipped} == MISSING_FRONTAL
    assert all("not found" in s["reason"] and s["source"] == "covid" for s in skipped)
    assert "skipped: 11 images" in covid_artifact.text()


def test_images_table_schema(art):
    im = art.images
    assert list(im.columns) == S.image_columns(art.pathologies)
    assert len(art.pathologies) == 18 and art.pathologies[0] == "Atelectasis"
    assert im[S.IMAGE_ID].is_unique and len(im) == 559
    assert set(im[S.STATE]) <= set(S.STATES) and im[S.STATE_REASON].str.len().min() > 0
    assert np.isfinite(im[[S.X, S.Y, S.BAD_DENSITY]].to_numpy()).all()
    feats = np.load(art.path / S.FEATURES_FILE)
    assert feats.shape == (559, 1024) and feats.dtype == np.float32
    logits = im[[S.logit_column(p) for p in art.pathologies]].to_numpy()
    assert np.abs(logits).max() > 10  # raw logits, not probabilities


def test_manifest_says_weights_are_not_pretrained(art):
    w = art.manifest[S.M_WEIGHTS]
    assert w[S.W_PRETRAINED] is False and w[S.W_NAME] == "random(seed=0)"
    assert len(w[S.W_SHA256]) == 64
    assert art.manifest[S.M_UMAP]["n_neighbors"] == 30 and art.manifest[S.M_UMAP]["min_dist"] == 0.5
    assert art.manifest[S.M_KDE]["bandwidth"] == 1.0
    assert any("000001-24.jpg" in n for n in art.manifest[S.M_NOTES])


def test_rows_sharing_an_image_are_two_points_with_one_image(art):
    im = art.images.set_index(S.IMAGE_ID)
    a, b = im.loc["covid-285-000001-24"], im.loc["covid-339-000001-24"]
    assert a[S.PATIENTID] == "285" and b[S.PATIENTID] == "339"
    assert a["logit:Effusion"] == b["logit:Effusion"]  # same image, same outputs


STATES = {  # hand-checked against metadata.csv: (patient, offset) -> state
    ("2", 0): "good", ("2", 6): "good",  # in_icu N, intubation N; survived
    ("10", 19): "unknown", ("10", 35): "bad",  # no ICU data; last image, died
    ("71", 0): "bad",  # in ICU and intubated (survived: bad wins)
    ("187", 8): "good", ("187", 12): "bad",  # not intubated; last image, died: bad wins
    ("205", 6): "good", ("205", 11): "bad", ("205", 24): "bad", ("205", 28): "good",
}


def test_states_of_hand_checked_patients(art):
    im = art.images
    for (patient, offset), state in STATES.items():
        row = im[(im[S.PATIENTID] == patient) & (im[S.OFFSET] == offset)]
        assert len(row) == 1 and row[S.STATE].iloc[0] == state, (patient, offset)
    r187 = im[(im[S.PATIENTID] == "187") & (im[S.OFFSET] == 12)][S.STATE_REASON].iloc[0]
    assert "survival=N" in r187 and "bad wins" in r187


def test_trajectory_edges(art):
    t = art.trajectories
    assert list(t.columns) == list(S.TRAJECTORY_COLUMNS)
    p205 = t[t[S.PATIENTID] == "205"]
    assert p205[S.FROM_OFFSET].tolist() == [1, 6, 11, 13, 20, 24]
    assert p205[S.TO_OFFSET].tolist() == [6, 11, 13, 20, 24, 28]
    assert p205[S.TO_STATE].tolist() == ["good", "bad", "bad", "bad", "bad", "good"]
    assert (p205[S.SURVIVAL] == "Y").all()
    im = art.images
    dated = im[im[S.OFFSET].notna()].groupby(S.PATIENTID).size()
    assert len(t) == int((dated - 1).clip(lower=0).sum())  # one edge per consecutive pair
    assert set(t[S.FROM_IMAGE_ID]) | set(t[S.TO_IMAGE_ID]) <= set(im[S.IMAGE_ID])


def test_density_and_display_images(art):
    z = art.density[S.DENSITY_Z]
    assert z.shape == (100, 100) and z.max() > 0
    bad = art.images[S.STATE] == S.STATE_BAD
    assert art.images.loc[bad, S.BAD_DENSITY].mean() > art.images.loc[~bad, S.BAD_DENSITY].mean()
    for image_id in art.images[S.IMAGE_ID]:
        im = Image.open(io.BytesIO(art.display_path(image_id).read_bytes()))
        assert im.format == "JPEG" and max(im.size) <= 512


def test_rerun_recomputes_nothing(covid_artifact, dataset, session_cache, tmp_path):
    from precompute.pipeline import Config, build_artifact

    again = build_artifact(Config(dataset=str(dataset), out=str(tmp_path / "covid"),
                                  weights="random", cache_dir=str(session_cache), progress=False))
    assert again.computed == 0 and again.from_cache == 555
    a, b = read_artifact(covid_artifact.out), read_artifact(again.out)
    pd.testing.assert_frame_equal(a.images, b.images)


def test_reader_refuses_unfinished_and_foreign_folders(tmp_path, art):
    with pytest.raises(ArtifactError, match="does not exist"):
        read_artifact(tmp_path / "none")
    (tmp_path / "half").mkdir()
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        read_artifact(tmp_path / "half")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / S.MANIFEST_FILE).write_text(json.dumps({"schema_version": 0}))
    with pytest.raises(ArtifactError, match="schema_version 0"):
        read_artifact(tmp_path / "old")
