"""The export tab's view and its command: the settings the page builds for an export read back
from the command it shows (same images, trajectories and arrowheads drawn); categories hidden
in the legend and an empty trajectory scope are left out of the figure, the CSV and the
command's re-run alike. Expected counts come from plain pandas on images.parquet."""
import io
import shlex

import numpy as np
import pandas as pd
import pytest

from cxrviz import schema as S
from tests.pandas_counts import day_after_first, trajectory_edges
from tests import test_figures as figure_tests

store, images = figure_tests.store, figure_tests.images  # the same fixtures

VIEW = {"color": "state", "show": ["density", "trajectories", "rsna"],
        "density_style": "heatmap", "opacity": 0.55, "mode": "dim"}
PAGE = {"align": "offset", "day_range": [-31, 31], "scope": "all", "traj_ids": "",
        "selected": None, "selected_data": None, "hidden": []}


def settings(store, images, preset="single", export_scope="filtered", filters=None, view=None,
             **page):
    """The export tab's settings for a page state (`page`: PAGE's keys)."""
    from cxrviz.pages.map.export import figure_settings

    return figure_settings(store, preset=preset, scope=export_scope, caption_on=[],
                           filters={**store.default_filters(), **(filters or {})},
                           view={**VIEW, **(view or {})}, page={**PAGE, **page})


def read_back(store, cmd: str) -> dict:
    """The command line, parsed as `python -m cxrviz.figure` parses it."""
    from cxrviz.figure import parse_args, parser

    argv = shlex.split(cmd)
    assert argv[:3] == ["python", "-m", "cxrviz.figure"]
    return parse_args(parser().parse_args(argv[3:]), store)


def drawn(store, s) -> dict:
    """What the figure of these settings draws: points per trace name, segments, arrowheads."""
    from cxrviz.export import figure_args, view_masks
    from cxrviz.figures.paper import paper_figure

    fig, _ = paper_figure(store, s["preset"], **figure_args(s, view_masks(store, s)))
    out = {"points": 0, "segments": 0, "arrowheads": 0,
           "density": [t.type for t in fig.data if t.type in ("heatmap", "contour")]}
    for t in fig.data:
        if t.type != "scatter" or t.x is None or (len(t.x) and t.x[0] is None):
            continue  # legend entries
        if t.mode == "lines":
            out["segments"] += int(np.isnan(np.asarray(t.x, dtype=float)).sum())
        elif (t.name or "").startswith("into "):
            out["arrowheads"] += len(t.x)
        elif t.xaxis in (None, "x"):
            out["points"] += len(t.x)
    return out


STATES = [  # page states: (what the page holds, in settings() keywords)
    {"scope": "selected"},  # the default above 2,000 edges, with nothing selected
    {"scope": "ids", "traj_ids": "205, 178,nobody", "align": "first", "day_range": [0, 20],
     "hidden": [2], "filters": {"continent": ["Europe", "Asia"]}},
    {"scope": "all", "hidden": [0, 1], "view": {"color": "sex", "mode": "hide"},
     "filters": {"age": [30, 70]}},
    {"scope": "all", "view": {"show": ["density"], "color": "logit:Effusion"}},
    {"scope": "all", "view": {"density_style": "contours"}},  # drawn as the map draws it
    {"scope": "selection", "preset": "figure3"},  # figure3: its patients, then
    {"scope": "ids", "traj_ids": "332", "export_scope": "selection", "day_range": [-31, 10],
     "selected_data": "the map's left half"},
]


def left_half(images) -> dict:
    """A box over the left half of the map, as the map's store holds a box / lasso (polygon in
    map coordinates, the page query it was drawn on)."""
    xs = images[S.X].sort_values().to_numpy()
    x0, x1 = xs[0] - 1, (xs[len(xs) // 2] + xs[len(xs) // 2 + 1]) / 2  # between two points
    y0, y1 = images[S.Y].min() - 1, images[S.Y].max() + 1
    return {"polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "query": ""}


@pytest.mark.parametrize("state", STATES)
def test_the_shown_command_reads_back_to_the_view_the_export_draws(store, images,
                                                                   covid_artifact, state):
    from cxrviz.export import view_masks
    from cxrviz.figure import command

    if state.get("selected_data") == "the map's left half":
        state = {**state, "selected_data": left_half(images)}
    s = settings(store, images, **state)
    cmd = command(covid_artifact.out, "f.png", s, store)
    back = read_back(store, cmd)
    ours, theirs = view_masks(store, s), view_masks(store, back)
    assert (ours["shown"] == theirs["shown"]).all() and (ours["keep"] == theirs["keep"]).all()
    for key in ("preset", "color", "patients", "trajectories", "hidden", "images", "days",
                "density", "density_style", "dim", "caption"):
        assert back[key] == s[key], key
    assert drawn(store, back) == drawn(store, s)
    # the density as the page shows it (its style control), or none
    page_view = {**VIEW, **state.get("view", {})}
    expected = ([] if "density" not in page_view["show"] else
                ["contour" if page_view["density_style"] == "contours" else "heatmap"])
    assert drawn(store, s)["density"] == expected


def test_an_empty_trajectory_scope_draws_none_and_says_so(store, images, covid_artifact):
    """Scope 'the selected patient' with nothing selected: no trajectory on the figure, and the
    command says --no-trajectories (it used to omit --patients and draw every one)."""
    from cxrviz.figure import command

    s = settings(store, images, scope="selected")
    assert "--no-trajectories" in command(covid_artifact.out, "f.png", s, store)
    assert drawn(store, s)["segments"] == drawn(store, s)["arrowheads"] == 0
    every = settings(store, images, scope="all", view={"mode": "hide"})
    n = len(trajectory_edges(images, pd.Series(True, index=images.index)))
    assert drawn(store, every)["segments"] == drawn(store, every)["arrowheads"] == n > 100


def test_hidden_categories_leave_the_figure_and_the_csv(store, images, covid_artifact):
    """Hiding 'unknown' in the state legend, with Europe and Asia only and patients 205, 178 in
    days 0-20 after their first image: counts from plain pandas."""
    from cxrviz.export import export_csv, settings_provenance, view_masks
    from cxrviz.figure import command

    state = STATES[1]
    s = settings(store, images, **state)
    assert s["hidden"] == ["unknown"] and s["patients"] == ["178", "205"]
    day = day_after_first(images)
    shown = (images[S.CONTINENT].isin(["Europe", "Asia"]) & day.between(0, 20)
             & (images[S.STATE] != "unknown"))
    edges = trajectory_edges(images, shown, ["205", "178"])
    assert len(edges) >= 3
    # dim mode: the filtered-out images in the range are grey context, hidden ones not at all
    context = ~images[S.CONTINENT].isin(["Europe", "Asia"]) & day.between(0, 20) & (
        images[S.STATE] != "unknown")
    assert drawn(store, s) == {"points": int(shown.sum() + context.sum()),
                               "segments": len(edges),
                               "arrowheads": edges["patient"].nunique(),  # the latest only
                               "density": ["heatmap"]}
    masks = view_masks(store, s)
    prov = settings_provenance(store, s, masks, command(covid_artifact.out, "f.png", s, store))
    assert prov["counts"]["images"] == int(shown.sum())
    assert prov["view"]["hidden"] == ["unknown"]
    csv, _, _, _ = export_csv(store, masks["shown"], prov)
    rows = pd.read_csv(io.BytesIO(csv))
    assert sorted(rows[S.IMAGE_ID]) == sorted(images.loc[shown, S.IMAGE_ID])


def test_a_box_selection_is_drawn_alone_and_named_in_the_command(store, images,
                                                                 covid_artifact):
    from cxrviz.figure import command

    box = left_half(images)
    xs = images[S.X].sort_values().to_numpy()
    picked = images[images[S.X] <= xs[len(xs) // 2]][S.IMAGE_ID].tolist()  # plain pandas
    s = settings(store, images, export_scope="selection", selected_data=box)
    assert sorted(s["images"]) == sorted(picked) and s["dim"] is False
    assert drawn(store, s)["points"] == len(picked)
    assert f"--images {','.join(s['images'])}" in command(covid_artifact.out, "f.png", s, store)
    assert settings(store, images, export_scope="selection")["images"] == []  # none selected


def test_hostile_page_state_is_read_safely(store, images):
    """The page state reaches the server through a dcc.Store: anything in it is checked."""
    s = settings(store, images, align="tomorrow", day_range=["0", 1e308], scope="<b>",
                 hidden=[True, "1", 99, -1, 1.5], traj_ids=123)
    assert s["days"] == {"align": "offset", "from": None, "to": None}
    assert s["hidden"] == [] and s["trajectories"] is False and s["patients"] is None
