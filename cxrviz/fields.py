"""Which facts of an image the app shows, in which order, under which label: one rule for the
detail panel and the map's hover label (hover_texts). Not yet followed by the WebGL map's
tooltip, which writes three fixed lines from /api/map/point's facts (frontend/src/map.js).

A field shows only where the artifact has its column with a known value among the cohort's
images (Store.has_known, the rule the filters follow too): a MIMIC map says nothing of countries
or findings, and shows the CheXpert labels of the image's study; a hospital's export shows its
own images.csv columns (`extra:<name>`). Values are in the screen's words (cxrviz.words).
Dash-free: the store's numpy and pandas only.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz import words
from cxrviz.filters import BY_KEY, CHEXPERT_STATUS

HOVER_JOIN, HOVER_BREAK = " · ", "<br>"
CHEXPERT_TITLE = "CheXpert labels (report of this study)"
EXTRA_TITLE = "More from the source"


def fmt(value) -> str:
    """A cell as text: 'unknown' for a missing one, numbers without trailing zeros, date-times
    to the minute (to the second where it has seconds)."""
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value) \
            or value == "":
        return "unknown"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M" + (":%S" if value.second else ""))
    if isinstance(value, (float, np.floating)):
        return f"{round(float(value), 2):g}"
    return str(value)


@dataclass(frozen=True)
class Field:
    """One fact of an image: its images.parquet column, its label in the detail panel and the
    tooltip saying what it means; `hover` is its template in the hover text ('patient {}';
    None: not in the hover) on hover line `line`."""
    column: str
    label: str
    why: str | None = None
    hover: str | None = None
    line: int = 0

    def text(self, raw) -> str:
        return words.value(self.column, raw) if isinstance(raw, str) else fmt(raw)


def _day(store) -> Field:
    if store.has_known(S.TIME):  # event-based cohorts: days since the episode's day 0
        return Field(S.OFFSET, "Day", "days since the episode's day 0: its admission's start "
                     "(negative for films before it, in the emergency department), or the "
                     "patient's first image where there are no admissions; hours count",
                     "day {}", 0)
    return Field(S.OFFSET, "Day (offset)", "days since symptoms or admission, as the source "
                 "reports it", "day {}", 0)


def fields(store) -> list:
    """The artifact's fields in the detail panel's order (hover: those with a template)."""
    cache = store.__dict__.get("_fields")
    if cache is not None:
        return cache
    mean = words.MEANING
    table = [
        Field(S.PATIENTID, "Patient", None, "patient {}", 0),
        Field(S.EPISODE, "Episode", "the admission this image belongs to: what a trajectory "
              "is drawn for"),
        Field(S.AGE, "Age"), Field(S.SEX, "Sex"),
        Field(S.FINDING, "Finding", None, "{}", 1),
        _day(store),
        Field(S.TIME, "Time", "the image's date and time as the source records it "
              "(de-identified sources shift dates)"),
        Field(S.VIEW, "View", None, "{}", 1),
        Field(S.LOCATION, "Location"),
        Field(S.COUNTRY, "Country", None, "{}", 2),
        Field(S.IN_ICU, *mean[S.IN_ICU]), Field(S.INTUBATION_PRESENT, *mean[S.INTUBATION_PRESENT]),
        Field(S.WENT_ICU, *mean[S.WENT_ICU]), Field(S.INTUBATED, *mean[S.INTUBATED]),
        Field(S.SURVIVAL, *mean[S.SURVIVAL]),
        Field(S.STATE, "State", None, "state: {}", 2),
        Field(S.DENSITY_PERCENTILE, "Bad-state density"),
        Field(S.LICENSE, "Licence"),
    ]
    shown = [f for f in table if _present(store, f)]
    store.__dict__["_fields"] = shown
    return shown


def _present(store, f: Field) -> bool:
    if f.column in (S.STATE, S.DENSITY_PERCENTILE, S.PATIENTID, S.OFFSET):
        return True  # every map has them (unknown values say so)
    if f.column == S.EPISODE:  # the COVID collection's episode is its patient: said once
        c = store.covid
        return store.has_known(S.EPISODE) and bool(
            (c[S.EPISODE].notna() & (c[S.EPISODE] != c[S.PATIENTID])).any())
    if f.column in ANY_TIME:  # patients.parquet reads the at-image column too
        return store.has_known(f.column) or store.has_known(ANY_TIME[f.column][2])
    return store.has_known(f.column)


def detail_fields(store, row) -> list:
    """[(title or None, [(label, text, why), ...])]: the facts of one image (a row of the store)
    in the detail panel's groups: the image, its study's CheXpert labels, the source's own
    columns."""
    facts = []
    for f in fields(store):
        if f.column == S.COUNTRY:
            continue
        if f.column in (S.WENT_ICU, S.INTUBATED):
            facts.append(any_time_fact(store, row, f))
        elif f.column == S.STATE:
            facts.append((f.label, words.state(row[S.STATE], row[S.STATE_REASON]),
                          f"rule: {row[S.STATE_REASON]}"))
        elif f.column == S.DENSITY_PERCENTILE:
            pos = store.position.get(row[S.IMAGE_ID])
            facts.append((f.label, f"percentile {store.density_percentile[pos]:.0f} of the "
                          "collection" if pos is not None else "n/a (reference image)", None))
        else:
            facts.append((f.label, f.text(row[f.column]), f.why))
    groups = [(None, facts)]
    labels = chexpert_facts(store, row)
    if labels:
        groups.append((CHEXPERT_TITLE, labels))
    extra = [(c[len(S.EXTRA_PREFIX):], fmt(row[c]) if fmt(row[c]) != "unknown" else "blank",
              None) for c in store.covid.columns
             if c.startswith(S.EXTRA_PREFIX) and store.has_known(c)]
    if extra:
        groups.append((EXTRA_TITLE, extra))
    return groups


_STATUS_OF = {code: status for status, code in CHEXPERT_STATUS.items() if code is not None}
_STATUS_ORDER = ("positive", "uncertain", "negative")


def chexpert_facts(store, row) -> list:
    """The labels the study's report mentions, positive first, then uncertain, then negative,
    and one line naming those it does not mention ([] where the map has no CheXpert labels)."""
    flt = BY_KEY["chexpert"]
    labels = flt.labels(store) if flt.offered(store) else []
    if not labels:
        return []
    said = {}
    for label in labels:
        code = row.get(flt.column + label)
        if code is not None and code == code:
            said[label] = _STATUS_OF.get(float(code), fmt(code))
    out = [(label, status, f"CheXpert: {status}")
           for status in _STATUS_ORDER for label in labels if said.get(label) == status]
    silent = [label for label in labels if label not in said]
    if silent:
        out.append(("Not mentioned", ", ".join(silent), "the report does not speak of these"))
    return out


def any_time_fact(store, row, f: Field) -> tuple:
    """'In ICU at any time' / 'Intubated at any time' as patients.parquet has them (one rule,
    compute.derive.at_any_time, so the panel, the patients table and its CSV agree), naming the
    image a value comes from when the metadata's own column does not say it."""
    value, source, at_image = ANY_TIME[f.column]
    patient = _patient(store, row)
    if patient is None:  # a reference image: no patient, the row's own value
        return f.label, words.value(f.column, row[f.column]), f.why
    image_id = patient.get(source, "") or ""
    return f.label, words.any_time(patient[value], at_image,
                                   _image_label(store, row, image_id)), f.why


ANY_TIME = {S.WENT_ICU: (S.P_ICU, S.P_ICU_FROM, S.IN_ICU),
            S.INTUBATED: (S.P_INTUBATED, S.P_INTUBATED_FROM, S.INTUBATION_PRESENT)}


def _patient(store, row):
    """The row's episode in patients.parquet (in the COVID collection its patient), or None
    (reference images have none)."""
    unit = store.episode_of(row[S.IMAGE_ID])  # its episode's row (reference images: none)
    return None if unit is None else store.patients.iloc[unit]


def _image_label(store, row, image_id: str) -> str | None:
    """'image 3, day 11': the image's place in the patient's timeline, as the thumbnails show."""
    if not image_id:
        return None
    rows = store.patient_images(row[S.PATIENTID])
    order = list(rows[S.IMAGE_ID])
    if image_id not in order:
        return None
    k = order.index(image_id)
    day = fmt(rows[S.OFFSET].iloc[k])
    return "this image" if image_id == row[S.IMAGE_ID] else f"image {k + 1}, day {day}"


def hover_lines(store, positions=None, markup: bool = False) -> list:
    """Per cohort image (all, or those at `positions`) its hover lines: the fields with a hover
    template, joined per line ('patient 205 · day 11', 'COVID-19 · PA', 'China · state: bad'),
    then the positive CheXpert labels where the map has them. The map's tooltip sets them as
    text (markup=False); `markup` escapes every data value for a label rendered as HTML."""
    rows = store.covid if positions is None else store.covid.iloc[np.asarray(positions)]
    esc = (lambda t: escape(t, quote=False)) if markup else (lambda t: t)
    lines: dict = {}
    for f in fields(store):
        if f.hover is None:
            continue
        texts = [esc(f.hover.format(f.text(v))) for v in rows[f.column]]
        lines.setdefault(f.line, []).append(texts)
    joined = [[HOVER_JOIN.join(parts) for parts in zip(*columns)]
              for _, columns in sorted(lines.items())]
    positive = _positive_labels(store, rows, esc)
    if positive is not None:
        joined.append(positive)
    return [[t for t in parts if t] for parts in zip(*joined)]


def hover_texts(store, positions=None) -> np.ndarray:
    """hover_lines as one HTML label per image ('patient 205 · day 11<br>COVID-19 · PA<br>...'),
    every data value escaped: a patient id '<b>x</b>' shows as typed."""
    return np.array([HOVER_BREAK.join(parts) for parts in hover_lines(store, positions, True)],
                    dtype=object)


def _positive_labels(store, rows, esc) -> list | None:
    """Per row 'CheXpert positive: Edema, Support Devices' ('' where none; None: no labels)."""
    flt = BY_KEY["chexpert"]
    labels = flt.labels(store) if flt.offered(store) else []
    if not labels:
        return None
    found = [[] for _ in range(len(rows))]
    for label in labels:
        for i in np.flatnonzero(rows[flt.column + label].to_numpy(float) == 1.0):
            found[i].append(esc(label))
    return [f"CheXpert positive: {', '.join(f)}" if f else "" for f in found]
