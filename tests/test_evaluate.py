"""The LOCO evaluation: label counts by a second route (plain pandas on metadata.csv), sources
never on both sides, positive and negative controls, summary = mean of splits, reuse, and the
page in a browser (its own server process)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrviz import schema as S
from cxrviz.compute import evaluate as E

ROOT = Path(__file__).resolve().parents[1]
# Findings of the June 2020 snapshot, sorted by hand (SCHEMA.md and the paper's taxonomy)
VIRAL = {"COVID-19", "COVID-19, ARDS", "SARS", "Varicella", "Influenza", "MERS"}
BACTERIAL = {"Streptococcus", "Klebsiella", "Legionella", "Mycoplasma Bacterial Pneumonia",
             "Bacterial", "E.Coli", "Chlamydophila"}
OTHER_PNEUMONIA = {"SARS", "Varicella", "Influenza", "Pneumocystis", "Lipoid", "Pneumonia",
                   *BACTERIAL}


@pytest.fixture(scope="module")
def evaluated(covid_artifact, dataset, tmp_path_factory):
    """A copy of the session artifact, evaluated by the command as a user runs it."""
    art = tmp_path_factory.mktemp("eval") / "covid"
    shutil.copytree(covid_artifact.out, art)
    done = subprocess.run([sys.executable, "-m", "precompute.evaluate", "--artifact", str(art),
                           "--dataset", str(dataset), "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return art


@pytest.fixture(scope="module")
def meta(dataset):
    """metadata.csv: PA / AP X-rays whose image file is present, read with plain pandas."""
    m = pd.read_csv(dataset / "metadata.csv", dtype=str, keep_default_na=False)
    m = m[(m["modality"] == "X-ray") & m["view"].isin(["PA", "AP"])]
    m = m[[(dataset / "images" / f).is_file() for f in m["filename"]]]
    m["day"] = pd.to_numeric(m["offset"], errors="coerce")
    for c in ("survival", "intubated", "intubation_present", "went_icu", "in_icu"):
        m[c] = m[c].str.strip().str.upper()
    return m


def counts(y: pd.Series) -> dict:
    return {"n_true": int((y == 1).sum()), "n_false": int((y == 0).sum())}


def test_label_counts_match_a_second_route(evaluated, meta, dataset):
    info = json.loads((evaluated / S.EVAL_DIR / S.EVAL_INFO).read_text())
    early = meta[(meta["day"] > 0) & (meta["day"] < 8)]
    f = early["finding"]
    expected = {
        "covid": counts(pd.concat([pd.Series(1, index=f[f.str.contains("COVID-19")].index),
                                   pd.Series(0, index=f[f.isin(OTHER_PNEUMONIA)].index)])),
        "viral_bacterial": counts(pd.concat([pd.Series(1, index=f[f.isin(VIRAL)].index),
                                             pd.Series(0, index=f[f.isin(BACTERIAL)].index)])),
    }
    for task, column, leave_out in (("survival", "survival", "intubation_present"),
                                    ("icu", "went_icu", "in_icu"),
                                    ("intubated", "intubated", "intubation_present")):
        rows = early[early[leave_out] != "Y"]
        expected[task] = {"n_true": int((rows[column] == "Y").sum()),
                          "n_false": int((rows[column] == "N").sum())}
    scores = pd.read_csv(dataset / "annotations" / "covid-severity-scores.csv", comment="#")
    scored = meta["filename"].isin(scores["filename"]).sum()
    expected["geographic_extent"] = expected["opacity"] = {"n": int(scored)}
    got = {k: v for k, v in info["label_counts"].items() if k != "deterioration"}
    assert got == expected
    assert expected["icu"] == {"n_true": 16, "n_false": 25}  # and by hand: see README's note


def test_icu_stay_asia_split_is_the_papers(evaluated):
    splits = pd.read_csv(evaluated / S.EVAL_DIR / S.EVAL_SPLITS)
    asia = splits[(splits["task"] == "icu") & (splits["test_region"] == "Asia")]
    assert set(zip(asia["n_true"], asia["n_false"])) == {(1, 9)}  # paper, Appendix C.2


def test_no_source_on_both_sides_of_any_split(evaluated):
    folds = pd.read_parquet(evaluated / S.EVAL_DIR / S.EVAL_FOLDS)
    images = pd.read_parquet(evaluated / S.IMAGES_FILE).set_index(S.IMAGE_ID)
    doi = images[S.DOI].str.strip().str.lower()
    source = doi.where(doi != "", images[S.URL].str.strip())
    folds["source"] = folds[S.IMAGE_ID].map(source)
    assert len(folds) and folds["source"].notna().all()
    for _, split in folds.groupby(["task", "features", "test_region"]):
        train = set(split.loc[split["role"] == "train", "source"])
        test = set(split.loc[split["role"] == "test", "source"])
        assert train and test and not train & test


def test_summary_means_are_the_means_of_the_splits(evaluated):
    summary = pd.read_csv(evaluated / S.EVAL_DIR / S.EVAL_SUMMARY)
    splits = pd.read_csv(evaluated / S.EVAL_DIR / S.EVAL_SPLITS)
    done = splits[splits["left_out"].isna()]
    for metric in ("auroc", "auprc", "pearson", "r2", "mae"):
        by_hand = done.groupby(["task", "features"])[metric].agg(["mean", lambda v: v.std(ddof=0)])
        merged = summary.set_index(["task", "features"]).join(by_hand, how="inner")
        merged = merged[merged["mean"].notna()]
        assert len(merged)
        np.testing.assert_allclose(merged[f"{metric}_mean"], merged["mean"], rtol=1e-9)
        np.testing.assert_allclose(merged[f"{metric}_std"], merged["<lambda_0>"], rtol=1e-9,
                                   atol=1e-12)


def _regions_and_sources(n, rng):
    """Four continents of 10 research groups each (a group publishes from one continent), and
    3 groups that appear on two continents, so the source rule has rows to drop."""
    regions = np.array(["Asia", "Europe", "America", "Oceania"])[rng.integers(4, size=n)]
    sources = np.array([f"{r}-{k}" for r, k in zip(regions, rng.integers(10, size=n))],
                       dtype=object)
    sources[:9] = ["shared-0", "shared-1", "shared-2"] * 3
    return regions, sources


def test_positive_control_a_feature_equal_to_the_label_scores_one():
    rng = np.random.default_rng(0)
    y = rng.integers(2, size=300).astype(float)
    regions, sources = _regions_and_sources(300, rng)
    splits = [s for s in E.loco(y[:, None], y, regions, sources, "classification")
              if "auroc" in s]
    assert len(splits) == 4 and all(s["auroc"] == 1.0 for s in splits)


def test_negative_control_shuffled_labels_score_about_a_half():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 18))
    y = (X[:, 0] > 0).astype(float)
    regions, sources = _regions_and_sources(300, rng)
    means = []
    for seed in range(20):
        shuffled = np.random.default_rng(seed).permutation(y)
        aurocs = [s["auroc"] for s in E.loco(X, shuffled, regions, sources, "classification")
                  if "auroc" in s]
        means.append(np.mean(aurocs))
    assert 0.45 < np.mean(means) < 0.55
    real = [s["auroc"] for s in E.loco(X, y, regions, sources, "classification") if "auroc" in s]
    assert np.mean(real) > 0.95  # the same protocol does see a real signal


def test_a_rerun_reuses_its_results(evaluated, dataset):
    info = evaluated / S.EVAL_DIR / S.EVAL_INFO
    before = (info.read_bytes(), info.stat().st_mtime_ns)
    done = subprocess.run([sys.executable, "-m", "precompute.evaluate", "--artifact",
                           str(evaluated), "--dataset", str(dataset), "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "up to date" in done.stdout
    assert (info.read_bytes(), info.stat().st_mtime_ns) == before


def test_deterioration_labels_by_hand(evaluated):
    images = pd.read_parquet(evaluated / S.IMAGES_FILE)
    y = E.later_course(images)
    p205 = images[images[S.PATIENTID] == "205"].sort_values(S.OFFSET)
    # days 1 and 6 good, ICU from day 11: both deteriorate; day 28 (good, last) has no later
    assert y[p205.index].tolist()[:2] == [1.0, 1.0]
    assert np.isnan(y[p205.index].tolist()[-1])
    p332 = images[images[S.PATIENTID] == "332"].sort_values(S.OFFSET)  # all good, survived
    assert y[p332.index].tolist()[:2] == [0.0, 0.0]


def test_the_page_renders_in_a_browser(dash_br, evaluated):
    from tests.app_helpers import ServerProcess
    from tests.browser_helpers import wait_until

    with ServerProcess(evaluated, "--no-model") as server:
        dash_br.driver.set_window_size(1600, 1000)
        dash_br.driver.get(server.url + "/evaluation")
        wait_until(lambda: dash_br.driver.execute_script(
            "const g = document.querySelector('#eval-roc .js-plotly-plot');"
            "return g && g._fullData && g._fullData.length > 1;"), timeout=60, what="ROC")
        text = dash_br.driver.find_element("css selector", "body").text.replace("\xa0", " ")
        assert "Classification (Table 5)" in text and "Regression: severity scores" in text
        assert "NOT pretrained" in text and "September 2020 collection" in text
        assert "0.81 ± 0.10" in text  # the paper's ICU stay, 18 outputs, beside ours
        rows = dash_br.driver.execute_script(
            "return dash_ag_grid.getApi('eval-splits').getDisplayedRowCount();")
        assert rows == len(pd.read_csv(evaluated / S.EVAL_DIR / S.EVAL_SPLITS))
        assert [e for e in dash_br.get_logs() if "WebGL" not in e["message"]] == []


def test_the_page_speaks_words_and_one_name_per_continent(dash_br, evaluated):
    """No codes on the page (feature, task and column keys of splits.csv), each continent by
    the region table's name (images.parquet's continent column) in our columns, the paper's
    columns and the splits alike, and the ROC legend outside the plot it explains."""
    from tests.app_helpers import ServerProcess
    from tests.browser_helpers import wait_until

    splits = pd.read_csv(evaluated / S.EVAL_DIR / S.EVAL_SPLITS)
    continents = set(pd.read_parquet(evaluated / S.IMAGES_FILE)[S.CONTINENT]) - {"unknown"}
    codes = {c for c in {*splits["task"], *splits["features"], *splits.columns}  # not words
             if "_" in c or any(ch.isdigit() for ch in c) or c in ("covid", "icu")}
    assert {"lung_opacity", "n_test", "outputs18", "viral_bacterial"} <= codes
    with ServerProcess(evaluated, "--no-model") as server:
        dash_br.driver.set_window_size(1280, 800)
        dash_br.driver.get(server.url + "/evaluation")
        wait_until(lambda: dash_br.driver.execute_script(
            "const g = document.querySelector('#eval-roc .js-plotly-plot');"
            "return g && g._fullData && g._fullData.length > 1;"), timeout=60, what="ROC")
        page = dash_br.driver.execute_script("""
            const api = dash_ag_grid.getApi('eval-splits'), cells = [];
            api.forEachNode(n => cells.push(...Object.values(n.data).map(String)));
            const cols = api.getColumnDefs().map(c => c.headerName);
            const regions = Array.from(document.querySelectorAll('.eval-table td.regions'))
              .map(td => td.textContent);
            const tables = Array.from(document.querySelectorAll('.eval-table td'))
              .map(td => td.textContent);
            const g = document.querySelector('#eval-roc .js-plotly-plot');
            const s = g._fullLayout._size, box = g.getBoundingClientRect();
            const legend = g.querySelector('g.legend').getBoundingClientRect();
            return {cells, cols, regions, tables,
                    plot: {x0: box.left + s.l, y0: box.top + s.t, x1: box.left + s.l + s.w,
                           y1: box.top + s.t + s.h},
                    legend: {x0: legend.left, y0: legend.top, x1: legend.right,
                             y1: legend.bottom},
                    names: g._fullData.map(t => t.name)};""")
    shown = set(page["cells"]) | set(page["cols"]) | set(page["tables"])
    assert sorted(codes & shown) == []  # e.g. lung_opacity, outputs18, n_test, viral_bacterial
    assert "test images" in page["cols"] and "Lung Opacity output" in page["cells"]
    named = {r.strip() for cell in page["regions"] for r in cell.split(",") if r.strip() != "–"}
    assert len(page["regions"]) > 20 and "America" in named  # ours and the paper's columns
    assert named <= continents  # the region table's names on both sides: never "Americas"
    assert {c for c in page["cells"] if c in continents | {"Americas"}} <= continents
    legend, plot = page["legend"], page["plot"]
    assert legend["y0"] >= plot["y1"]  # below the plot: it covers no curve
    assert sum(n.split(":")[0] in continents for n in page["names"]) >= 2


def test_pixels_with_the_papers_mlp(covid_artifact, dataset, tmp_path):
    """--pixels: the 224x224 input (the precompute's own preprocessing) into the paper's MLP."""
    art = tmp_path / "covid"
    shutil.copytree(covid_artifact.out, art, ignore=shutil.ignore_patterns("display"))
    (art / S.DISPLAY_DIR).mkdir()
    done = subprocess.run([sys.executable, "-m", "precompute.evaluate", "--artifact", str(art),
                           "--dataset", str(dataset), "--tasks", "icu", "--features",
                           "prevalence", "--pixels", "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    splits = pd.read_csv(art / S.EVAL_DIR / S.EVAL_SPLITS)
    pixels = splits[splits["features"] == "pixels"]
    assert set(pixels["params"]) == {"5017801"} and set(pixels["method"]) == {"MLP"}
    base = splits[splits["features"] == "prevalence"]
    assert pixels["n_test"].tolist() == base["n_test"].tolist()  # the same folds
    assert pixels["auroc"].notna().sum() == 2  # Asia and Europe, as the paper
