"""Where the model runs: `--device auto|cpu|cuda|cuda:N|mps`, what this machine has, and the
defaults that follow from the device (batch size, decoding workers).

The device *class* (cpu / cuda / mps) is part of the weights spec and of every cache key
(cxrviz.weights.WeightsSpec.signature): kernels differ between classes, so their outputs differ
in the last bits, and CPU and GPU results must never mix in one cache entry or one artifact.
Which GPU of a class (cuda:0 or cuda:3) is where the work runs, not what decides its results.
"""
from __future__ import annotations

import os
import re

from cxrviz.weights import DEFAULT_BATCH_SIZE, DEVICE_CLASSES, DEVICE_CPU, DEVICE_CUDA

AUTO = "auto"
_DEVICE = re.compile(r"(?P<cls>cpu|cuda|mps)(?::(?P<index>\d+))?")
# One forward pass of DenseNet-121 at 224 px holds ~40 MiB of activations per image in fp32
# (dense blocks keep every layer's output); a quarter of the GPU's memory for them leaves room
# for the weights, cuDNN's workspace and anything else on the device.
GPU_MIB_PER_IMAGE = 40
GPU_MEMORY_SHARE = 0.25
GPU_MAX_BATCH = 256
MPS_BATCH = 32
# Decoding's share of one image's CPU time on the CPU device: decoding a covid-collection image
# (read, decode, crop, resize, display JPEG) takes 31 ms of one core, the fp32 model 90 ms of
# core time (22 img/s on 2 cores; 131 ms at one thread), measured on this project's 2-core
# machine (process CPU time, so a loaded machine changes it little): 31 / (31 + 90) = 0.25.
# On a GPU the model needs one core to feed it instead.
DECODE_SHARE = 0.25


class DeviceUnavailable(ValueError):
    """The device asked for is not on this machine (a usage error: exit code 2)."""


def parse_device(text: str) -> str:
    """'auto', 'cpu', 'cuda', 'cuda:N' or 'mps' (as typed) or ValueError saying what is accepted."""
    text = (text or "").strip().lower()
    if text == AUTO or _DEVICE.fullmatch(text):
        if text.startswith(("cpu:", "mps:")):
            raise ValueError(f"--device {text}: only cuda takes an index (cuda:N)")
        return text
    raise ValueError(f"--device {text!r}: expected auto, cpu, cuda, cuda:N or mps")


def available_devices() -> list:
    """What this machine can run the model on: ['cpu', 'cuda:0', ..., 'mps']."""
    import torch

    found = [DEVICE_CPU]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def resolve_device(text: str, available: list | None = None) -> str:
    """A torch device string that exists here ('cpu', 'cuda:0', 'mps'), or DeviceUnavailable
    naming what was asked for and what this machine has. auto: the first CUDA GPU, else CPU."""
    text = parse_device(text)
    found = available_devices() if available is None else list(available)
    if text == AUTO:
        return next((d for d in found if d.startswith(DEVICE_CUDA)), DEVICE_CPU)
    want = "cuda:0" if text == DEVICE_CUDA else text
    if want in found:
        return want
    raise DeviceUnavailable(f"{text} requested; this machine has: {', '.join(found)}")


def device_class(device: str) -> str:
    """'cuda:3' -> 'cuda'."""
    cls = str(device).split(":", 1)[0]
    if cls not in DEVICE_CLASSES:
        raise ValueError(f"device class must be one of {DEVICE_CLASSES}, not {cls!r}")
    return cls


def device_name(device: str) -> str:
    """For the manifest and people: 'NVIDIA H200', 'Apple MPS', or the CPU's model name."""
    cls = device_class(device)
    if cls == DEVICE_CUDA:
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    if cls == "mps":
        return "Apple MPS"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def default_batch_size(device: str) -> int:
    """CPU: 8 (the fastest fp32 batch measured on a 2-core CPU); CUDA: what a quarter of the
    GPU's memory holds, a power of two up to GPU_MAX_BATCH; MPS: MPS_BATCH. Recorded in the
    weights spec (and so in the cache key), like any batch size."""
    cls = device_class(device)
    if cls == DEVICE_CUDA:
        import torch

        total_mib = torch.cuda.get_device_properties(torch.device(device)).total_memory / 2**20
        fits = max(1, int(total_mib * GPU_MEMORY_SHARE / GPU_MIB_PER_IMAGE))
        return min(GPU_MAX_BATCH, 1 << (fits.bit_length() - 1))
    return MPS_BATCH if cls == "mps" else DEFAULT_BATCH_SIZE


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask: a container's or taskset's limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers(device: str, cores: int | None = None) -> int:
    """Decoding processes beside the model: the cores less what the model needs.

    On a GPU the model needs one core (it feeds the GPU and writes the cache): cores - 1. On the
    CPU the model needs most of them: decoders get DECODE_SHARE of the cores, at least one
    (2 cores: 1 decoder; 16 cores: 4, the model's threads the other 12); they run at a lower priority (features.NICE), so a decoder waiting on
    nothing never slows the model and a model waiting on input leaves its cores to decoders.
    """
    cores = usable_cores() if cores is None else int(cores)
    if device_class(device) != DEVICE_CPU:
        return max(1, cores - 1)
    return max(1, round(cores * DECODE_SHARE))


def cpu_bf16_is_native() -> bool:
    """Whether oneDNN has a fast bf16 path on this CPU (AVX-512 core, AMX, AVX-NE-CONVERT; torch
    asks oneDNN). Without one --precision bf16 runs far slower than fp32: on this project's
    AVX2 machine the bf16 model-only rate was under 1 img/s against 16.5 img/s in fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False
