"""Time: alignment on hand-checked patients, patients.parquet against a second computation, day
ranges, the cohort summary and trajectories drawn for a day range."""
import numpy as np
import pandas as pd
import pytest

from cxrviz import figures, ids
from cxrviz import schema as S
from cxrviz.compute.timeline import aligned_days, event_offsets
from cxrviz.figures.time import cohort_summary, patient_series, runs
from cxrviz.io.artifact import read_artifact
from cxrviz.store import Store

# metadata.csv by hand: patient 205 has images on days 1, 6, 11, 13, 20, 24, 28; in ICU (and so
# in a bad state) on days 11-24; survived. Patient 332: days 0, 6, 12, never in a bad state.
DAYS_205 = [1, 6, 11, 13, 20, 24, 28]


@pytest.fixture(scope="module")
def art(covid_artifact):
    return read_artifact(covid_artifact.out)


@pytest.fixture(scope="module")
def store(art):
    return Store.from_artifact(art).warm()


def days_of(images, patient, align):
    rows = images[images[S.PATIENTID] == patient].sort_values([S.OFFSET, S.FILENAME])
    return aligned_days(images, align).loc[rows.index].tolist()


@pytest.mark.parametrize("align,expected", [
    ("offset", DAYS_205),
    ("first", [d - 1 for d in DAYS_205]),
    ("first_bad", [d - 11 for d in DAYS_205]),
    ("last", [d - 28 for d in DAYS_205]),
])
def test_alignment_of_patient_205(art, align, expected):
    assert days_of(art.images, "205", align) == expected


def test_patients_without_the_event_are_left_out(art, store):
    days = days_of(art.images, "332", "first_bad")
    assert len(days) == 3 and all(np.isnan(days))  # never in a bad state
    assert days_of(art.images, "332", "first") == [0, 6, 12]
    undated = art.images[art.images[S.OFFSET].isna()]
    assert aligned_days(art.images, "first").loc[undated.index].isna().all()
    keep = store.mask({})
    no_bad = art.images[art.images[S.OFFSET].notna()].groupby(S.PATIENTID)[S.STATE].apply(
        lambda states: not (states == "bad").any())
    without = set(no_bad[no_bad].index) | (set(art.images[S.PATIENTID])
                                            - set(art.images.dropna(subset=[S.OFFSET])
                                                  [S.PATIENTID]))
    assert store.left_out(keep, "first_bad") == len(without)
    with pytest.raises(ValueError, match="alignment must be one of"):
        event_offsets(art.images, "tomorrow")


def test_day_range_count_by_pandas(art, store):
    im = art.images
    first = im[im[S.OFFSET].notna()].groupby(S.PATIENTID)[S.OFFSET].transform("min")
    day = im[S.OFFSET] - first.reindex(im.index)
    inside = im[day.between(0, 12)]
    shown = store.day_mask("first", 0, 12)
    assert set(im[shown][S.IMAGE_ID]) == set(inside[S.IMAGE_ID])
    k = inside[S.PATIENTID].nunique()
    assert store.count_text(shown, (0, 12)) == \
        f"{len(inside)} of 559 images, {k} patients · days 0 to 12"
    assert store.day_mask("offset", None, None) is None  # no range: undated images count
    later = store.day_mask("offset", 10, None)
    assert later.sum() == (im[S.OFFSET] >= 10).sum()


def test_patients_parquet_against_a_second_computation(art, dataset):
    """Recomputed from images.parquet with plain pandas, column by column."""
    im = art.images.sort_values([S.PATIENTID, S.OFFSET, S.FILENAME, S.IMAGE_ID])
    p = art.patients.set_index(S.PATIENTID)
    assert len(p) == im[S.PATIENTID].nunique() == 329
    dated = im[im[S.OFFSET].notna()]
    g, gd = im.groupby(S.PATIENTID), dated.groupby(S.PATIENTID)
    pd.testing.assert_series_equal(p[S.P_N_IMAGES], g.size().astype("int64"),
                                   check_names=False)
    assert (p[S.P_N_DATED] == gd.size().reindex(p.index, fill_value=0)).all()
    pd.testing.assert_series_equal(p[S.P_FIRST_DAY], gd[S.OFFSET].min().reindex(p.index),
                                   check_names=False)
    pd.testing.assert_series_equal(p[S.P_LAST_DAY], gd[S.OFFSET].max().reindex(p.index),
                                   check_names=False)
    pd.testing.assert_series_equal(p[S.P_MAX_PCT], g[S.DENSITY_PERCENTILE].max(),
                                   check_names=False)
    first_pct = gd[S.DENSITY_PERCENTILE].first().reindex(p.index).fillna(
        g[S.DENSITY_PERCENTILE].first())
    last_pct = gd[S.DENSITY_PERCENTILE].last().reindex(p.index).fillna(
        g[S.DENSITY_PERCENTILE].last())
    np.testing.assert_allclose(p[S.P_FIRST_PCT], first_pct)
    np.testing.assert_allclose(p[S.P_CHANGE_PCT], last_pct - first_pct)
    bad = dated[dated[S.STATE] == "bad"].groupby(S.PATIENTID)[S.OFFSET].min()
    np.testing.assert_allclose(p[S.P_DAYS_TO_BAD],
                               (bad - gd[S.OFFSET].min()).reindex(p.index))
    icu = g[[S.IN_ICU, S.WENT_ICU]]
    icu_yes = icu.apply(lambda r: ((r[S.IN_ICU] == "Y") | (r[S.WENT_ICU] == "Y")).any())
    icu_no = icu.apply(lambda r: ((r[S.IN_ICU] == "N") | (r[S.WENT_ICU] == "N")).any())
    expected_icu = np.where(icu_yes, "Y", np.where(icu_no, "N", "unknown"))
    assert (p[S.P_ICU].to_numpy() == expected_icu).all()
    assert (p[S.SURVIVAL] == g[S.SURVIVAL].last()).all()
    # patient 205 by hand
    r = p.loc["205"]
    assert (r[S.P_N_IMAGES], r[S.P_FIRST_DAY], r[S.P_LAST_DAY], r[S.P_DAYS_TO_BAD],
            r[S.P_ICU], r[S.SURVIVAL]) == (7, 1, 28, 10, "Y", "Y")


def test_patient_series_of_205(store):
    s = patient_series(store, "205", "offset")
    assert s["days"].tolist() == DAYS_205
    icu = (s["rows"][S.IN_ICU] == "Y").to_numpy()
    assert runs(s["days"], icu) == [(11.0, 24.0)]
    fig = figures.time.patient_series_figure(store, "205", "offset", ["Lung Opacity"])
    series = next(t for t in fig.data if t.name == "bad-state density (percentile)")
    assert list(series.x) == DAYS_205
    icu = [r for r in fig.layout.shapes if r.fillcolor == figures.time.ICU_FILL]
    assert [(r.x0, r.x1) for r in icu] == [(11.0, 24.0)]
    # intubated at the images of days 11, 13 and 20 (metadata.csv): one hatched span
    (hatched,) = [t for t in fig.data if t.name == figures.time.INTUBATION_LABEL]
    xs = [v for v in hatched.x if v is not None]
    assert (min(xs), max(xs)) == (11.0, 20.0) and hatched.fillpattern.shape == "/"
    assert [r.name for r in icu if r.showlegend] == [figures.time.ICU_LABEL]  # in the legend
    outcome = next(t for t in fig.data if t.name.startswith("outcome"))
    assert outcome.x == (28,) and "survived" in outcome.name


def _grey_strip(store, patient, days, span, tmp_path):
    """The greyscale pixels of the patient chart (rendered by kaleido) between two days, over
    density percentiles 10 to 45 (below patient 299's and 205's series lines)."""
    from PIL import Image

    from cxrviz.export import start_renderer

    fig = figures.time.patient_series_figure(store, patient, "offset")
    fig.update_layout(width=500, height=330, showlegend=False,  # margins as set: no automargin
                      margin={"l": 50, "r": 20, "t": 30, "b": 40})
    fig.update_xaxes(range=list(days), automargin=False)
    fig.update_yaxes(automargin=False)
    start_renderer()
    path = tmp_path / f"{patient}.png"
    path.write_bytes(fig.to_image(format="png", width=500, height=330))
    grey = np.asarray(Image.open(path).convert("L"), dtype=float)
    m = fig.layout.margin
    w, h = 500 - m.l - m.r, 330 - m.t - m.b
    col = [round(m.l + (d - days[0]) / (days[1] - days[0]) * w) for d in span]
    row = [round(m.t + (103 - v) / 106 * h) for v in (45, 10)]
    return grey[row[0]:row[1], col[0]:col[1]]


def test_icu_and_intubation_shading_differ_in_greyscale(store, tmp_path):
    """Patient 205 is in ICU, not intubated, between its images of days 20 and 24; patient
    299 intubated, ICU unknown, between days 2 and 3 (metadata.csv). Printed in grey, the ICU
    band is a flat tint and the intubation band a hatch of dark lines on white."""
    icu = _grey_strip(store, "205", (0, 30), (20.5, 23.5), tmp_path)
    intubation = _grey_strip(store, "299", (-0.5, 6.5), (2.15, 2.85), tmp_path)
    assert icu.size > 500 and intubation.size > 500
    assert np.percentile(icu, 95) - np.percentile(icu, 5) < 8  # flat
    assert np.median(icu) < 243  # a tint that shows on white paper
    assert np.percentile(intubation, 95) > 245  # white between the lines
    assert np.percentile(intubation, 5) < 200  # the lines


def test_cohort_medians_by_pandas(art, store):
    keep = store.mask({})
    s = cohort_summary(store, keep, "offset")
    im = art.images[art.images[S.OFFSET].notna()]
    im = im[im.groupby(S.PATIENTID)[S.OFFSET].transform("size") >= 2]
    assert s["patients"] == im[S.PATIENTID].nunique()
    survivors = im[(im[S.SURVIVAL] == "Y") & (im[S.OFFSET] >= 0) & (im[S.OFFSET] < 3)]
    b = int(np.where(s["centers"] == 1.5)[0][0])  # the bin of days 0, 1, 2
    median, q1, q3, n = s["groups"]["Y"][b]
    assert n == len(survivors)
    assert median == pytest.approx(survivors[S.DENSITY_PERCENTILE].median())
    assert q1 == pytest.approx(survivors[S.DENSITY_PERCENTILE].quantile(0.25))


def test_trajectories_in_a_day_range_end_on_the_latest_image(art, store):
    shown = store.day_mask("offset", 0, 12)
    edges = figures.visible_edges(store, shown, {"205"})
    assert edges[S.TO_OFFSET].tolist() == [6, 11]  # days 1->6->11 lie in 0..12
    data = figures.trajectory_data(store, edges, latest_only=True)
    heads = [(x, y) for name in figures.ARROW_TRACES for x, y in zip(*data[name][:2])]
    latest = art.images[(art.images[S.PATIENTID] == "205") & (art.images[S.OFFSET] == 11)]
    assert heads == [pytest.approx((latest[S.X].iloc[0], latest[S.Y].iloc[0]), rel=1e-6)]


def test_edges_in_a_day_range_by_pandas(art, store):
    """Without a patient choice: every edge of trajectories.parquet whose two images lie in
    days 0..12, found with plain pandas, each with its arrowhead 80% of the way along (x, y
    from images.parquet) in the colour of the state it reaches."""
    t, im = art.trajectories, art.images.set_index(S.IMAGE_ID)
    inside = t[t[S.FROM_OFFSET].between(0, 12) & t[S.TO_OFFSET].between(0, 12)]
    assert len(inside) and len(inside) < len(t)
    assert (im.loc[inside[S.FROM_IMAGE_ID], S.OFFSET].to_numpy() == inside[S.FROM_OFFSET]).all()
    edges = figures.visible_edges(store, store.day_mask("offset", 0, 12))
    assert sorted(zip(edges[S.FROM_IMAGE_ID], edges[S.TO_IMAGE_ID])) == \
        sorted(zip(inside[S.FROM_IMAGE_ID], inside[S.TO_IMAGE_ID]))
    a = im.loc[inside[S.FROM_IMAGE_ID], [S.X, S.Y]].to_numpy()
    b = im.loc[inside[S.TO_IMAGE_ID], [S.X, S.Y]].to_numpy()
    expected = a + 0.8 * (b - a)
    data = figures.trajectory_data(store, edges)
    for state in ("good", "bad", "unknown"):
        m = (inside[S.TO_STATE] == state).to_numpy()
        got = np.column_stack(data[f"arrow_{state}"][:2]).astype(float)
        np.testing.assert_allclose(sorted(map(tuple, got)), sorted(map(tuple, expected[m])),
                                   rtol=1e-5, atol=1e-5)


def _bins_by_pandas(images):
    """Images of patients with two or more dated ones, in 3-day bins from day -30 to 30 (days
    beyond pooled into the end bins): counts and medians of the density percentile, per
    outcome."""
    dated = images[images[S.OFFSET].notna()]
    dated = dated[dated.groupby(S.PATIENTID)[S.OFFSET].transform("size") >= 2]
    day = dated[S.OFFSET].clip(-30, 29.5)
    b = ((day + 30) // 3).astype(int)
    return dated.groupby([S.SURVIVAL, b])[S.DENSITY_PERCENTILE].agg(["size", "median"])


def test_cohort_chart_draws_no_median_where_a_bin_has_under_five_images(art, store):
    fig = figures.time.cohort_figure(store, store.mask({}), "offset")
    by_hand = _bins_by_pandas(art.images)
    centers = np.arange(-28.5, 30, 3)
    checked = {"thin": 0, "drawn": 0}
    for group, name in (("Y", "survived"), ("N", "died"), ("unknown", "outcome unknown")):
        (median,) = [t for t in fig.data if t.name == f"{name}: median, IQR"]
        (band,) = [t for t in fig.data if t.type == "scatter" and t.fill == "toself"
                   and t.legendgroup == group]
        band_x = {v for v in band.x if v is not None}
        for k, c in enumerate(centers):
            n, med = (by_hand.loc[(group, k)] if (group, k) in by_hand.index else (0, np.nan))
            assert median.x[k] == c
            if n < 5:  # no median: a gap in the line; no band
                assert np.isnan(median.y[k]) and c not in band_x
                checked["thin"] += 1
            else:
                assert median.y[k] == pytest.approx(med) and c in band_x
                checked["drawn"] += 1
    assert checked["thin"] and checked["drawn"]  # both cases occur in the collection
    assert "5 or more images" in fig.layout.title.subtitle.text


def test_cohort_chart_spans_the_day_slider(covid_artifact, art):
    """The chart's x-axis is the day slider's range (its ends: day -31 and 31), whatever the
    latest reported day (240 in the collection)."""
    from cxrviz.app import create_app
    from cxrviz.appstate import current
    from cxrviz.pages.map import cohort
    from tests.app_helpers import run_callback

    create_app(covid_artifact.out)
    assert art.images[S.OFFSET].max() > 200
    filters = current().store.default_filters()
    for days, expected in ((None, [-31, 31]), ([-31, 31], [-31, 31]), ([0, 14], [0, 14])):
        fig = run_callback(cohort.cohort, {f"{ids.TABS}.value": "cohort"}, filters=filters,
                           align="offset", tab="cohort", days=days)
        assert list(fig.layout.xaxis.range) == expected
        assert list(fig.layout.xaxis2.range) == expected
