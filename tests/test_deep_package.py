"""The public torch base, synthmarket.deep: the guide's example passes the contract; the package stays lean."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import synthmarket.deep

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-generator.md"
SECTION = "## A torch generator on `synthmarket.deep`"
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.S | re.M)


def _section() -> str:
    return GUIDE.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]


def _guide_namespace() -> dict:
    """The guide's torch generator and its contract test: the section's first two python blocks."""
    generator, contract = [code for lang, code in FENCE.findall(_section()) if lang == "python"][:2]
    namespace: dict = {"__name__": "synthmarket_guide_torch"}
    exec(compile(generator, f"{GUIDE.name} (torch generator)", "exec"), namespace)  # noqa: S102 - the docs are ours
    exec(compile(contract, f"{GUIDE.name} (contract test)", "exec"), namespace)  # noqa: S102
    return namespace


_GUIDE = _guide_namespace()
TestGuideTorchGenerator = _GUIDE["TestMomentGRU"]  # pytest runs the whole contract against the guide's model


def test_the_guide_builds_on_the_public_base():
    assert issubclass(_GUIDE["MomentGRU"], synthmarket.deep.TorchGenerator)


def test_the_guide_lists_every_public_name():
    section = _section()
    missing = [name for name in synthmarket.deep.__all__ if f"`{name}`" not in section]
    assert not missing, f"docs/writing-a-generator.md does not name {missing}"


def test_the_torch_base_loads_neither_the_cli_nor_the_report():
    script = (
        "import sys, synthmarket.deep\n"
        "loaded = [m for m in sys.modules if m.startswith(('synthmarket.cli', 'synthmarket.report', 'synthmarket_plugins'))]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
