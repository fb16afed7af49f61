"""The notebooks stay thin and light: package calls only, no logic of their own, committed with
the outputs of a full run and small enough to read on a code host. (nbmake runs them.)"""

import ast
import json
import pathlib

import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
JOURNEYS = ("01_quickstart", "02_train_on_your_data", "03_reproduce_the_paper",
            "04_tune_with_kerastuner", "05_export_for_serving_and_phones", "06_video",
            "07_serving_client")
MAX_BYTES = 2 * 1024 * 1024
MAX_FUNCTION_LINES = 3  # a lambda-sized helper at most; anything longer belongs in the package


def code_of(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    return [("".join(cell["source"]), cell) for cell in cells if cell["cell_type"] == "code"]


def test_one_notebook_per_journey():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(JOURNEYS)


@pytest.mark.parametrize("name", JOURNEYS)
def test_notebook_is_thin_and_small(name):
    notebook = NOTEBOOKS / f"{name}.ipynb"
    assert notebook.stat().st_size <= MAX_BYTES
    for source, _ in code_of(notebook):
        tree = ast.parse(source)  # plain Python: no shell escapes or magics
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] == "gimefive_tf" for a in node.names), source
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0 and node.module.split(".")[0] == "gimefive_tf", source
            assert not isinstance(node, ast.ClassDef), source
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno + 1 <= MAX_FUNCTION_LINES, source


@pytest.mark.parametrize("name", JOURNEYS)
def test_notebook_is_committed_with_outputs(name):
    """Every code cell ran, in order, without an error: what a reader sees is a real run."""
    cells = code_of(NOTEBOOKS / f"{name}.ipynb")
    counts = [cell["execution_count"] for _, cell in cells]
    assert counts == list(range(1, len(cells) + 1))
    assert not [o for _, cell in cells for o in cell["outputs"] if o["output_type"] == "error"]
    assert any(o.get("data", {}).get("image/png") for _, cell in cells for o in cell["outputs"])
