"""The one table of filters. Each kind of filter is one class holding everything about it: its
default, whether this artifact offers it, its mask (numpy on the store's columns), its text form
(the URL's query, the figure command's --filter KEY=VALUE and a caption's words, read back by
`read`), its chips and its control. The store, the page, the URL codec, the chips and the figure
CLI loop over FILTERS and never switch on a kind. To add a filter, add a row to FILTERS; for a
new kind, add a Filter subclass (kinds.py, or a module of its own as chexpert.py) and its
component id to cxrviz/ids.py.

A filter is offered (its control shown, its chips possible) only where its column exists and has
at least one known value among the cohort's images (Store.has_known): no Country filter on a
MIMIC map, a CheXpert filter only where the labels are. A filter that is not offered keeps a
hidden control at its default value, so the page's callbacks are the same for every artifact.

Dash-free at import (the store and the figure CLI use it): `control` imports dash when called.
"""
from __future__ import annotations

from cxrviz import ids
from cxrviz import schema as S
from cxrviz.filters.chexpert import CHEXPERT_STATUS, ChexpertFilter
from cxrviz.filters.kinds import (CHEXPERT, IDS, KEEP_UNKNOWN, LIST, MIN_IMAGES, RANGE, Filter,
                                  IdsFilter, ListFilter, MinImagesFilter, RangeFilter,
                                  split_ids)

__all__ = ["CHEXPERT", "CHEXPERT_STATUS", "IDS", "KEEP_UNKNOWN", "LIST", "MIN_IMAGES", "RANGE",
           "BY_KEY", "FILTERS", "Filter", "ChexpertFilter", "IdsFilter", "ListFilter",
           "MinImagesFilter", "RangeFilter", "all_keys", "as_pairs", "read_pairs", "split_ids"]

FILTERS = (
    ListFilter("continent", S.CONTINENT, ids.F_CONTINENT, "Continent"),
    ListFilter("subregion", S.SUBREGION, ids.F_SUBREGION, "UN subregion"),
    ListFilter("country", S.COUNTRY, ids.F_COUNTRY, "Country"),
    ListFilter("view", S.VIEW, ids.F_VIEW, "View"),
    ListFilter("finding_group", S.FINDING_GROUP, ids.F_FINDING, "Finding group"),
    ChexpertFilter("chexpert", S.CHEXPERT_PREFIX, ids.F_CHEXPERT,
                   "CheXpert labels"),
    ListFilter("sex", S.SEX, ids.F_SEX, "Sex"),
    ListFilter("survival", S.SURVIVAL, ids.F_SURVIVAL, "Survival"),
    ListFilter("icu", S.IN_ICU, ids.F_ICU, "In ICU (at image time)"),
    ListFilter("intubation", S.INTUBATION_PRESENT, ids.F_INTUBATION,
               "Intubated (at image time)"),
    ListFilter("state", S.STATE, ids.F_STATE, "State"),
    RangeFilter("age", S.AGE, ids.F_AGE, "Age"),
    MinImagesFilter("min_images", S.PATIENTID, ids.F_MIN_IMAGES,
                    "Patients with at least N images"),
    IdsFilter("patient", S.PATIENTID, ids.F_PATIENT, "Patient id"),
)
BY_KEY = {f.key: f for f in FILTERS}


def all_keys() -> list:
    """Every key of the text form (URL, --filter), in the table's order."""
    return [key for f in FILTERS for key in f.keys()]


def as_pairs(filters: dict, defaults: dict) -> list:
    """The active filters as (key, text) pairs, the words of a URL's query, of the figure
    command's --filter KEY=VALUE (`read_pairs` reads them back) and of a figure's caption. A
    range missing from `defaults` counts as set."""
    return [pair for f in FILTERS for pair in f.as_pairs(filters, defaults)]


def read_pairs(raw: dict, store, strict: bool) -> tuple:
    """{key: [text, ...]} -> (filters, ignored 'key=text'): the store's defaults with what the
    text sets. `strict` (the command line): ValueError on anything wrong, unknown keys included;
    otherwise (a link) what cannot be used is ignored and named."""
    if strict:
        unknown = [k for k in raw if k not in all_keys()]
        if unknown:
            raise ValueError(f"{unknown[0]}: not a filter; KEY one of {', '.join(all_keys())}")
    filters, ignored = store.default_filters(), []
    for f in FILTERS:
        ignored += f.read(raw, filters, store, strict)
    return filters, ignored
