"""At scale (#16): UMAP fitted on a seeded sample with the rest transformed (recorded, and
placement still consistent), the binned density against sklearn's exact KDE, and the time order
and trajectories against plain pandas."""
import numpy as np
import pandas as pd
import pytest

from cxrviz import schema as S
from cxrviz.compute.density import EXACT_MAX_IMAGES, BadStateDensity
from cxrviz.compute.placement import Placer
from cxrviz.compute.timeline import ORDER_COLUMNS, last_image_ids, time_order
from cxrviz.compute.trajectories import build_trajectories
from cxrviz.io.artifact import read_artifact

FIT_SAMPLE = 300  # of the collection's 559 images


@pytest.fixture(scope="module")
def full(covid_artifact):
    return read_artifact(covid_artifact.out)


@pytest.fixture(scope="module")
def sampled(full, dataset, session_cache, tmp_path_factory):
    """The collection again, UMAP fitted on 300 of its images (model outputs from the cache)."""
    from precompute.pipeline import Config, build_artifact

    out = tmp_path_factory.mktemp("sampled") / "covid-sampled"
    build_artifact(Config(dataset=str(dataset), out=str(out), weights="random",
                          cache_dir=str(session_cache), progress=False,
                          umap_fit_sample=FIT_SAMPLE))
    return read_artifact(out)


def logits_of(art) -> np.ndarray:
    return art.images[[S.logit_column(p) for p in art.pathologies]].to_numpy(np.float32)


def test_umap_fit_sample_is_recorded_and_is_umap_learns_fit_and_transform(sampled, full):
    u = sampled.manifest[S.M_UMAP]
    assert (u[S.U_FIT_ROWS], u[S.U_N_FIT], u[S.U_N_TRANSFORMED], u[S.U_SAMPLE_SEED],
            u[S.U_FIT_SAMPLE]) == (S.UMAP_FIT, FIT_SAMPLE, 559 - FIT_SAMPLE, 0, FIT_SAMPLE)
    fit = sampled.images[S.UMAP_FIT]
    assert fit.dtype == bool and int(fit.sum()) == FIT_SAMPLE
    fit = fit.to_numpy()
    # the same images and model outputs as the map fitted on all of them; states do not
    # depend on positions
    assert sampled.images[S.IMAGE_ID].tolist() == full.images[S.IMAGE_ID].tolist()
    np.testing.assert_array_equal(logits_of(sampled), logits_of(full))
    assert sampled.images[S.STATE].tolist() == full.images[S.STATE].tolist()
    assert S.UMAP_FIT not in full.images.columns
    assert full.manifest[S.M_UMAP][S.U_N_TRANSFORMED] == 0
    # second route: umap-learn itself, fitted on the marked rows with the manifest's
    # parameters, gives their stored positions, and its transform gives the others'
    import umap

    logits, xy = logits_of(sampled), sampled.images[[S.X, S.Y]].to_numpy()
    reducer = umap.UMAP(n_components=2, n_neighbors=u["n_neighbors"], min_dist=u["min_dist"],
                        random_state=u["random_state"], transform_seed=u["transform_seed"],
                        n_jobs=1).fit(logits[fit])
    np.testing.assert_array_equal(reducer.embedding_, xy[fit])
    diag = np.hypot(*np.ptp(xy, axis=0))
    moved = np.hypot(*(reducer.transform(logits[~fit]) - xy[~fit]).T)
    assert moved.max() < 1e-4 * diag


def test_placement_transforms_against_the_fit_sample(sampled, dataset):
    fit = sampled.images[S.UMAP_FIT].to_numpy()
    placer = Placer(sampled)
    np.testing.assert_array_equal(placer.umap.train, logits_of(sampled)[fit])
    np.testing.assert_array_equal(placer.umap.embedding,
                                  sampled.images.loc[fit, [S.X, S.Y]].to_numpy(np.float32))
    placer.load()
    xy = sampled.images[[S.X, S.Y]].to_numpy()
    diag = np.hypot(*np.ptp(xy, axis=0))
    transformed = sampled.images[~fit].drop_duplicates(S.FILENAME, keep=False)
    shifts = []
    for _, row in transformed.iloc[np.linspace(0, len(transformed) - 1, 8).astype(int)].iterrows():
        placed = placer.place((dataset / "images" / row[S.FILENAME]).read_bytes())
        np.testing.assert_array_equal(
            placed.logits, row[[S.logit_column(p) for p in sampled.pathologies]].to_numpy(
                np.float32))
        shifts.append(np.hypot(placed.x - row[S.X], placed.y - row[S.Y]) / diag)
    # an image umap-learn transformed at build time, placed again from its own outputs, lands
    # beside its point (as a fitted image does: tests/test_place.py)
    assert np.median(shifts) < 0.025 and max(shifts) < 0.06, shifts


def test_fit_sample_below_four_is_a_usage_error(capsys):
    from precompute.__main__ import EXIT_USAGE, main

    assert main(["--dataset", "x", "--umap-fit-sample", "3"]) == EXIT_USAGE
    assert "--umap-fit-sample" in capsys.readouterr().err


def test_the_collection_keeps_the_exact_density(full):
    assert len(full.images) <= EXACT_MAX_IMAGES
    assert full.manifest[S.M_KDE]["method"] == "exact"


def clustered_map(n: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 6, size=(10, 2))
    which = rng.integers(10, size=n)
    xy = centers[which] + rng.normal(0, 1.2, size=(n, 2))
    bad = rng.random(n) < rng.random(10)[which] * 0.5
    return xy, bad


def by_count(values: np.ndarray) -> np.ndarray:
    """% of all values at or below each value, counted."""
    ordered = np.sort(values)
    return 100.0 * np.searchsorted(ordered, values, side="right") / len(values)


def test_binned_density_agrees_with_sklearns_exact_kde():
    from sklearn.neighbors import KernelDensity

    xy, bad = clustered_map(EXACT_MAX_IMAGES + 2000)
    kde = BadStateDensity().fit(xy[bad])
    values, stored = kde.at_map(xy)
    assert kde.params()["method"] == "binned"
    exact_kde = KernelDensity(kernel="gaussian", bandwidth=1.0).fit(xy[bad])
    exact = np.exp(exact_kde.score_samples(xy))
    assert np.abs(values - exact).max() < 2e-3 * exact.max()
    points = np.abs(by_count(values) - by_count(exact))  # density percentile points
    assert np.median(points) < 0.05 and points.max() < 0.5, (np.median(points), points.max())
    gx, gy, gz = (stored[k] for k in (S.DENSITY_X, S.DENSITY_Y, S.DENSITY_Z))
    mx, my = np.meshgrid(gx, gy)
    nodes = np.exp(exact_kde.score_samples(np.column_stack([mx.ravel(), my.ravel()])))
    assert np.abs(gz.ravel() - nodes).max() < 2e-3 * nodes.max()
    # up to EXACT_MAX_IMAGES images the density is sklearn's, exactly
    small = BadStateDensity().fit(xy[bad][:300])
    values, _ = small.at_map(xy[:EXACT_MAX_IMAGES])
    assert small.params()["method"] == "exact"
    np.testing.assert_allclose(values, np.exp(KernelDensity(bandwidth=1.0).fit(
        xy[bad][:300]).score_samples(xy[:EXACT_MAX_IMAGES])), rtol=1e-9)


def episodes_frame(n: int = 3000, seed: int = 5) -> pd.DataFrame:
    """Episodes with ties in day and file name, undated images, images in no episode (None and
    ""), and times for some episodes (a MIMIC-like source beside a COVID-like one)."""
    rng = np.random.default_rng(seed)
    episode = rng.integers(0, 400, n).astype(str).astype(object)
    episode[rng.random(n) < 0.05] = None
    episode[rng.random(n) < 0.02] = ""
    offset = rng.integers(0, 6, n).astype(float)
    offset[rng.random(n) < 0.1] = np.nan
    timed = np.char.startswith(np.where(episode == None, "x", episode).astype(str), "1")  # noqa: E711
    time = pd.Series(pd.to_datetime("2024-01-01") + pd.to_timedelta(
        rng.integers(0, 4, n), unit="D"))
    time[~timed | (rng.random(n) < 0.1)] = pd.NaT
    return pd.DataFrame({
        S.IMAGE_ID: [f"i{k:05d}" for k in rng.permutation(n)],
        S.PATIENTID: [f"p{e}" for e in episode], S.EPISODE: episode, S.TIME: time,
        S.OFFSET: offset,
        S.FILENAME: [f"f{k}.jpg" if k >= 0 else None for k in rng.integers(-1, 40, n)],
        S.SURVIVAL: rng.choice([S.YES, S.NO, S.UNKNOWN], n),
        S.STATE: rng.choice(list(S.STATES), n)})


def plain_order_key(row):
    """sort_values' order with missing values last, written out for one row."""
    def last(v):
        return (1, 0) if pd.isna(v) else (0, v)
    return (last(row[S.TIME]), last(row[S.OFFSET]), last(row[S.FILENAME]), row[S.IMAGE_ID])


def test_time_order_is_sort_values_with_missing_last():
    frame = episodes_frame()
    for by in (S.EPISODE, S.PATIENTID):
        expected = frame.sort_values([by, *ORDER_COLUMNS[1:]], na_position="last",
                                     kind="mergesort")
        assert time_order(frame, by=by).index.tolist() == expected.index.tolist()


def test_trajectories_and_last_images_equal_a_plain_loop():
    frame = episodes_frame()
    edges, last = [], set()
    for episode in sorted(e for e in frame[S.EPISODE].dropna().unique()):
        rows = sorted(frame[frame[S.EPISODE] == episode].to_dict("records"), key=plain_order_key)
        dated = [r for r in rows if not (pd.isna(r[S.OFFSET]) and pd.isna(r[S.TIME]))]
        if dated:
            last.add(dated[-1][S.IMAGE_ID])
        elif len(rows) == 1:
            last.add(rows[0][S.IMAGE_ID])
        if episode == "":
            continue
        with_day = [r for r in rows if not pd.isna(r[S.OFFSET])]
        for a, b in zip(with_day, with_day[1:]):
            edges.append((a[S.PATIENTID], episode, a[S.IMAGE_ID], b[S.IMAGE_ID], a[S.OFFSET],
                          b[S.OFFSET], b[S.STATE], with_day[-1][S.SURVIVAL]))
    built = build_trajectories(frame)
    assert list(built.columns) == list(S.TRAJECTORY_COLUMNS)
    assert [tuple(r) for r in built.itertuples(index=False)] == edges
    assert last_image_ids(frame) == last
