"""The paper's prospective evaluation (§4-5, Tables 5-6, Appendix C.2) on an artifact's outputs:
leave-one-continent-out (LOCO), no image source on both sides, scikit-learn linear models.
Plus cxrviz's own question: does where an image falls predict the patient's deterioration?

LOCO needs more than one continent. A one-site cohort (MIMIC, a hospital's export: one
continent, or none known) runs the same tasks with patient-grouped k-fold instead
(StratifiedGroupKFold / GroupKFold, seeded): no patient is on both sides of a split, which is
what "no source on both sides" guards against across sites. `split_scheme` decides; every
summary and split row names the scheme it used.

Pure functions of frames and arrays; precompute/evaluate.py reads the artifact and writes
`<artifact>/evaluation/`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxrviz import schema as S

PROTOCOL_VERSION = "loco-v2"  # v2: the split scheme (LOCO or patient-grouped folds)
EVAL_VIEWS = ("PA", "AP")  # the paper's default (torchxrayvision's COVID19_Dataset views)
EARLY = (0, 8)  # classification tasks: images with 0 < offset < 8 days
SEED = 0
MIN_REGRESSION_TEST = 2
SCHEME_LOCO, SCHEME_GROUPED = "leave one continent out", "patient-grouped 5-fold"
N_FOLDS = 5
SCHEME_TEST_NAME = {SCHEME_LOCO: "held-out continent", SCHEME_GROUPED: "test fold"}
NON_COVID_PNEUMONIA = {"other viral", "bacterial", "fungal", "lipoid", "aspiration"}
FOUR = ["Lung Opacity", "Pneumonia", "Infiltration", "Consolidation"]


@dataclass(frozen=True)
class Task:
    key: str
    title: str
    kind: str  # classification | regression
    paper: str | None  # its name in the paper's tables


TASKS = {t.key: t for t in (
    Task("covid", "COVID-19 vs other pneumonia", "classification", "COVID-19"),
    Task("viral_bacterial", "viral vs bacterial pneumonia", "classification",
         "Viral or Bacterial"),
    Task("survival", "survival", "classification", "Survival prediction"),
    Task("icu", "ICU stay", "classification", "ICU stay"),
    Task("intubated", "intubated", "classification", "Intubated"),
    Task("geographic_extent", "geographic extent (0-8)", "regression",
         "Geographic Extent Score"),
    Task("opacity", "opacity (0-6)", "regression", "Opacity Score"),
    Task("deterioration", "deterioration (ours): a later bad state or death", "classification",
         None),
)}
FEATURE_SETS = {  # key -> (paper's name or None, title)
    "prevalence": ("Baseline prevalence", "baseline prevalence"),
    "lung_opacity": ("lung opacity output", "Lung Opacity output"),
    "outputs4": ("4 outputs", "4 outputs"),
    "outputs18": ("18 outputs", "18 outputs"),
    "features1024": ("Intermediate features", "1024-d intermediate features"),
    "map": (None, "map position (x, y) and bad-state density"),
    "density": (None, "density percentile"),
    "pixels": ("Image pixels (MLP)", "224x224 pixels (MLP)"),
}


def source_of(frame: pd.DataFrame) -> pd.Series:
    """A research group's source: the DOI (case-insensitive) when present, else the URL."""
    doi = frame[S.DOI].fillna("").str.strip().str.lower()
    url = frame[S.URL].fillna("").str.strip()
    return doi.where(doi != "", url).where(lambda s: s != "", "unknown source")


def split_scheme(images: pd.DataFrame) -> str:
    """LOCO where the cohort's images come from more than one known continent; else
    patient-grouped folds (a one-site cohort: MIMIC, a hospital)."""
    cohort = images[images[S.ROLE] == S.ROLE_COHORT]
    known = set(cohort[S.CONTINENT].dropna()) - {S.UNKNOWN, ""}
    return SCHEME_LOCO if len(known) > 1 else SCHEME_GROUPED


def later_course(images: pd.DataFrame) -> pd.Series:
    """Per image (same index): 1 if a later image of the episode is in a bad state or the
    episode ended in death; 0 if the episode has later images, all good, and survived; NaN
    otherwise (an episode: a MIMIC admission, a COVID-collection patient). Images in a bad
    state themselves are NaN (the question is about deteriorating)."""
    out = pd.Series(np.nan, index=images.index)
    dated = images[images[S.OFFSET].notna() & (images[S.ROLE] == S.ROLE_COHORT)
                   & images[S.EPISODE].notna()]
    for _, grp in dated.groupby(S.EPISODE):
        offs, states = grp[S.OFFSET].to_numpy(), grp[S.STATE].to_numpy()
        died = (grp[S.SURVIVAL] == S.NO).any()
        survived = (grp[S.SURVIVAL] == S.YES).any()
        for idx, t, state in zip(grp.index, offs, states):
            if state == S.STATE_BAD:
                continue
            later = states[offs > t]
            if (later == S.STATE_BAD).any() or died:
                out[idx] = 1.0
            elif len(later) and (later == S.STATE_GOOD).all() and survived:
                out[idx] = 0.0
    return out


def labels(images: pd.DataFrame, task: str, scores: pd.DataFrame | None = None) -> pd.Series:
    """Per image (same index): the task's label, NaN where the image takes no part."""
    views = images[S.VIEW].isin(EVAL_VIEWS) & (images[S.ROLE] == S.ROLE_COHORT)
    early = images[S.OFFSET].gt(EARLY[0]) & images[S.OFFSET].lt(EARLY[1])
    y = pd.Series(np.nan, index=images.index)
    group, finding = images[S.FINDING_GROUP], images[S.FINDING].str.strip().str.lower()
    if task == "covid":
        y[group == "COVID-19"] = 1.0
        y[group.isin(NON_COVID_PNEUMONIA) | (finding == "pneumonia")] = 0.0
    elif task == "viral_bacterial":
        y[group.isin(["COVID-19", "other viral"])] = 1.0
        y[group == "bacterial"] = 0.0
    elif task in ("survival", "icu", "intubated"):
        column, leave_out = {"survival": (S.SURVIVAL, S.INTUBATION_PRESENT),
                             "icu": (S.WENT_ICU, S.IN_ICU),
                             "intubated": (S.INTUBATED, S.INTUBATION_PRESENT)}[task]
        y[images[column] == S.YES] = 1.0
        y[images[column] == S.NO] = 0.0
        y[images[leave_out] == S.YES] = np.nan
    elif task in ("geographic_extent", "opacity"):
        column = "geographic_mean" if task == "geographic_extent" else "opacity_mean"
        if scores is not None:
            y = images[S.FILENAME].map(scores.set_index("filename")[column]).astype(float)
        return y.where(views)
    elif task == "deterioration":
        return later_course(images).where(views)
    else:
        raise ValueError(f"unknown task {task!r}; choose from {sorted(TASKS)}")
    return y.where(views & early)


def _model(kind: str, n_features: int, seed: int):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if n_features > 20000:  # pixels: the paper's MLP
        mlp = (MLPClassifier if kind == "classification" else MLPRegressor)(
            hidden_layer_sizes=(100,), solver="adam", early_stopping=True,
            validation_fraction=0.1, random_state=seed, max_iter=200)
        return make_pipeline(StandardScaler(), mlp)
    if kind == "classification":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return make_pipeline(StandardScaler(), LinearRegression())


def n_params(kind: str, n_features: int) -> str:
    if n_features > 20000:
        return str(n_features * 100 + 100 + 100 + 1)
    return f"{n_features}+1"


def metrics(kind: str, y: np.ndarray, pred: np.ndarray) -> dict:
    from sklearn.metrics import (average_precision_score, mean_absolute_error, r2_score,
                                 roc_auc_score)

    if kind == "classification":
        return {"auroc": float(roc_auc_score(y, pred)),
                "auprc": float(average_precision_score(y, pred))}
    flat = np.ptp(pred) <= 1e-9 * max(1.0, float(np.abs(pred).max())) or np.ptp(y) == 0
    pearson = 0.0 if flat else float(np.corrcoef(y, pred)[0, 1])  # a constant predicts nothing
    return {"pearson": pearson, "r2": float(r2_score(y, pred)),
            "mae": float(mean_absolute_error(y, pred))}


def loco(X: np.ndarray, y: np.ndarray, regions: np.ndarray, sources: np.ndarray, kind: str,
         seed: int = SEED):
    """Leave one continent out: yield dicts (one per held-out region or per region left out,
    with the reason) with the split's sizes, metrics and membership."""
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    for region in sorted(set(regions) - {S.UNKNOWN}):
        test = regions == region
        row = {"test_region": region, "n_test": int(test.sum())}
        if kind == "classification":
            row.update(n_true=int((y[test] == 1).sum()), n_false=int((y[test] == 0).sum()))
            if row["n_true"] == 0 or row["n_false"] == 0:
                yield {**row, "left_out": "no example of each class in the test region"}
                continue
        elif row["n_test"] < MIN_REGRESSION_TEST:
            yield {**row, "left_out": f"fewer than {MIN_REGRESSION_TEST} test samples"}
            continue
        shared = np.isin(sources, np.unique(sources[test]))
        train = ~test & ~shared
        row.update(n_train=int(train.sum()), n_dropped_shared_source=int((~test & shared).sum()))
        if kind == "classification":
            row["train_true"] = int((y[train] == 1).sum())
            if row["train_true"] in (0, int(train.sum())):
                yield {**row, "left_out": "training rows lack an example of each class"}
                continue
        elif train.sum() < 2:
            yield {**row, "left_out": "fewer than 2 training samples"}
            continue
        model = _model(kind, X.shape[1], seed).fit(X[train], y[train])
        pred = (model.predict_proba(X[test])[:, 1] if kind == "classification"
                else model.predict(X[test]))
        yield {**row, **metrics(kind, y[test], pred), "train_index": np.where(train)[0],
               "test_index": np.where(test)[0], "prediction": pred}


def grouped_folds(X: np.ndarray, y: np.ndarray, groups: np.ndarray, kind: str,
                  seed: int = SEED, n_folds: int = N_FOLDS):
    """Patient-grouped k-fold (a one-site cohort): the same dicts as `loco`, a fold's name in
    test_region ('fold 1' ...). Every patient's images are in one test fold and never on both
    sides of a split; classification folds are stratified by label (StratifiedGroupKFold),
    both shuffled with the seed."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    k = min(n_folds, len(np.unique(groups)))
    if k < 2:
        yield {"test_region": "fold 1", "n_test": int(len(y)),
               "left_out": "fewer than 2 patients: no patient-grouped split"}
        return
    folds = (StratifiedGroupKFold(k, shuffle=True, random_state=seed)
             if kind == "classification" else GroupKFold(k, shuffle=True, random_state=seed))
    for f, (train, test) in enumerate(folds.split(X, y, groups)):
        row = {"test_region": f"fold {f + 1}", "n_test": int(len(test))}
        if kind == "classification":
            row.update(n_true=int((y[test] == 1).sum()), n_false=int((y[test] == 0).sum()))
            if row["n_true"] == 0 or row["n_false"] == 0:
                yield {**row, "left_out": "no example of each class in the test fold"}
                continue
        elif row["n_test"] < MIN_REGRESSION_TEST:
            yield {**row, "left_out": f"fewer than {MIN_REGRESSION_TEST} test samples"}
            continue
        row.update(n_train=int(len(train)), n_dropped_shared_source=0)
        if kind == "classification":
            row["train_true"] = int((y[train] == 1).sum())
            if row["train_true"] in (0, int(len(train))):
                yield {**row, "left_out": "training rows lack an example of each class"}
                continue
        model = _model(kind, X.shape[1], seed).fit(X[train], y[train])
        pred = (model.predict_proba(X[test])[:, 1] if kind == "classification"
                else model.predict(X[test]))
        yield {**row, **metrics(kind, y[test], pred), "train_index": train, "test_index": test,
               "prediction": pred}


def splits_of(scheme: str, X, y, regions, sources, groups, kind: str, seed: int = SEED):
    """The scheme's splits (loco or grouped_folds)."""
    if scheme == SCHEME_LOCO:
        return loco(X, y, regions, sources, kind, seed)
    return grouped_folds(X, y, groups, kind, seed)


def summarise(splits: pd.DataFrame, kind: str) -> dict:
    """Mean and (population) standard deviation over the held-out regions (or test folds)."""
    names = ("auroc", "auprc") if kind == "classification" else ("pearson", "r2", "mae")
    done = splits[splits["left_out"].isna()] if "left_out" in splits else splits
    out = {"test_regions": ", ".join(done["test_region"]), "n_splits": int(len(done))}
    for m in names:
        values = done[m].to_numpy(dtype=float)
        out[f"{m}_mean"] = float(values.mean()) if len(values) else np.nan
        out[f"{m}_std"] = float(values.std()) if len(values) else np.nan
    return out
