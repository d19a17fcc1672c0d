"""--display-size, --display none and --features-dtype float16, built from a small copy of the
collection, and the app's /display route over a --display none artifact (the source image while
the dataset folder is there, a card saying why when it is gone)."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pandas as pd
import pytest
import requests
from PIL import Image

from cxrviz import schema as S
from cxrviz.data.covid import read_covid
from cxrviz.io.artifact import read_artifact
from precompute.pipeline import Config, build_artifact
from tests.app_helpers import ServerProcess

N = 8


@pytest.fixture(scope="module")
def small(dataset, tmp_path_factory):
    """The collection's metadata and the files of its first N frontal images, copied (a folder
    of its own, so it can disappear)."""
    root = tmp_path_factory.mktemp("small") / "covid-chestxray-dataset"
    (root / "images").mkdir(parents=True)
    shutil.copy(dataset / "metadata.csv", root / "metadata.csv")
    for p in read_covid(dataset).frame["path"].head(N):
        shutil.copy(p, root / "images")
    return root


@pytest.fixture(scope="module")
def builds(small, tmp_path_factory):
    """The same images three ways, one cache (the model runs once)."""
    out = tmp_path_factory.mktemp("arts")
    common = dict(dataset=str(small), weights="random", limit=N, progress=False,
                  cache_dir=str(out / "cache"))
    arts = {}
    for name, extra in (("jpeg512", {}), ("jpeg128", {"display_size": 128}),
                        ("none16", {"display_size": None, "features_dtype": "float16"})):
        arts[name] = build_artifact(Config(out=str(out / name), **common, **extra)).out
    return arts


def _long_side(path) -> int:
    with Image.open(path) as im:
        return max(im.size)


def test_display_size_sets_the_long_side_of_every_display_jpeg(builds, small):
    for name, side in (("jpeg512", 512), ("jpeg128", 128)):
        art = read_artifact(builds[name])
        assert art.display_size == side and art.manifest[S.M_DISPLAY] == {S.DISPLAY_SIZE: side}
        files = sorted((art.path / S.DISPLAY_DIR).glob("*.jpg"))
        assert len(files) == len(art.images)
        for image_id, source in zip(art.images[S.IMAGE_ID], art.images[S.FILENAME]):
            expected = min(side, _long_side(small / "images" / source))
            assert _long_side(art.display_path(image_id)) == expected


def test_display_none_writes_no_jpegs_and_where_each_source_file_is(builds, small):
    art = read_artifact(builds["none16"])
    assert not (art.path / S.DISPLAY_DIR).exists() and art.display_size is None
    assert S.DISPLAY_SOURCES_FILE in art.manifest[S.M_FILES]
    table = pd.read_parquet(art.path / S.DISPLAY_SOURCES_FILE)
    assert sorted(table[S.IMAGE_ID]) == sorted(art.images[S.IMAGE_ID])
    names = dict(zip(art.images[S.IMAGE_ID], art.images[S.FILENAME]))
    for image_id, file in zip(table[S.IMAGE_ID], table[S.FILE]):
        assert file == f"images/{names[image_id]}"
        assert art.source_file(image_id) == ((small / file).resolve(), None)


def test_features_float16_round_trip(builds):
    full, half = read_artifact(builds["jpeg512"]), read_artifact(builds["none16"])
    assert half.manifest[S.M_FEATURES_DTYPE] == "float16"
    assert full.manifest[S.M_FEATURES_DTYPE] == "float32"
    assert half.features().dtype == np.float16 and full.features().dtype == np.float32
    assert np.array_equal(half.features(), np.asarray(full.features()).astype(np.float16))
    assert (half.path / S.FEATURES_FILE).stat().st_size < \
        0.51 * (full.path / S.FEATURES_FILE).stat().st_size
    logit_cols = [S.logit_column(p) for p in full.pathologies]
    assert np.array_equal(half.images[logit_cols].to_numpy(), full.images[logit_cols].to_numpy())


def test_the_app_shows_the_source_image_and_says_when_its_folder_is_gone(builds, small):
    art = read_artifact(builds["none16"])
    image_id, name = art.images[S.IMAGE_ID][0], art.images[S.FILENAME][0]
    with Image.open(small / "images" / name) as src:  # PIL's own thumbnail of the source
        src.thumbnail((512, 512))
        expected = src.size
    with ServerProcess(builds["none16"], "--no-model") as server:
        got = requests.get(f"{server.url}/display/{image_id}.jpg", timeout=60)
        assert got.status_code == 200 and got.headers["Content-Type"] == "image/jpeg"
        assert "X-Cxrviz-Display-Unavailable" not in got.headers
        assert Image.open(io.BytesIO(got.content)).size == expected
        assert requests.get(f"{server.url}/display/nope.jpg", timeout=30).status_code == 404

        small.rename(small.with_name("moved-away"))
        try:
            gone = requests.get(f"{server.url}/display/{image_id}.jpg", timeout=60)
        finally:
            small.with_name("moved-away").rename(small)
        assert gone.status_code == 200 and gone.headers["Content-Type"] == "image/jpeg"
        why = gone.headers["X-Cxrviz-Display-Unavailable"]
        assert "covid dataset folder (covid-chestxray-dataset) is not reachable" in why
        assert "--display none" in why and "/" not in why.split("(")[1].split(")")[0]
        Image.open(io.BytesIO(gone.content)).verify()  # a real JPEG: the card saying so
