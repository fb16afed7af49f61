"""One home per concept: library code, benchmarks and the accelerator never import a command
module (a module that ends in `entry_point = command(main)`)."""

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def module_name(path):
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def imported(path):
    """Every module name `path` imports, and every `from X import name` as X.name."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_no_library_module_benchmark_or_accelerator_script_imports_a_command():
    package = sorted((REPO / "gimefive_tf").rglob("*.py"))
    commands = {module_name(p) for p in package if "entry_point = command(" in p.read_text()}
    assert {"gimefive_tf.video.__main__", "gimefive_tf.export.__main__",
            "gimefive_tf.predict"} <= commands  # the scan sees the commands it guards
    importers = [p for p in package + sorted((REPO / "benchmarks").glob("*.py"))
                 + sorted((REPO / "accelerator").rglob("*.py")) if module_name(p) not in commands]
    offenders = {module_name(p): sorted(set(imported(p)) & commands) for p in importers}
    assert {name: hits for name, hits in offenders.items() if hits} == {}
