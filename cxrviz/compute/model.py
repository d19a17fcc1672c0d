"""torchxrayvision's DenseNet with the paper's raw outputs: 1024-d features2 and 18 pre-sigmoid logits.

Weights come from torchxrayvision's cache folder (downloaded there when online), from a local
file (the release format, a pickled module, or a plain state_dict), or are `random` (seeded, for
tests and demos; flagged as not pretrained everywhere downstream).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RANDOM = "random"
DEFAULT_WEIGHTS = "densenet121-res224-all"
PRECISIONS = ("fp32", "bf16")
# Fastest fp32 batch measured on a 2-core CPU (benchmarks/precompute.py); also what a single
# placed image pays for, since every pass runs at exactly this size.
DEFAULT_BATCH_SIZE = 8


class WeightsUnavailable(Exception):
    """The requested weights cannot be loaded; the message says what to do."""


@dataclass
class Embedder:
    """Which weights, how to run them, and (loaded on first use) the model itself.

    The identity (name, sha256, pathologies) is known without building the network, so a run
    whose results are all cached never pays for loading it.
    """

    name: str
    sha256: str
    pretrained: bool
    pathologies: list
    path: str | None = None
    precision: str = "fp32"
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0
    _model: object = field(default=None, repr=False)

    @property
    def signature(self) -> str:
        """Everything besides the image that decides its outputs, for cache keys."""
        return f"{self.sha256}|{self.precision}|bs{self.batch_size}"

    @property
    def model(self):
        if self._model is None:
            self._model = _build_model(self)
        return self._model

    def embed(self, inputs: np.ndarray):
        """(n, 1, 224, 224) float32 -> (features (n, 1024), logits (n, k)) as float32 numpy.

        Every forward pass runs at exactly `batch_size` (the last one zero-padded): an image's
        outputs then do not depend on which other images share its batch, so a resumed run
        reproduces an uninterrupted one bit for bit.
        """
        import torch

        n = len(inputs)
        feats, logits = [], []
        for start in range(0, n, self.batch_size):
            chunk = inputs[start:start + self.batch_size]
            pad = self.batch_size - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
            f, l = self._forward(torch.from_numpy(np.ascontiguousarray(chunk)))
            feats.append(f[:len(chunk) - pad])
            logits.append(l[:len(chunk) - pad])
        if not feats:
            return np.zeros((0, 1024), np.float32), np.zeros((0, len(self.pathologies)), np.float32)
        return np.concatenate(feats), np.concatenate(logits)

    def _forward(self, x):
        import torch

        # no_grad, not inference_mode: tensors made in inference mode (e.g. while warming up)
        # cannot take part in the saliency backward pass later in the same process.
        with torch.no_grad():
            if self.precision == "bf16":
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    f = self.model.features2(x)
                    out = self.model.classifier(f)
            else:
                f = self.model.features2(x)
                out = self.model.classifier(f)
        return f.float().numpy(), out.float().numpy()


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def state_dict_sha256(model) -> str:
    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def named_weights() -> list:
    import torchxrayvision as xrv

    return sorted(k for k in xrv.models.model_urls if k.startswith("densenet121-res224"))


def weights_cache_path(name: str) -> Path:
    """Where torchxrayvision keeps (or would download) the file for a named weight."""
    import torchxrayvision as xrv

    url = xrv.models.model_urls[name]["weights_url"]
    return Path(xrv.utils.get_cache_dir()).expanduser() / os.path.basename(url)


def missing_weights_message(name: str, path: Path, cause: str = "") -> str:
    import torchxrayvision as xrv

    url = xrv.models.model_urls[name]["weights_url"]
    return (
        f"Pretrained weights '{name}' are not available{': ' + cause if cause else ''}.\n"
        f"  missing file : {path.name}\n"
        f"  cache folder : {path.parent}\n"
        f"  download from: {url}\n"
        f"Fix it one of these ways:\n"
        f"  - on a machine with internet, run once: python -m precompute ... --weights {name}\n"
        f"    (torchxrayvision downloads the file into the cache folder), or copy the file there:\n"
        f"        mkdir -p {path.parent} && curl -L -o {path} {url}\n"
        f"  - pass a local copy: --weights /path/to/{path.name}\n"
        f"  - for a demo or tests only: --weights random (an untrained network; the map is then\n"
        f"    not meaningful and every view of it says so)")


def _ensure_named_file(name: str, allow_download: bool) -> Path:
    import torchxrayvision as xrv

    path = weights_cache_path(name)
    if path.is_file():
        return path
    if not allow_download:
        raise WeightsUnavailable(missing_weights_message(name, path, "not in the cache folder"))
    url = xrv.models.model_urls[name]["weights_url"]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".part{os.getpid()}")
    try:
        xrv.utils.download(url, str(partial))
        os.replace(partial, path)
    except Exception as exc:  # no network, proxy, HTTP error ...
        partial.unlink(missing_ok=True)
        raise WeightsUnavailable(missing_weights_message(
            name, path, f"download failed ({type(exc).__name__}: {exc})")) from None
    return path


def _state_dict_from_file(path: Path):
    import torch

    try:
        # Release files are whole pickled modules: loading them runs pickle, so only load
        # weights files you trust (as with torchxrayvision itself).
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise WeightsUnavailable(f"cannot read weights file {path}: {type(exc).__name__}: {exc}") \
            from None
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        for mod in obj.modules():  # old release pickles predate this attribute
            if not hasattr(mod, "_non_persistent_buffers_set"):
                mod._non_persistent_buffers_set = set()
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or "classifier.weight" not in obj:
        raise WeightsUnavailable(f"{path} is not a torchxrayvision DenseNet weights file "
                                 "(no classifier.weight in its state_dict)")
    return {k.removeprefix("module."): v for k, v in obj.items() if k != "op_threshs"}


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
                  pretrained: bool | None = None, id_cache=None) -> Embedder:
    """Resolve `weights` (a torchxrayvision name, a file path, or 'random') to an Embedder.

    `pretrained` overrides what is recorded for a local file (a test's own random file is not
    pretrained). `id_cache` (a ResultCache) remembers the hash of seeded random weights.
    """
    import torchxrayvision as xrv

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    run = {"precision": precision, "batch_size": batch_size, "seed": seed}
    if weights == RANDOM:
        labels = _all_labels()
        sha = _random_sha(seed, len(labels), id_cache)
        return Embedder(f"random(seed={seed})", sha, False, labels, None, **run)
    if weights in xrv.models.model_urls:
        if not weights.startswith("densenet"):
            raise WeightsUnavailable(f"'{weights}' is not a DenseNet weight; choose one of "
                                     f"{named_weights()}, a file path, or 'random'")
        path = _ensure_named_file(weights, allow_download)
        labels = list(xrv.models.model_urls[weights]["labels"])
        return Embedder(weights, file_sha256(path), True if pretrained is None else pretrained,
                        labels, str(path), **run)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailable(
            f"--weights {weights!r} is neither a torchxrayvision name ({', '.join(named_weights())}),"
            f" an existing file, nor 'random'.")
    state = _state_dict_from_file(path)  # read now: a bad file fails before any work is done
    n_out = int(state["classifier.weight"].shape[0])
    labels = _all_labels()
    labels = labels if n_out == len(labels) else [f"output_{i}" for i in range(n_out)]
    emb = Embedder(path.name, file_sha256(path), True if pretrained is None else pretrained,
                   labels, str(path.resolve()), **run)
    emb._model = _finish(_load_state(state, n_out, path))
    return emb


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


def _load_state(state, n_out, path):
    import torchxrayvision as xrv

    model = xrv.models.DenseNet(num_classes=n_out)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsUnavailable(f"{path} does not fit torchxrayvision's DenseNet121: {exc}") \
            from None
    return model


def _finish(model):
    model.op_threshs = None  # raw logits, no calibration (DESIGN.md)
    return model.eval()


def _build_model(emb: Embedder):
    import torchxrayvision as xrv

    if emb.path is None:
        model = _random_model(emb.seed, len(emb.pathologies))
        if state_dict_sha256(model) != emb.sha256:
            raise WeightsUnavailable("random weights differ from the recorded ones "
                                     "(torch changed its initialisation?)")
        return _finish(model)
    if emb.name in xrv.models.model_urls:
        try:
            return _finish(xrv.models.DenseNet(weights=emb.name))
        except Exception as exc:
            raise WeightsUnavailable(f"cannot load {emb.path}: {type(exc).__name__}: {exc}. "
                                     "Delete the file and download it again.") from None
    state = _state_dict_from_file(Path(emb.path))
    return _finish(_load_state(state, int(state["classifier.weight"].shape[0]), emb.path))
