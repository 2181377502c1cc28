"""One entry point for every downstream task, embedded or real: ``list_tasks`` and ``load_task``.

The embedded world (synthetic tasks generated locally, ``coop_tutorial.embedded``) and the real world (the paper's
datasets, ``coop_tutorial.datasets``) answer to the same call, so a notebook runs either way unchanged.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Callable, Optional, Union

from torch.utils.data import Dataset

from .datasets import canonical_name, load_real_dataset, real_dataset_names, subsample_classes
from .datasets.registry import name_key, real_spellings, suggest
from .datasets.splits import check_subsample

WORLDS = ("embedded", "real")


def _embedded_module() -> ModuleType:
    """``coop_tutorial.embedded.suite``, imported on first use (generating tasks needs numpy and PIL drawing code
    that the real world never loads)."""
    from .embedded import suite

    return suite


def _embedded_names() -> list[str]:
    return list(_embedded_module().TASKS)


def _worlds(world: Optional[str]) -> tuple[str, ...]:
    if world is None:
        return WORLDS
    if world not in WORLDS:
        raise ValueError(f"Unknown world {world!r}: use 'embedded' (synthetic tasks, offline) or 'real' (the "
                         f"paper's datasets), or None for both.")
    return (world,)


def list_tasks(world: Optional[str] = None) -> dict[str, list[str]]:
    """Task names by world: ``{"embedded": [...], "real": [...]}``, or only the ``world`` asked for."""
    names = {"embedded": _embedded_names, "real": real_dataset_names}
    return {kind: names[kind]() for kind in _worlds(world)}


def _find_embedded(name: str, names: list[str]) -> Optional[str]:
    """The embedded task ``name`` refers to: exact, else the same letters and digits (``"Shapes"``)."""
    if name in names:
        return name
    return next((n for n in names if name_key(n) == name_key(name)), None)


def load_task(name: str, split: str, transform: Optional[Callable] = None, root: Optional[Union[str, Path]] = None,
              download: bool = False, subsample: str = "all", split_file: Optional[Union[str, Path]] = None,
              world: Optional[str] = None) -> Dataset:
    """One split of a task: a ``Dataset`` of ``(image, label)`` with ``.classnames`` and ``.targets``.

    Args:
        name: an embedded task (``list_tasks()["embedded"]``) or one of the paper's datasets (``"imagenet"``,
            ``"eurosat"``, ``"oxford_flowers"`` alias ``"flowers102"``, ..., ``list_tasks()["real"]``).
        split: ``"train"``, ``"val"`` or ``"test"`` (distribution-shift sets: ``"test"`` only; the embedded ones
            also ``"design"``, a second draw for judging pretraining checkpoints, never for choosing a recipe).
        transform: applied to each PIL image, e.g. ``clip.preprocess``.
        root: where data lives. Real datasets: default ``$COOP_DATA`` or ``./data``; embedded: its cache.
        download: real datasets only: let torchvision fetch what it can (Flowers102, DTD, Pets, Food101,
            FGVCAircraft, EuroSAT, Caltech101).
        subsample: ``"all"``, or the ``"base"``/``"new"`` half of the classes (CoCoOp's base-to-new protocol).
        split_file: real datasets only: a ``split_zhou_*.json`` kept outside the dataset folder.
        world: restrict the lookup to ``"embedded"`` or ``"real"`` (``World.load_task`` does).
    """
    worlds = _worlds(world)
    if not isinstance(name, str):
        raise ValueError(f"Task name must be a string, got {type(name).__name__}; see coop_tutorial.list_tasks().")
    if "embedded" in worlds:
        embedded = _find_embedded(name, _embedded_names())
        if embedded is not None:
            if split_file is not None:
                raise ValueError("split_file applies to real datasets only: embedded tasks have fixed splits.")
            check_subsample(subsample)  # before generating anything
            dataset = _embedded_module().load_embedded_task(embedded, split, transform=transform, root=root)
            return subsample_classes(dataset, subsample)
    if "real" in worlds and canonical_name(name) is not None:
        return load_real_dataset(name, split, transform=transform, root=root, download=download,
                                 subsample=subsample, split_file=split_file)
    known = list_tasks(world)
    listing = "; ".join(f"{kind}: {', '.join(names) or '(none yet)'}" for kind, names in known.items())
    spellings = {name_key(n): n for n in known.get("embedded", [])}
    if "real" in known:
        spellings.update(real_spellings())
    raise ValueError(f"Unknown task {name!r}.{suggest(name, spellings)} Known tasks: {listing}.")
