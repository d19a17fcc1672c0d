"""SIGKILL at named moments, run again: the run finishes and equals an uninterrupted one; and a
killed run leaves no decoding worker behind.

The kills land where cxrviz.compute.killpoint puts them (CXRVIZ_KILL_AT), the same SIGKILL as a
user's kill -9, at the same point on every run: a test that polls from outside kills wherever
the scheduler lets it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from cxrviz import schema as S
from cxrviz.compute.killpoint import ENV as KILL_AT
from cxrviz.io.artifact import read_artifact

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 24  # 3 batches of 8


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


def session_processes(sid: int) -> list:
    """Live processes of a session (a killed parent's workers are re-parented, not gone)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return found


def end_session(sid: int) -> None:
    try:
        os.killpg(sid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.parametrize("kill_at,cached", [("features:1", 1), ("features:20", 20),
                                             ("umap", "all"), ("write", "all"),
                                             ("writing:10", "all")])
def test_sigkill_then_resume(dataset, reference, tmp_path, kill_at, cached):
    """features:n: right after the n-th image's outputs reach the cache (inside the first and
    the third batch of 8); umap: every image cached, before the fit; write: all computed, before
    the artifact is written; writing:10: halfway through writing it (into its temp folder)."""
    if cached == "all":
        cached = read_artifact(reference).images[S.FILENAME].nunique()
    out, cache = tmp_path / "art", tmp_path / "cache"
    proc = subprocess.Popen(cli(dataset, out, cache), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, KILL_AT: kill_at})
    try:
        assert proc.wait(timeout=300) == -signal.SIGKILL
    finally:
        end_session(proc.pid)
    assert cache_entries(cache) == cached
    assert not out.exists()  # never a half-written artifact under the final name
    half = list(tmp_path.glob(".art.tmp-*"))
    assert bool(half) == kill_at.startswith("writing"), half  # a killed write leaves its temp
    done = subprocess.run(cli(dataset, out, cache), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert_same_artifact(reference, out)
    assert list(tmp_path.glob(".art.tmp-*")) == []  # the re-run removed the killed run's temp


def test_decoding_workers_end_when_precompute_is_killed(dataset, tmp_path):
    """kill -9 of precompute while its two DataLoader workers decode: they end too, within
    seconds (they lived on, re-parented, ~495 MB each)."""
    proc = subprocess.Popen(cli(dataset, tmp_path / "art", tmp_path / "cache", "--workers", "2"),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.time() + 300
        while len(parent.children()) < 2:
            assert proc.poll() is None and time.time() < deadline, "no workers were started"
            time.sleep(0.1)
        workers = parent.children()
        proc.kill()  # the parent only: SIGKILL, no clean-up runs
        proc.wait()
        deadline = time.time() + 5
        while session_processes(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert session_processes(proc.pid) == [], [w.pid for w in workers]
    finally:
        end_session(proc.pid)


def test_a_worker_without_prctl_still_ends_with_its_parent(tmp_path):
    """The other half of the rule, for systems without PR_SET_PDEATHSIG: the watchdog thread
    alone (features._watch_parent), in a child of a process that is then killed."""
    script = (
        "import multiprocessing as mp, os, sys, time\n"
        "from cxrviz.compute.features import _watch_parent\n"
        "child = mp.get_context('fork').Process(target=_watch_parent, args=(os.getpid(), 0.1))\n"
        "child.start()\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        child = int(proc.stdout.readline())
        assert psutil.pid_exists(child)
        proc.kill()
        proc.wait()
        deadline = time.time() + 5
        while session_processes(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert session_processes(proc.pid) == []
    finally:
        end_session(proc.pid)
