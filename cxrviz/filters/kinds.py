"""The filter kinds other than CheXpert's (see cxrviz.filters): each holds its default, whether
an artifact offers it, its mask, its text form, its chips and its control. Dash is imported only
where a control is built, so the store and the figure CLI never load it."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from cxrviz import words

LIST = "list"  # value: [category, ...]; a row passes if its column is one of them (none = all)
RANGE = "range"  # value: [lo, hi] over a numeric column
MIN_IMAGES = "min_images"  # value: n; a row passes if its patient has at least n images
IDS = "ids"  # value: text of comma-separated ids in the column
CHEXPERT = "chexpert"  # value: ["Label:status", ...] over the chexpert:<label> columns
# A range filter keeps the images whose value is unknown unless the user says otherwise: its
# "include unknown" checkbox ([KEEP_UNKNOWN] or []) is a second value of the same filter.
KEEP_UNKNOWN = "keep"


def split_ids(text) -> list:
    """'205, 178 ,x' -> ['205', '178', 'x']: the IDS kind's value, parsed."""
    if isinstance(text, (list, tuple)):
        text = ",".join(str(t) for t in text)
    return [t.strip() for t in str(text or "").split(",") if t.strip()]


@dataclass(frozen=True)
class Filter:
    """One filter: `key` (URL parameter, --filter KEY and dict key), `column` (the
    images.parquet column it reads), `cid` (Dash component id), `label` (what the page calls
    it). Subclasses are the kinds."""
    key: str
    column: str
    cid: str
    label: str
    kind: ClassVar[str] = ""

    # ---- values ------------------------------------------------------------------------------
    def values_of(self) -> list:
        """(dict key, component id) pairs the filter contributes to a callback."""
        return [(self.key, self.cid)]

    def defaults(self, store) -> dict:
        """{dict key: its "everything" value}."""
        return {self.key: self.default(store)}

    def default(self, store):
        raise NotImplementedError

    def offered(self, store) -> bool:
        return store.has_known(self.column)

    # ---- the mask ------------------------------------------------------------------------------
    def mask(self, store, filters: dict):
        """Per cohort row, does it pass (None: the filter restricts nothing)."""
        raise NotImplementedError

    def unknown_kept(self, store, filters: dict):
        """Per row, in only because its value is unknown (None: no such rows)."""
        return None

    # ---- text: the URL, the figure command, captions -------------------------------------------
    def as_pairs(self, filters: dict, defaults: dict) -> list:
        """The filter's value as (key, text) pairs; none at its default."""
        raise NotImplementedError

    def read(self, raw: dict, filters: dict, store, strict: bool) -> list:
        """Read this filter's keys from `raw` ({key: [text, ...]}) into `filters`. Returns what
        was ignored as 'key=text'; `strict` (the command line) raises ValueError instead."""
        values = raw.get(self.key) or []
        if not values:
            return []
        try:
            if not self.offered(store):
                raise ValueError(f"{self.key}: this map has no {self.label.lower()} values")
            filters[self.key] = self.parse(values, store)
        except ValueError:
            if strict:
                raise
            return [f"{self.key}={v}" for v in values]
        return []

    def parse(self, values: list, store):
        """Text values -> the filter's value; ValueError saying what is wrong."""
        raise NotImplementedError

    def _once(self, values: list):
        if len(values) > 1:
            raise ValueError(f"{self.key}: give it once")
        return values[0]

    def keys(self) -> list:
        """Every key the text form may hold."""
        return [key for key, _ in self.values_of()]

    # ---- the page -------------------------------------------------------------------------------
    def chips(self, filters: dict, defaults: dict) -> list:
        """The active filter as (key to reset, label, text) chips."""
        value = filters.get(self.key)
        if value in (None, "", []) or value == defaults.get(self.key):
            return []
        return [(self.key, self.label, self.chip_text(value))]

    def chip_text(self, value) -> str:
        return str(value)

    def control(self, store, filters: dict):
        """The filter's Dash component(s)."""
        raise NotImplementedError


@dataclass(frozen=True)
class ListFilter(Filter):
    """Images whose column holds one of the chosen categories (none chosen: all)."""
    kind: ClassVar[str] = LIST

    def default(self, store):
        return []

    def mask(self, store, filters):
        value = filters.get(self.key)
        return store.covid[self.column].isin(list(value)).to_numpy() if value else None

    def as_pairs(self, filters, defaults):
        return [(self.key, str(v)) for v in filters.get(self.key) or []]

    def read(self, raw, filters, store, strict):
        """A link keeps the categories that exist and names the rest; the command line refuses
        them. A filter this map does not offer takes no value."""
        values = raw.get(self.key) or []
        if values and not self.offered(store):
            return super().read(raw, filters, store, strict)
        allowed = set(store.options(self.column))
        wrong = [v for v in values if v not in allowed]
        if wrong and strict:
            raise ValueError(f"{self.key}: no image has {', '.join(map(repr, wrong))}; values "
                             f"here: {', '.join(map(str, store.options(self.column)))}")
        if values:
            filters[self.key] = [v for v in values if v in allowed]
        return [f"{self.key}={v}" for v in wrong]

    def chip_text(self, value):
        return ", ".join(words.value(self.column, v) for v in value)

    def options(self, store) -> list:
        return [words.option(self.column, v, self.label) for v in store.options(self.column)]

    def control(self, store, filters):
        from dash import dcc

        return dcc.Dropdown(id=self.cid, options=self.options(store), value=filters[self.key],
                            multi=True, placeholder="all")


_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class RangeFilter(Filter):
    """Images whose value lies in [lo, hi]. Unknown values are kept unless the filter's
    "include unknown" box is unticked (an unknown age is not "outside 40-60")."""
    kind: ClassVar[str] = RANGE

    @property
    def unknown_key(self) -> str:
        return f"{self.key}_unknown"

    @property
    def unknown_cid(self) -> str:
        return f"{self.cid}-unknown"

    def values_of(self):
        return [(self.key, self.cid), (self.unknown_key, self.unknown_cid)]

    def defaults(self, store):
        return {self.key: self.default(store), self.unknown_key: [KEEP_UNKNOWN]}

    def default(self, store):
        return list(store.ranges[self.key])

    def keeps_unknown(self, filters: dict) -> bool:
        return KEEP_UNKNOWN in (filters.get(self.unknown_key, [KEEP_UNKNOWN]) or [])

    def _narrowed(self, store, value) -> bool:
        lo, hi = store.ranges[self.key]
        return bool(value) and (value[0] > lo or value[1] < hi)

    def mask(self, store, filters):
        value = filters.get(self.key)
        a = store.covid[self.column].to_numpy(dtype=float)
        if self._narrowed(store, value):
            inside = (a >= value[0]) & (a <= value[1])
            if self.keeps_unknown(filters):
                inside |= np.isnan(a)
            return inside
        return None if self.keeps_unknown(filters) else ~np.isnan(a)

    def unknown_kept(self, store, filters):
        if self._narrowed(store, filters.get(self.key)) and self.keeps_unknown(filters):
            return store.covid[self.column].isna().to_numpy()
        return None

    def as_pairs(self, filters, defaults):
        value, pairs = filters.get(self.key), []
        if value and list(value) != defaults.get(self.key):
            pairs.append((self.key, f"{value[0]:g}-{value[1]:g}"))
        if not self.keeps_unknown(filters):
            pairs.append((self.unknown_key, "drop"))
        return pairs

    def read(self, raw, filters, store, strict):
        ignored = []
        for text in raw.get(self.unknown_key) or []:
            if text in ("drop", "keep") and self.offered(store):
                filters[self.unknown_key] = [] if text == "drop" else [KEEP_UNKNOWN]
            elif strict:
                raise ValueError(f"{self.unknown_key}: write drop or keep (and only where the "
                                 f"map has {self.label.lower()} values)")
            else:
                ignored.append(f"{self.unknown_key}={text}")
        return ignored + super().read(raw, filters, store, strict)

    def parse(self, values, store):
        text = self._once(values)
        m = _RANGE.match(text)
        if not m or float(m.group(1)) > float(m.group(2)):
            raise ValueError(f"{self.key}: {text!r} is not a range such as 40-60")
        lo, hi = store.ranges[self.key]
        return [max(float(m.group(1)), lo), min(float(m.group(2)), hi)]

    def chips(self, filters, defaults):
        out = super().chips(filters, defaults)
        if not self.keeps_unknown(filters):  # a range that drops unknown values says so
            out.append((self.unknown_key, self.label, "unknown left out"))
        return out

    def chip_text(self, value):
        return f"{value[0]:g}–{value[1]:g}"

    def control(self, store, filters):
        from dash import dcc, html

        lo, hi = store.ranges[self.key]
        unknown = int(store.covid[self.column].isna().sum())
        # the ends show as number boxes under the track (type to set them): always-visible
        # tooltips of two close handles ran into each other
        return html.Div([
            dcc.RangeSlider(id=self.cid, min=lo, max=hi, step=1, value=filters[self.key],
                            marks=None, className="range-inputs"),
            dcc.Checklist(id=self.unknown_cid, value=filters[self.unknown_key],
                          className="checklist",
                          options=[{"label": f" include {words.plural(unknown, 'image')} with "
                                             f"{self.label.lower()} unknown",
                                    "value": KEEP_UNKNOWN}])])


@dataclass(frozen=True)
class MinImagesFilter(Filter):
    """Images of patients with at least n images (n = 1: all)."""
    kind: ClassVar[str] = MIN_IMAGES

    def default(self, store):
        return 1

    def mask(self, store, filters):
        value = filters.get(self.key)
        return store.images_per_patient >= int(value) if value and int(value) > 1 else None

    def as_pairs(self, filters, defaults):
        value = filters.get(self.key)
        return [(self.key, str(int(value)))] if value and int(value) > 1 else []

    def parse(self, values, store):
        text = self._once(values)
        try:
            return max(1, int(text))
        except ValueError:
            raise ValueError(f"{self.key}: {text!r} is not a whole number") from None

    def control(self, store, filters):
        from dash import dcc

        return dcc.Input(id=self.cid, type="number", min=1, step=1, value=filters[self.key],
                         debounce=True)


@dataclass(frozen=True)
class IdsFilter(Filter):
    """Images of the listed patients (comma-separated ids)."""
    kind: ClassVar[str] = IDS

    def default(self, store):
        return ""

    def mask(self, store, filters):
        wanted = split_ids(filters.get(self.key))
        if not wanted:
            return None
        only = np.zeros(len(store.covid), dtype=bool)
        for pid in wanted:
            only[store.patient_positions.get(pid, [])] = True
        return only

    def as_pairs(self, filters, defaults):
        value = str(filters.get(self.key) or "").strip()
        return [(self.key, value)] if value else []

    def parse(self, values, store):
        return ",".join(split_ids(self._once(values)))

    def control(self, store, filters):
        from dash import dcc

        return dcc.Input(id=self.cid, type="text", value=filters[self.key],
                         placeholder="e.g. " + ", ".join(map(str, store.patient_ids[:2])),
                         debounce=True)
