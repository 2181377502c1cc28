"""The stated public API: every name in ``__all__`` exists, the notebooks and README use no other ``ct.`` name, and
the notebooks import no submodule beyond the public namespaces the package docstring names."""
from __future__ import annotations

import json
import re
from pathlib import Path

import coop_tutorial as ct

ROOT = Path(__file__).parents[1]
USE = re.compile(r"\bct\.([A-Za-z_][A-Za-z0-9_]*)")
# ``from coop_tutorial import a, b as c`` and ``from coop_tutorial.a import x`` / ``import coop_tutorial.a``
FROM_PACKAGE = re.compile(r"^\s*from\s+coop_tutorial\s+import\s+\(?([^#\n)]+)", re.M)
FROM_SUBMODULE = re.compile(r"^\s*(?:from|import)\s+coop_tutorial\.([A-Za-z_][A-Za-z0-9_]*)", re.M)

# The namespaces a notebook may import besides ``coop_tutorial`` itself (see its docstring): figures and widgets;
# the chapter studies one notebook reads from; in the assignments, the otter helpers and the token-level
# interpretation functions the exercises ask for.
NAMESPACES = {"plots", "widgets", "shift_study", "base_to_new", "meta_shift", "interpret_lab"}
ASSIGNMENT_NAMESPACES = NAMESPACES | {"exercises", "teaching", "interpret"}


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


def _imported_submodules(source: str) -> set[str]:
    names = set(FROM_SUBMODULE.findall(source))
    for group in FROM_PACKAGE.findall(source):
        names |= {part.split(" as ")[0].strip() for part in group.split(",") if part.strip()}
    return {name for name in names if name not in ct.__all__}


def test_imported_submodules_are_read():
    assert _imported_submodules("from coop_tutorial import plots, sweeps as s  # figures\n"
                                "import coop_tutorial as ct\nfrom coop_tutorial.base_to_new import png\n"
                                "from coop_tutorial import CoOpConfig\n") == {"plots", "sweeps", "base_to_new"}


def test_notebooks_import_only_public_namespaces():
    outside = {}
    for path in sorted(ROOT.glob("notebooks/**/*.ipynb")):
        allowed = ASSIGNMENT_NAMESPACES if "assignments" in path.parts else NAMESPACES
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                for name in _imported_submodules("".join(cell["source"])) - allowed:
                    outside.setdefault(name, str(path.relative_to(ROOT)))
    assert outside == {}, (f"notebooks import coop_tutorial submodules that are not public namespaces: {outside}; "
                           f"use the ct. names of coop_tutorial.__all__ (add the function there if it belongs)")
