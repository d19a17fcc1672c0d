"""The map page's layout in a real browser at the sizes a new user has (1280x800, 1024x768): a
click brings the detail panel into view, the header stays one line with filters active, slider
labels and number boxes never run into each other, no label is cut, and the patients table fits
its column and sorts ids as numbers. Measured with getBoundingClientRect; expected values from
the URL given and from plain pandas on the artifact's parquet files."""
import re

import pandas as pd
import pytest

from cxrviz import ids
from cxrviz import schema as S
from tests.browser_helpers import (browser_errors, click_lonely_point, open_tab, start,
                                   wait_for_detail, wait_until)

SIZES = [(1280, 800), (1024, 768)]
# three chips that took the header to two lines at 1280 px
THREE_FILTERS = "/?continent=Asia&continent=Europe&finding_group=COVID-19&survival=Y&survival=N"
THREE_CHIPS = ["Continent: Asia, Europe", "Finding group: COVID-19",
               "Survival: survived, died"]  # by hand

# Text under `root` that the boxes it sits in cut off at the left or right (ellipsis included):
# a text node's extent against the client box of every ancestor that clips its overflow.
CLIPPED = """
const root = arguments[0], skip = arguments[1] || null, out = [];
const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const text = n.textContent.trim(), el = n.parentElement;
  if (!text || !el.getClientRects().length || (skip && el.closest(skip))) continue;
  const box = el.getBoundingClientRect();
  if (box.width <= 1 || box.height <= 1) continue;  // for screen readers only
  const range = document.createRange(); range.selectNodeContents(n);
  const r = range.getBoundingClientRect();
  if (!r.width) continue;
  for (let a = el; a && a !== document.documentElement; a = a.parentElement) {
    if (getComputedStyle(a).overflowX === 'visible') continue;
    const b = a.getBoundingClientRect();  // what shows: its client box (no border, scrollbar)
    const left = b.left + a.clientLeft, right = left + a.clientWidth;
    const across = r.bottom > b.top && r.top < b.bottom;
    if (across && (r.left < left - 0.5 || r.right > right + 0.5)) { out.push(text); break; }
  }
}
return out;
"""


@pytest.fixture(scope="module")
def images(covid_artifact):
    return pd.read_parquet(covid_artifact.out / S.IMAGES_FILE)


@pytest.fixture(scope="module")
def patients(covid_artifact):
    return pd.read_parquet(covid_artifact.out / S.PATIENTS_FILE)


def rect(duo, selector):
    return duo.driver.execute_script(
        "const e = document.querySelector(arguments[0]); if (!e) return null;"
        "const r = e.getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, "
        "inner: window.innerHeight};", selector)


def clipped(duo, selector, skip=None):
    return duo.driver.execute_script(CLIPPED, duo.find_element(selector), skip)


def header_lines(duo) -> dict:
    """The header's height, its tallest item's and each item's vertical centre."""
    return duo.driver.execute_script(
        "const h = document.querySelector('header');"
        "const kids = [...h.children].filter(e => e.getClientRects().length)"
        "  .map(e => e.getBoundingClientRect());"
        "return {height: h.getBoundingClientRect().height, right: h.getBoundingClientRect().right,"
        "  tallest: Math.max(...kids.map(r => r.height)),"
        "  centres: kids.map(r => (r.top + r.bottom) / 2), rights: kids.map(r => r.right)};")


def chips_shown(duo) -> list:
    return duo.driver.execute_script(
        f"return [...document.querySelectorAll('#{ids.CHIPS} .chip')].map(c => {{"
        "const t = c.querySelector('.chip-text'), r = c.getBoundingClientRect();"
        "return {text: t.textContent, title: c.title, cut: t.scrollWidth > t.clientWidth,"
        "        width: r.width};});")


@pytest.mark.parametrize("width,height", SIZES)
def test_the_header_stays_one_line_with_three_filters(dash_duo, covid_artifact, width, height):
    duo = start(dash_duo, covid_artifact.out, THREE_FILTERS, size=(width, height))
    wait_until(lambda: len(chips_shown(duo)) == 3, what="three chips")
    h = header_lines(duo)
    # one line: every item on the same centre line, the header no taller than its tallest
    # item and its padding (6 px above and below, a 1 px border)
    assert max(h["centres"]) - min(h["centres"]) <= 3, h
    assert h["height"] <= h["tallest"] + 14, h
    assert max(h["rights"]) <= h["right"] + 0.5, h  # nothing pushed out of the window
    # cut short where they must be (more so at 1024 px), never below their label's width; the
    # title holds the whole text
    chips = chips_shown(duo)
    assert [c["title"].split(" (click")[0] for c in chips] == THREE_CHIPS
    assert all(c["width"] >= 60 for c in chips), chips
    assert browser_errors(duo) == []


def test_more_than_three_filters_fold_into_one_more(dash_duo, covid_artifact):
    duo = start(dash_duo, covid_artifact.out,
                "/?continent=Asia&continent=Europe&view=PA&sex=F&survival=Y&age=20-70",
                size=(1024, 768))
    more = wait_until(lambda: duo.driver.find_elements("css selector",
                                                       f"#{ids.CHIPS} .chip-more"),
                      what="a '+n more'")[0]
    # the URL's five, in the sidebar's order: the first three as chips, the rest named
    assert [c["title"].split(" (click")[0] for c in chips_shown(duo)] == [
        "Continent: Asia, Europe", "View: PA", "Sex: F"]
    assert more.text == "+2 more"
    assert more.get_attribute("title") == "Survival: survived; Age: 20–70"
    short = [c for c in chips_shown(duo) if len(c["text"]) <= 12]
    assert len(short) == 2 and not any(c["cut"] for c in short)  # short chips stay whole
    h = header_lines(duo)
    assert h["height"] <= h["tallest"] + 14, h
    assert browser_errors(duo) == []


@pytest.mark.parametrize("width,height", SIZES)
def test_slider_labels_and_ends_never_overlap(dash_duo, covid_artifact, width, height):
    duo = start(dash_duo, covid_artifact.out, "/?age=40-43", size=(width, height))
    marks = duo.driver.execute_script(
        f"return [...document.querySelectorAll('#{ids.DAY_RANGE} .dash-slider-mark')]"
        ".map(m => {const r = m.getBoundingClientRect();"
        "  return {text: m.textContent, left: r.left, right: r.right};})"
        ".sort((a, b) => a.left - b.left);")
    texts = [m["text"] for m in marks]
    assert texts[0] == "≤−30" and texts[-1] == "30+" and "0" in texts, texts
    gaps = [b["left"] - a["right"] for a, b in zip(marks, marks[1:])]
    assert min(gaps) >= 3, list(zip(texts, gaps))
    side = rect(duo, ".sidebar")
    assert marks[0]["left"] >= side["left"] and marks[-1]["right"] <= side["right"], marks
    # the age range's ends: two number boxes, apart, that show the whole number, even for
    # handles three years apart (always-visible tooltips there covered each other)
    ends = duo.driver.execute_script(
        f"return [...document.querySelectorAll('#{ids.F_AGE} input')].map(i => {{"
        "const r = i.getBoundingClientRect();"
        "return {value: i.value, left: r.left, right: r.right, width: r.width,"
        "        fits: i.scrollWidth <= i.clientWidth};});")
    assert [e["value"] for e in ends] == ["40", "43"], ends
    assert all(e["width"] > 0 and e["fits"] for e in ends), ends
    assert ends[1]["left"] - ends[0]["right"] >= 20, ends
    tooltips = duo.driver.execute_script(
        f"return document.querySelectorAll('#{ids.F_AGE} .dash-slider-tooltip.always-visible')"
        ".length;")
    assert tooltips == 0
    assert browser_errors(duo) == []


LONG_NAME = "covid-350a-e73d6e89fcd781b8afd159cf533358-jumbo-1"  # its file name: 48 characters


@pytest.mark.parametrize("width,height", SIZES)
def test_no_label_is_cut(dash_duo, covid_artifact, width, height):
    duo = start(dash_duo, covid_artifact.out,
                f"{THREE_FILTERS}&color=survival&image={LONG_NAME}", size=(width, height))
    wait_until(lambda: len(chips_shown(duo)) == 3, what="three chips")
    wait_for_detail(duo, "350a")
    assert clipped(duo, ".detail", ".js-plotly-plot") == []  # the file name breaks
    # a multi-value dropdown shows 'Asia, …  2 selected' by Dash's design: not a label
    assert clipped(duo, ".sidebar", ".dash-dropdown-value") == []
    assert clipped(duo, f"#{ids.LEGEND}") == []
    assert clipped(duo, "header", ".chip-text") == []  # chips: see the header's test
    assert browser_errors(duo) == []


@pytest.mark.parametrize("width,height", SIZES)
def test_a_click_brings_the_detail_panel_into_view(dash_duo, covid_artifact, images, width,
                                                   height):
    duo = start(dash_duo, covid_artifact.out, size=(width, height))
    map_top = rect(duo, f"#{ids.MAP}")["top"]
    before = rect(duo, ".detail")
    if width < 1280:
        assert before["top"] >= height, before  # under the map, out of view: the point
    image_id = click_lonely_point(duo)
    patient = images.loc[images[S.IMAGE_ID] == image_id, S.PATIENTID].iloc[0]
    wait_for_detail(duo, patient)

    # the title and the image; below 1280 px, where the facts sit beside the image, them too
    shown = [".detail-title", f"#{ids.DETAIL_IMAGE}"] + ([".facts"] if width < 1280 else [])

    def in_view():
        parts = [rect(duo, s) for s in shown]
        return all(p and p["top"] >= 0 and p["bottom"] <= height for p in parts) and parts

    parts = wait_until(in_view, what=f"{shown} in view")
    assert parts[0]["top"] < height / 3, parts  # the panel's top, not somewhere within it
    if width >= 1280:  # beside the map: nothing moved
        assert rect(duo, f"#{ids.MAP}")["top"] == map_top
    header = rect(duo, "header")
    assert header["top"] == 0  # the page under the header never scrolls
    assert clipped(duo, ".detail", ".js-plotly-plot") == []  # its words (charts apart) fit it
    assert browser_errors(duo) == []


def read_table(duo) -> dict:
    """Walk the patients table top to bottom as a user scrolls it: every row's patient cell as
    rendered, text cut off anywhere in the table, its widths."""
    duo.driver.set_script_timeout(120)
    return duo.driver.execute_async_script(
        "const done = arguments[arguments.length - 1], clippedIn = new Function(arguments[0]);"
        f"const grid = document.getElementById('{ids.TABLE}');"
        f"const api = dash_ag_grid.getApi('{ids.TABLE}'), n = api.getDisplayedRowCount();"
        "const seen = {}, cut = new Set(); let i = 0;"
        "function look() {"
        "  for (const row of grid.querySelectorAll('.ag-pinned-left-cols-container .ag-row'))"
        "    seen[row.getAttribute('row-index')] = row.textContent.trim();"
        "  for (const t of clippedIn(grid)) cut.add(t);"
        "  if (i >= n) {"
        "    const v = grid.querySelector('.ag-center-cols-viewport');"
        "    return done({n, seen, cut: [...cut], scroll: v.scrollWidth, width: v.clientWidth});"
        "  }"
        "  api.ensureIndexVisible(Math.min(i, n - 1), 'top'); i += 6;"
        "  setTimeout(() => requestAnimationFrame(look), 60);"
        "}"
        "look();", CLIPPED)


@pytest.mark.parametrize("width,height", SIZES)
def test_the_patients_table_fits_and_sorts_ids_as_numbers(dash_duo, covid_artifact, patients,
                                                          width, height):
    duo = start(dash_duo, covid_artifact.out, size=(width, height))
    open_tab(duo, "Patients")
    wait_until(lambda: duo.driver.execute_script(
        f"return document.querySelector('#{ids.TABLE} .ag-root-wrapper') && "
        f"dash_ag_grid.getApi('{ids.TABLE}').getDisplayedRowCount();") == len(patients),
        what="the table's rows")
    header = duo.driver.find_element(
        "css selector", f"#{ids.TABLE} .ag-header-cell[col-id='{S.PATIENTID}']")
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", header)
    header.find_element("css selector", ".ag-header-cell-label").click()  # sort ascending
    wait_until(lambda: header.get_attribute("aria-sort") == "ascending", what="sorted")
    table = read_table(duo)
    shown = [table["seen"][str(i)] for i in range(table["n"])]
    # ids are numbers, some with a letter after them (311a, 311b): by the number, then the text
    expected = sorted(patients[S.PATIENTID],
                      key=lambda pid: (int(re.match(r"\d+", pid).group()), pid))
    assert shown == expected  # 2, 3 ... 9, 10, 11 ... 100 ... 311, 311a, 311b, 312
    assert table["scroll"] <= table["width"], table  # no horizontal scrollbar
    assert table["cut"] == []  # no header or cell cut off ("survivec")
    bar = duo.driver.execute_script(
        f"return document.querySelector('#{ids.TABLE} .ag-body-horizontal-scroll')"
        ".getBoundingClientRect().height;")
    assert bar == 0
    assert browser_errors(duo) == []
