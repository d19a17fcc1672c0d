"""Figures for papers: files parsed and measured (SVG geometry, as chromium renders it, PDF
operators and metadata, PNG pixels and text chunks), the figure command's arguments, and
provenance. Expected counts come from plain pandas on images.parquet."""
import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxrviz import schema as S
from tests.svg_geometry import inside, measure, overlap

ROOT = Path(__file__).resolve().parents[1]
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def store(covid_artifact):
    from cxrviz.store import Store

    return Store.open(covid_artifact.out).warm()


@pytest.fixture(scope="module")
def images(covid_artifact):
    return pd.read_parquet(covid_artifact.out / S.IMAGES_FILE)


def draw(store, artifact, out, *argv):
    """The figure command's own path (parse_args -> draw), in this process."""
    from cxrviz.figure import draw as draw_figure
    from cxrviz.figure import parse_args, parser

    args = parser().parse_args(["--artifact", str(artifact), "--out", str(out), *argv])
    data, prov = draw_figure(store, artifact, str(out), parse_args(args, store))
    return data, prov


def svg_facts(data: bytes) -> dict:
    root = ET.fromstring(data)
    view = [float(v) for v in root.get("viewBox").split()]
    plots = [el for el in root.iter(f"{SVG_NS}clipPath")
             if (el.get("id") or "").endswith("plot") and "plotclip" in (el.get("class") or "")]
    area = sum(float(r.get("width")) * float(r.get("height"))
               for c in plots for r in c.iter(f"{SVG_NS}rect"))
    fonts = [float(m) for el in root.iter() for m in re.findall(r"font-size:\s*([\d.]+)px",
                                                                el.get("style") or "")]
    points = [el for el in root.iter(f"{SVG_NS}path") if "point" in (el.get("class") or "")]
    meta = root.find(f"{SVG_NS}metadata")
    return {"fraction": area / (view[2] * view[3]), "min_font_pt": min(fonts) * 72 / 96,
            "points": len(points), "images": len(list(root.iter(f"{SVG_NS}image"))),
            "provenance": json.loads(meta.text), "width": root.get("width")}


@pytest.mark.parametrize("preset", ["single", "double", "figure3"])
def test_svg_is_vector_fills_the_page_and_says_what_made_it(store, covid_artifact, images,
                                                            tmp_path, preset):
    data, _ = draw(store, covid_artifact.out, tmp_path / "f.svg", "--preset", preset)
    facts = svg_facts(data)
    assert facts["fraction"] >= 0.60, facts["fraction"]  # the plotting area, from the SVG
    assert facts["min_font_pt"] >= 5
    assert facts["points"] >= len(images)  # a vector marker for every image shown
    assert facts["images"] == 1  # the density background, the only raster
    assert facts["provenance"]["weights"]["sha256"] == store.artifact.weights.sha256
    assert facts["provenance"]["weights"]["pretrained"] is False
    width_mm = {"single": 89, "double": 183, "figure3": 183}[preset]
    assert facts["width"] == f"{width_mm:.2f}mm"


def test_svg_without_density_has_no_raster_and_counts_filtered_points(store, covid_artifact,
                                                                     images, tmp_path):
    data, prov = draw(store, covid_artifact.out, tmp_path / "f.svg", "--no-density",
                      "--filter", "continent=Europe", "--filter", "state=bad")
    facts = svg_facts(data)
    shown = images[(images[S.CONTINENT] == "Europe") & (images[S.STATE] == "bad")]
    assert facts["images"] == 0
    assert facts["points"] >= len(shown)
    assert prov["counts"]["images"] == len(shown)
    assert prov["filters"] == {"continent": ["Europe"], "state": ["bad"]}


def _painted_paths(page) -> int:
    """Path-painting operators in the page (fill or stroke: open markers are stroked)."""
    from pypdf.generic import ContentStream

    ops = ContentStream(page.get_contents(), page.pdf).operations
    return sum(op in (b"f", b"f*", b"B", b"B*", b"b", b"b*", b"S", b"s") for _, op in ops)


@pytest.mark.parametrize("preset", ["single", "figure3"])
def test_pdf_draws_vectors_and_carries_provenance(store, covid_artifact, images, tmp_path,
                                                  preset):
    from pypdf import PdfReader

    data, _ = draw(store, covid_artifact.out, tmp_path / "f.pdf", "--preset", preset)
    reader = PdfReader(io.BytesIO(data))
    (page,) = reader.pages
    assert len(page.images) == 1  # the density background
    if preset == "single":
        assert _painted_paths(page) >= len(images)  # a vector path per marker, at least
    meta = reader.metadata
    assert store.artifact.weights.sha256 in meta["/CxrvizProvenance"]
    assert "NOT PRETRAINED" in meta["/Subject"]
    width_mm = float(page.mediabox.width) / 72 * 25.4
    assert width_mm == pytest.approx({"single": 89, "figure3": 183}[preset], abs=0.5)


@pytest.mark.parametrize("preset,width_mm", [("single", 89), ("double", 183), ("figure3", 183)])
def test_png_is_300_dpi_at_the_presets_width(store, covid_artifact, tmp_path, preset, width_mm):
    data, prov = draw(store, covid_artifact.out, tmp_path / "f.png", "--preset", preset)
    im = Image.open(io.BytesIO(data))
    assert im.size[0] == round(width_mm / 25.4 * 300)
    assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    text = json.loads(im.info["cxrviz:provenance"])
    assert text["weights"]["sha256"] == store.artifact.weights.sha256
    assert text["artifact"] == store.artifact.artifact_id


def test_figure3_draws_exactly_the_chosen_patients(store, images):
    from cxrviz.figures.paper import paper_figure

    chosen = ["178", "332", "205"]
    fig, _ = paper_figure(store, "figure3", patients=chosen)
    dated = images[images[S.OFFSET].notna()]
    for pid in chosen:  # consecutive dated images, counted with pandas
        n_edges = len(dated[dated[S.PATIENTID] == pid]) - 1
        (path,) = [t for t in fig.data if t.name == f"patient {pid}" and t.xaxis in (None, "x")]
        assert sum(v is None for v in path.x) == n_edges
    arrows = [t for t in fig.data if (t.name or "").startswith("into ") and t.x[0] is not None]
    assert sum(len(t.x) for t in arrows) == sum(
        len(dated[dated[S.PATIENTID] == p]) - 1 for p in chosen)
    lines = [t for t in fig.data if t.type == "scatter" and t.mode == "lines"]
    assert {t.name for t in lines} == {f"patient {p}" for p in chosen}
    series = [t for t in fig.data if t.xaxis == "x2" and t.name]
    assert [list(t.x) for t in series if t.name == "patient 205"] == [[1, 6, 11, 13, 20, 24, 28]]


def test_day_range_and_caption(store, covid_artifact, images, tmp_path):
    data, prov = draw(store, covid_artifact.out, tmp_path / "f.svg", "--day-from", "0",
                      "--day-to", "10", "--caption", "--color", "logit:Effusion")
    shown = images[images[S.OFFSET].between(0, 10)]
    assert prov["counts"]["images"] == len(shown)
    assert prov["day_range"] == {"align": "offset", "from": 0.0, "to": 10.0}
    assert b"days 0 to 10" in data  # the caption, drawn
    assert "--day-from 0 --day-to 10" in prov["command"]


def test_caption_names_the_filters_as_the_command_takes_them(store, covid_artifact, images,
                                                              tmp_path):
    data, prov = draw(store, covid_artifact.out, tmp_path / "f.svg", "--caption",
                      "--filter", "continent=Europe", "--filter", "age=40-60",
                      "--filter", "age_unknown=drop")
    shown = images[(images[S.CONTINENT] == "Europe") & images[S.AGE].between(40, 60)]
    assert prov["counts"]["images"] == len(shown)
    assert b"filters: continent=Europe; age=40-60; age_unknown=drop" in data
    for part in ("--filter continent=Europe", "--filter age=40-60", "--filter age_unknown=drop"):
        assert part in prov["command"]


@pytest.mark.parametrize("args,message", [
    (["--out", "x.gif"], "must end in .png, .svg or .pdf"),
    (["--patients", "178,99999"], "99999 not in this artifact"),
    (["--filter", "planet=Mars"], "KEY one of"),
    (["--filter", "continent=Atlantis"], "no image has 'Atlantis'"),
    (["--filter", "age=old"], "not a range"),
    (["--preset", "poster"], "choose one of single, double, figure3"),
    (["--color", "mood"], "--color mood"),
    (["--day-from", "9", "--day-to", "2"], "must not be after"),
    (["--color", "age", "--hide", "old"], "--color age is a scale, not categories"),
    (["--hide", "purple"], "the categories of --color state here are good, bad, unknown"),
    (["--images", "no-such-image"], "no-such-image: not images of"),
])
def test_bad_arguments_exit_with_code_2(covid_artifact, tmp_path, args, message):
    argv = ["--artifact", str(covid_artifact.out), "--out", str(tmp_path / "f.png"), *args]
    done = subprocess.run([sys.executable, "-m", "cxrviz.figure", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "f.png").exists()


def test_the_command_writes_figure3(covid_artifact, tmp_path):
    out = tmp_path / "fig3.pdf"
    done = subprocess.run([sys.executable, "-m", "cxrviz.figure", "--artifact",
                           str(covid_artifact.out), "--out", str(out), "--preset", "figure3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:5] == b"%PDF-" and "NOT PRETRAINED" in done.stdout
    assert not list(tmp_path.glob(".*.tmp"))


def test_csv_comes_with_a_provenance_sidecar(store, images):
    from cxrviz.export import export_csv, provenance

    keep = (images[S.CONTINENT] == "Asia").to_numpy()
    prov = provenance(store, keep, filters={**store.default_filters(), "continent": ["Asia"]})
    data, sidecar, name, side_name = export_csv(store, keep, prov)
    frame = pd.read_csv(io.BytesIO(data))
    assert sorted(frame[S.IMAGE_ID]) == sorted(images.loc[keep, S.IMAGE_ID])
    side = json.loads(sidecar)
    assert side_name == f"{name}.provenance.json"
    assert side["weights"]["sha256"] == store.artifact.weights.sha256
    assert side["counts"] == {"images": int(keep.sum()), "of_images": 559,
                              "patients": images.loc[keep, S.PATIENTID].nunique()}
    assert side["filters"] == {"continent": ["Asia"]}


def test_density_colour_bar_speaks_percentiles(store):
    from cxrviz.figures.layers import percentile_ticks

    ticks = percentile_ticks(store)
    dens = store.covid[S.BAD_DENSITY].to_numpy()
    for value, label in zip(ticks["tickvals"], ticks["ticktext"]):
        q = int(label.rstrip("th"))
        assert value == pytest.approx(np.percentile(dens, q))


LAYOUTS = [("figure3", []), ("single", []), ("double", ["--color", "continent", "--caption"]),
           ("single", ["--color", "logit:Effusion", "--dim", "--filter", "continent=Europe"])]


@pytest.mark.parametrize("preset,argv", LAYOUTS)
def test_no_two_texts_overlap_and_every_panel_letter_shows(dash_br, store, covid_artifact,
                                                          tmp_path, preset, argv):
    """The exported SVG, rendered by chromium: every text's box (tick labels, legends and
    their titles, colour bars, axis titles, letters, the warning, the caption) apart from
    every other's and inside the canvas; every tick labelled; the untrained-weights warning
    on the figure, above the plots; figure3's letters above their panels' top left corners."""
    data, _ = draw(store, covid_artifact.out, tmp_path / "f.svg", "--preset", preset, *argv)
    m = measure(dash_br.driver, data, tmp_path)
    texts = m["texts"]
    assert len(texts) >= 12
    clashes = [(a["text"][:30], b["text"][:30]) for i, a in enumerate(texts)
               for b in texts[i + 1:] if overlap(a, b)]
    assert clashes == []
    assert [t["text"] for t in texts if not inside(t, m["width"], m["height"])] == []
    assert [t["axis"] for t in m["ticks"] if not t["text"].strip()] == []
    (warning,) = [b for b in m["backgrounds"] if "untrained network" in b["text"]]
    assert all(warning["y1"] <= a["y0"] + 0.5 for a in m["areas"])  # covers no plot
    if preset == "figure3":
        letters = {t["text"]: t for t in texts if t["text"] in ("a", "b")
                   and "annotation" in t["classes"]}
        assert sorted(letters) == ["a", "b"]
        (map_area,) = [a for a in m["areas"] if a["subplot"] == "xy"]
        (series_area,) = [a for a in m["areas"] if a["subplot"] == "x2y2"]
        a, b = letters["a"], letters["b"]
        assert not overlap(a, warning) and not overlap(b, warning)
        assert a["y1"] <= map_area["y0"] + 0.5 and a["x0"] <= map_area["x0"] + 3
        assert b["y1"] <= series_area["y0"] + 0.5
        assert map_area["x1"] <= b["x0"] < series_area["x0"]  # left of panel b's axis


def stretched(covid_artifact, kx: float, ky: float):
    """The collection's map stretched to be wider or taller, with everything that follows from
    positions derived again (compute.derive, as precompute and benchmarks/make_artifact.py)."""
    from cxrviz.compute.derive import derive
    from cxrviz.io.artifact import Artifact, read_artifact
    from cxrviz.store import Store

    art = read_artifact(covid_artifact.out)
    im = art.images
    coords = np.column_stack([im[S.X] * kx, im[S.Y] * ky])
    logits = im[[S.logit_column(p) for p in art.pathologies]].to_numpy()
    d = derive(im, coords, logits, art.pathologies)
    return Store.from_artifact(Artifact(art.path, art.manifest, d.images, d.trajectories,
                                        d.patients, d.density)), coords


@pytest.mark.parametrize("shape,kx,ky", [("wide", 2.5, 1), ("tall", 1, 2.5)])
@pytest.mark.parametrize("preset", ["single", "double"])
def test_points_fill_the_plot_of_a_wide_or_tall_map(dash_br, covid_artifact, tmp_path, shape,
                                                    kx, ky, preset):
    """The plotting area takes the map's aspect: the points span at least 90% of it both ways
    (no empty bands), x and y keep one scale, and the legend's symbols are no larger than
    the map's markers."""
    from cxrviz.export import export_image, provenance

    store, coords = stretched(covid_artifact, kx, ky)
    keep = np.ones(len(store.covid), bool)
    data, _ = export_image(store, "svg", preset, keep=keep, prov=provenance(store, keep))
    m = measure(dash_br.driver, data, tmp_path)
    (area,) = m["areas"]
    pts = np.array(m["points"]["xy"])
    span_x, span_y = np.ptp(pts[:, 0]), np.ptp(pts[:, 1])
    fill = (span_x / (area["x1"] - area["x0"]), span_y / (area["y1"] - area["y0"]))
    assert min(fill) >= 0.9, fill
    data_aspect = np.ptp(coords[:, 1]) / np.ptp(coords[:, 0])  # from images.parquet
    assert span_y / span_x == pytest.approx(data_aspect, rel=0.02)
    symbols = {e["text"]: e["symbol"] for e in m["legend"]}
    marker = np.median(pts[:, 2])  # the map's markers (state symbols and arrowheads)
    assert {"good", "bad", "unknown"} <= set(symbols)
    assert max(symbols[s] for s in ("good", "bad", "unknown")) <= 1.2 * marker
