"""The dependency rules of DESIGN.md, checked on the source.

The core never imports the CLI or the report layer (run directories, figures, HTML pages,
notebook views) when it loads; it may import them inside a function, as the notebook views
do. The end-to-end pipeline (synthmarket.pipeline) sits above the core and the report layer:
the core never imports it, and it never imports the CLI (which calls it). Benchmarks use the
public API, never the CLI.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "synthmarket"
CORE_MODULES = (
    "data",
    "dates",
    "gaps",
    "data_summary",
    "bars",
    "paths",
    "fields",
    "generator",
    "training_data",
    "model_files",
    "training",
    "train_config",
    "trainable",
    "checkpoints",
    "validation_score",
    "training_progress",
    "regimes",
    "distances",
    "window_scores",
    "errors",
    "checks",
    "hookspecs",
    "registry",
    "references",
    "executor",
    "feeds",
    "jsonutil",
    "scenario_files",
    "context",
)
CORE_PACKAGES = ("facts", "montecarlo", "calibration")
CLI = "synthmarket.cli"
REPORT_LAYER = (
    "synthmarket.report",
    "synthmarket.runs",
    "synthmarket.figures",
    "synthmarket.pages",
    "synthmarket.training_page",
    "synthmarket.calibration_page",
    "synthmarket.page_parts",
    "synthmarket.notebook",
)
PIPELINE = "synthmarket.pipeline"


def core_files() -> list[Path]:
    files = [PACKAGE / f"{name}.py" for name in CORE_MODULES]
    files += [f for package in CORE_PACKAGES for f in sorted((PACKAGE / package).rglob("*.py"))]
    return files


def module_name(file: Path) -> str:
    parts = file.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The absolute names an import statement brings in (``from a import b`` gives ``a`` and ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def load_time_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module loads: all but those inside functions."""
    found, todo = [], list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def is_under(name: str, targets: tuple[str, ...]) -> bool:
    return any(name == t or name.startswith(t + ".") for t in targets)


def test_the_import_resolver_sees_relative_and_absolute_imports():
    tree = ast.parse(
        "from ..figures import plot_paths\nfrom . import summary\nimport synthmarket.cli.common\n"
        "def view():\n    from ..page_parts import html_table\n"
    )
    names = [n for node in load_time_imports(tree) for n in imported(node, "synthmarket.montecarlo.summary", False)]
    assert "synthmarket.figures" in names and "synthmarket.montecarlo.summary" in names
    assert "synthmarket.cli.common" in names and "synthmarket.page_parts.html_table" not in names


@pytest.mark.parametrize("file", core_files(), ids=lambda f: str(f.relative_to(ROOT)))
def test_the_core_imports_neither_the_cli_nor_the_report_layer_when_it_loads(file: Path):
    module = module_name(file)
    tree = ast.parse(file.read_text(), str(file))
    bad = sorted(
        {
            f"line {node.lineno}: {name}"
            for node in load_time_imports(tree)
            for name in imported(node, module, file.name == "__init__.py")
            if is_under(name, (CLI, *REPORT_LAYER))
        }
    )
    assert not bad, f"{module} imports the CLI or the report layer at load time (import it inside a function): {bad}"


def test_loading_the_core_loads_neither_the_cli_nor_the_report_layer():
    modules = [module_name(f) for f in core_files()]
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({(CLI, *REPORT_LAYER, PIPELINE)!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("file", core_files(), ids=lambda f: str(f.relative_to(ROOT)))
def test_the_core_never_imports_the_pipeline(file: Path):
    module = module_name(file)
    tree = ast.parse(file.read_text(), str(file))
    bad = sorted(
        {
            f"line {node.lineno}: {name}"
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for name in imported(node, module, file.name == "__init__.py")
            if is_under(name, (PIPELINE,))
        }
    )
    assert not bad, f"{module} imports the pipeline, which is built on the core: {bad}"


def test_the_pipeline_never_imports_the_cli():
    file = PACKAGE / "pipeline.py"
    tree = ast.parse(file.read_text(), str(file))
    bad = sorted(
        {
            f"line {node.lineno}: {name}"
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for name in imported(node, PIPELINE, False)
            if is_under(name, (CLI,))
        }
    )
    assert not bad, f"the pipeline imports the CLI; the CLI calls the pipeline and does the printing: {bad}"


@pytest.mark.parametrize("file", sorted((ROOT / "benchmarks").glob("*.py")), ids=lambda f: f.name)
def test_benchmarks_do_not_import_the_cli(file: Path):
    tree = ast.parse(file.read_text(), str(file))
    bad = sorted(
        {
            f"line {node.lineno}: {name}"
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for name in imported(node, "", False)
            if is_under(name, (CLI,))
        }
    )
    assert not bad, f"benchmarks/{file.name} imports the CLI; use the public API (synthmarket.api) instead: {bad}"
