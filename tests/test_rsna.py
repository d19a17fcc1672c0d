"""An RSNA-layout folder written by the test: real patient ids, real DICOM encodings."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrviz import schema as S
from cxrviz.data.rsna import LABELS_FILE, _package_file, read_rsna
from cxrviz.io.artifact import read_artifact
from tests.dicoms import write_dicom

JPEG_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


@pytest.fixture(scope="module")
def rsna_dir(tmp_path_factory, samples):
    labels = pd.read_csv(_package_file(LABELS_FILE))
    target = labels.groupby("patientId")["Target"].max()
    positives, negatives = list(target.index[target == 1][:7]), list(target.index[target == 0][:2])
    root = tmp_path_factory.mktemp("rsna")
    images = root / "stage_2_train_images"
    images.mkdir()
    rng = np.random.default_rng(0)
    shutil.copy(samples / JPEG_DICOM, images / f"{positives[0]}.dcm")  # JPEG Baseline, 8-bit
    shutil.copy(samples / "Fake_MONOHR1.dcm", images / f"{positives[1]}.dcm")  # MONOCHROME1
    for pid in positives[2:4] + negatives:  # 12-bit, MONOCHROME2
        write_dicom(images / f"{pid}.dcm", rng.integers(0, 4096, (256, 256), dtype=np.uint16),
                    bits_stored=12, patient_id=pid)
    shutil.copy(samples / "00000001_000.png", images / f"{positives[4]}.png")  # converted mirror
    (images / f"{positives[5]}.dcm").write_bytes(b"\0" * 200)  # broken
    shutil.copy(samples / "00027426_000.png", images / "not-a-kaggle-id.png")  # unlabelled
    (images / f"{positives[6]}.png").symlink_to(samples / "00027426_000.png")  # leaves the folder
    return root, positives, negatives


def test_reader_subsets(rsna_dir):
    root, positives, negatives = rsna_dir
    pneu = read_rsna(root, "pneumonia")
    assert sorted(pneu.frame[S.IMAGE_ID]) == sorted(f"rsna-{p}" for p in positives[:6])
    assert pneu.unlabelled == ["not-a-kaggle-id.png"]
    assert pneu.outside == [f"{positives[6]}.png"]
    every = read_rsna(root, "all")
    assert len(every.frame) == 6 + len(negatives)
    assert set(every.frame[S.VIEW]) <= {"PA", "AP"}


def test_artifact_with_reference_cloud(dataset, rsna_dir, tmp_path, session_cache):
    from precompute.pipeline import Config, build_artifact

    root, positives, _ = rsna_dir
    summary = build_artifact(Config(dataset=str(dataset), out=str(tmp_path / "art"),
                                    rsna=str(root), weights="random", limit=30,
                                    cache_dir=str(session_cache), progress=False))
    art = read_artifact(summary.out)
    counts = art.manifest[S.M_COUNTS]
    assert counts["embedded_rsna"] == 5 and counts["embedded_covid"] == 30
    reasons = {s["filename"]: s["reason"] for s in art.manifest[S.M_SKIPPED]}
    assert "not an image" in reasons[f"{positives[5]}.dcm"]
    assert "no label" in reasons["not-a-kaggle-id.png"]
    assert reasons[f"{positives[6]}.png"] == "outside the dataset folder"
    assert not (art.path / S.DISPLAY_DIR / f"rsna-{positives[6]}.jpg").exists()
    rsna = art.images[art.images[S.SOURCE] == S.SOURCE_RSNA]
    assert (rsna[S.STATE] == S.STATE_UNKNOWN).all()
    assert not art.trajectories[S.PATIENTID].str.startswith("rsna-").any()
    m1 = rsna.set_index(S.IMAGE_ID).loc[f"rsna-{positives[1]}"]
    m2 = rsna.set_index(S.IMAGE_ID).loc[f"rsna-{positives[0]}"]
    assert m1["logit:Effusion"] != m2["logit:Effusion"]  # inverted image, other outputs
    assert Path(art.display_path(f"rsna-{positives[0]}")).is_file()
