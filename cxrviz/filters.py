"""The one table of filters: it drives the page's controls, the store's mask, the URL codec and
the callbacks' inputs. To add a filter, add a row here (and, for a new kind, a case in
Store.mask, pages/map/controls.filter_control and pages/map/urlstate).

Dash-free (the store and the figure CLI use it too).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from cxrviz import ids
from cxrviz import schema as S

LIST = "list"  # value: [category, ...]; a row passes if its column is one of them (none = all)
RANGE = "range"  # value: [lo, hi] over a numeric column
MIN_IMAGES = "min_images"  # value: n; a row passes if its patient has at least n images
IDS = "ids"  # value: text of comma-separated ids in the column


@dataclass(frozen=True)
class Filter:
    key: str  # URL parameter and dict key
    column: str  # images.parquet column it reads
    cid: str  # Dash component id
    label: str  # what the page calls it
    kind: str


FILTERS = (
    Filter("continent", S.CONTINENT, ids.F_CONTINENT, "Continent", LIST),
    Filter("subregion", S.SUBREGION, ids.F_SUBREGION, "UN subregion", LIST),
    Filter("country", S.COUNTRY, ids.F_COUNTRY, "Country", LIST),
    Filter("view", S.VIEW, ids.F_VIEW, "View", LIST),
    Filter("finding_group", S.FINDING_GROUP, ids.F_FINDING, "Finding group", LIST),
    Filter("sex", S.SEX, ids.F_SEX, "Sex", LIST),
    Filter("survival", S.SURVIVAL, ids.F_SURVIVAL, "Survival", LIST),
    Filter("icu", S.IN_ICU, ids.F_ICU, "In ICU (at image time)", LIST),
    Filter("intubation", S.INTUBATION_PRESENT, ids.F_INTUBATION, "Intubated (at image time)",
           LIST),
    Filter("state", S.STATE, ids.F_STATE, "State", LIST),
    Filter("age", S.AGE, ids.F_AGE, "Age", RANGE),
    Filter("min_images", S.PATIENTID, ids.F_MIN_IMAGES, "Patients with at least N images",
           MIN_IMAGES),
    Filter("patient", S.PATIENTID, ids.F_PATIENT, "Patient id", IDS),
)
BY_KEY = {f.key: f for f in FILTERS}
# A range filter keeps the images whose value is unknown unless the user says otherwise: its
# "include unknown" checkbox ([KEEP_UNKNOWN] or []) is a second value of the same filter.
KEEP_UNKNOWN = "keep"


def unknown_key(f: Filter) -> str:
    return f"{f.key}_unknown"


def unknown_cid(f: Filter) -> str:
    return f"{f.cid}-unknown"


def values_of(f: Filter) -> list:
    """(dict key, component id) pairs a filter contributes to a callback."""
    pairs = [(f.key, f.cid)]
    if f.kind == RANGE:
        pairs.append((unknown_key(f), unknown_cid(f)))
    return pairs


def keeps_unknown(filters: dict, f: Filter) -> bool:
    """Does range filter f keep the images whose value is unknown? Yes unless unticked."""
    return KEEP_UNKNOWN in (filters.get(unknown_key(f), [KEEP_UNKNOWN]) or [])


def as_pairs(filters: dict, defaults: dict) -> list:
    """The active filters as (key, text) pairs, the words of a URL's query, of the figure
    command's --filter KEY=VALUE (`parse` reads them back) and of a figure's caption. A range
    missing from `defaults` counts as set."""
    pairs = []
    for f in FILTERS:
        value = filters.get(f.key)
        if f.kind == LIST:
            pairs += [(f.key, str(v)) for v in value or []]
        elif f.kind == RANGE:
            if value and list(value) != defaults.get(f.key):
                pairs.append((f.key, f"{value[0]:g}-{value[1]:g}"))
            if not keeps_unknown(filters, f):
                pairs.append((unknown_key(f), "drop"))
        elif f.kind == MIN_IMAGES and value and int(value) > 1:
            pairs.append((f.key, str(int(value))))
        elif f.kind == IDS and str(value or "").strip():
            pairs.append((f.key, str(value).strip()))
    return pairs


def split_ids(text) -> list:
    """'205, 178 ,x' -> ['205', '178', 'x']: the IDS kind's value, parsed."""
    if isinstance(text, (list, tuple)):
        text = ",".join(str(t) for t in text)
    return [t.strip() for t in str(text or "").split(",") if t.strip()]


_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")


def parse(flt: Filter, raw: list, store):
    """Text values (from a URL or the command line) -> the filter's value; ValueError saying
    what is wrong (an unknown category, a malformed range ...)."""
    if flt.kind == LIST:
        allowed = store.options(flt.column)
        unknown = [v for v in raw if v not in set(allowed)]
        if unknown:
            raise ValueError(f"{flt.key}: no image has {', '.join(map(repr, unknown))}; values "
                             f"here: {', '.join(map(str, allowed))}")
        return list(raw)
    if flt.kind == RANGE:
        m = _RANGE.match(raw[0])
        if not m or float(m.group(1)) > float(m.group(2)):
            raise ValueError(f"{flt.key}: {raw[0]!r} is not a range such as 40-60")
        lo, hi = store.ranges[flt.key]
        return [max(float(m.group(1)), lo), min(float(m.group(2)), hi)]
    if flt.kind == MIN_IMAGES:
        try:
            return max(1, int(raw[0]))
        except ValueError:
            raise ValueError(f"{flt.key}: {raw[0]!r} is not a whole number") from None
    return ",".join(split_ids(raw))
