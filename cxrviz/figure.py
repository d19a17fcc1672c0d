"""python -m cxrviz.figure --artifact DIR --out FILE.png|.svg|.pdf [--preset single|double|figure3]
    [--color state] [--hide CATEGORY ...] [--patients 178,332,205] [--no-trajectories]
    [--images ID,ID,...] [--filter KEY=VALUE ...] [--day-from A --day-to B]
    [--align offset|first|first_bad|last] [--dim] [--no-density]
    [--density-style heatmap|contours] [--caption]

Reproduces a figure from an artifact with the app's own builders (figures.paper_figure). The app's
export panel shows the command for the view on screen: `command` writes it from the same
settings dict that `parse_args` reads back and `draw` draws, so the two cannot drift apart.
Exit codes: 0 written, 2 bad arguments, 3 the artifact cannot be read.
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


def command(artifact, out: str, s: dict, store) -> str:
    """The command line that draws the settings `s` (the inverse of `parse_args`; the fmt
    comes from `out`)."""
    from cxrviz.filters import as_pairs

    q = shlex.quote
    parts = ["python -m cxrviz.figure", f"--artifact {q(str(artifact))}", f"--out {q(out)}",
             f"--preset {s['preset']}"]
    if s["color"] != "state":
        parts.append(f"--color {q(s['color'])}")
    parts += [f"--hide {q(str(v))}" for v in s["hidden"]]
    if s["patients"]:
        parts.append(f"--patients {q(','.join(s['patients']))}")
    if not s["trajectories"]:
        parts.append("--no-trajectories")
    if s.get("images") is not None:
        parts.append(f"--images {q(','.join(s['images']))}")
    parts += [f"--filter {q(f'{key}={text}')}"
              for key, text in as_pairs(s["filters"], store.default_filters())]
    days = s["days"]
    if days["align"] != "offset":
        parts.append(f"--align {days['align']}")
    if days["from"] is not None:
        parts.append(f"--day-from {days['from']:g}")
    if days["to"] is not None:
        parts.append(f"--day-to {days['to']:g}")
    if s["density"] and s.get("density_style", "heatmap") != "heatmap":
        parts.append(f"--density-style {s['density_style']}")
    flags = (("--dim", s["dim"]), ("--no-density", not s["density"]),
             ("--caption", s["caption"]))
    return " ".join(parts + [flag for flag, on in flags if on])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cxrviz.figure",
                                description="Draw a map figure for a paper from an artifact.")
    p.add_argument("--artifact", required=True, help="artifact folder (python -m precompute)")
    p.add_argument("--out", required=True, help="FILE.png, FILE.svg or FILE.pdf")
    p.add_argument("--preset", default="single",
                   help="single (89 mm), double (183 mm) or figure3 (the paper's Figure 3)")
    p.add_argument("--color", default="state", help="what colours the points (as in the app)")
    p.add_argument("--hide", action="append", default=[], metavar="CATEGORY",
                   help="a category of --color to leave out, as the app's legend hides it "
                        "(repeat for several)")
    p.add_argument("--patients", help="comma-separated patient ids whose trajectories to draw "
                                      "(figure3 default: 178,332,205 where present)")
    p.add_argument("--no-trajectories", action="store_true",
                   help="no trajectories on the map (figure3: its patients still in panel b)")
    p.add_argument("--images", help="comma-separated image ids: of the images passing the "
                                    "filters, draw only these (the app's box / lasso selection)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="a filter of the app (repeat a key for several values)")
    p.add_argument("--align", default="offset", help="day 0: offset, first, first_bad or last")
    p.add_argument("--day-from", type=float)
    p.add_argument("--day-to", type=float)
    p.add_argument("--dim", action="store_true", help="draw filtered-out images faintly")
    p.add_argument("--no-density", action="store_true", help="no bad-state density behind")
    p.add_argument("--density-style", choices=("heatmap", "contours"), default="heatmap",
                   help="the density as a heatmap or as contour lines (the app's choice)")
    p.add_argument("--caption", action="store_true", help="print the caption on the figure")
    return p


def parse_args(args, store) -> dict:
    """Validated figure settings, or UsageError."""
    from cxrviz.compute.timeline import ALIGNMENTS
    from cxrviz.figures import PRESETS, color_options
    from cxrviz.filters import all_keys, read_pairs, split_ids

    fmt = Path(args.out).suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise UsageError(f"--out {args.out}: the file must end in .png, .svg or .pdf")
    if args.preset not in PRESETS:
        raise UsageError(f"--preset {args.preset}: choose one of {', '.join(PRESETS)}")
    colors = [o["value"] for o in color_options(store)]
    if args.color not in colors:
        raise UsageError(f"--color {args.color}: choose one of {', '.join(colors)}")
    if args.align not in ALIGNMENTS:
        raise UsageError(f"--align {args.align}: choose one of {', '.join(ALIGNMENTS)}")
    hidden = _hidden(args, store)
    images = None
    if args.images is not None:
        images = split_ids(args.images)
        unknown = [i for i in images if i not in store.position]
        if unknown or not images:
            raise UsageError(f"--images: {', '.join(unknown) or 'none given'}: not images of "
                             "this artifact's cohort")
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
            "patients": patients, "trajectories": not args.no_trajectories, "hidden": hidden,
            "images": images, "days": days, "density": not args.no_density,
            "density_style": args.density_style,
            "dim": args.dim, "caption": args.caption}


def _hidden(args, store) -> list:
    """--hide values: categories of the colour, in the legend's order."""
    from cxrviz.figures.palette import category_colors
    from cxrviz.store import CATEGORICAL

    if not args.hide:
        return []
    if args.color not in CATEGORICAL:
        raise UsageError(f"--hide: --color {args.color} is a scale, not categories")
    cats = [str(c) for c in category_colors(store, args.color)]
    unknown = [v for v in args.hide if v not in cats]
    if unknown:
        raise UsageError(f"--hide {', '.join(unknown)}: the categories of --color "
                         f"{args.color} here are {', '.join(cats)}")
    return [c for c in cats if c in set(args.hide)]


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
    """-> (file bytes, provenance) for validated settings: the command's path and the export
    tab's alike."""
    from cxrviz.export import export_image, figure_args, settings_provenance, view_masks

    masks = view_masks(store, s)
    prov = settings_provenance(store, s, masks, command(artifact, out, s, store))
    data, _ = export_image(store, s["fmt"], s["preset"], prov=prov, caption_on=s["caption"],
                           **figure_args(s, masks))
    return data, prov


if __name__ == "__main__":
    sys.exit(main())
