"""Free-text `location` -> (country, UN subregion, continent) through country_converter."""
from __future__ import annotations

import logging
from functools import lru_cache

from cxrviz.schema import UNKNOWN

_NOT_FOUND = "__not_found__"


@lru_cache(maxsize=1)
def _converter():
    import country_converter as coco

    logging.getLogger("country_converter").setLevel(logging.CRITICAL)
    return coco.CountryConverter()


def _country_of(cc, location: str):
    """Try the last comma part ("..., Hanoi, Vietnam"), then the whole text ("Wuhan China")."""
    parts = [p.strip() for p in location.replace(";", ",").split(",") if p.strip()]
    for candidate in ([parts[-1]] if parts else []) + [location]:
        name = cc.convert(candidate, to="name_short", not_found=_NOT_FOUND)
        if isinstance(name, str) and name != _NOT_FOUND:
            return candidate
    return None


def country_regions(locations) -> list:
    """One (country, subregion, continent) per location; UNKNOWN where it cannot be placed."""
    unique = sorted({loc.strip() for loc in locations if isinstance(loc, str) and loc.strip()})
    table = {}
    if unique:
        cc = _converter()
        for loc in unique:
            key = _country_of(cc, loc)
            if key is None:
                table[loc] = (UNKNOWN, UNKNOWN, UNKNOWN)
                continue
            table[loc] = tuple(cc.convert(key, to=to, not_found=UNKNOWN)
                               for to in ("name_short", "UNregion", "continent"))
    return [table.get(loc.strip() if isinstance(loc, str) else "", (UNKNOWN,) * 3)
            for loc in locations]
