"""Which weights made an artifact, written once into its manifest and read back exactly.

Precompute writes `WeightsSpec.to_manifest()`; placement, saliency and every display read
`WeightsSpec.from_manifest()`. Nothing parses a display name back into settings. Torch-free, so
the app can show the spec without loading the model.
"""
from __future__ import annotations

from dataclasses import dataclass

from cxrviz import schema as S

DEFAULT_RELEASE = "densenet121-res224-all"
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICE_CPU, DEVICE_CUDA, DEVICE_MPS = "cpu", "cuda", "mps"
DEVICE_CLASSES = (DEVICE_CPU, DEVICE_CUDA, DEVICE_MPS)
# fp16 autocast is a GPU feature: on the CPU torch runs few operators in half precision, slowly.
CPU_PRECISIONS = ("fp32", "bf16")
# Fastest fp32 batch measured on a 2-core CPU (benchmarks/precompute.py). Every forward pass runs
# at exactly this size, so one placed image pays for a batch of 8.
DEFAULT_BATCH_SIZE = 8


@dataclass(frozen=True)
class WeightsSpec:
    """kind: release (a torchxrayvision name) | file (a local weights file) | random (seeded)."""

    kind: str
    name: str
    sha256: str
    pretrained: bool
    precision: str = "fp32"
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int | None = None  # random weights only
    # where the file was when the artifact was built: a hint, not a trust. A file found there is
    # loaded as plain tensors only (cxrviz.compute.model.embedder_from_spec)
    path: str | None = None
    # the device class the outputs were computed on (cpu | cuda | mps): outputs of different
    # classes differ in their last bits, so it is part of the signature (cache keys)
    device: str = DEVICE_CPU

    def __post_init__(self):
        if self.kind not in S.W_KINDS:
            raise ValueError(f"weights kind must be one of {S.W_KINDS}, not {self.kind!r}")
        problem = precision_problem(self.device, self.precision)
        if problem:
            raise ValueError(problem)
        if int(self.batch_size) < 1:
            raise ValueError("batch size must be at least 1")
        if self.kind == S.W_KIND_RANDOM and self.seed is None:
            raise ValueError("random weights need a seed")

    @property
    def label(self) -> str:
        """For people (banners, captions, logs); never parsed."""
        return f"random (seed {self.seed})" if self.kind == S.W_KIND_RANDOM else self.name

    @property
    def short_sha(self) -> str:
        return self.sha256[:12]

    @property
    def signature(self) -> str:
        """Everything besides the image that decides its outputs, for cache keys."""
        return f"{self.sha256}|{self.precision}|bs{self.batch_size}|{self.device}"

    def to_manifest(self) -> dict:
        return {S.W_KIND: self.kind, S.W_NAME: self.name, S.W_SEED: self.seed,
                S.W_SHA256: self.sha256, S.W_PRECISION: self.precision,
                S.W_BATCH_SIZE: int(self.batch_size), S.W_PRETRAINED: bool(self.pretrained),
                S.W_PATH: self.path, S.W_DEVICE: self.device}

    @classmethod
    def from_manifest(cls, entry: dict) -> "WeightsSpec":
        """The exact inverse of to_manifest: every key is required, none is guessed, except the
        device: a manifest written before devices were recorded was made on the CPU (no earlier
        version ran the model anywhere else)."""
        keys = (S.W_KIND, S.W_NAME, S.W_SEED, S.W_SHA256, S.W_PRECISION, S.W_BATCH_SIZE,
                S.W_PRETRAINED, S.W_PATH)
        missing = [k for k in keys if k not in entry]
        if missing:
            raise ValueError(f"the manifest's weights entry lacks {missing}")
        return cls(kind=entry[S.W_KIND], name=entry[S.W_NAME], sha256=entry[S.W_SHA256],
                   pretrained=bool(entry[S.W_PRETRAINED]), precision=entry[S.W_PRECISION],
                   batch_size=int(entry[S.W_BATCH_SIZE]), seed=entry[S.W_SEED],
                   path=entry[S.W_PATH], device=entry.get(S.W_DEVICE, DEVICE_CPU))


def precision_problem(device_class: str, precision: str) -> str | None:
    """Why this precision cannot run on this device class, or None: the one rule for it."""
    if device_class not in DEVICE_CLASSES:
        return f"device class must be one of {DEVICE_CLASSES}, not {device_class!r}"
    if precision not in PRECISIONS:
        return f"precision must be one of {PRECISIONS}, not {precision!r}"
    if device_class == DEVICE_CPU and precision not in CPU_PRECISIONS:
        return (f"--precision {precision} runs on a GPU (cuda or mps); on the CPU use "
                f"{' or '.join(CPU_PRECISIONS)}")
    return None
