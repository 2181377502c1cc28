"""The ``coop-tutorial`` command: one entry point for what people run outside the notebooks.

    coop-tutorial quickstart --task shapes --shots 4     # CoOp vs hand-written prompts, under a minute on a CPU
    coop-tutorial pretrain --snapshot-every 2000         # recreate the embedded tiny CLIP (its step-2000 snapshot)
    coop-tutorial report                                 # the embedded world's zero-shot / probe / CoOp table
    coop-tutorial reproduce --workers 2                  # the paper's grid (embedded world here) on a Dask cluster
    coop-tutorial <command> --help                       # each command's options

Each subcommand is a module with a ``main(argv)``; adding one is one line in ``COMMANDS``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from contextlib import contextmanager
from typing import Iterator, Optional

# name -> (module with main(argv), one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("coop_tutorial.quickstart", "train CoOp on one task and compare it with hand-written prompts"),
    "pretrain": ("coop_tutorial.pretrain", "pretrain the embedded tiny CLIP on the generated world"),
    "report": ("coop_tutorial.embedded.report", "the embedded world's report: prompts, linear probe, CoOp, shift"),
    "reproduce": ("coop_tutorial.reproduce", "the paper's grid, resumable, in-process or on Dask, beside the paper"),
}


@contextmanager
def _program_name(name: str) -> Iterator[None]:
    """Subcommands' argparse parsers name the program after ``sys.argv[0]``: make their usage lines read
    ``coop-tutorial <command>``."""
    saved = sys.argv[0] if sys.argv else ""
    if sys.argv:
        sys.argv[0] = name
    else:
        sys.argv.append(name)
    try:
        yield
    finally:
        sys.argv[0] = saved


def main(argv: Optional[list[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="coop-tutorial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="command",
                        help="; ".join(f"{name}: {help_}" for name, (_, help_) in COMMANDS.items()))
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        if not argv:
            raise SystemExit(2)
        return
    command = parser.parse_args(argv[:1]).command
    module = importlib.import_module(COMMANDS[command][0])
    with _program_name(f"coop-tutorial {command}"):
        status = module.main(argv[1:])
    if isinstance(status, int) and status:  # a subcommand that reports an exit status (reproduce)
        raise SystemExit(status)


if __name__ == "__main__":
    main()
