"""SIGKILL at any moment, run again: the run finishes and equals an uninterrupted one."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrviz import schema as S
from cxrviz.io.artifact import read_artifact

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 56  # 7 batches of 8: kills land between and inside batches


def cli(dataset, out, cache, *extra):
    return [sys.executable, "-m", "precompute", "--dataset", str(dataset), "--out", str(out),
            "--weights", "random", "--cache-dir", str(cache), "--limit", str(LIMIT), "--quiet",
            *extra]


def cache_entries(cache: Path) -> int:
    return len(list((cache / "features").rglob("*.npz"))) if (cache / "features").exists() else 0


def assert_same_artifact(a_dir, b_dir):
    a, b = read_artifact(a_dir), read_artifact(b_dir)  # sha256 of every file checked
    pd.testing.assert_frame_equal(a.images, b.images, check_exact=True)
    pd.testing.assert_frame_equal(a.trajectories, b.trajectories, check_exact=True)
    for k in a.density:
        np.testing.assert_array_equal(a.density[k], b.density[k])
    np.testing.assert_array_equal(np.load(a.path / S.FEATURES_FILE, allow_pickle=False),
                                  np.load(b.path / S.FEATURES_FILE, allow_pickle=False))
    skip = {S.M_CREATED, S.M_TIMINGS, S.M_INPUTS, S.M_FILES, "config"}
    assert {k: v for k, v in a.manifest.items() if k not in skip} == \
           {k: v for k, v in b.manifest.items() if k not in skip}
    assert sorted(p.name for p in (a.path / S.DISPLAY_DIR).iterdir()) == \
           sorted(p.name for p in (b.path / S.DISPLAY_DIR).iterdir())


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    subprocess.run(cli(dataset, root / "art", root / "cache"), cwd=ROOT, check=True,
                   capture_output=True)
    return root / "art"


@pytest.mark.parametrize("kill_after_entries", [1, 20, "all"])
def test_sigkill_then_resume(dataset, reference, tmp_path, kill_after_entries):
    """Kill once N per-image results are cached ("all": during UMAP or writing), then re-run."""
    if kill_after_entries == "all":
        kill_after_entries = read_artifact(reference).images[S.FILENAME].nunique()
    out, cache = tmp_path / "art", tmp_path / "cache"
    proc = subprocess.Popen(cli(dataset, out, cache), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while cache_entries(cache) < kill_after_entries and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the DataLoader workers die too
    proc.wait()
    assert not out.exists()  # never a half-written artifact under the final name
    done = subprocess.run(cli(dataset, out, cache), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert_same_artifact(reference, out)
    assert not list(tmp_path.glob(".art.tmp-*"))  # the killed run's temp folder is cleaned up
