"""python -m cxrviz.figure --artifact DIR --out FILE.png|.svg|.pdf [--preset single|double|figure3]
    [--color state] [--patients 178,332,205] [--filter KEY=VALUE ...] [--day-from A --day-to B]
    [--align offset|first|first_bad|last] [--dim] [--no-density] [--caption]

Reproduces a figure from an artifact with the app's own builders (figures.paper_figure). The app's
export panel shows the command for the view on screen. Exit codes: 0 written, 2 bad arguments,
3 the artifact cannot be read.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

FIGURE3_PATIENTS = ("178", "332", "205")  # the paper's Figure 3
EXIT_USAGE, EXIT_ARTIFACT = 2, 3


class UsageError(Exception):
    """A bad argument; the message says which and what would be accepted."""


def command(artifact, out: str, preset: str, *, color: str, filters: dict, store,
            days: dict | None = None, patients=None, density: bool = True, dim: bool = False,
            caption: bool = False) -> str:
    """The command line that draws this view (the inverse of `parse_args`)."""
    from cxrviz.filters import as_pairs

    parts = ["python -m cxrviz.figure", f"--artifact {shlex.quote(str(artifact))}",
             f"--out {shlex.quote(out)}", f"--preset {preset}"]
    if color != "state":
        parts.append(f"--color {shlex.quote(color)}")
    if patients:
        parts.append(f"--patients {shlex.quote(','.join(patients))}")
    parts += [f"--filter {shlex.quote(f'{key}={text}')}"
              for key, text in as_pairs(filters, store.default_filters())]
    days = days or {}
    if days.get("align", "offset") != "offset":
        parts.append(f"--align {days['align']}")
    if days.get("from") is not None:
        parts.append(f"--day-from {days['from']:g}")
    if days.get("to") is not None:
        parts.append(f"--day-to {days['to']:g}")
    if dim:
        parts.append("--dim")
    if not density:
        parts.append("--no-density")
    if caption:
        parts.append("--caption")
    return " ".join(parts)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cxrviz.figure",
                                description="Draw a map figure for a paper from an artifact.")
    p.add_argument("--artifact", required=True, help="artifact folder (python -m precompute)")
    p.add_argument("--out", required=True, help="FILE.png, FILE.svg or FILE.pdf")
    p.add_argument("--preset", default="single",
                   help="single (89 mm), double (183 mm) or figure3 (the paper's Figure 3)")
    p.add_argument("--color", default="state", help="what colours the points (as in the app)")
    p.add_argument("--patients", help="comma-separated patient ids whose trajectories to draw "
                                      "(figure3 default: 178,332,205 where present)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="a filter of the app (repeat a key for several values)")
    p.add_argument("--align", default="offset", help="day 0: offset, first, first_bad or last")
    p.add_argument("--day-from", type=float)
    p.add_argument("--day-to", type=float)
    p.add_argument("--dim", action="store_true", help="draw filtered-out images faintly")
    p.add_argument("--no-density", action="store_true", help="no bad-state density behind")
    p.add_argument("--caption", action="store_true", help="print the caption on the figure")
    return p


def parse_args(args, store) -> dict:
    """Validated figure settings, or UsageError."""
    from cxrviz.compute.timeline import ALIGNMENTS
    from cxrviz.figures import PRESETS, color_options
    from cxrviz.filters import all_keys, read_pairs

    fmt = Path(args.out).suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise UsageError(f"--out {args.out}: the file must end in .png, .svg or .pdf")
    if args.preset not in PRESETS:
        raise UsageError(f"--preset {args.preset}: choose one of {', '.join(PRESETS)}")
    colors = [o["value"] for o in color_options(store.pathologies)]
    if args.color not in colors:
        raise UsageError(f"--color {args.color}: choose one of {', '.join(colors)}")
    if args.align not in ALIGNMENTS:
        raise UsageError(f"--align {args.align}: choose one of {', '.join(ALIGNMENTS)}")
    raw: dict = {}
    for item in args.filter:
        key, sep, value = item.partition("=")
        if not sep or key not in all_keys():
            raise UsageError(f"--filter {item}: write KEY=VALUE with KEY one of "
                             f"{', '.join(all_keys())}")
        raw.setdefault(key, []).append(value)
    try:  # each filter kind reads its own --filter values (cxrviz.filters)
        filters, _ = read_pairs(raw, store, strict=True)
    except ValueError as exc:
        raise UsageError(f"--filter {exc}") from None
    known = set(store.patient_ids)
    if args.patients:
        patients = [p.strip() for p in args.patients.split(",") if p.strip()]
        unknown = [p for p in patients if p not in known]
        if unknown:
            raise UsageError(f"--patients: {', '.join(unknown)} not in this artifact")
    elif args.preset == "figure3":
        patients = [p for p in FIGURE3_PATIENTS if p in known]
        if not patients:
            raise UsageError("--preset figure3: none of patients 178, 332, 205 is in this "
                             "artifact; choose some with --patients")
    else:
        patients = None
    if None not in (args.day_from, args.day_to) and args.day_from > args.day_to:
        raise UsageError("--day-from must not be after --day-to")
    days = {"align": args.align, "from": args.day_from, "to": args.day_to}
    return {"fmt": fmt, "preset": args.preset, "color": args.color, "filters": filters,
            "patients": patients, "days": days, "density": not args.no_density,
            "dim": args.dim, "caption": args.caption}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from cxrviz.io.artifact import ArtifactError
    from cxrviz.store import Store

    try:
        store = Store.open(args.artifact)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ARTIFACT
    try:
        settings = parse_args(args, store)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    data, prov = draw(store, args.artifact, args.out, settings)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, out)
    from cxrviz.export import caption

    print(f"wrote {out} ({len(data) // 1024} KB): {caption(prov)}")
    return 0


def draw(store, artifact, out: str, s: dict) -> tuple:
    """-> (file bytes, provenance) for validated settings."""
    from cxrviz.export import export_image, provenance

    keep = store.mask(s["filters"])
    days = s["days"]
    in_days = store.day_mask(days["align"], days["from"], days["to"])
    shown = keep if in_days is None else keep & in_days
    cmd = command(artifact, out, s["preset"], color=s["color"], filters=s["filters"],
                  store=store, days=days, patients=s["patients"], density=s["density"],
                  dim=s["dim"], caption=s["caption"])
    prov = provenance(store, shown, filters=s["filters"], days=days, command=cmd,
                      view={"color": s["color"], "preset": s["preset"],
                            "density": s["density"]}, patients=s["patients"])
    data, _ = export_image(store, s["fmt"], s["preset"], keep=keep, prov=prov,
                           caption_on=s["caption"], color_by=s["color"], in_days=in_days,
                           patients=s["patients"], density=s["density"],
                           filtered_mode="dim" if s["dim"] else "hide", align=days["align"])
    return data, prov


if __name__ == "__main__":
    sys.exit(main())
