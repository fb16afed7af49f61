"""Shared fixtures. Data tests read GIMEFIVE_DATA or ../shared/datasets and skip when neither exists."""

import os
import pathlib

import numpy as np
import pytest

from gimefive_tf.notebook import datasets_dir as shared_datasets
from gimefive_tf.notebook import photos_dir as shared_photos

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]


def shared_or_skip(path, variable, folder):
    """A shared folder read in place, or a clean skip saying how to provide it."""
    if path is None:
        pytest.skip(f"shared {folder} not found: set {variable} or provide ../shared/{folder}")
    return path


@pytest.fixture(scope="session")
def datasets_dir():
    return shared_or_skip(shared_datasets(), "GIMEFIVE_DATA", "datasets")


@pytest.fixture(scope="session")
def photos_dir():
    """../shared/photos (or GIMEFIVE_PHOTOS): real photographs and faces.csv, read in place."""
    return shared_or_skip(shared_photos(), "GIMEFIVE_PHOTOS", "photos")


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
