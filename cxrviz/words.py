"""What the screen says: the dataset's codes in words a clinician reads (the artifact, hover text
and exports keep the raw values). One vocabulary: survived / died / unknown; yes / no."""
from __future__ import annotations

from cxrviz import schema as S

SURVIVAL = {S.YES: "survived", S.NO: "died", S.UNKNOWN: "unknown"}
YES_NO = {S.YES: "yes", S.NO: "no", S.UNKNOWN: "unknown"}
NOT_LABELLED = "not yet labelled in the dataset"
# The dataset's own definitions (SCHEMA.md), for labels and tooltips
MEANING = {
    S.IN_ICU: ("In ICU at this image", "in the ICU at the time of this image"),
    S.INTUBATION_PRESENT: ("Intubated at this image", "intubated at the time of this image"),
    S.WENT_ICU: ("In ICU at any time", "in the ICU or CCU at any point during this illness"),
    S.INTUBATED: ("Intubated at any time",
                  "intubated (or ventilated) at any point during this illness"),
    S.SURVIVAL: ("Outcome", "whether the patient survived the illness"),
}
_REASONS = {
    f"{S.IN_ICU}=Y": "in ICU at this image",
    f"{S.INTUBATION_PRESENT}=Y": "intubated at this image",
    f"{S.IN_ICU}=N": "not in ICU at this image",
    f"{S.INTUBATION_PRESENT}=N": "not intubated at this image",
    "last image, survival=N": "last image of a patient who died",
    "last image, survival=Y": "last image of a patient who survived",
}


def value(column: str, raw) -> str:
    """A cell of images.parquet as the screen shows it."""
    if column == S.SURVIVAL:
        return SURVIVAL.get(raw, str(raw))
    if column in S.YN_COLUMNS:
        return YES_NO.get(raw, str(raw))
    if column in (S.FINDING, S.FINDING_GROUP) and str(raw).strip().lower() in ("todo", ""):
        return NOT_LABELLED
    return str(raw)


def any_time(raw, at_image_column: str, image_label: str | None = None) -> str:
    """A patient's 'at any time' value; with the image it was read from where the patient's own
    column did not say it: "yes (from image 3, day 11: 'intubated at this image')"."""
    text = YES_NO.get(raw, str(raw))
    said = _REASONS.get(f"{at_image_column}={raw}")
    if image_label and said:
        text += f" (from {image_label}: '{said}')"
    return text


def option(column: str, raw, label: str | None = None) -> dict:
    """A dropdown option: the raw value, its words ('age unknown' for a missing one)."""
    text = value(column, raw)
    if raw == S.UNKNOWN and label and column != S.STATE:
        text = f"{label.lower()} unknown"
    return {"label": text, "value": raw}


def state(state_value: str, reason: str) -> str:
    """'bad: in ICU and intubated at this image' from 'in_icu=Y; intubation_present=Y'."""
    if state_value == S.STATE_UNKNOWN:
        return ("unknown: no ICU, intubation or outcome information" if "no ICU" in reason
                else f"unknown: {reason}")
    main, _, beaten = reason.partition(" (bad wins over ")
    parts = [_REASONS.get(p.strip(), p.strip()) for p in main.split(";") if p.strip()]
    text = f"{state_value}: {_join(parts)}"
    if beaten:
        others = [_REASONS.get(p.strip(), p.strip()) for p in beaten.rstrip(")").split(";")]
        text += f" (bad wins over: {_join(others)})"
    return text


def _join(parts: list) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


# An episode, where it is not the patient (MIMIC, a hospital's export with events): an admission
EPISODE, NO_EPISODE = "admission", "no admission"


def unit_word(episodes_are_patients: bool) -> str:
    """What the time views and the patients table count: patients where every episode is its
    patient (the COVID collection), else admissions."""
    return "patient" if episodes_are_patients else EPISODE


# The evaluation's column codes (splits.csv, the paper's Appendix C.2) as headings
EVAL_COLUMNS = {
    "task": "task", "features": "features", "method": "model", "params": "parameters",
    "split_scheme": "splits", "test_region": "held-out continent", "n_test": "test images", "n_true": "positive",
    "n_false": "negative", "n_train": "training images",
    "n_dropped_shared_source": "training images dropped (source shared with the test set)",
    "auroc": "AUROC", "auprc": "AUPRC", "pearson": "Pearson r", "r2": "R²",
    "mae": "mean absolute error", "left_out": "why left out",
}


# What one input row of a source is, by the source's kind ("751 rows in metadata.csv: ..."); the
# About box of the map says where every row went.
SOURCE_ROWS = {S.SOURCE_COVID: "rows in metadata.csv",
               S.SOURCE_MIMIC: "rows in mimic-cxr-2.0.0-metadata.csv.gz (one per DICOM)",
               S.SOURCE_COHORT: "rows in images.csv", S.SOURCE_RSNA: "labelled RSNA images"}
ROLE_WORDS = {S.ROLE_COHORT: "cohort", S.ROLE_REFERENCE: "reference cloud"}
