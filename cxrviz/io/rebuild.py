"""The precompute command that rebuilds an artifact from what its manifest says (printed when an
older or broken artifact is refused)."""
from __future__ import annotations

import shlex

from cxrviz import schema as S


def rebuild_command(manifest: dict, path) -> str:
    """The precompute command that rebuilds an (older) artifact from what its manifest says."""
    config = manifest.get("config") or {}
    inputs = manifest.get(S.M_INPUTS) or {}
    dataset = inputs.get("dataset") or config.get("dataset") or "PATH/covid-chestxray-dataset"
    kind = inputs.get("dataset_kind")
    if kind and kind != S.SOURCE_COVID:
        dataset = f"{kind}:{dataset}"
    parts = ["python -m precompute", f"--dataset {shlex.quote(str(dataset))}",
             f"--out {shlex.quote(str(path))}"]
    if inputs.get("mimic_iv"):
        parts.append(f"--mimic-iv {shlex.quote(str(inputs['mimic_iv']))}")
    for flag, key, default in (("--weights", "weights", None), ("--precision", "precision", "fp32"),
                               ("--batch-size", "batch_size", None), ("--rsna", "rsna", None),
                               ("--rsna-subset", "rsna_subset", "pneumonia"),
                               ("--seed", "seed", 0), ("--limit", "limit", None)):
        value = config.get(key)
        if value is not None and value != default:
            parts.append(f"{flag} {shlex.quote(str(value))}")
    for flag, key, default in (("--device", "device", None),
                               ("--features-dtype", "features_dtype", "float32"),
                               ("--umap-fit-sample", "umap_fit_sample", None)):
        if config.get(key) not in (None, default):
            parts.append(f"{flag} {shlex.quote(str(config[key]))}")
    if "display_size" in config and config["display_size"] != S.DISPLAY_MAX_SIDE:
        parts.append("--display none" if config["display_size"] is None
                     else f"--display-size {int(config['display_size'])}")
    if config.get("weights_pretrained") is False:
        parts.append("--weights-untrained")
    return " ".join(parts)
