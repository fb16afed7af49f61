"""Shared fixtures. Data tests read GIMEFIVE_DATA or ../shared/datasets and skip when neither exists."""

import os
import pathlib

import numpy as np
import pytest

from gimefive_tf.notebook import datasets_dir as shared_datasets
from gimefive_tf.notebook import photos_dir as shared_photos

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def datasets_dir():
    path = shared_datasets()
    if path is None:
        pytest.skip("shared datasets not found: set GIMEFIVE_DATA or provide ../shared/datasets")
    return path


@pytest.fixture(scope="session")
def photos_dir():
    """../shared/photos (or GIMEFIVE_PHOTOS): real photographs and faces.csv, read in place."""
    path = shared_photos()
    if path is None:
        pytest.skip("shared photos not found: set GIMEFIVE_PHOTOS or provide ../shared/photos")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    """A small untrained GiMeFive (base width 8, 64x64 input) saved as .keras, for CLI tests."""
    from gimefive_tf.models import create_model

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    create_model("gimefive", base_filters=8).save(path)
    return str(path)
