"""An artifact whose data a spreadsheet or a browser would run, built from the real collection:
ten frontal rows of metadata.csv (ten patients), copied with their images (copies, not links)
into a dataset of their own, with patient ids =HYPERLINK("x"), +1, -1, @SUM(A1) and <b>x</b>;
the -1 patient at day -5; the <b>x</b> patient's finding 'todo'; two images in the ICU (bad
states for the density). Built once per test process."""
from __future__ import annotations

import shutil

import pandas as pd

HOSTILE_IDS = ['=HYPERLINK("x")', "+1", "-1", "@SUM(A1)", "<b>x</b>"]
_BUILT: dict = {}


def hostile_artifact(dataset, tmp_path_factory, session_cache):
    if "out" in _BUILT:
        return _BUILT["out"]
    from precompute.pipeline import Config, build_artifact

    meta = pd.read_csv(dataset / "metadata.csv", dtype=str, keep_default_na=False)
    meta = meta[[c for c in meta.columns if not c.startswith("Unnamed")]]
    frontal = meta[(meta["modality"] == "X-ray") & meta["view"].isin(["PA", "AP"]) &
                   meta["filename"].map(lambda f: (dataset / "images" / f).is_file())]
    rows = frontal.drop_duplicates("patientid").head(10).copy()
    rows["patientid"] = HOSTILE_IDS + [f"p{i}" for i in range(5)]
    rows["offset"] = ["0", "1", "-5", "2", "3", "0", "4", "", "1", "2"]
    rows["finding"] = ["COVID-19"] * 4 + ["todo"] + ["COVID-19"] * 5
    rows["in_icu"] = ["Y", "N", "Y"] + [""] * 7
    rows["folder"] = "images"
    root = tmp_path_factory.mktemp("hostile")
    (root / "data" / "images").mkdir(parents=True)
    for f in rows["filename"]:
        shutil.copyfile(dataset / "images" / f, root / "data" / "images" / f)
    rows.to_csv(root / "data" / "metadata.csv", index=False)
    _BUILT["out"] = build_artifact(Config(dataset=str(root / "data"), out=str(root / "art"),
                                          weights="random", cache_dir=str(session_cache),
                                          progress=False)).out
    return _BUILT["out"]
