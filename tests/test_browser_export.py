"""The export tab reproduces itself, in a real browser: an SVG exported from the page (with a
trajectory scope, filters, a day range and a category hidden in the legend) and the SVG the
command shown beside it draws, run in a process of its own, hold the same number of points,
line segments and arrowheads; those numbers are counted again with plain pandas."""
import json
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from cxrviz import ids
from cxrviz import schema as S
from tests.browser_helpers import browser_errors, open_tab, start, wait_until
from tests.pandas_counts import day_after_first, trajectory_edges
from tests.svg_geometry import marks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def images(covid_artifact):
    return pd.read_parquet(covid_artifact.out / S.IMAGES_FILE)


def nothing_selected(images):
    """Europe only, filtered-out images hidden, coloured by sex with F hidden in the legend,
    trajectories of 'the selected patient' while none is: points but no trajectory."""
    shown = (images[S.CONTINENT] == "Europe") & (images[S.SEX] != "F")
    return {"points": int(shown.sum()), "segments": 0, "arrowheads": 0}


def chosen_patients(images):
    """Patients 205, 178 and 332 (and an id that is no patient), days 0-20 after each one's
    first image, Europe and Asia dimmed in, state 'unknown' hidden in the legend."""
    drawn = day_after_first(images).between(0, 20) & (images[S.STATE] != "unknown")
    shown = drawn & images[S.CONTINENT].isin(["Europe", "Asia"])
    edges = trajectory_edges(images, shown, ["205", "178", "332"])
    return {"points": int(drawn.sum()),  # dimmed: the filtered-out ones as grey context
            "segments": len(edges), "arrowheads": edges["patient"].nunique()}


CASES = [
    ("/?traj=selected&continent=Europe&mode=hide&color=sex", "F", nothing_selected,
     ["--no-trajectories", "--hide F", "--color sex", "--filter continent=Europe"]),
    ("/?traj=ids&traj_ids=205,178,332,nobody&day_from=0&day_to=20&align=first"
     "&continent=Europe&continent=Asia", "unknown", chosen_patients,
     ["--patients 178,205,332", "--hide unknown", "--align first", "--day-from 0 --day-to 20",
      "--dim"]),
]


@pytest.mark.parametrize("path,hide,expected,parts", CASES)
def test_the_shown_command_redraws_the_exported_svg(dash_duo, covid_artifact, images, tmp_path,
                                                   path, hide, expected, parts):
    duo = start(dash_duo, covid_artifact.out, path)
    item = duo.driver.find_element(
        "xpath", f"//button[contains(@class, 'legend-item')][normalize-space()='{hide}']")
    item.click()
    wait_until(lambda: "off" in item.get_attribute("class"), what=f"{hide} hidden")
    open_tab(duo, "Export")
    command = wait_until(lambda: (lambda t: t if "--hide" in t else None)(
        duo.find_element(f"#{ids.EXPORT_COMMAND}").get_attribute("textContent")),
        what="the figure command")
    for part in parts:
        assert part in command, (part, command)
    folder = Path(duo.download_path)
    before = set(folder.glob("*.svg"))
    duo.driver.find_element("css selector", "button[id*='\"index\":\"svg\"']").click()
    (exported,) = wait_until(lambda: [p for p in set(folder.glob("*.svg")) - before
                                      if p.stat().st_size > 0], timeout=120, what="svg download")
    page_svg = exported.read_bytes()
    prov = json.loads(ET.fromstring(page_svg).find("{http://www.w3.org/2000/svg}metadata").text)
    argv = shlex.split(command)
    assert shlex.split(prov["command"]) == [  # what the file says made it: the same command
        "cxrviz-single.svg" if a == "cxrviz-single.png" else a for a in argv]
    out = tmp_path / "rerun.svg"
    argv[argv.index("--out") + 1] = str(out)
    done = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    want = expected(images)
    assert marks(page_svg) == marks(out.read_bytes()) == want
    assert browser_errors(duo) == []
