"""End to end: `python -m precompute --dataset mimic:DIR --mimic-iv DIR` and `--dataset cohort:DIR`
build artifacts the app opens, with episode, day, ICU, intubation, survival and state per image.

The folders are those of tests/test_mimic_reader.py and tests/test_cohort_reader.py (their
builders, imported); the per-image reader values are theirs (worked by hand there) and the
states and trajectories below are worked by hand from them: bad = in ICU or intubated, or the
episode's last image when it ended in death; good = N / N or the last image of a survived
episode; an image in no episode is never last and draws no edge.
"""
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cxrviz import schema as S
from cxrviz.io.artifact import read_artifact, rebuild_command
from cxrviz.store import Store
from tests.test_cohort_reader import EXPECTED as COHORT_EXPECTED
from tests.test_cohort_reader import export  # noqa: F401  (fixture)
from tests.test_mimic_reader import EXPECTED as MIMIC_EXPECTED
from tests.test_mimic_reader import METADATA, dicom, mimic  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]

MIMIC_STATES = {  # dicom -> state (reader values: tests/test_mimic_reader.py EXPECTED)
    dicom(1): "good",   # in_icu N, intubation N
    dicom(3): "bad",    # in ICU and ventilated
    dicom(4): "good",
    dicom(5): "good",   # last of 20000001, survived
    dicom(6): "good",   # no episode: N / N, never last
    dicom(7): "bad",    # in ICU; also the last image of 20000002, which ended in death
    dicom(10): "good", dicom(11): "good", dicom(12): "good", dicom(13): "good",
    dicom(16): "good",  # no episode
}
MIMIC_EDGES = [(dicom(1), dicom(3)), (dicom(3), dicom(4)), (dicom(4), dicom(5))]
COHORT_STATES = {  # file -> state (reader values: tests/test_cohort_reader.py EXPECTED)
    "images/a1.png": "good",  # N / N, not last
    "images/a2.jpg": "bad",   # ICU and ventilated (bad wins over 'last, survived')
    "images/a3.png": "good",  # the only image of P-A/admission-2, survival unknown, N / N
    "dicom/b1.dcm": "bad",    # in ICU
    "dicom/b2.dcm": "bad",    # last image of P-B/admission-1, which ended in death
    "images/c1.png": "good",  # no episode, N / N
    "images/d1.png": "unknown",
}
COHORT_EDGES = [("a1.png", "a2.jpg"), ("b1.dcm", "b2.dcm")]


def precompute(*args, cache):
    return subprocess.run([sys.executable, "-m", "precompute", *args, "--weights", "random",
                           "--cache-dir", str(cache), "--workers", "0", "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)


def opens_in_the_app(out: Path) -> dict:
    """The store opens the artifact and the map page's layout builds (its own process: one
    artifact per app process)."""
    code = ("import sys, json; from cxrviz.app import create_app; create_app(sys.argv[1], "
            "model=False); from cxrviz.pages import map as page; "
            "from plotly.utils import PlotlyJSONEncoder; "
            "print(len(json.dumps(page.layout(), cls=PlotlyJSONEncoder)))")
    done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.strip().splitlines()[-1]) > 1000
    store = Store.open(out)
    return {"cohort": len(store.covid), "edges": len(store.trajectories)}


def check_per_image(images, key, expected_reader, expected_states):
    for name, (episode, day, icu, intubation, survival) in expected_reader.items():
        row = images.loc[name]
        assert (row[S.EPISODE] if isinstance(row[S.EPISODE], str) else None) == episode, name
        assert (day is None and math.isnan(row[S.OFFSET])) or row[S.OFFSET] == pytest.approx(
            day, abs=1e-6), (name, row[S.OFFSET], day)
        assert (row[S.IN_ICU], row[S.INTUBATION_PRESENT], row[S.SURVIVAL]) == \
            (icu, intubation, survival), name
        assert row[S.STATE] == expected_states[name], (name, row[S.STATE_REASON])
        assert row[S.ROLE] == S.ROLE_COHORT and row[S.SOURCE] == key


def test_mimic_end_to_end(mimic, tmp_path):  # noqa: F811
    cxr, iv = mimic
    out = tmp_path / "art"
    done = precompute("--dataset", f"mimic:{cxr}", "--mimic-iv", str(iv), "--out", str(out),
                      "--limit", "50", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr[-3000:]
    art = read_artifact(out)
    images = art.images.assign(dicom_id=art.images[S.FILENAME].str.removesuffix(".jpg")) \
        .set_index("dicom_id")
    assert sorted(images.index) == sorted(MIMIC_STATES)
    reader = {d: v[:5] for d, v in MIMIC_EXPECTED.items()}
    check_per_image(images, S.SOURCE_MIMIC, reader, MIMIC_STATES)
    assert images.loc[dicom(7), S.STATE_REASON] == (
        "in_icu=Y; last image, survival=N (bad wins over intubation_present=N)")
    assert str(images.loc[dicom(5), S.TIME]) == "2150-03-08 09:30:15.500000"
    edges = art.trajectories
    assert [(a.removeprefix("mimic-"), b.removeprefix("mimic-"))
            for a, b in zip(edges[S.FROM_IMAGE_ID], edges[S.TO_IMAGE_ID])] == MIMIC_EDGES
    assert set(edges[S.EPISODE]) == {"20000001"}
    # every metadata row is counted: 11 embedded + 3 excluded + 4 skipped = 18
    (source,) = art.manifest[S.M_SOURCES]
    assert (source[S.SRC_ROWS], source[S.SRC_EMBEDDED], source[S.SRC_EXCLUDED],
            source[S.SRC_SKIPPED]) == (len(METADATA), 11, 3, 4)
    assert art.manifest[S.M_COUNTS][S.C_EMBEDDED_COVID] == 11
    assert any("credentialed" in n for n in art.manifest[S.M_NOTES])
    assert "embedded mimic: 11 images" in done.stdout
    again = rebuild_command(art.manifest, out)  # what an older schema's refusal would print
    assert f"--dataset mimic:{cxr.resolve()}" in again and f"--mimic-iv {iv.resolve()}" in again
    assert opens_in_the_app(out) == {"cohort": 11, "edges": 3}


def test_cohort_end_to_end(export, tmp_path):  # noqa: F811
    root, _ = export
    out = tmp_path / "art"
    done = precompute("--dataset", f"cohort:{root}", "--out", str(out),
                      cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr[-3000:]
    art = read_artifact(out)
    files = {Path(f).name: f for f in COHORT_STATES}
    images = art.images.set_index(art.images[S.FILENAME].map(files))
    assert sorted(images.index) == sorted(COHORT_STATES)
    reader = {f: (v[1], v[2], v[3], v[4], v[5]) for f, v in COHORT_EXPECTED.items()}
    check_per_image(images, S.SOURCE_COHORT, reader, COHORT_STATES)
    assert images.loc["dicom/b1.dcm", S.TIME] == pd.Timestamp(
        "2024-03-10 08:15:00")  # from the DICOM header
    names = dict(zip(art.images[S.IMAGE_ID], art.images[S.FILENAME]))
    assert [(names[a], names[b]) for a, b in zip(art.trajectories[S.FROM_IMAGE_ID],
                                                 art.trajectories[S.TO_IMAGE_ID])] == COHORT_EDGES
    (source,) = art.manifest[S.M_SOURCES]
    assert source[S.SRC_EMBEDDED] + source[S.SRC_EXCLUDED] + source[S.SRC_SKIPPED] \
        == source[S.SRC_ROWS] == 14 and source[S.SRC_EMBEDDED] == 7
    assert opens_in_the_app(out) == {"cohort": 7, "edges": 2}


def test_bad_kind_and_missing_column_exit_codes(tmp_path):
    done = precompute("--dataset", f"rsna:{tmp_path}", "--out", str(tmp_path / "a"),
                      cache=tmp_path / "cache")
    assert done.returncode == 2 and "reference source" in done.stderr
    (tmp_path / "images.csv").write_text("patient,path\nx,y.png\n")
    done = precompute("--dataset", f"cohort:{tmp_path}", "--out", str(tmp_path / "a"),
                      cache=tmp_path / "cache")
    assert done.returncode == 3, done.stderr
    assert "images.csv" in done.stderr and "'patient_id'" in done.stderr \
        and "'patient', 'path'" in done.stderr
    assert "Traceback" not in done.stderr
