"""Exports that say what made them: figures (PNG / SVG / PDF through kaleido) and CSV.

Every export carries its provenance (artifact id, weights and whether they are pretrained, UMAP
and KDE parameters, counts, filters, day range, date): in the file's own metadata (PNG text
chunk, SVG <metadata>, PDF info dictionary), in a sidecar JSON beside a CSV, and in the caption
when asked for. Figures come from figures.paper_figure, shared with `python -m cxrviz.figure`.
One headless browser (kaleido's persistent server) renders them all.

Every CSV is written by `csv_bytes`, which keeps spreadsheets from running data as formulas
(OWASP's CSV injection advice): a text cell starting with = + - @, a tab or a carriage return
gets a leading single quote ("'=HYPERLINK(...)", "'-1"), whether or not the cell is quoted.
Numeric columns are written as numbers and left alone, so an offset of -5 stays -5: a number
cannot hold a formula. Every row carries the weights and whether they are pretrained.
"""
from __future__ import annotations

import atexit
import io
import json
import threading
import warnings
from datetime import datetime, timezone
from html import escape

import numpy as np
import pandas as pd

from cxrviz import schema as S
from cxrviz.filters import as_pairs
from cxrviz.figures.palette import hidden_mask
from cxrviz.figures.paper import EXPORT_DPI, PRESETS, paper_figure
from cxrviz.store import Store, day_label

FORMATS = ("png", "svg", "pdf")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = [S.IMAGE_ID, S.PATIENTID, S.OFFSET, S.FILENAME, S.VIEW, S.SEX, S.AGE, S.FINDING,
               S.FINDING_GROUP, S.SURVIVAL, S.IN_ICU, S.INTUBATION_PRESENT, S.COUNTRY,
               S.SUBREGION, S.CONTINENT, S.STATE, S.STATE_REASON, S.BAD_DENSITY,
               S.DENSITY_PERCENTILE, S.X, S.Y]
PROVENANCE_KEY = "cxrviz:provenance"
_server_lock = threading.Lock()
_server_started = False


def view_masks(store: Store, s: dict) -> dict:
    """The figure settings (figure.parse_args's dict, which the export tab builds too) -> per
    image: passes the filters and is among `images` when given (keep), is inside the day range
    (in_days, None: no range), and is drawn and counted (shown: kept, in the range, and not of
    a colour category hidden in the legend)."""
    keep = store.mask(s["filters"])
    if s.get("images") is not None:  # the box / lasso selection
        only = np.zeros(len(keep), bool)
        only[[store.position[i] for i in s["images"]]] = True
        keep &= only
    days = s["days"]
    in_days = store.day_mask(days["align"], days["from"], days["to"])
    shown = keep & ~hidden_mask(store, s["color"], s["hidden"])
    return {"keep": keep, "in_days": in_days,
            "shown": shown if in_days is None else shown & in_days}


def figure_args(s: dict, masks: dict) -> dict:
    """paper_figure's arguments for the settings (the page and the command draw alike)."""
    return {"keep": masks["keep"], "in_days": masks["in_days"], "color_by": s["color"],
            "patients": s["patients"], "trajectories": s["trajectories"],
            "hidden": s["hidden"], "density": s["density"],
            "density_style": s.get("density_style", "heatmap"),
            "filtered_mode": "dim" if s["dim"] else "hide", "align": s["days"]["align"]}


def settings_provenance(store: Store, s: dict, masks: dict, command: str) -> dict:
    """provenance() of the images an export of these settings shows."""
    return provenance(store, masks["shown"], filters=s["filters"], days=s["days"],
                      command=command, patients=s["patients"], images=s.get("images"),
                      view={"color": s["color"], "preset": s["preset"],
                            "density": s["density"],
                            "density_style": s.get("density_style", "heatmap"), "dim": s["dim"],
                            "hidden": list(s["hidden"]), "trajectories": s["trajectories"]})


def provenance(store: Store, keep: np.ndarray, *, filters: dict | None = None,
               days: dict | None = None, view: dict | None = None, command: str | None = None,
               patients=None, images=None) -> dict:
    """What made an export, as JSON-ready data."""
    m = store.artifact.manifest
    w = store.artifact.weights
    k = len(np.unique(store.patient_index[keep]))
    defaults = store.default_filters()
    active = {key: v for key, v in (filters or {}).items() if v != defaults.get(key)}
    return {
        "artifact": store.artifact.artifact_id,
        "weights": {"name": w.label, "kind": w.kind, "sha256": w.sha256,
                    "sha256_prefix": w.short_sha, "pretrained": w.pretrained,
                    "precision": w.precision, "batch_size": w.batch_size},
        "umap": {k_: m[S.M_UMAP].get(k_) for k_ in ("n_neighbors", "min_dist", "random_state",
                                                     "metric")},
        "kde": {k_: m[S.M_KDE].get(k_) for k_ in ("kernel", "bandwidth", "grid_size")},
        "counts": {"images": int(keep.sum()), "of_images": int(len(keep)), "patients": k},
        "filters": active,
        "day_range": days or {"align": "offset", "from": None, "to": None},
        "view": view or {},
        "patients": list(patients) if patients is not None else None,
        "images": list(images) if images is not None else None,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }


def caption(prov: dict) -> str:
    """One line a figure legend can start from."""
    w = prov["weights"]
    days = prov["day_range"]
    label = day_label(days.get("from"), days.get("to"))
    filters = "; ".join(f"{k}={v}" for k, v in as_pairs(prov["filters"], {}))
    parts = [f"cxrviz · {prov['counts']['images']} of {prov['counts']['of_images']} images, "
             f"{prov['counts']['patients']} patients",
             f"UMAP of the 18 logits of {w['name']} (sha256 {w['sha256_prefix']}"
             f"{'' if w['pretrained'] else ', NOT PRETRAINED'}), n_neighbors "
             f"{prov['umap']['n_neighbors']}, min_dist {prov['umap']['min_dist']}; KDE bandwidth "
             f"{prov['kde']['bandwidth']}"]
    if filters:
        parts.append(f"filters: {filters}")
    hidden = prov.get("view", {}).get("hidden")
    if hidden:
        color = prov["view"]["color"]
        parts.append("hidden in the legend: " + "; ".join(f"{color}={v}" for v in hidden))
    if label:
        parts.append(f"{label} (day 0: {days.get('align', 'offset')})")
    parts.append(f"{prov['artifact']} · {prov['date'][:10]}")
    return " · ".join(parts)


def start_renderer() -> None:
    """kaleido's persistent server: one headless browser for every export of this process."""
    global _server_started
    import kaleido

    with _server_lock:
        if not _server_started:
            kaleido.start_sync_server(silence_warnings=True)
            atexit.register(kaleido.stop_sync_server, silence_warnings=True)
            _server_started = True


def render(fig, size, fmt: str, prov: dict) -> bytes:
    """The figure as PNG (300 dpi, the preset's physical size), SVG or PDF, with provenance."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown image format {fmt!r}; choose one of {FORMATS}")
    start_renderer()
    scale = size.png_scale if fmt == "png" else 1
    with warnings.catch_warnings():  # plotly notes that a running server ignores its options
        warnings.simplefilter("ignore", UserWarning)
        data = fig.to_image(format=fmt, width=size.width, height=size.height, scale=scale)
    text = json.dumps(prov, sort_keys=True)
    if fmt == "png":
        return _png_with(data, text)
    if fmt == "svg":
        return _svg_with(data, text, size)
    return _pdf_with(data, prov, text)


def _png_with(data: bytes, text: str) -> bytes:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    im = Image.open(io.BytesIO(data))
    info = PngInfo()
    info.add_itxt(PROVENANCE_KEY, text)
    info.add_text("Software", "cxrviz")
    buf = io.BytesIO()
    im.save(buf, format="PNG", pnginfo=info, dpi=(EXPORT_DPI, EXPORT_DPI))
    return buf.getvalue()


def _svg_with(data: bytes, text: str, size) -> bytes:
    """Physical size in mm (a viewBox keeps the drawing in px) and the provenance."""
    svg = data.decode("utf-8")
    head_end = svg.index(">", svg.index("<svg")) + 1
    head = svg[:head_end]
    w_mm, h_mm = size.mm
    head = head.replace(f'width="{size.width}"', f'width="{w_mm:.2f}mm"', 1).replace(
        f'height="{size.height}"', f'height="{h_mm:.2f}mm"', 1)
    if "viewBox" not in head:
        head = head[:-1] + f' viewBox="0 0 {size.width} {size.height}">'
    meta = f'<metadata id="{PROVENANCE_KEY}">{escape(text)}</metadata>'
    return (head + meta + svg[head_end:]).encode("utf-8")


def _pdf_with(data: bytes, prov: dict, text: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.add_metadata({"/Title": "cxrviz map", "/Creator": "cxrviz",
                         "/Subject": caption(prov), "/Keywords": text,
                         "/CxrvizProvenance": text})
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def export_image(store: Store, fmt: str, preset: str, *, keep, prov: dict, caption_on=False,
                 **figure_kw) -> tuple:
    """-> (bytes, file name). The untrained-weights warning is drawn on the figure itself."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    fig, size = paper_figure(store, preset, keep=keep, warning=store.warning,
                             caption=caption(prov) if caption_on else None, **figure_kw)
    return render(fig, size, fmt, prov), f"cxrviz-{preset}.{fmt}"


def spreadsheet_text(value):
    """A text cell a spreadsheet would read as a formula, quoted away; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The one CSV writer of exports: text cells (and headers) through spreadsheet_text,
    numeric columns as numbers; lines end in CRLF (RFC 4180), so a cell holding a carriage
    return is quoted, not split."""
    out = frame.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].map(spreadsheet_text, na_action="ignore")
    out.columns = [spreadsheet_text(str(c)) for c in out.columns]
    return out.to_csv(index=False, lineterminator="\r\n").encode()


def _with_weights(store: Store, frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["weights"] = store.artifact.weights.label
    frame["weights_pretrained"] = store.pretrained  # False: positions and outputs mean nothing
    return frame


def export_csv(store: Store, keep: np.ndarray, prov: dict) -> tuple:
    """-> (csv bytes, sidecar JSON bytes, csv name, json name)."""
    cols = CSV_COLUMNS + [S.logit_column(p) for p in store.pathologies]
    frame = _with_weights(store, store.covid.loc[keep, cols])
    return (csv_bytes(frame), json.dumps(prov, indent=2).encode(),
            "cxrviz-images.csv", "cxrviz-images.csv.provenance.json")


def patients_csv(store: Store, keep: np.ndarray, prov: dict) -> tuple:
    """The patients with an image passing the filters (patients.parquet's rows and columns,
    as the Patients table shows them) -> (csv bytes, sidecar JSON bytes, csv name, json name)."""
    rows = store.patients.iloc[np.unique(store.episode_index[keep])]  # one row per episode
    frame = _with_weights(store, rows[store.table_columns])
    return (csv_bytes(frame), json.dumps(prov, indent=2).encode(),
            "cxrviz-patients.csv", "cxrviz-patients.csv.provenance.json")
