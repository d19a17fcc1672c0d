"""Time in a real browser: the day range (drawn without server requests), playback, a copied URL,
a patient's series, the cohort chart and the trajectory table. Expected numbers come from plain
pandas on images.parquet."""
import pandas as pd
import pytest
from selenium.webdriver.common.keys import Keys

from cxrviz import ids
from cxrviz import schema as S
from tests.browser_helpers import (browser_errors, callback_requests, click_lonely_point,
                                   count_text, hook, open_tab, start, wait_for_detail,
                                   wait_until)
from tests.pandas_counts import trajectory_edges

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
    shown = hook(duo.driver, "shownIds()")
    assert sorted(shown) == sorted(rows[S.IMAGE_ID])  # undated and later images are hidden
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
    duo = start(dash_duo, covid_artifact.out, "/?day_from=0&day_to=10")
    before = callback_requests(duo)
    seen = {count_text(duo)}
    duo.find_element(f"#{ids.PLAY}").click()
    wait_until(lambda: seen.add(count_text(duo)) or len(seen) >= 4, timeout=30,
               what="three playback frames")
    duo.find_element(f"#{ids.PLAY}").click()  # pause
    assert callback_requests(duo) == before
    assert all(" · days" in s for s in seen)
    assert browser_errors(duo) == []


# Every distinct day range the map is given, as it is drawn (one sample per animation frame).
RECORD_RANGES = """
window.__ranges = [];
(function sample() {
  const v = window.cxrvizMap.view(), last = window.__ranges[window.__ranges.length - 1];
  if (!last || last[0] !== v.lo || last[1] !== v.hi) window.__ranges.push([v.lo, v.hi]);
  window.__sampling = requestAnimationFrame(sample);
})();
"""


def test_play_starts_from_the_chosen_range_and_stops_at_its_end(dash_duo, covid_artifact,
                                                               images):
    duo = start(dash_duo, covid_artifact.out, "/?day_from=3&day_to=9")
    rows = images[images[S.OFFSET].between(3, 9)]
    wait_until(lambda: count_text(duo) == expected_count(rows, "days 3 to 9"),
               what=f"count for days 3 to 9, saw {count_text(duo)!r}")
    assert hook(duo.driver, "view()")["lo"] == 3 and hook(duo.driver, "view()")["hi"] == 9
    duo.driver.execute_script(RECORD_RANGES)
    play = duo.find_element(f"#{ids.PLAY}")
    play.click()
    wait_until(lambda: play.text.strip() != "▶ Play", what="playing")
    wait_until(lambda: play.text.strip() == "▶ Play", timeout=60, what="playback to stop")
    ranges = duo.driver.execute_script(
        "cancelAnimationFrame(window.__sampling); return window.__ranges;")
    frames = ranges[1:]  # after the starting [3, 9]
    assert ranges[0] == [3, 9] and len(frames) >= 3, ranges  # it played, frame by frame
    assert all(lo is not None and hi is not None and 3 <= lo <= hi <= 9
               for lo, hi in frames), ranges  # never outside the chosen range
    assert frames[0][1] < 9, ranges  # from the range's start, not at its end
    assert ranges[-1] == [3, 9], ranges  # stops at the range's end
    his = [hi for _, hi in frames]
    assert his == sorted(his), ranges  # day by day forward
    assert count_text(duo) == expected_count(rows, "days 3 to 9")
    assert "day_from=3" in duo.driver.current_url and "day_to=9" in duo.driver.current_url
    assert browser_errors(duo) == []


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
    assert edges == 8
    pairs = trajectory_edges(images, images[S.OFFSET].notna(), ["205", "332"])
    want = sorted(zip(images.loc[pairs["a"], S.IMAGE_ID], images.loc[pairs["b"], S.IMAGE_ID]))
    assert len(want) == edges
    drawn = wait_until(lambda: hook(duo.driver, "shownEdges()"), what="trajectory edges")
    assert sorted(map(tuple, drawn)) == want
    heads = hook(duo.driver, "arrowheads()")
    assert sorted(map(tuple, heads)) == want  # every step shows its direction
    first_205 = images.loc[images[S.PATIENTID] == "205", S.IMAGE_ID].iloc[0]
    hook(duo.driver, "hover(arguments[0])", first_205)
    path = wait_until(lambda: hook(duo.driver, "hoverPath()"), what="hover path")
    p205 = dated[dated[S.PATIENTID] == "205"].sort_values([S.OFFSET, S.FILENAME])
    assert path == list(p205[S.IMAGE_ID])  # its dated images, in time order
    assert len(path) == 7 == len(DAYS_205)
    assert browser_errors(duo) == []
