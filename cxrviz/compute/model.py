"""torchxrayvision's DenseNet with the paper's raw outputs: 1024-d features2 and 18 pre-sigmoid logits.

Weights come from torchxrayvision's cache folder (downloaded there when online), from a local
file (the release format, a pickled module, or a plain state_dict), or are `random` (seeded, for
tests and demos; flagged as not pretrained everywhere downstream).

Loading a pickled file can run code, so a file is unpickled only when the user chose it: a
release file in torchxrayvision's own cache folder under its release name, or a path given on
the command line (`--weights PATH`). A path that only an artifact's manifest names is loaded
with `torch.load(weights_only=True)` (plain tensors) or not at all.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from cxrviz import schema as S
from cxrviz.hashing import sha256_file
from cxrviz.weights import DEFAULT_BATCH_SIZE, DEFAULT_RELEASE, PRECISIONS, WeightsSpec

RANDOM = "random"
DEFAULT_WEIGHTS = DEFAULT_RELEASE
__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_WEIGHTS", "PRECISIONS", "RANDOM", "Embedder",
           "WeightsUnavailable", "embedder_from_spec", "load_embedder"]


class WeightsUnavailable(Exception):
    """The requested weights cannot be loaded; the message says what to do."""


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

    @property
    def model(self):
        if self._model is None:
            self._model = _build_model(self.spec, self.pathologies, self.trusted)
        return self._model

    def embed(self, inputs: np.ndarray):
        """(n, 1, 224, 224) float32 -> (features (n, 1024), logits (n, k)) as float32 numpy.

        Every forward pass runs at exactly `spec.batch_size` (the last one zero-padded): an
        image's outputs then do not depend on which other images share its batch, so a resumed
        run reproduces an uninterrupted one bit for bit, and placement reproduces precompute.
        """
        import torch

        size = self.spec.batch_size
        feats, logits = [], []
        for start in range(0, len(inputs), size):
            chunk = inputs[start:start + size]
            pad = size - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
            f, out = self.forward(torch.from_numpy(np.ascontiguousarray(chunk)))
            feats.append(f.float().numpy()[:len(chunk) - pad])
            logits.append(out.float().numpy()[:len(chunk) - pad])
        if not feats:
            return np.zeros((0, 1024), np.float32), np.zeros((0, len(self.pathologies)), np.float32)
        return np.concatenate(feats), np.concatenate(logits)

    def forward(self, x, grad: bool = False):
        """The paper's outputs: (features2(x), classifier(features2(x))), op_threshs off.

        The one forward pass of cxrviz: precompute and placement call it without gradient,
        saliency with. no_grad rather than inference_mode: tensors made in inference mode
        cannot take part in a later backward pass in the same process.
        """
        import torch

        model = self.model
        with torch.set_grad_enabled(grad):
            if self.spec.precision == "bf16":
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    f = model.features2(x)
                    return f, model.classifier(f)
            f = model.features2(x)
            return f, model.classifier(f)


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


def _state_dict_from_file(path: Path, trusted: bool):
    """The DenseNet state_dict in a weights file. `trusted`: the user chose this file (see the
    module's docstring), so a pickled module may be unpickled; otherwise tensors only."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as exc:
        if not trusted:
            raise WeightsUnavailable(untrusted_file_message(path, exc)) from None
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


def untrusted_file_message(path: Path, exc: Exception) -> str:
    """Why a file that only the manifest names was not loaded, and how to trust it."""
    lines = [ln.strip() for ln in str(exc).splitlines() if "Unsupported global" in ln]
    reason = (lines[0].removeprefix("WeightsUnpickler error: ").split(". ")[0] if lines
              else type(exc).__name__)
    return (f"the weights file recorded in this artifact, {path}, is not plain tensors "
            f"(torch.load with weights_only=True refused it: {reason[:160]}). A pickled file "
            "(such as torchxrayvision's release format) can run code when loaded, so a file that only the "
            "artifact names is not loaded. If you trust that file, pass it explicitly: "
            f"--weights {path} (python app.py --weights PATH or "
            "python -m precompute.place --weights PATH).")


def _in_release_cache(spec: WeightsSpec) -> bool:
    """The spec's file is torchxrayvision's own cache file for its release name."""
    return (spec.kind == S.W_KIND_RELEASE and spec.path is not None
            and Path(spec.path).resolve() == weights_cache_path(spec.name).resolve())


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
    """Resolve what a user asked for (a torchxrayvision name, a file path, or 'random') into an
    Embedder whose spec is written to the artifact.

    `pretrained` overrides what is recorded for a local file (a test's own random file is not
    pretrained). `id_cache` (a ResultCache) remembers the hash of seeded random weights.
    """
    import torchxrayvision as xrv

    run = {"precision": precision, "batch_size": batch_size}
    if weights == RANDOM:
        labels = _all_labels()
        spec = WeightsSpec(S.W_KIND_RANDOM, RANDOM, _random_sha(seed, len(labels), id_cache),
                           False, seed=seed, **run)
        return Embedder(spec, labels)
    if weights in xrv.models.model_urls:
        if not weights.startswith("densenet"):
            raise WeightsUnavailable(f"'{weights}' is not a DenseNet weight; choose one of "
                                     f"{named_weights()}, a file path, or 'random'")
        path = _ensure_named_file(weights, allow_download)
        spec = WeightsSpec(S.W_KIND_RELEASE, weights, sha256_file(path),
                           True if pretrained is None else pretrained, path=str(path), **run)
        return Embedder(spec, _release_labels(weights), trusted=True)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailable(
            f"--weights {weights!r} is neither a torchxrayvision name ({', '.join(named_weights())}),"
            f" an existing file, nor 'random'.")
    state = _state_dict_from_file(path, trusted=True)  # given by the user; read now: a bad file
    # fails before any work is done
    spec = WeightsSpec(S.W_KIND_FILE, path.name, sha256_file(path),
                       True if pretrained is None else pretrained, path=str(path.resolve()), **run)
    emb = Embedder(spec, _file_labels(state))
    emb._model = _finish(_load_state(state, path))
    return emb


def embedder_from_spec(spec: WeightsSpec, *, weights_path=None,
                       allow_download: bool = False) -> Embedder:
    """The Embedder an artifact was built with: the inverse of load_embedder's spec.

    A file is found by its sha256: at `weights_path` when given (and only there), else in
    torchxrayvision's cache folder by name (release weights) or at the recorded path. A file
    whose sha256 differs is refused with both hashes named. Only `weights_path` and the cache
    folder are trusted with pickle; a recorded path must hold plain tensors.
    """
    if spec.kind == S.W_KIND_RANDOM:
        labels = _all_labels()
        model = _random_model(spec.seed, len(labels))
        sha = state_dict_sha256(model)
        if sha != spec.sha256:
            raise WeightsUnavailable(
                f"random weights (seed {spec.seed}) made here have sha256 {sha}, but the artifact "
                f"was built with {spec.sha256} (a different torch version initialises "
                "differently). Rebuild the artifact with this environment.")
        return Embedder(spec, labels, _finish(model))
    path = _find_weights_file(spec, weights_path, allow_download)
    spec = replace(spec, path=str(path))  # where it was found on this machine
    if _in_release_cache(spec):  # the network loads on first use
        return Embedder(spec, _release_labels(spec.name), trusted=True)
    state = _state_dict_from_file(path, trusted=weights_path is not None)
    labels = _release_labels(spec.name) if spec.kind == S.W_KIND_RELEASE else _file_labels(state)
    emb = Embedder(spec, labels)
    emb._model = _finish(_load_state(state, path))
    return emb


def _find_weights_file(spec: WeightsSpec, weights_path, allow_download: bool) -> Path:
    if weights_path is not None:
        candidates = [Path(weights_path).expanduser()]
        if not candidates[0].is_file():
            raise WeightsUnavailable(f"--weights {weights_path}: no such file")
    else:
        candidates = []
        if spec.kind == S.W_KIND_RELEASE:
            candidates.append(weights_cache_path(spec.name))
        if spec.path:
            candidates.append(Path(spec.path))
    mismatched = []
    for path in dict.fromkeys(candidates):
        if path.is_file():
            sha = sha256_file(path)
            if sha == spec.sha256:
                return path
            mismatched.append(f"{path} has sha256 {sha}")
    if mismatched:
        raise WeightsUnavailable(
            f"the weights file found differs from the one this artifact was built with "
            f"(sha256 {spec.sha256}): " + "; ".join(mismatched) + ". Pass the right file with "
            "--weights PATH, or rebuild the artifact with these weights.")
    if spec.kind == S.W_KIND_RELEASE:
        if allow_download:
            path = _ensure_named_file(spec.name, allow_download=True)
            if sha256_file(path) == spec.sha256:
                return path
        raise WeightsUnavailable(missing_weights_message(
            spec.name, weights_cache_path(spec.name),
            f"looked in the cache folder and at {spec.path}"))
    where = f"is not at {spec.path}" if spec.path else "was not recorded with a path"
    raise WeightsUnavailable(
        f"the weights file of this artifact ({spec.name}, sha256 {spec.short_sha}…) {where}. "
        "Pass a copy with --weights PATH (python app.py --weights PATH or "
        "python -m precompute.place --weights PATH).")


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


def _build_model(spec: WeightsSpec, pathologies: list, trusted: bool):
    if spec.kind == S.W_KIND_RANDOM:
        return _finish(_random_model(spec.seed, len(pathologies)))
    return _finish(_load_state(_state_dict_from_file(Path(spec.path), trusted), spec.path))
