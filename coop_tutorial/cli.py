"""The ``coop-tutorial`` command: ``coop-tutorial <subcommand> [options]``.

Each subcommand is a module with a ``main(argv) -> int``; ``coop-tutorial reproduce --help`` is the same as
``python -m coop_tutorial.reproduce --help``.
"""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

SUBCOMMANDS = {"reproduce": ("coop_tutorial.reproduce", "run the paper's grid and report it beside the paper")}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: coop-tutorial <subcommand> [options]\n\nsubcommands:\n" + "\n".join(
        f"  {name:<12} {about}" for name, (_, about) in SUBCOMMANDS.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    if argv[0] not in SUBCOMMANDS:
        print(f"error: unknown subcommand {argv[0]!r}.\n\n{usage}")
        return 2
    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
