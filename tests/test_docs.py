"""Every code block in README.md and docs/ runs.

Blocks of one page run in order in one temporary directory, like a reader following the
page: ``python`` blocks share one namespace, ``bash``/``console``/``shell`` blocks run in
bash with this environment's ``synthmarket`` on the PATH. A block that sets up a virtual
environment (the README's set-up commands) is what CI itself runs, so it is skipped here.
Blocks in other languages (``toml``, ``text``, ...) are not code to run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.S | re.M)
SHELLS = {"bash", "console", "shell", "sh"}


def blocks(page: Path) -> list[tuple[str, str]]:
    return [(lang, code) for lang, code in FENCE.findall(page.read_text()) if lang in SHELLS | {"python"}]


def _runnable(page: Path) -> bool:
    return any("python3 -m venv" not in code for _, code in blocks(page))


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(page: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "MPLBACKEND": "Agg"}
    namespace: dict = {"__name__": "__docs__"}
    for number, (lang, code) in enumerate(blocks(page), start=1):
        if "python3 -m venv" in code:
            continue
        where = f"{page.relative_to(ROOT)} block {number}"
        if lang == "python":
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the docs are ours
        else:
            script = "\n".join(line.removeprefix("$ ") for line in code.splitlines())
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, (
                f"{where} failed:\n{script}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
            )
