"""One home per concept: library code, benchmarks and the accelerator never import a command
module (a module that ends in `entry_point = command(main)`)."""

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def module_name(path):
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def imported(path):
    """Every module name `path` imports, and every `from X import name` as X.name."""
    return imported_by(path.read_text())


def imported_by(code):
    """imported() of Python source text."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def command_modules():
    return {module_name(p) for p in (REPO / "gimefive_tf").rglob("*.py")
            if "entry_point = command(" in p.read_text()}


def test_no_library_module_benchmark_or_accelerator_script_imports_a_command():
    package = sorted((REPO / "gimefive_tf").rglob("*.py"))
    commands = command_modules()
    assert {"gimefive_tf.video.__main__", "gimefive_tf.export.__main__",
            "gimefive_tf.predict"} <= commands  # the scan sees the commands it guards
    importers = [p for p in package + sorted((REPO / "benchmarks").glob("*.py"))
                 + sorted((REPO / "accelerator").rglob("*.py")) if module_name(p) not in commands]
    offenders = {module_name(p): sorted(set(imported(p)) & commands) for p in importers}
    assert {name: hits for name, hits in offenders.items() if hits} == {}


def notebook_imports(path):
    """Every module name the code cells of notebook `path` import."""
    import json

    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    return imported_by(code)


def test_no_notebook_imports_a_command():
    """Notebooks call the library (annotate_video, export_model, run_search, plot_faces), as a
    user's own code would, never a command's main."""
    commands = command_modules()
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 7
    offenders = {p.name: sorted(set(notebook_imports(p)) & commands) for p in notebooks}
    assert {name: hits for name, hits in offenders.items() if hits} == {}
