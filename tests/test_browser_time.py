"""Time in a real browser: the day range (drawn without server requests), playback, a copied URL,
a patient's series, the cohort chart and the trajectory table. Expected numbers come from plain
pandas on images.parquet."""
import pandas as pd
import pytest
from selenium.webdriver.common.keys import Keys

from cxrviz import figures, ids
from cxrviz import schema as S
from tests.browser_helpers import (browser_errors, callback_requests, click_lonely_point,
                                   count_text, open_tab, start, wait_for_detail, wait_until)

DAYS_205 = [1, 6, 11, 13, 20, 24, 28]  # metadata.csv, by hand


@pytest.fixture(scope="module")
def images(covid_artifact):
    return pd.read_parquet(covid_artifact.out / S.IMAGES_FILE)


def expected_count(rows: pd.DataFrame, label: str) -> str:
    k = rows[S.PATIENTID].nunique()
    return f"{len(rows)} of 559 images, {k} patient{'' if k == 1 else 's'} · {label}"


def handles(duo):
    return duo.driver.find_elements("css selector", f"#{ids.DAY_RANGE} [role=slider]")


def test_moving_the_day_range_changes_the_count_without_server_requests(dash_duo,
                                                                        covid_artifact, images):
    duo = start(dash_duo, covid_artifact.out)
    before = callback_requests(duo)
    upper = handles(duo)[1]
    upper.click()
    for _ in range(25):  # from the open end (31) to day 6
        upper.send_keys(Keys.ARROW_LEFT)
    rows = images[images[S.OFFSET] <= 6]
    wait_until(lambda: count_text(duo) == expected_count(rows, "days up to 6"),
               what=f"count {expected_count(rows, 'days up to 6')!r}, saw {count_text(duo)!r}")
    assert callback_requests(duo) == before  # every frame drawn in the browser
    shown = duo.driver.execute_script(
        "const g = document.querySelector('#map .js-plotly-plot');"
        f"return g._fullData[{figures.TRACE['points']}].x.filter(v => Number.isFinite(v))"
        ".length;")
    assert shown == len(rows)  # undated and later images are hidden
    assert "day_to=6" in duo.driver.current_url
    assert browser_errors(duo) == []


def test_a_copied_url_with_a_day_range_restores_it(dash_duo, covid_artifact, images):
    duo = start(dash_duo, covid_artifact.out, "/?align=first&day_from=0&day_to=12&traj=all")
    im = images[images[S.OFFSET].notna()]
    day = im[S.OFFSET] - im.groupby(S.PATIENTID)[S.OFFSET].transform("min")
    rows = im[day.between(0, 12)]
    wait_until(lambda: count_text(duo) == expected_count(rows, "days 0 to 12"),
               what=f"count, saw {count_text(duo)!r}")
    assert [h.get_attribute("aria-valuenow") for h in handles(duo)] == ["0", "12"]
    checked = duo.driver.find_element("css selector", f"#{ids.ALIGN} input:checked")
    assert checked.get_attribute("value") == "first"
    # a change elsewhere keeps the day range in the URL (server part + browser part)
    duo.select_dcc_dropdown(f"#{ids.COLOR_BY}", index=1)
    wait_until(lambda: "color=" in duo.driver.current_url, what="URL update")
    for part in ("align=first", "day_from=0", "day_to=12"):
        assert part in duo.driver.current_url
    assert browser_errors(duo) == []


def test_playback_draws_frames_in_the_browser(dash_duo, covid_artifact):
    duo = start(dash_duo, covid_artifact.out, "/?day_from=0&day_to=2")
    before = callback_requests(duo)
    seen = {count_text(duo)}
    duo.find_element(f"#{ids.PLAY}").click()
    wait_until(lambda: seen.add(count_text(duo)) or len(seen) >= 4, timeout=30,
               what="three playback frames")
    duo.find_element(f"#{ids.PLAY}").click()  # pause
    assert callback_requests(duo) == before
    assert all(" · days" in s for s in seen)


def test_patient_205_series_has_seven_points_and_the_icu_interval(dash_duo, covid_artifact,
                                                                  images):
    duo = start(dash_duo, covid_artifact.out, "/?patient=205&mode=hide")
    click_lonely_point(duo)
    wait_for_detail(duo, "205")
    series = wait_until(lambda: duo.driver.execute_script(
        f"const g = document.querySelector('#{ids.SERIES} .js-plotly-plot');"
        "if (!g || !g._fullData) return null;"
        "const t = g._fullData.find(d => d.name === 'bad-state density (percentile)');"
        "return t ? {x: Array.from(t.x), shapes: (g._fullLayout.shapes || []).map("
        "s => [s.x0, s.x1, s.fillcolor])} : null;"), what="patient series")
    assert series["x"] == DAYS_205
    from cxrviz.figures.time import ICU_FILL

    assert [s[:2] for s in series["shapes"] if s[2] == ICU_FILL] == [[11, 24]]
    # clicking a point of the series opens that image
    duo.driver.execute_script(
        f"const g = document.querySelector('#{ids.SERIES} .js-plotly-plot');"
        "const i = g._fullData.findIndex(d => d.name === 'bad-state density (percentile)');"
        "g.emit('plotly_click', {points: [{curveNumber: i, pointNumber: 6, "
        "customdata: g._fullData[i].customdata[6]}]});")
    day28 = images[(images[S.PATIENTID] == "205") & (images[S.OFFSET] == 28)][S.IMAGE_ID].iloc[0]
    wait_until(lambda: f"image={day28}" in duo.driver.current_url, what="day 28 selected")
    assert browser_errors(duo) == []


def test_clicking_a_table_row_selects_that_patient(dash_duo, covid_artifact, images):
    duo = start(dash_duo, covid_artifact.out)
    open_tab(duo, "Patients")
    row = wait_until(lambda: duo.driver.find_elements(
        "css selector", f"#{ids.TABLE} .ag-center-cols-container .ag-row[row-index='3']"),
        what="table rows")[0]
    patient = row.get_attribute("row-id")
    pinned = duo.driver.find_element(
        "css selector", f"#{ids.TABLE} .ag-pinned-left-cols-container .ag-row[row-id='{patient}']")
    assert pinned.text.strip() == patient  # the row shows the patient it stands for
    cell = row.find_elements("css selector", ".ag-cell")[0]
    n_rows = duo.driver.execute_script(
        f"return document.querySelector('#{ids.TABLE} .ag-root-wrapper') && "
        f"dash_ag_grid.getApi('{ids.TABLE}').getDisplayedRowCount();")
    assert n_rows == images[S.PATIENTID].nunique()
    cell.click()
    wait_for_detail(duo, patient)
    assert browser_errors(duo) == []


def test_cohort_chart_draws_the_filtered_patients(dash_duo, covid_artifact, images):
    duo = start(dash_duo, covid_artifact.out, "/?continent=Europe")
    open_tab(duo, "Cohort over time")
    title = wait_until(lambda: duo.driver.execute_script(
        f"const g = document.querySelector('#{ids.COHORT_GRAPH} .js-plotly-plot');"
        "return g && g.layout && g.layout.title ? g.layout.title.text : null;"),
        what="cohort chart")
    eu = images[(images[S.CONTINENT] == "Europe") & images[S.OFFSET].notna()]
    n = (eu.groupby(S.PATIENTID).size() >= 2).sum()
    assert f"{n} patients with ≥ 2 dated images" in title
    assert browser_errors(duo) == []


def test_trajectories_of_listed_patients_and_hover_path(dash_duo, covid_artifact, images):
    """'Draw trajectories of these patient ids' draws exactly their edges; hovering a point
    draws its patient's whole path."""
    duo = start(dash_duo, covid_artifact.out, "/?traj=ids&traj_ids=205,332")
    dated = images[images[S.OFFSET].notna()]
    edges = int((dated[dated[S.PATIENTID].isin(["205", "332"])].groupby(S.PATIENTID).size()
                 - 1).sum())
    t = figures.TRACE
    script = ("const g = document.querySelector('#map .js-plotly-plot');"
              "const paths = %s.map(i => g._fullData[i].x.filter(v => Number.isNaN(v)).length);"
              "const heads = %s.map(i => g._fullData[i].x.length);"
              "return [paths.reduce((a, b) => a + b, 0), heads.reduce((a, b) => a + b, 0)];"
              % ([t[n] for n in figures.PATH_TRACES], [t[n] for n in figures.ARROW_TRACES]))
    assert duo.driver.execute_script(script) == [edges, edges] == [8, 8]
    rows = images.reset_index(drop=True)
    i205 = int(rows.index[rows[S.PATIENTID] == "205"][0])
    duo.driver.execute_script(
        "const g = document.querySelector('#map .js-plotly-plot');"
        f"g.emit('plotly_hover', {{points: [{{curveNumber: {t['points']}, "
        f"pointIndex: {i205}, pointNumber: {i205}}}]}});")
    hovered = wait_until(lambda: duo.driver.execute_script(
        f"return document.querySelector('#map .js-plotly-plot')._fullData[{t['hover']}]"
        ".x.length;"), what="hover path")
    assert hovered == 7
    assert browser_errors(duo) == []
