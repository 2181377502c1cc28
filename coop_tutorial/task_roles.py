"""Which of a world's tasks plays which role in the notebooks (``World.roles``), so no notebook names a task.

The main tasks (train/val/test splits) go through every study; the showcase is the one task the single-task
notebooks look at closely; the source and its test-only shifted sets make the robustness study.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

from .datasets import canonical_name
from .datasets.metadata import REAL_DATASETS, SPLITS

# The task each world's single-task notebooks use, and the source of its robustness study: DTD (textures, where
# the paper's CoOp gains most among natural-image datasets) and its embedded stand-in; ImageNet and shapes.
SHOWCASE_TASKS = {"embedded": "patterns", "real": "dtd"}
SHIFT_SOURCES = {"embedded": "shapes", "real": "imagenet"}


@dataclass(frozen=True)
class TaskRoles:
    """What each of a world's tasks is for: ``main`` tasks have train/val/test splits; ``shifts`` are the
    test-only shifted sets of ``source``; ``showcase`` is the task the single-task notebooks use."""

    main: list[str]
    source: str
    shifts: list[str]
    showcase: str

    def shift(self, kind: str) -> str:
        """The shifted set of one kind: ``"fresh"`` (ImageNet-V2 / shapes_v2), ``"sketch"``, ``"hard"`` (-A) or
        ``"rendition"`` (-R / shapes_painting)."""
        suffixes = {"fresh": ("_v2",), "sketch": ("_sketch",), "hard": ("_hard", "_a"),
                    "rendition": ("_painting", "_r")}
        if kind not in suffixes:
            raise ValueError(f"Unknown kind of shift {kind!r}; choose from {', '.join(suffixes)}.")
        found = [name for name in self.shifts if name.endswith(suffixes[kind])]
        if not found:
            raise ValueError(f"No {kind} shifted set of {self.source!r} among {self.shifts}.")
        return found[0]

    @classmethod
    def of(cls, world, only_available: bool = True, tasks: Optional[Sequence[str]] = None,
           source: Optional[str] = None) -> "TaskRoles":
        """The roles of ``world``'s tasks (a ``coop_tutorial.World``; ``World.roles`` calls this).

        ``tasks``: the main tasks to use (default: all the world's); ``source``: the shift study's source (default:
        the world's, ImageNet in the real world, whose four variants are the shifted sets; another source has no
        shifted sets). With ``only_available`` the main tasks and shifted sets are those whose test split loads (in
        the real world, the datasets present under the data root; a warning names the others, ``World.require``
        says where each is expected and how to get it), and the showcase falls back to the first available main
        task. The embedded world generates its tasks, so it always has them all.
        """
        if world.kind == "embedded":
            # imported here, as tasks.py does: the generating code is never loaded in the real world
            from .embedded.suite import TASKS

            specs = {name: TASKS[name] for name in world.tasks}
            source = source or SHIFT_SOURCES["embedded"]
            main = _chosen([n for n, s in specs.items() if s.source is None], tasks, "embedded")
            return cls(main, source, [n for n, s in specs.items() if s.source == source],
                       SHOWCASE_TASKS["embedded"] if SHOWCASE_TASKS["embedded"] in main else main[0])
        source = canonical_name(source) if source is not None else SHIFT_SOURCES["real"]
        if source is None or REAL_DATASETS[source].splits != SPLITS:
            raise ValueError(f"The shift study's source must be one of the paper's datasets with a train split, got "
                             f"{source!r}; ImageNet (the default) is the one with shifted test sets.")
        main = _chosen([n for n in world.tasks if REAL_DATASETS[n].splits == SPLITS], tasks, "real")
        # only ImageNet has shifted test sets (its four variants)
        shifts = [n for n in world.tasks if REAL_DATASETS[n].splits == ("test",)] if source == "imagenet" else []
        showcase = SHOWCASE_TASKS["real"] if SHOWCASE_TASKS["real"] in main else main[0]
        if only_available:
            missing = [n for n in main + shifts if not _loads(world, n)]
            if missing:
                warnings.warn(f"Not found under the data root, left out: {', '.join(missing)} (see docs/datasets.md; "
                              f"world.require(name) says where each is expected and how to get it).", stacklevel=3)
            main, shifts = [n for n in main if n not in missing], [n for n in shifts if n not in missing]
            showcase = showcase if showcase in main or not main else main[0]
        return cls(main, source, shifts, showcase)


def _chosen(main: list[str], tasks: Optional[Sequence[str]], kind: str) -> list[str]:
    """``tasks`` (checked against ``main``, in their canonical names), or ``main`` when None."""
    if tasks is None:
        return main
    if isinstance(tasks, str) or not all(isinstance(t, str) for t in tasks) or not tasks:
        raise ValueError(f"TASKS must be a non-empty list of task names such as {main[:2]}, or None for all "
                         f"of the {kind} world's; got {tasks!r}.")
    named = {t: canonical_name(t) for t in tasks} if kind == "real" else {t: t for t in tasks}
    unknown = [t for t, n in named.items() if n not in main]
    if unknown:
        raise ValueError(f"Unknown task(s) {unknown} in TASKS for the {kind} world; its tasks with train/val/test "
                         f"splits are: {', '.join(main)}.")
    return [named[t] for t in tasks]


def _loads(world, name: str) -> bool:
    try:
        world.load_task(name, "test")
    except FileNotFoundError:  # DatasetNotFoundError: the folder or a file of its layout is missing
        return False
    return True
