"""UCF101 as still images: ``ucf101/UCF-101-midframes/<Action_Name>/`` holds the middle frame of each video
(CoOp's extraction). Class names split the CamelCase action: ``ApplyEyeMakeup`` -> ``Apply_Eye_Makeup``.

Without ``split_zhou_UCF101.json``: official split 01 (``ucfTrainTestlist/``), its train list split 80/20.
"""
from __future__ import annotations

import re

from .base import DatasetLayoutError, Item, read_lines
from .layout import DatasetLocation
from .splits import TRAINVAL_RULE, SplitData, resolve_split, select_split, split_trainval


def coop_action_name(action: str) -> str:
    """``"ApplyEyeMakeup"`` -> ``"Apply_Eye_Makeup"`` (also the midframes folder name)."""
    return "_".join(re.findall("[A-Z][^A-Z]*", action))


def read(location: DatasetLocation, split: str) -> SplitData:
    lists = location.dataset_dir / "ucfTrainTestlist"

    def listing(name: str, label_of: dict[str, int]) -> list[Item]:
        items = []
        for line in read_lines(lists / name, "UCF101 official split 01", location.anchor):
            video = line.split(" ")[0]
            action, _, filename = video.partition("/")
            if action not in label_of:
                raise DatasetLayoutError(f"{lists / name}: action {action!r} is not in classInd.txt.")
            renamed = coop_action_name(action)
            path = location.image_dir / renamed / filename.replace(".avi", ".jpg")
            items.append(Item(str(path), label_of[action], renamed))
        return items

    def build():
        label_of = {}
        for line in read_lines(lists / "classInd.txt", "UCF101 class list", location.anchor):
            number, _, action = line.partition(" ")
            label_of[action] = int(number) - 1
        train, val = split_trainval(listing("trainlist01.txt", label_of))
        return {"train": train, "val": val, "test": listing("testlist01.txt", label_of)}

    splits, source = resolve_split(location, build, TRAINVAL_RULE)
    return select_split(splits, split, source)
