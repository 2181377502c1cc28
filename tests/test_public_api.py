"""The stated public API: every name in ``__all__`` exists, and the notebooks and README use no other ``ct.`` name."""
from __future__ import annotations

import json
import re
from pathlib import Path

import coop_tutorial as ct

ROOT = Path(__file__).parents[1]
USE = re.compile(r"\bct\.([A-Za-z_][A-Za-z0-9_]*)")


def _used_names() -> dict[str, str]:
    used = {}
    for path in sorted(ROOT.glob("notebooks/**/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                for name in USE.findall("".join(cell["source"])):
                    used.setdefault(name, str(path.relative_to(ROOT)))
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for name in USE.findall(path.read_text()):
            used.setdefault(name, str(path.relative_to(ROOT)))
    return used


def test_every_public_name_exists():
    assert len(set(ct.__all__)) == len(ct.__all__)
    assert [name for name in ct.__all__ if not hasattr(ct, name)] == []


def test_notebooks_and_docs_use_only_public_names():
    outside = {name: where for name, where in _used_names().items() if name not in ct.__all__}
    assert outside == {}, f"ct.<name> used but not in coop_tutorial.__all__: {outside}"
