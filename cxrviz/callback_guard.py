"""Every callback request is checked on the server before Dash runs it.

The page's controls promise ranges (a slider's min and max, a number field's bounds, a
dropdown of numbered outputs), but a request can be written by hand: `k=10**12` neighbours,
an opacity of 5, an age range of ±1e308, `Infinity`, JSON nested 100,000 deep. Here:

- the body must be a JSON object of Dash's shape, nested at most MAX_DEPTH deep, every number
  finite, for a callback this app has (else 400);
- every numeric control's value is clamped to the bounds the control itself declares in the
  page's layout (one rule, in one place: the control), to whole numbers where it steps by
  whole numbers; a numbered choice must be one of its options (else 400). Bounds come from the
  layouts once, at the first request; an unbounded side is clamped to ±UNBOUNDED.

The checked body is the one Dash reads (Flask caches the parsed JSON), so callbacks receive
the clamped values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

MAX_DEPTH = 64
UNBOUNDED = 1e9  # no control of this app needs a number beyond this
_DASH_KEYS = ("output", "outputs", "inputs", "changedPropIds")


class Refused(ValueError):
    """A callback request no page of this app can send; the message says what is wrong."""


@dataclass(frozen=True)
class Bound:
    lo: float = -UNBOUNDED
    hi: float = UNBOUNDED
    whole: bool = False
    pair: bool = False  # a range slider's [lo, hi]
    choices: frozenset | None = None  # numbered options


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(x) -> bool:
    return x is None or (_number(x) and float(x).is_integer())


def bounds_of(layouts) -> dict:
    """{(component id, "value"): Bound} for every numeric control in the layouts."""
    out = {}
    for layout in layouts:
        for c in [layout, *layout._traverse()]:
            cid = getattr(c, "id", None)
            if not isinstance(cid, str) or getattr(c, "_namespace", "") != "dash_core_components":
                continue
            kind = type(c).__name__
            if kind in ("Slider", "RangeSlider") or (kind == "Input" and
                                                     getattr(c, "type", None) == "number"):
                lo, hi, step = (getattr(c, k, None) for k in ("min", "max", "step"))
                out[(cid, "value")] = Bound(
                    -UNBOUNDED if lo is None else float(lo), UNBOUNDED if hi is None else float(hi),
                    whole=step is not None and _whole(step) and _whole(lo),
                    pair=kind == "RangeSlider")
            elif kind in ("Dropdown", "RadioItems", "Checklist"):
                values = [o.get("value") if isinstance(o, dict) else o
                          for o in (getattr(c, "options", None) or [])]
                if values and all(_number(v) for v in values):
                    out[(cid, "value")] = Bound(choices=frozenset(values))
    return out


def _clamp(value, bound: Bound, where: str):
    if value is None or value == "":
        return value  # an emptied field: the callback uses its default
    if bound.choices is not None:
        chosen = value if isinstance(value, list) else [value]
        if not all(_number(v) and v in bound.choices for v in chosen):
            raise Refused(f"{where}: not one of the control's options")
        return value
    if bound.pair:
        if not (isinstance(value, list) and len(value) == 2 and all(map(_number, value))):
            raise Refused(f"{where}: a range must be two numbers")
        lo, hi = sorted(_clamp(v, Bound(bound.lo, bound.hi, bound.whole), where) for v in value)
        return [lo, hi]
    if not _number(value):
        raise Refused(f"{where}: a number was expected")
    value = min(max(value, bound.lo), bound.hi)
    return int(round(value)) if bound.whole else value


def _check_shape(body) -> None:
    """Dash's keys, nesting at most MAX_DEPTH, every number finite (iteratively: a deep body
    must not exhaust the stack here either)."""
    if not isinstance(body, dict) or not all(k in body for k in _DASH_KEYS):
        raise Refused("malformed callback request")
    if not isinstance(body["inputs"], list) or not all(
            isinstance(i, (dict, list)) for i in body["inputs"]):
        raise Refused("malformed callback inputs")
    stack = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Refused(f"callback request nested deeper than {MAX_DEPTH}")
        for v in (node.values() if type(node) is dict else node):
            kind = type(v)
            if kind is float:
                if not math.isfinite(v):
                    raise Refused("numbers in a callback request must be finite")
            elif kind is dict or kind is list:
                stack.append((v, depth + 1))


def check(body, callback_map: dict, bounds: dict) -> dict:
    """Refuse (Refused) or clamp, in place; returns the body."""
    _check_shape(body)
    if body["output"] not in callback_map:
        raise Refused("unknown callback output")
    for group in ("inputs", "state"):
        items = body.get(group) or []
        if not isinstance(items, list):
            raise Refused(f"malformed callback {group}")
        for item in items:
            for one in (item if isinstance(item, list) else [item]):
                if not isinstance(one, dict):
                    raise Refused(f"malformed callback {group}")
                cid = one.get("id")
                bound = bounds.get((cid, one.get("property"))) if isinstance(cid, str) else None
                if bound is not None and "value" in one:
                    one["value"] = _clamp(one["value"], bound, f"{one['id']}.value")
    return body
