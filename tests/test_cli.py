"""The command line: broken inputs, missing dataset, missing weights, exit codes and messages."""
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from cxrviz import schema as S
from cxrviz.io.artifact import read_artifact

ROOT = Path(__file__).resolve().parents[1]


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "precompute", *args, "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, env=env)


def test_folder_of_broken_files(dataset, tmp_path, session_cache):
    """Real images beside broken ones made here: the broken are skipped with reasons, no more."""
    folder = tmp_path / "ds"
    (folder / "images").mkdir(parents=True)
    with open(dataset / "metadata.csv", newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        header, rows = reader.fieldnames, list(reader)[:8]  # 8 real frontal rows
    for r in rows:  # copies: a link out of the dataset folder would be skipped
        shutil.copy(dataset / "images" / r["filename"], folder / "images" / r["filename"])
    broken = {
        "empty.png": b"",
        "truncated.jpg": (dataset / "images" / rows[0]["filename"]).read_bytes()[:3000],
        "notes.png": b"this is not an image\n" * 50,
    }
    for name, data in broken.items():
        (folder / "images" / name).write_bytes(data)
    Image.new("1", (20000, 20000)).save(folder / "images" / "bomb.png")
    broken["bomb.png"] = None
    extra = [{**rows[0], "patientid": f"b{i}", "filename": name} for i, name in enumerate(broken)]
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows + extra)
    done = run("--dataset", str(folder), "--out", str(tmp_path / "art"), "--weights", "random",
               "--cache-dir", str(session_cache))
    assert done.returncode == 0, done.stderr
    art = read_artifact(tmp_path / "art")
    reasons = {s["filename"]: s["reason"] for s in art.manifest[S.M_SKIPPED]}
    assert set(reasons) == set(broken)
    assert "empty" in reasons["empty.png"] and "too large" in reasons["bomb.png"]
    assert "truncated" in reasons["truncated.jpg"] and "not an image" in reasons["notes.png"]
    assert art.manifest[S.M_COUNTS]["embedded_covid"] == 8
    assert "skipped: 4 images" in done.stdout


def test_missing_dataset_exit_code_and_message(tmp_path):
    done = run("--dataset", str(tmp_path / "nope"), "--out", str(tmp_path / "art"))
    assert done.returncode == 3
    assert "git clone https://github.com/ieee8023/covid-chestxray-dataset" in done.stderr
    assert not (tmp_path / "art").exists()


def test_missing_weights_exit_code_and_message(dataset, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path)}  # torchxrayvision's cache: ~/.
    done = run("--dataset", str(dataset), "--out", str(tmp_path / "art"), "--no-download",
               "--limit", "4", env=env)
    assert done.returncode == 4
    assert "nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121" in done.stderr
    assert str(tmp_path / ".torchxrayvision") in done.stderr and "--weights random" in done.stderr
    assert not (tmp_path / "art").exists()


def test_local_weights_file_marked_untrained(dataset, tmp_path):
    import torch
    import torchxrayvision as xrv

    torch.manual_seed(5)
    torch.save(xrv.models.DenseNet(num_classes=18).eval().state_dict(), tmp_path / "w.pt")
    done = run("--dataset", str(dataset), "--out", str(tmp_path / "art"), "--weights",
               str(tmp_path / "w.pt"), "--weights-untrained", "--limit", "12",
               "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    w = read_artifact(tmp_path / "art").manifest[S.M_WEIGHTS]
    assert (w[S.W_KIND], w[S.W_NAME], w[S.W_PRETRAINED]) == ("file", "w.pt", False)
    assert w[S.W_PATH] == str((tmp_path / "w.pt").resolve())
    assert np.isfinite(read_artifact(tmp_path / "art").images[S.X]).all()
