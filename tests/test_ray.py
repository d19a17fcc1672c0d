"""--engine ray on a local Ray instance of 2 CPUs against the local engine, on the real collection
(--limit 40, random weights): the same artifact, the same cache entries, a kill -9 resumed, no Ray
process left behind, and a clear exit where Ray is not installed.

Every Ray run is a `python -m precompute` subprocess in a session of its own, so its raylet, GCS
and workers can be found (and ended, in a finally) by session id; this pytest process never
starts Ray. Ray's own RAY_OVERRIDE_RESOURCES sizes the instance at 2 CPUs on any machine, which
gives one model actor of 1 torch thread; the local reference runs its model at 1 thread too
(OMP_NUM_THREADS), because float32 convolutions sum in a thread-count-dependent order (1 vs 2
threads: 2e-7 of the largest feature; README, "A cluster").
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cxrviz.compute.killpoint import ENV as KILL_AT
from cxrviz.compute.ray_engine import actor_plan
from tests.test_resume import assert_same_artifact, cache_entries, end_session, session_processes

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 40
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
# the heavy ones end with the driver at once (kernel fate-sharing); Ray 2.60's two agents wait
# 60 s on the dead GCS before they exit
RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def cli(dataset, out, cache, *extra):
    return [sys.executable, "-m", "precompute", "--dataset", str(dataset), "--out", str(out),
            "--weights", "random", "--cache-dir", str(cache), "--limit", str(LIMIT), "--quiet",
            *extra]


@pytest.fixture
def ray_env():
    """A local Ray of 2 CPUs with its temp folder of its own (short: Ray's socket paths must
    fit 107 bytes), removed afterwards."""
    tmp = tempfile.mkdtemp(prefix="cxrviz-ray-", dir="/tmp")
    yield {**os.environ, "RAY_OVERRIDE_RESOURCES": json.dumps({"CPU": 2}), "RAY_TMPDIR": tmp}
    shutil.rmtree(tmp, ignore_errors=True)


def run_in_session(cmd, env, **popen):
    """Run cmd as the leader of a new session; (process, stdout, stderr) once it has exited,
    every process of the session ended in any case."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        end_session(proc.pid)
    return proc, out, err


def left_running(sid: int, wait_s: float, allowed=()) -> list:
    """Names of the session's processes still alive after up to wait_s seconds (those in
    `allowed` are not waited for)."""
    deadline = time.time() + wait_s
    while True:
        alive = []
        for p in session_processes(sid):
            try:
                alive.append(p.name())
            except Exception:  # ended while we looked
                continue
        if not [n for n in alive if n not in allowed] or time.time() > deadline:
            return [n for n in alive if n not in allowed]
        time.sleep(0.2)


def cache_files(cache: Path) -> dict:
    return {kind: sorted(p.name for p in (cache / kind).rglob("*") if p.is_file())
            for kind in ("features", "display", "skip")}


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    """The local engine's artifact and cache, its model at 1 torch thread."""
    root = tmp_path_factory.mktemp("local")
    done = subprocess.run(cli(dataset, root / "art", root / "cache"), cwd=ROOT,
                          env={**os.environ, **ONE_THREAD}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return root


def test_ray_engine_writes_the_local_engines_artifact(dataset, reference, ray_env, tmp_path):
    """images.parquet, features.npy, trajectories, density and the manifest (less times, paths
    and config) equal the local engine's bit for bit, from the same cache entries; the run
    leaves no Ray process behind; a re-run with everything cached starts no Ray."""
    proc, out, err = run_in_session(cli(dataset, tmp_path / "art", tmp_path / "cache",
                                        "--engine", "ray"), ray_env)
    assert proc.returncode == 0, err[-3000:]
    assert f"model runs this time: {LIMIT} images; from cache: 0" in out
    assert "Started a local Ray instance" in err  # Ray's own words: this ran on Ray
    assert_same_artifact(reference / "art", tmp_path / "art")
    assert cache_files(tmp_path / "cache") == cache_files(reference / "cache")
    assert left_running(proc.pid, 5) == []
    again, out, err = run_in_session(cli(dataset, tmp_path / "again", tmp_path / "cache",
                                          "--engine", "ray"), ray_env)
    assert again.returncode == 0, err[-3000:]
    assert f"model runs this time: 0 images; from cache: {LIMIT}" in out
    assert "Started a local Ray instance" not in err  # everything cached: no Ray started
    assert_same_artifact(reference / "art", tmp_path / "again")


def test_kill_9_of_a_ray_run_then_a_rerun_finishes_with_the_same_artifact(dataset, reference,
                                                                           ray_env, tmp_path):
    """SIGKILL of the driver once 8 images' outputs are in the cache (the first model batch;
    on 2 CPUs one block of 16 paths decodes at a time, so the rest is not embedded yet): the
    raylet, GCS and workers end with it at once, Ray's two agents within about a minute; the
    rerun embeds only what is missing and writes the local engine's artifact."""
    out, cache = tmp_path / "art", tmp_path / "cache"
    killed = subprocess.Popen(cli(dataset, out, cache, "--engine", "ray"), cwd=ROOT,
                              env={**ray_env, KILL_AT: "features:8"}, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert killed.wait(timeout=600) == -signal.SIGKILL
        assert left_running(killed.pid, 10, allowed=RAY_AGENTS) == []
        assert not out.exists()
        cached = cache_entries(cache)
        # the driver counts results as they reach it; Ray's actors may have cached every image
        # by then on an idle machine (the kill still lands before UMAP and the write)
        assert 8 <= cached <= LIMIT
        done, stdout, err = run_in_session(cli(dataset, out, cache, "--engine", "ray"), ray_env)
        assert done.returncode == 0, err[-3000:]
        assert f"model runs this time: {LIMIT - cached} images; from cache: {cached}" in stdout
        assert_same_artifact(reference / "art", out)
        assert left_running(killed.pid, 60) == []  # the agents, on their own
    finally:
        end_session(killed.pid)


def test_engine_ray_without_ray_installed_exits_2_saying_how_to_install(dataset, tmp_path):
    """A Python where `import ray` fails (sys.modules["ray"] = None: the import system's own
    way to make a module unimportable): exit 2 before any work, naming requirements-ray.txt."""
    args = cli(dataset, tmp_path / "art", tmp_path / "cache", "--engine", "ray")[3:]
    code = ("import sys; sys.modules['ray'] = None\n"
            "from precompute.__main__ import main\n"
            f"sys.exit(main({args!r}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "pip install -r requirements-ray.txt" in done.stderr
    assert "--engine local" in done.stderr
    assert not (tmp_path / "art").exists() and not (tmp_path / "cache").exists()


def test_ray_address_without_engine_ray_is_a_usage_error(dataset, tmp_path):
    done = subprocess.run(cli(dataset, tmp_path / "art", tmp_path / "cache",
                              "--ray-address", "auto"), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert "--ray-address goes with --engine ray" in done.stderr


@pytest.mark.parametrize("cpus", [1, 2, 3, 8, 16, 64])
def test_the_actor_plan_leaves_cpus_to_decode(cpus):
    """Model actors never take every CPU (the decoding tasks would wait forever); 2 CPUs: one
    actor of 1 thread; threads per actor at most MAX_MODEL_THREADS."""
    plan = actor_plan({"CPU": float(cpus)})
    assert plan["actors"] >= 1 and plan["num_gpus"] == 0
    assert plan["actors"] * plan["num_cpus"] + plan["decode_cpus"] <= cpus
    assert plan["actors"] * plan["num_cpus"] <= max(cpus / 2, 1)
    assert 1 <= plan["threads"] <= 4
    if cpus == 2:
        assert (plan["actors"], plan["threads"]) == (1, 1)


def test_cuda_weights_get_one_gpu_per_actor_and_never_a_silent_cpu_run():
    assert actor_plan({"CPU": 16.0, "GPU": 4.0}, "cuda")["actors"] == 4
    assert actor_plan({"CPU": 16.0, "GPU": 4.0}, "cuda")["num_gpus"] == 1
    with pytest.raises(RuntimeError, match="no GPU"):
        actor_plan({"CPU": 16.0}, "cuda")
