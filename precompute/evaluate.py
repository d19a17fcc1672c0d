"""python -m precompute.evaluate --artifact DIR [--dataset DIR] [--tasks ...] [--features ...]
[--pixels]: the paper's leave-one-continent-out evaluation of an artifact's outputs (on a
one-site cohort, patient-grouped 5-fold instead: cxrviz.compute.evaluate.split_scheme; the
scheme is named in every CSV row and in evaluation.json).

Writes <artifact>/evaluation/ atomically: summary.csv (one row per task and feature set: mean
+- std over held-out continents), splits.csv (every split, the paper's Appendix C.2),
folds.parquet (which images trained and tested each split), predictions.parquet (test scores,
for ROC curves) and evaluation.json (protocol, versions, seeds, weights, inputs). A re-run with
the same inputs reuses it. Exit codes: 0 done, 2 usage, 3 artifact or dataset problem.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.compute import evaluate as E
from cxrviz.hashing import sha256_bytes, sha256_file

EVAL_DIR = S.EVAL_DIR
SEVERITY_FILE = Path("annotations") / "covid-severity-scores.csv"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m precompute.evaluate",
                                description="LOCO evaluation of an artifact (paper §4-5).")
    p.add_argument("--artifact", required=True)
    p.add_argument("--dataset", help="the dataset folder (severity scores, --pixels); default: "
                                     "the one the artifact was built from")
    p.add_argument("--tasks", nargs="+", default=list(E.TASKS), choices=list(E.TASKS))
    p.add_argument("--features", nargs="+", choices=[k for k in E.FEATURE_SETS if k != "pixels"],
                   default=[k for k in E.FEATURE_SETS if k != "pixels"])
    p.add_argument("--pixels", action="store_true",
                   help="also the 224x224 input with an MLP, as the paper (slow)")
    p.add_argument("--quiet", action="store_true")
    return p


def read_scores(dataset: Path | None) -> tuple:
    """The severity scores (filename, geographic_mean, opacity_mean) and their sha256."""
    path = dataset / SEVERITY_FILE if dataset else None
    if path is None or not path.is_file():
        return None, None
    return pd.read_csv(path, comment="#"), sha256_file(path)


def feature_matrix(art, images: pd.DataFrame, key: str, dataset: Path | None) -> np.ndarray:
    rows = images.index.to_numpy()
    if key == "prevalence":
        return np.zeros((len(rows), 1))
    if key in ("lung_opacity", "outputs4", "outputs18"):
        names = {"lung_opacity": ["Lung Opacity"], "outputs4": E.FOUR,
                 "outputs18": art.pathologies}[key]
        return images[[S.logit_column(n) for n in names]].to_numpy(np.float64)
    if key == "features1024":
        return np.asarray(art.features()[rows], dtype=np.float64)
    if key == "map":
        return images[[S.X, S.Y, S.BAD_DENSITY]].to_numpy(np.float64)
    if key == "density":
        return images[[S.DENSITY_PERCENTILE]].to_numpy(np.float64)
    if key == "pixels":
        from cxrviz.data.images import decode_xray, model_input

        return np.stack([model_input(decode_xray((dataset / "images" / f).read_bytes()))
                         .ravel() for f in images[S.FILENAME]]).astype(np.float64)
    raise ValueError(key)


def run(art, dataset, tasks, features, progress=True) -> dict:
    from tqdm import tqdm

    images = art.images.reset_index(drop=True)
    scores, _ = read_scores(dataset)
    regions = images[S.CONTINENT].to_numpy()
    sources = E.source_of(images).to_numpy()
    groups = images[S.PATIENTID].astype(str).to_numpy()  # grouped folds: never split a patient
    scheme = E.split_scheme(images)
    splits, folds, preds, summary, counts = [], [], [], [], {}
    jobs = [(t, f) for t in tasks for f in features]
    for task_key, feat in tqdm(jobs, desc="evaluate", unit="model", disable=not progress):
        task = E.TASKS[task_key]
        y_all = E.labels(images, task_key, scores)
        use = y_all.notna().to_numpy()
        sub = images[use]
        y = y_all[use].to_numpy()
        counts[task_key] = ({"n_true": int((y == 1).sum()), "n_false": int((y == 0).sum())}
                            if task.kind == "classification" else {"n": int(len(y))})
        if not len(sub):
            continue
        X = feature_matrix(art, sub, feat, dataset)
        rows = []
        for split in E.splits_of(scheme, X, y, regions[use], sources[use], groups[use],
                                 task.kind):
            base = {"task": task_key, "features": feat, "split_scheme": scheme,
                    "method": "MLP" if feat == "pixels" else (
                        "logistic" if task.kind == "classification" else "linear"),
                    "params": E.n_params(task.kind, X.shape[1])}
            ids = sub[S.IMAGE_ID].to_numpy()
            test = split.get("test_index")
            for role in ("train", "test"):
                idx = split.pop(f"{role}_index", None)
                if idx is not None:
                    folds.append(pd.DataFrame({**base, "test_region": split["test_region"],
                                               "role": role, S.IMAGE_ID: ids[idx]}))
            pred = split.pop("prediction", None)
            if pred is not None:
                preds.append(pd.DataFrame({**base, "test_region": split["test_region"],
                                           S.IMAGE_ID: ids[test], "y_true": y[test],
                                           "y_score": pred}))
            rows.append({**base, **split})
        frame = pd.DataFrame(rows)
        if "left_out" not in frame:
            frame["left_out"] = None
        splits.append(frame)
        left = frame[frame["left_out"].notna()]
        summary.append({"task": task_key, "kind": task.kind, "features": feat,
                        "split_scheme": scheme,
                        "params": E.n_params(task.kind, X.shape[1]), **counts[task_key],
                        **E.summarise(frame, task.kind),
                        "left_out_regions": "; ".join(f"{r}: {why}" for r, why in
                                                      zip(left["test_region"],
                                                          left["left_out"]))})
    return {"summary": pd.DataFrame(summary),
            "splits": pd.concat(splits, ignore_index=True) if splits else pd.DataFrame(),
            "folds": pd.concat(folds, ignore_index=True) if folds else pd.DataFrame(),
            "predictions": pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(),
            "counts": counts, "scheme": scheme}


def inputs_key(art, tasks, features, score_sha) -> str:
    files = art.manifest.get(S.M_FILES, {})
    return sha256_bytes(json.dumps({"files": files, "tasks": sorted(tasks),
                                    "features": sorted(features), "scores": score_sha,
                                    "protocol": E.PROTOCOL_VERSION}, sort_keys=True).encode())


def _versions() -> dict:
    from importlib.metadata import version

    return {"python": platform.python_version(),
            **{p: version(p) for p in ("scikit-learn", "numpy", "pandas")}}


def write(art_path: Path, result: dict, info: dict) -> Path:
    """evaluation/ by rename: readers see the old results or the new ones, never half."""
    final = art_path / EVAL_DIR
    tmp = Path(tempfile.mkdtemp(prefix=f".{EVAL_DIR}.tmp-", dir=art_path))
    try:
        result["summary"].to_csv(tmp / S.EVAL_SUMMARY, index=False)
        result["splits"].to_csv(tmp / S.EVAL_SPLITS, index=False)
        result["folds"].to_parquet(tmp / S.EVAL_FOLDS, index=False)
        result["predictions"].to_parquet(tmp / S.EVAL_PREDICTIONS, index=False)
        (tmp / S.EVAL_INFO).write_text(json.dumps(info, indent=2, default=str))
        old = art_path / f".{EVAL_DIR}.old-{os.getpid()}"
        if final.exists():
            os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from cxrviz.io.artifact import ArtifactError, read_artifact

    try:
        art = read_artifact(args.artifact)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    dataset = Path(args.dataset or art.manifest[S.M_INPUTS].get("dataset") or "")
    dataset = dataset if str(dataset) and dataset.is_dir() else None
    features = list(args.features) + (["pixels"] if args.pixels else [])
    if args.pixels and dataset is None:
        print("error: --pixels needs the dataset's images: pass --dataset DIR", file=sys.stderr)
        return 3
    scores, score_sha = read_scores(dataset)
    needs_scores = {"geographic_extent", "opacity"} & set(args.tasks)
    if needs_scores and scores is None:
        print(f"note: no {SEVERITY_FILE} (pass --dataset DIR): the severity tasks are left out")
        args.tasks = [t for t in args.tasks if t not in needs_scores]
    key = inputs_key(art, args.tasks, features, score_sha)
    done = art.path / EVAL_DIR / S.EVAL_INFO
    if done.is_file() and json.loads(done.read_text()).get("inputs_key") == key:
        print(f"{art.path / EVAL_DIR} is up to date (same artifact, tasks, features and scores);"
              " nothing recomputed.")
        return 0
    started = time.perf_counter()
    result = run(art, dataset, args.tasks, features, progress=not args.quiet)
    w = art.weights
    info = {"inputs_key": key, "protocol": {
        "version": E.PROTOCOL_VERSION, "views": list(E.EVAL_VIEWS),
        "classification_offsets": f"{E.EARLY[0]} < offset < {E.EARLY[1]} days",
        "split_scheme": result["scheme"],
        "folds": ("leave one continent out; a continent is a test fold only with an example of "
                  "each class (classification) or at least 2 samples (regression)"
                  if result["scheme"] == E.SCHEME_LOCO else
                  f"the cohort has one site (one continent or none known), so no continent can "
                  f"be left out: {E.N_FOLDS}-fold cross-validation grouped by patient (no "
                  f"patient's images on both sides), StratifiedGroupKFold for classification, "
                  f"GroupKFold for regression, shuffled with seed {E.SEED}"),
        "sources": ("DOI (case-insensitive) or else URL; training rows sharing a source with "
                    "any test row are dropped" if result["scheme"] == E.SCHEME_LOCO else
                    "one site: grouping by patient replaces the source rule"),
        "models": "StandardScaler on the training fold, then LogisticRegression(max_iter=1000) "
                  "or LinearRegression; pixels: MLP(100 ReLU, Adam, early stopping on 10%)",
        "std": "population standard deviation over held-out continents (or test folds)",
        "deterioration": "an image not in a bad state: 1 if a later image of its episode is "
                         "in a bad state or the episode ended in death; 0 if the episode has "
                         "later images, all good, and survived (an episode: a patient in the "
                         "COVID collection, an admission in MIMIC)"},
        "seed": E.SEED, "tasks": args.tasks, "features": features,
        "label_counts": result["counts"], "weights": w.to_manifest(),
        "pretrained": w.pretrained, "artifact": art.artifact_id,
        "dataset": str(dataset) if dataset else None, "severity_scores_sha256": score_sha,
        "versions": _versions(), "seconds": round(time.perf_counter() - started, 1)}
    out = write(art.path, result, info)
    print(f"wrote {out}: {len(result['summary'])} task x feature rows, "
          f"{len(result['splits'])} splits in {info['seconds']} s")
    if not w.pretrained:
        print("WARNING: untrained weights: these numbers carry no meaning (a test of the "
              "pipeline, not of the model).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
