"""Shared fixtures: the real dataset in ../shared, and one artifact built from it per session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATASET = Path(os.environ.get("CXRVIZ_TEST_DATASET",
                              ROOT.parent / "shared" / "data" / "covid-chestxray-dataset"))
SAMPLES = DATASET.parent / "samples"


@pytest.fixture(scope="session")
def dataset() -> Path:
    if not (DATASET / "metadata.csv").is_file():
        pytest.fail(f"the real dataset is required at {DATASET} (set CXRVIZ_TEST_DATASET)")
    return DATASET


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def covid_artifact(dataset, tmp_path_factory, session_cache):
    """The whole collection, random weights (no pretrained weights exist here), default config."""
    from precompute.pipeline import Config, build_artifact

    out = tmp_path_factory.mktemp("artifacts") / "covid"
    summary = build_artifact(Config(dataset=str(dataset), out=str(out), weights="random",
                                    cache_dir=str(session_cache), progress=False))
    return summary


def pytest_configure(config):
    """selenium 4.2 (dash[testing]'s) calls urllib3's deprecated HTTPResponse.getheader on every
    browser command: ~2,000 identical library warnings that would hide a real one."""
    config.addinivalue_line(
        "filterwarnings", "ignore:HTTPResponse.getheader\\(\\) is deprecated:DeprecationWarning")
