"""Figures for papers (PNG / SVG / PDF through kaleido) and CSV of rows, from the same builders."""
from __future__ import annotations

from datetime import date

import numpy as np

from cxrviz import figures
from cxrviz import schema as S
from cxrviz.store import Store

CSV_COLUMNS = [S.IMAGE_ID, S.PATIENTID, S.OFFSET, S.FILENAME, S.VIEW, S.SEX, S.AGE, S.FINDING,
               S.FINDING_GROUP, S.SURVIVAL, S.IN_ICU, S.INTUBATION_PRESENT, S.COUNTRY,
               S.SUBREGION, S.CONTINENT, S.STATE, S.STATE_REASON, S.BAD_DENSITY, S.X, S.Y]


def caption(store: Store, keep: np.ndarray) -> str:
    w = store.artifact.weights
    text = (f"cxrviz · {int(keep.sum())} of {len(keep)} images · UMAP of {len(store.pathologies)}"
            f" logits ({w.label}) · {date.today().isoformat()}")
    return text if store.pretrained else f"{text} · NOT PRETRAINED"


def export_image(store: Store, fmt: str, preset: str, *, keep: np.ndarray, **view) -> tuple:
    """-> (bytes, file name). The untrained-weights banner is part of the figure, so it stays."""
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"unknown image format {fmt!r}")
    fig = figures.map_figure(store, keep=keep, export=True, **view)
    out, width, height, scale = figures.export_figure(fig, preset, caption(store, keep))
    data = out.to_image(format=fmt, width=width, height=height,
                        scale=scale if fmt == "png" else 1)
    return data, f"cxrviz-map-{preset}.{fmt}"


def export_csv(store: Store, keep: np.ndarray) -> tuple:
    cols = CSV_COLUMNS + [S.logit_column(p) for p in store.pathologies]
    frame = store.covid.loc[keep, cols].copy()
    frame["weights"] = store.artifact.weights.label
    frame["weights_pretrained"] = store.pretrained  # False: positions and outputs mean nothing
    return frame.to_csv(index=False).encode(), "cxrviz-images.csv"
