"""Notebooks run under pytest through nbmake (`--nbmake` in setup.cfg): in quick mode unless
GIMEFIVE_QUICK says otherwise, and skipped when a dataset their metadata names is absent."""

import json
import os
import pathlib

import pytest

from gimefive_tf.notebook import datasets_dir

os.environ.setdefault("GIMEFIVE_QUICK", "1")  # inherited by each notebook's kernel


def needed_datasets(notebook):
    """The shared datasets a notebook reads (its metadata's gimefive.needs_data)."""
    metadata = json.loads(pathlib.Path(notebook).read_text()).get("metadata", {})
    return metadata.get("gimefive", {}).get("needs_data", [])


def pytest_collection_modifyitems(config, items):
    root = datasets_dir()
    for item in items:
        if item.path.suffix != ".ipynb":
            continue
        missing = [name for name in needed_datasets(item.path)
                   if root is None or not (root / name).is_dir()]
        if missing:
            item.add_marker(pytest.mark.skip(
                reason=f"needs {', '.join(missing)}: set GIMEFIVE_DATA or provide ../shared/datasets"))
