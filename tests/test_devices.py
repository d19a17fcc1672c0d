"""--device: parsing, the absent-device usage error (through the CLI), device classes kept apart
in the cache, and placement on a machine that lacks the artifact's device class.

The embedding itself runs on the CPU (this project's machines have no GPU); a second device class
enters as data: a weights spec of class cuda, its cache keys, and a device list without it.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from cxrviz.compute.cache import ResultCache
from cxrviz.compute.device import DeviceUnavailable, parse_device, resolve_device
from cxrviz.compute.features import embed_files, feature_key, read_and_hash
from cxrviz.compute.model import device_for, embedder_from_spec, load_embedder
from cxrviz.placement_service import device_note
from cxrviz.weights import WeightsSpec
from tests.conftest import ROOT


def test_device_names_are_parsed_and_malformed_ones_refused():
    for text in ("auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps", " CUDA:1 "):
        assert parse_device(text) == text.strip().lower()
    for text in ("gpu", "cuda:", "cuda:x", "cpu:0", "mps:1", "", "cuda:-1"):
        with pytest.raises(ValueError, match="--device"):
            parse_device(text)


def test_resolving_against_what_a_machine_has():
    gpus = ["cpu", "cuda:0", "cuda:1"]
    assert resolve_device("auto", ["cpu"]) == "cpu"
    assert resolve_device("auto", gpus) == "cuda:0"
    assert resolve_device("cuda", gpus) == "cuda:0"
    assert resolve_device("cuda:1", gpus) == "cuda:1"
    assert resolve_device("auto", ["cpu", "mps"]) == "cpu"  # auto never picks mps
    with pytest.raises(DeviceUnavailable, match=r"^cuda:2 requested; this machine has: cpu, "
                                                r"cuda:0, cuda:1$"):
        resolve_device("cuda:2", gpus)
    with pytest.raises(DeviceUnavailable, match=r"^mps requested; this machine has: cpu$"):
        resolve_device("mps", ["cpu"])


def _this_machine() -> list:
    """What torch itself reports (not cxrviz's code): cpu, cuda:i, mps."""
    found = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return found + (["mps"] if torch.backends.mps.is_available() else [])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "precompute", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_an_absent_device_is_a_usage_error_naming_what_was_found(dataset, tmp_path):
    absent = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU: absent everywhere
    run = _cli("--dataset", str(dataset), "--out", str(tmp_path / "a"), "--weights", "random",
               "--device", absent)
    assert run.returncode == 2, run.stderr
    assert f"error: {absent} requested; this machine has: {', '.join(_this_machine())}" \
        in run.stderr
    assert not (tmp_path / "a").exists()
    run = _cli("--dataset", str(dataset), "--out", str(tmp_path / "a"), "--device", "tpu")
    assert run.returncode == 2 and "expected auto, cpu, cuda, cuda:N or mps" in run.stderr
    run = _cli("--dataset", str(dataset), "--out", str(tmp_path / "a"), "--weights", "random",
               "--device", "cpu", "--precision", "fp16")
    assert run.returncode == 2 and "--precision fp16 runs on a GPU" in run.stderr


def test_the_device_class_is_part_of_the_spec_and_of_the_cache_key(dataset, tmp_path):
    paths = [str(p) for p in sorted((dataset / "images").glob("*.jp*g"))[:4]]
    cpu = load_embedder("random", batch_size=2)
    cuda_spec = replace(cpu.spec, device="cuda")
    assert cpu.spec.device == "cpu" and cpu.spec.to_manifest()["device"] == "cpu"
    assert WeightsSpec.from_manifest(cuda_spec.to_manifest()) == cuda_spec
    with pytest.raises(ValueError, match="fp16 runs on a GPU"):
        replace(cpu.spec, precision="fp16")  # the CPU class with fp16 is no valid spec
    assert replace(cuda_spec, precision="fp16").precision == "fp16"

    cache = ResultCache(tmp_path / "cache")
    first = embed_files(paths, cpu, cache, workers=0, progress=False, display_size=None)
    assert first.computed == 4
    shas = [read_and_hash(p)[0] for p in paths]
    cpu_keys = {feature_key(s, cpu.spec) for s in shas}
    cuda_keys = {feature_key(s, cuda_spec) for s in shas}
    assert len(cpu_keys) == len(cuda_keys) == 4 and not cpu_keys & cuda_keys
    stored = {p.stem for p in (tmp_path / "cache" / "features").rglob("*.npz")}
    assert stored == cpu_keys  # one entry per image, under the CPU class only

    # results of another class (written as a GPU run would) are never taken for CPU results
    for key in cuda_keys:
        cache.put_arrays("features", key, features=np.full(1024, 7, np.float32),
                         logits=np.full(18, 7, np.float32))
    again = embed_files(paths, cpu, cache, workers=0, progress=False, display_size=None)
    assert (again.computed, again.from_cache) == (0, 4)
    for p in paths:
        assert np.array_equal(again.logits[p], first.logits[p]) and again.logits[p][0] != 7
    assert len(list((tmp_path / "cache" / "features").rglob("*.npz"))) == 8


def test_placing_on_a_machine_without_the_artifacts_device_class_says_so():
    built = replace(load_embedder("random", batch_size=2).spec, device="cuda", precision="fp16")
    device, here = device_for(built, ["cpu"])
    assert device == "cpu" and (here.device, here.precision) == ("cpu", "fp32")
    assert device_for(built, ["cpu", "cuda:0"]) == ("cuda:0", built)  # same class: as built
    emb = embedder_from_spec(built, available=["cpu"])
    assert emb.device == "cpu" and emb.spec == here
    x = np.random.default_rng(0).uniform(-1024, 1024, (2, 1, 224, 224)).astype(np.float32)
    reference = load_embedder("random", batch_size=2).embed(x)[1]
    assert np.array_equal(emb.embed(x)[1], reference)  # the CPU's fp32 outputs
    note = device_note(built, emb.spec)
    assert "embedded on cuda (fp16)" in note and "placed on cpu (fp32)" in note
    assert device_note(here, here) is None


def test_decoders_get_the_cores_the_model_leaves():
    from cxrviz.compute.device import DECODE_SHARE, default_workers

    assert default_workers("cuda:0", 16) == 15 and default_workers("mps", 1) == 1
    assert default_workers("cpu", 2) == 1  # at least one decoder
    assert default_workers("cpu", 16) == round(16 * DECODE_SHARE) < 16


def _cpu_flags() -> set:
    with open("/proc/cpuinfo") as f:
        return {flag for line in f if line.startswith("flags") for flag in line.split()[2:]}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_bf16_on_a_cpu_without_bf16_instructions_is_warned_of(dataset, tmp_path):
    """The CPU's own flags (the kernel's list) say whether oneDNN has a fast bf16 path on it
    (AVX-512 core, or AVX-NE-CONVERT); the CLI warns exactly when it has none.
    --umap-fit-sample 2 then stops the run before any work."""
    from cxrviz.compute.device import cpu_bf16_is_native

    flags = _cpu_flags()
    native = {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags or "avx_ne_convert" in flags
    assert cpu_bf16_is_native() == native
    run = _cli("--dataset", str(dataset), "--out", str(tmp_path / "a"), "--weights", "random",
               "--device", "cpu", "--precision", "bf16", "--umap-fit-sample", "2")
    assert run.returncode == 2 and "--umap-fit-sample must be >= 4" in run.stderr
    assert ("warning: this CPU has no fast bf16 path" in run.stderr) == (not native)
    assert not (tmp_path / "a").exists()
