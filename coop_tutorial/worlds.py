"""The one switch between worlds: ``world = use_world("embedded")`` or ``use_world("real", backbone="RN50")``.

A notebook calls it once and keeps the returned ``World``; every later cell asks it for the model and the
tasks, so the same code runs offline on the embedded world (tiny CLIP, synthetic tasks) and in Colab on real
CLIP and the paper's datasets. It is a plain value: nothing global changes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Union

import torch
from torch.utils.data import Dataset

from .clip_loader import ClipBundle, load_clip
from .tasks import WORLDS, list_tasks, load_task

# What each world runs on unless told otherwise: the embedded model, or the paper's main backbone.
DEFAULT_BACKBONES = {"embedded": "tiny", "real": "RN50"}


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class World:
    """Which CLIP and which tasks a notebook uses.

    Args:
        kind: ``"embedded"`` (tiny CLIP, synthetic tasks, no network) or ``"real"`` (open_clip models, the
            paper's datasets).
        backbone: a ``load_clip`` name; default ``"tiny"`` (embedded) or ``"RN50"`` (real).
        pretrained: an open_clip tag (``"openai"``, ``"laion2b_s34b_b88k"``...) or a checkpoint path; ``None``:
            the default weights of the backbone.
        data_root: real: the folder holding the datasets (default ``$COOP_DATA`` or ``./data``); embedded: the
            cache of generated tasks (default: the package's).
        device: default ``"cuda"`` when available, else ``"cpu"``.
        download: real world: let torchvision fetch the datasets it can.
    """

    kind: str = "embedded"
    backbone: Optional[str] = None
    pretrained: Optional[Union[str, Path]] = None
    data_root: Optional[Union[str, Path]] = None
    device: Optional[str] = None
    download: bool = False

    def __post_init__(self) -> None:
        if self.kind not in WORLDS:
            raise ValueError(f"Unknown world {self.kind!r}: use 'embedded' (offline, tiny CLIP, synthetic tasks) "
                             f"or 'real' (open_clip backbones, the paper's datasets).")
        backbone = self.backbone or DEFAULT_BACKBONES[self.kind]
        if self.kind == "real" and backbone == "tiny":
            raise ValueError("The embedded 'tiny' model only knows the synthetic world and is at chance on real "
                             "photos: pick a real backbone (e.g. backbone='RN50' or 'ViT-B/16'), or use "
                             "use_world('embedded').")
        object.__setattr__(self, "backbone", backbone)
        device = self.device or default_device()
        try:
            torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"Invalid device {device!r} ({exc}); use 'cpu', 'cuda' or 'cuda:0'.") from exc
        object.__setattr__(self, "device", device)

    @property
    def tasks(self) -> list[str]:
        """Names ``load_task`` accepts in this world."""
        return list_tasks(self.kind)[self.kind]

    def load_clip(self) -> ClipBundle:
        """The world's frozen CLIP, on the world's device."""
        return load_clip(self.backbone, pretrained=self.pretrained, device=self.device)

    def load_task(self, name: str, split: str, transform: Optional[Callable] = None, subsample: str = "all",
                  split_file: Optional[Union[str, Path]] = None) -> Dataset:
        """One split of one of this world's tasks (see ``coop_tutorial.load_task``)."""
        return load_task(name, split, transform=transform, root=self.data_root, download=self.download,
                         subsample=subsample, split_file=split_file, world=self.kind)

    def with_options(self, **changes) -> "World":
        """A copy with some fields changed, e.g. ``world.with_options(backbone="ViT-B/16")``.

        Switching ``kind`` without naming a backbone also switches a default backbone to the new world's.
        """
        if "kind" in changes and "backbone" not in changes and self.backbone == DEFAULT_BACKBONES[self.kind]:
            changes["backbone"] = None
        return replace(self, **changes)

    def __str__(self) -> str:
        weights = f", pretrained={self.pretrained}" if self.pretrained is not None else ""
        data = f", data_root={self.data_root}" if self.data_root is not None else ""
        return f"{self.kind} world: backbone={self.backbone}{weights} on {self.device}{data}"


def use_world(kind: str = "embedded", **options) -> World:
    """The world a notebook runs in; keep the returned object (``world.load_clip()``, ``world.load_task(...)``)."""
    return World(kind=kind, **options)
