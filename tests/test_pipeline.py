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
    return read_artifact(covid_artifact.out)


def test_counts_and_skips(art, covid_artifact):
    counts = art.manifest[S.M_COUNTS]
    assert counts == {"metadata_rows": 751, "frontal_xray": 570, "embedded_covid": 559,
                      "embedded_rsna": 0, "excluded": 181, "skipped_covid": 11, "skipped": 11}
    skipped = art.manifest[S.M_SKIPPED]
    assert {s["filename"] for s in skipped} == MISSING_FRONTAL
    assert all("not found" in s["reason"] and s["source"] == "covid" for s in skipped)
    assert "skipped: 11 images" in covid_artifact.text()


def test_every_metadata_row_is_accounted_for(art, dataset):
    """embedded + excluded + skipped = metadata rows, and the excluded groups match plain pandas
    on metadata.csv."""
    meta = pd.read_csv(dataset / "metadata.csv", dtype=str, keep_default_na=False)
    counts = art.manifest[S.M_COUNTS]
    assert counts["embedded_covid"] + counts["excluded"] + counts["skipped_covid"] == len(meta)
    groups = {(g["reason"], g["raw_value"]): g for g in art.manifest[S.M_EXCLUDED]}
    xray = meta["modality"] == "X-ray"
    expected = {("not an X-ray", "CT"): (~xray).sum(),
                ("lateral view", "L"): (xray & (meta["view"] == "L")).sum(),
                ("view missing or unreadable", ""): (xray & (meta["view"] == "")).sum(),
                ("view missing or unreadable", "?"): (xray & (meta["view"] == "?")).sum()}
    assert {k: g["count"] for k, g in groups.items()} == expected
    assert sum(len(g["filenames"]) for g in groups.values()) == counts["excluded"]
    on_map = set(art.images[S.FILENAME]) | {s["filename"] for s in art.manifest[S.M_SKIPPED]}
    listed = {f for g in groups.values() for f in g["filenames"]}
    assert set(meta["filename"]) == on_map | listed


def test_images_table_schema(art):
    im = art.images
    assert list(im.columns) == S.image_columns(art.pathologies)
    assert len(art.pathologies) == 18 and art.pathologies[0] == "Atelectasis"
    assert im[S.IMAGE_ID].is_unique and len(im) == 559
    assert set(im[S.STATE]) <= set(S.STATES) and im[S.STATE_REASON].str.len().min() > 0
    assert np.isfinite(im[[S.X, S.Y, S.BAD_DENSITY]].to_numpy()).all()
    feats = np.load(art.path / S.FEATURES_FILE, allow_pickle=False)
    assert feats.shape == (559, 1024) and feats.dtype == np.float32
    logits = im[[S.logit_column(p) for p in art.pathologies]].to_numpy()
    assert np.abs(logits).max() > 10  # raw logits, not probabilities


def test_manifest_says_weights_are_not_pretrained(art):
    w = art.manifest[S.M_WEIGHTS]
    assert {k: w[k] for k in ("kind", "name", "seed", "pretrained", "precision", "batch_size")} \
        == {"kind": "random", "name": "random", "seed": 0, "pretrained": False,
            "precision": "fp32", "batch_size": 8}
    assert len(w[S.W_SHA256]) == 64
    assert any("000001-24.jpg" in n for n in art.manifest[S.M_NOTES])


def test_umap_has_the_papers_parameters(art):
    """Recorded for placement, with no reducer object (tests/test_place.py refits umap-learn
    with these and gets the stored map back)."""
    umap = art.manifest[S.M_UMAP]
    assert (umap["n_neighbors"], umap["min_dist"], umap["random_state"]) == (30, 0.5, 0)
    assert (umap[S.U_FIT_ROWS], umap[S.U_N_FIT]) == (S.U_FIT_ALL, 559)
    assert not (art.path / S.UMAP_FILE).exists()


def test_density_is_a_gaussian_kde_of_the_bad_states(art):
    """Density at each image by a second route (the KDE formula in numpy, bandwidth 1.0 as the
    authors' notebook), and the percentile by counting."""
    im = art.images
    bad = im.loc[im[S.STATE] == "bad", [S.X, S.Y]].to_numpy(np.float64)
    np.testing.assert_array_equal(art.density[S.DENSITY_BAD_XY], bad)
    assert float(art.density[S.DENSITY_BANDWIDTH]) == 1.0
    xy = im[[S.X, S.Y]].to_numpy(np.float64)
    d2 = ((xy[:, None, :] - bad[None, :, :]) ** 2).sum(-1)
    by_hand = np.exp(-d2 / 2).mean(axis=1) / (2 * np.pi)
    np.testing.assert_allclose(im[S.BAD_DENSITY].to_numpy(), by_hand, rtol=1e-9)
    dens = im[S.BAD_DENSITY].to_numpy()
    counted = np.array([(dens <= d).mean() * 100 for d in dens])
    np.testing.assert_allclose(im[S.DENSITY_PERCENTILE].to_numpy(), counted)
    gx, gy, gz = (art.density[k] for k in (S.DENSITY_X, S.DENSITY_Y, S.DENSITY_Z))
    j, i = 37, 61  # any grid node: z is indexed [y, x]
    node = np.exp(-((bad - [gx[i], gy[j]]) ** 2).sum(1) / 2).mean() / (2 * np.pi)
    assert gz[j, i] == pytest.approx(node, rel=1e-9)


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


def test_display_images(art):
    assert art.density[S.DENSITY_Z].shape == (100, 100)
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


def test_a_version_1_artifact_is_refused_with_the_command_that_rebuilds_it(tmp_path):
    v1 = tmp_path / "covid"
    v1.mkdir()
    (v1 / S.MANIFEST_FILE).write_text(json.dumps({
        "schema_version": 1, "inputs": {"dataset": "/data/covid-chestxray-dataset"},
        "config": {"dataset": "/data/covid-chestxray-dataset", "weights": "random",
                   "precision": "bf16", "batch_size": 8, "seed": 0, "limit": None,
                   "rsna": None, "rsna_subset": "pneumonia", "weights_pretrained": None}}))
    with pytest.raises(ArtifactError) as err:
        read_artifact(v1)
    assert ("python -m precompute --dataset /data/covid-chestxray-dataset "
            f"--out {v1} --weights random --precision bf16 --batch-size 8") in str(err.value)
