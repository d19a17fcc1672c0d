"""Finding a weights file, and which files may be unpickled.

Loading a pickled file can run code, so a file is unpickled only when the user chose it: a
release file in torchxrayvision's own cache folder under its release name, or a path given on
the command line (`--weights PATH`). A path that only an artifact's manifest names is loaded
with `torch.load(weights_only=True)` (plain tensors) or not at all.
"""
from __future__ import annotations

import os
from pathlib import Path

from cxrviz import schema as S
from cxrviz.hashing import sha256_file
from cxrviz.weights import WeightsSpec


class WeightsUnavailable(Exception):
    """The requested weights cannot be loaded; the message says what to do."""


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


def ensure_named_file(name: str, allow_download: bool) -> Path:
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


def state_dict_from_file(path: Path, trusted: bool):
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


def in_release_cache(spec: WeightsSpec) -> bool:
    """The spec's file is torchxrayvision's own cache file for its release name."""
    return (spec.kind == S.W_KIND_RELEASE and spec.path is not None
            and Path(spec.path).resolve() == weights_cache_path(spec.name).resolve())


def find_weights_file(spec: WeightsSpec, weights_path, allow_download: bool) -> Path:
    """The file a spec names, by sha256: only at `weights_path` when given, else in the cache
    folder (release names) or at the recorded path. Finding is not trusting: see the module."""
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
            path = ensure_named_file(spec.name, allow_download=True)
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
