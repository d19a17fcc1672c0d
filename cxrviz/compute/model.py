"""torchxrayvision's DenseNet with the paper's raw outputs: 1024-d features2 and 18 pre-sigmoid logits.

Weights come from torchxrayvision's cache folder (downloaded there when online), from a local
file (the release format, a pickled module, or a plain state_dict), or are `random` (seeded, for
tests and demos; flagged as not pretrained everywhere downstream).

Which files may be unpickled, and where they are found: cxrviz.compute.weight_files.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cxrviz import schema as S
from cxrviz.compute.device import device_class
from cxrviz.compute.weight_files import (WeightsUnavailable, ensure_named_file,
                                         find_weights_file, in_release_cache, named_weights,
                                         state_dict_from_file, weights_cache_path)
from cxrviz.hashing import sha256_file
from cxrviz.weights import DEFAULT_BATCH_SIZE, DEFAULT_RELEASE, PRECISIONS, WeightsSpec

RANDOM = "random"
AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}  # torch dtype names, torch imported late
DEFAULT_WEIGHTS = DEFAULT_RELEASE
__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_WEIGHTS", "PRECISIONS", "RANDOM", "Embedder",
           "WeightsUnavailable", "embedder_from_spec", "load_embedder", "weights_cache_path"]


@dataclass
class Embedder:
    """A weights spec, its output names and (built on first use) the network itself.

    The identity (spec, pathologies) is known without building the network, so a run whose
    results are all cached never pays for loading it.
    """

    spec: WeightsSpec
    pathologies: list
    _model: object = field(default=None, repr=False)
    # spec.path may be unpickled when the network is built: torchxrayvision's own cache file
    # for a release name (the only lazily built case; other files are read when resolved)
    trusted: bool = False
    # where the network runs: a torch device of the spec's class ('cpu', 'cuda:1', 'mps')
    device: str = "cpu"
    _placed: bool = field(default=False, repr=False)
    _pinned: object = field(default=None, repr=False)

    def __post_init__(self):
        if device_class(self.device) != self.spec.device:
            raise ValueError(f"an embedder for {self.spec.device} outputs cannot run on "
                             f"{self.device}")

    @property
    def model(self):
        if self._model is None:
            self._model = _build_model(self.spec, self.pathologies, self.trusted)
        if not self._placed:
            self._model = _to_device(self._model, self.device, self.spec.precision)
            self._placed = True
        return self._model

    def embed(self, inputs: np.ndarray):
        """(n, 1, 224, 224) float32 -> (features (n, 1024), logits (n, k)) as float32 numpy.

        Every forward pass runs at exactly `spec.batch_size` (the last one zero-padded): an
        image's outputs then do not depend on which other images share its batch, so a resumed
        run reproduces an uninterrupted one bit for bit, and placement reproduces precompute.
        On a GPU each batch goes through one pinned host buffer (copied asynchronously).
        """
        import torch

        size = self.spec.batch_size
        feats, logits = [], []
        for start in range(0, len(inputs), size):
            chunk = inputs[start:start + size]
            pad = size - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
            f, out = self.forward(self._host_tensor(np.ascontiguousarray(chunk), torch))
            feats.append(f.float().cpu().numpy()[:len(chunk) - pad])
            logits.append(out.float().cpu().numpy()[:len(chunk) - pad])
        if not feats:
            return np.zeros((0, 1024), np.float32), np.zeros((0, len(self.pathologies)), np.float32)
        return np.concatenate(feats), np.concatenate(logits)

    def _host_tensor(self, chunk: np.ndarray, torch):
        tensor = torch.from_numpy(chunk)
        if self.spec.device != "cuda":
            return tensor
        if self._pinned is None or self._pinned.shape != tensor.shape:
            self._pinned = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        return self._pinned.copy_(tensor)  # the previous batch's copy is done: its outputs
        # were read back (.cpu()) before this call

    def forward(self, x, grad: bool = False):
        """The paper's outputs: (features2(x), classifier(features2(x))), op_threshs off.

        The one forward pass of cxrviz: precompute and placement call it without gradient,
        saliency with. no_grad rather than inference_mode: tensors made in inference mode
        cannot take part in a later backward pass in the same process. `x` may live on the
        host; the outputs live on the embedder's device. bf16 / fp16 run under torch.autocast
        of the device with channels-last inputs (as the network's weights are on a GPU).
        """
        import torch

        model = self.model
        cls = self.spec.device
        x = x.to(self.device, non_blocking=True)
        with torch.set_grad_enabled(grad):
            if self.spec.precision != "fp32":
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(cls, dtype=getattr(torch, AUTOCAST_DTYPES[self.spec.precision])):
                    f = model.features2(x)
                    return f, model.classifier(f)
            if cls != "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            f = model.features2(x)
            return f, model.classifier(f)


def state_dict_sha256(model) -> str:
    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _random_model(seed: int, n_out: int):
    import torch
    import torchxrayvision as xrv

    torch.manual_seed(seed)
    return xrv.models.DenseNet(num_classes=n_out)


def _all_labels() -> list:
    import torchxrayvision as xrv

    return list(xrv.models.model_urls[DEFAULT_WEIGHTS]["labels"])


def load_embedder(weights: str = DEFAULT_WEIGHTS, *, precision: str = "fp32",
                  batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0,
                  allow_download: bool = True,
                  pretrained: bool | None = None, id_cache=None,
                  device: str = "cpu") -> Embedder:
    """Resolve what a user asked for (a torchxrayvision name, a file path, or 'random') into an
    Embedder whose spec is written to the artifact.

    `pretrained` overrides what is recorded for a local file (a test's own random file is not
    pretrained). `id_cache` (a ResultCache) remembers the hash of seeded random weights.
    `device` is a torch device that exists here (cxrviz.compute.device.resolve_device); its
    class goes into the spec.
    """
    import torchxrayvision as xrv

    run = {"precision": precision, "batch_size": batch_size, "device": device_class(device)}
    if weights == RANDOM:
        labels = _all_labels()
        spec = WeightsSpec(S.W_KIND_RANDOM, RANDOM, _random_sha(seed, len(labels), id_cache),
                           False, seed=seed, **run)
        return Embedder(spec, labels, device=device)
    if weights in xrv.models.model_urls:
        if not weights.startswith("densenet"):
            raise WeightsUnavailable(f"'{weights}' is not a DenseNet weight; choose one of "
                                     f"{named_weights()}, a file path, or 'random'")
        path = ensure_named_file(weights, allow_download)
        spec = WeightsSpec(S.W_KIND_RELEASE, weights, sha256_file(path),
                           True if pretrained is None else pretrained, path=str(path), **run)
        return Embedder(spec, _release_labels(weights), trusted=True, device=device)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailable(
            f"--weights {weights!r} is neither a torchxrayvision name ({', '.join(named_weights())}),"
            f" an existing file, nor 'random'.")
    state = state_dict_from_file(path, trusted=True)  # given by the user; read now: a bad file
    # fails before any work is done
    spec = WeightsSpec(S.W_KIND_FILE, path.name, sha256_file(path),
                       True if pretrained is None else pretrained, path=str(path.resolve()), **run)
    emb = Embedder(spec, _file_labels(state), device=device)
    emb._model = _finish(_load_state(state, path))
    return emb


def device_for(spec: WeightsSpec, available: list | None = None) -> tuple:
    """(torch device, spec it runs as) for rebuilding an artifact's embedder on this machine.

    The artifact's device class when this machine has it (the first device of that class): then
    outputs match the map's. Otherwise the CPU, at the spec's precision where the CPU runs it
    (fp16 becomes fp32); the spec returned then differs from the artifact's, which callers say
    beside every result (README "Precompute": the drift between device classes).
    """
    from cxrviz.compute.device import available_devices
    from cxrviz.weights import CPU_PRECISIONS, DEVICE_CPU

    found = available_devices() if available is None else available
    same = next((d for d in found if device_class(d) == spec.device), None)
    if same is not None:
        return same, spec
    precision = spec.precision if spec.precision in CPU_PRECISIONS else "fp32"
    return DEVICE_CPU, replace(spec, device=DEVICE_CPU, precision=precision)


def embedder_from_spec(spec: WeightsSpec, *, weights_path=None,
                       allow_download: bool = False, available: list | None = None) -> Embedder:
    """The Embedder an artifact was built with: the inverse of load_embedder's spec.

    A file is found by its sha256: at `weights_path` when given (and only there), else in
    torchxrayvision's cache folder by name (release weights) or at the recorded path. A file
    whose sha256 differs is refused with both hashes named. Only `weights_path` and the cache
    folder are trusted with pickle; a recorded path must hold plain tensors. It runs where
    `device_for` says (`available`: the devices to choose from, default this machine's).
    """
    device, spec = device_for(spec, available)
    if spec.kind == S.W_KIND_RANDOM:
        labels = _all_labels()
        model = _random_model(spec.seed, len(labels))
        sha = state_dict_sha256(model)
        if sha != spec.sha256:
            raise WeightsUnavailable(
                f"random weights (seed {spec.seed}) made here have sha256 {sha}, but the artifact "
                f"was built with {spec.sha256} (a different torch version initialises "
                "differently). Rebuild the artifact with this environment.")
        return Embedder(spec, labels, _finish(model), device=device)
    path = find_weights_file(spec, weights_path, allow_download)
    spec = replace(spec, path=str(path))  # where it was found on this machine
    if in_release_cache(spec):  # the network loads on first use
        return Embedder(spec, _release_labels(spec.name), trusted=True, device=device)
    state = state_dict_from_file(path, trusted=weights_path is not None)
    labels = _release_labels(spec.name) if spec.kind == S.W_KIND_RELEASE else _file_labels(state)
    emb = Embedder(spec, labels, device=device)
    emb._model = _finish(_load_state(state, path))
    return emb


def _release_labels(name: str) -> list:
    import torchxrayvision as xrv

    return list(xrv.models.model_urls[name]["labels"])


def _file_labels(state) -> list:
    n_out = int(state["classifier.weight"].shape[0])
    labels = _all_labels()
    return labels if n_out == len(labels) else [f"output_{i}" for i in range(n_out)]


def _random_sha(seed: int, n_out: int, id_cache) -> str:
    from importlib.metadata import version

    key = f"random|{seed}|{n_out}|torch{version('torch')}|xrv{version('torchxrayvision')}"
    if id_cache is not None:
        from cxrviz.compute.cache import key_of

        hit = id_cache.get_bytes("weights-id", key_of(key), ".txt")
        if hit:
            return hit.decode()
    sha = state_dict_sha256(_random_model(seed, n_out))
    if id_cache is not None:
        id_cache.put_bytes("weights-id", key_of(key), sha.encode(), ".txt")
    return sha


def _load_state(state, path):
    import torchxrayvision as xrv

    model = xrv.models.DenseNet(num_classes=int(state["classifier.weight"].shape[0]))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsUnavailable(f"{path} does not fit torchxrayvision's DenseNet121: {exc}") \
            from None
    return model


def _finish(model):
    model.op_threshs = None  # raw logits, no calibration (DESIGN.md)
    return model.eval()


def _to_device(model, device: str, precision: str):
    """The network on its device; on a GPU in channels-last layout (cuDNN's fast path for
    convolutions, fp32 included), and with TF32 off when fp32 is asked for: fp32 then means fp32
    (TF32 keeps 10 mantissa bits; torch enables it for cuDNN convolutions by default)."""
    import torch

    if device_class(device) == "cpu":
        return model
    if device_class(device) == "cuda" and precision == "fp32":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return model.to(device=device, memory_format=torch.channels_last)


def _build_model(spec: WeightsSpec, pathologies: list, trusted: bool):
    if spec.kind == S.W_KIND_RANDOM:
        return _finish(_random_model(spec.seed, len(pathologies)))
    return _finish(_load_state(state_dict_from_file(Path(spec.path), trusted), spec.path))
