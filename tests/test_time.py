"""Time: alignment on hand-checked patients, patients.parquet against a second computation, day
ranges, the cohort summary and trajectories drawn for a day range."""
import numpy as np
import pandas as pd
import pytest

from cxrviz import figures
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
    assert [(r.x0, r.x1) for r in fig.layout.shapes if r.fillcolor == figures.time.ICU_FILL] == \
        [(11.0, 24.0)]
    outcome = next(t for t in fig.data if t.name.startswith("outcome"))
    assert outcome.x == (28,) and "survived" in outcome.name


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
    everything = figures.trajectory_data(store, figures.visible_edges(store, shown))
    n_heads = sum(len(everything[n][0]) for n in figures.ARROW_TRACES)
    assert n_heads == len(figures.visible_edges(store, shown))  # one per edge without a range
