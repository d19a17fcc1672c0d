"""The CheXpert-label filter kind (see cxrviz.filters and ChexpertFilter's docstring)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from cxrviz.filters.kinds import CHEXPERT, Filter

# CheXpert's four outcomes, as mimic-cxr-2.0.0-chexpert.csv.gz codes them (NaN: blank)
CHEXPERT_STATUS = {"positive": 1.0, "negative": 0.0, "uncertain": -1.0, "not mentioned": None}


@dataclass(frozen=True)
class ChexpertFilter(Filter):
    """Images whose study's report has the chosen CheXpert outcomes: each choice is a label with
    one of its four outcomes ("Edema: positive"); choices of one label are alternatives, and
    every label chosen must hold (Edema positive or uncertain, and Pleural Effusion negative).

    Why four outcomes per label rather than a list of positive labels: the CheXpert labeler's
    "uncertain" (-1, "possible edema") is a class of its own, and how to count it is the
    researcher's choice (the CheXpert paper's U-Ones policy counts it positive, U-Zeros
    negative): picking "positive" and "uncertain" is U-Ones. "Not mentioned" (blank) is not
    "negative" (0, "no edema"): a report that never speaks of edema has not ruled it out. Only
    labels, and outcomes, that occur among the map's images are offered, each with its number of
    images, so a choice never empties the map by itself. `column` is the prefix of its columns.
    """
    kind: ClassVar[str] = CHEXPERT

    def default(self, store):
        return []

    def labels(self, store) -> list:
        """The labels with at least one mentioned outcome among the cohort's images."""
        prefix = self.column
        return [c[len(prefix):] for c in store.covid.columns
                if c.startswith(prefix) and store.covid[c].notna().any()]

    def offered(self, store):
        return bool(self.labels(store))

    def _codes(self, store, label: str) -> np.ndarray:
        return store.covid[self.column + label].to_numpy(dtype=float)

    def _matches(self, store, label: str, status: str) -> np.ndarray:
        code, a = CHEXPERT_STATUS[status], self._codes(store, label)
        return np.isnan(a) if code is None else a == code

    def choices(self, store) -> list:
        """[(token 'Label:status', images with it)] that occur, label by label."""
        cache = store.__dict__.setdefault("_chexpert_choices", {})
        if self.key not in cache:
            cache[self.key] = [(f"{label}:{status}", n) for label in self.labels(store)
                               for status in CHEXPERT_STATUS
                               if (n := int(self._matches(store, label, status).sum()))]
        return cache[self.key]

    @staticmethod
    def split(token: str) -> tuple:
        label, _, status = str(token).rpartition(":")
        return label, status

    def mask(self, store, filters):
        """A choice naming no label or outcome of this map (a hand-made request) matches no
        image: the server never trusts the page's values."""
        value = filters.get(self.key) or []
        tokens = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
        if not tokens:
            return None
        labels, by_label = set(self.labels(store)), {}
        for token in tokens:
            label, status = self.split(token)
            by_label.setdefault(label, []).append(status)
        keep = np.ones(len(store.covid), bool)
        for label, statuses in by_label.items():
            either = np.zeros(len(store.covid), bool)
            for status in statuses:
                if label in labels and status in CHEXPERT_STATUS:
                    either |= self._matches(store, label, status)
            keep &= either
        return keep

    def as_pairs(self, filters, defaults):
        return [(self.key, str(v)) for v in filters.get(self.key) or []]

    def parse(self, values, store):
        known = {token for token, _ in self.choices(store)}
        wrong = [v for v in values if v not in known]
        if wrong:
            raise ValueError(f"{self.key}: no image has {', '.join(map(repr, wrong))}; write "
                             "LABEL:OUTCOME, the outcome one of positive, negative, uncertain, "
                             f"not mentioned (e.g. {self._example(known)})")
        return list(values)

    @staticmethod
    def _example(known) -> str:
        return next((t for t in sorted(known) if t.endswith(":positive")), "Edema:positive")

    def read(self, raw, filters, store, strict):
        values = raw.get(self.key) or []
        if not values or strict:
            return super().read(raw, filters, store, strict)
        known = {token for token, _ in self.choices(store)} if self.offered(store) else set()
        if any(v in known for v in values):
            filters[self.key] = [v for v in values if v in known]
        return [f"{self.key}={v}" for v in values if v not in known]

    def chip_text(self, value):
        return ", ".join(" ".join(self.split(token)) for token in value)

    def options(self, store) -> list:
        return [{"label": f"{label}: {status} ({n})", "value": token}
                for token, n in self.choices(store) for label, status in [self.split(token)]]

    def control(self, store, filters):
        from dash import dcc

        return dcc.Dropdown(id=self.cid, options=self.options(store), value=filters[self.key],
                            multi=True, placeholder="all")
