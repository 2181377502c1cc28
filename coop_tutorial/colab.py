"""Where Colab installs the package from: one constant, written into every notebook's install cell and badge.

To run the notebooks from a fork or a tag, change ``REPOSITORY`` / ``REF`` here (or pass them on the command line)
and rewrite the notebooks' install cells and "Open in Colab" badges from them:

    python -m coop_tutorial.colab --repository you/coop-tutorial --ref v0.2.0

The install cell installs the package and its runtime dependencies only (no jupyterlab, nbval or papermill, which
clash with Colab's pinned ipykernel and ipywidgets), and leaves Colab's preinstalled torch alone: the package asks
for ``torch>=2.1``, which Colab's satisfies, so pip keeps it.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Optional

# The GitHub repository (owner/name) and git ref the notebooks install from and the Colab badges open.
REPOSITORY = "coop-tutorial/coop-tutorial"
REF = "main"

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
_BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]+?/blob/[^/)\s]+/notebooks/([\w.-]+\.ipynb)")
_FIRST_LINE = "# Colab only: install coop-tutorial (Colab's torch stays); anywhere else this cell does nothing."


def install_spec(repository: str = REPOSITORY, ref: str = REF) -> str:
    """The pip requirement the install cell installs: ``coop-tutorial @ git+https://github.com/<repo>@<ref>``."""
    return f"coop-tutorial @ git+https://github.com/{repository}@{ref}"


def install_cell(repository: str = REPOSITORY, ref: str = REF) -> str:
    """The source of every notebook's install cell."""
    return (f"{_FIRST_LINE}\n"
            f"COOP_TUTORIAL = {install_spec(repository, ref)!r}  # from coop_tutorial/colab.py\n"
            "import sys\n\n"
            "if \"google.colab\" in sys.modules:\n"
            "    %pip install -q \"$COOP_TUTORIAL\"")


def badge_url(notebook: str, repository: str = REPOSITORY, ref: str = REF) -> str:
    return f"https://colab.research.google.com/github/{repository}/blob/{ref}/notebooks/{notebook}"


def is_install_cell(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and "google.colab" in "".join(cell.get("source", ""))


def sync_notebook(path: Path, repository: str = REPOSITORY, ref: str = REF) -> bool:
    """Rewrite ``path``'s install cell and Colab badge from the constants; True when something changed."""
    notebook = json.loads(path.read_text())
    changed = False
    for cell in notebook["cells"]:
        text = "".join(cell.get("source", ""))
        if is_install_cell(cell):
            new = install_cell(repository, ref)
        elif cell.get("cell_type") == "markdown" and _BADGE.search(text):
            new = _BADGE.sub(lambda m: badge_url(m.group(1), repository, ref), text)
        else:
            continue
        if new != text:
            cell["source"] = new.splitlines(keepends=True)
            changed = True
    if changed:
        path.write_text(json.dumps(notebook, sort_keys=True, indent=1, ensure_ascii=False) + "\n")
    return changed


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", default=REPOSITORY, help="GitHub owner/name (default: %(default)s)")
    parser.add_argument("--ref", default=REF, help="branch, tag or commit (default: %(default)s)")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS)
    args = parser.parse_args(argv)
    for path in sorted(args.notebooks.glob("*.ipynb")):
        if sync_notebook(path, args.repository, args.ref):
            print(f"updated {path}")


if __name__ == "__main__":
    main()
