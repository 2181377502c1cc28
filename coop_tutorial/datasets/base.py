"""The dataset every real task returns, the errors it raises, and folder-listing helpers shared by the readers.

Bad-image policy: **stop, naming the file.** An unreadable image raises ``UnreadableImageError`` when it is
read, never a silent skip: skipping would change the test set (so the numbers), shift the indices a few-shot
split was drawn from, and hide a broken download. ``ImageListDataset.find_unreadable()`` opens every image once
and lists all bad files, so a user fixes them in one pass before a long run.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence, Union

from PIL import Image
from torch.utils.data import Dataset

from .metadata import DOCS_PAGE, IMAGE_EXTENSIONS


class Item(NamedTuple):
    """One image of a split, as CoOp's ``Datum``: the file, its 0-based label and its class name."""

    path: str
    label: int
    classname: str


class DatasetNotFoundError(FileNotFoundError):
    """The data root, the dataset folder or a file the layout needs is missing."""


class DatasetLayoutError(ValueError):
    """The files are there but do not hold what the layout says (empty class folder, bad split json...)."""


class UnreadableImageError(OSError):
    """An image file of a split cannot be opened or decoded."""


class DatasetWarning(UserWarning):
    """Something about the data a user should know, that does not stop the run."""


class GeneratedSplitWarning(DatasetWarning):
    """No official split json: a seeded split was built (or reused) instead, so numbers are not the paper's."""


class IncompleteDatasetWarning(DatasetWarning):
    """Fewer (or more) classes than the paper's dataset: an incomplete download or the wrong folder."""


def see_docs(anchor: str = "") -> str:
    """The sentence every layout error ends with, pointing at the layouts page."""
    return f"See the dataset layouts in {DOCS_PAGE}{'#' + anchor if anchor else ''} (linked from the README)."


def load_image(path: Union[str, Path]) -> Image.Image:
    """Open ``path`` as an RGB PIL image, or raise ``UnreadableImageError`` naming the file and the fix."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")  # convert() decodes the whole file, so truncation is caught here
    except FileNotFoundError as exc:
        raise UnreadableImageError(
            f"Image file not found: {path}. The dataset folder changed after its split was listed: restore the "
            f"file, or re-download the dataset.") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImageError(
            f"Cannot read image {path}: {exc}. The file is corrupt or not an image: re-download it (or the "
            f"dataset). To list every unreadable file in one pass, call dataset.find_unreadable().") from exc


class ImageListDataset(Dataset):
    """Images listed by path with integer labels; opened lazily with PIL and converted to RGB.

    Returns ``(image, label)``: ``image`` is a PIL image, or whatever ``transform`` makes of it (e.g. the CLIP
    preprocess gives a ``(3, 224, 224)`` tensor). ``classnames[label]`` is the class name as CoOp writes it
    (underscores kept; prompt builders replace them by spaces).
    """

    def __init__(self, items: Sequence[tuple[Union[str, Path], int]], classnames: Sequence[str],
                 transform: Optional[Callable] = None, name: str = "", split: str = "", source: str = "",
                 subsample: str = "all"):
        self.classnames: list[str] = list(classnames)
        self.paths: list[str] = [str(item[0]) for item in items]
        self.targets: list[int] = [int(item[1]) for item in items]
        self.transform = transform
        self.name = name
        self.split = split
        self.source = source  # where the split came from (official json, generated, folders...)
        self.subsample = subsample  # "all", or the "base"/"new" half of the classes
        if not self.classnames:
            raise ValueError(f"{self._label()} has no class names; a classification dataset needs at least one.")
        bad = sorted({t for t in self.targets if not 0 <= t < len(self.classnames)})
        if bad:
            raise DatasetLayoutError(f"{self._label()} has labels {bad[:5]} outside 0..{len(self.classnames) - 1} "
                                     f"({len(self.classnames)} class names).")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        image = load_image(self.paths[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def find_unreadable(self, limit: Optional[int] = None) -> list[tuple[str, str]]:
        """``(path, reason)`` of every image that cannot be decoded (stops after ``limit`` if given)."""
        bad: list[tuple[str, str]] = []
        for path in self.paths:
            try:
                load_image(path)
            except UnreadableImageError as exc:
                bad.append((path, str(exc.__cause__ or exc)))
                if limit is not None and len(bad) >= limit:
                    break
        return bad

    def _label(self) -> str:
        parts = (self.name or "dataset", self.split and f"({self.split})",
                 self.subsample != "all" and f"[{self.subsample} classes]")
        return " ".join(p for p in parts if p)

    def __repr__(self) -> str:
        return (f"ImageListDataset({self._label()}: {len(self)} images, {len(self.classnames)} classes, "
                f"transform={self.transform is not None})")


class RelabeledSubset(Dataset):
    """Some classes of any dataset with ``.classnames`` and ``.targets``, relabelled 0..k-1 (base-to-new)."""

    def __init__(self, dataset: Dataset, classes: Sequence[int]):
        self.dataset = dataset
        self.classes = list(classes)
        relabel = {old: new for new, old in enumerate(self.classes)}
        all_targets = [int(t) for t in dataset.targets]
        self.indices = [i for i, t in enumerate(all_targets) if t in relabel]
        self.targets = [relabel[all_targets[i]] for i in self.indices]
        self.classnames = [dataset.classnames[c] for c in self.classes]
        self._relabel = relabel

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        image, label = self.dataset[self.indices[index]]
        return image, self._relabel[int(label)]


def is_image_file(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_class_folders(parent: Path, what: str, anchor: str = "") -> list[str]:
    """Sorted names of the sub-folders of ``parent`` (Python's case-sensitive sort, as CoOp's ``sort()``)."""
    if not parent.is_dir():
        raise DatasetNotFoundError(f"Expected the folder {parent} ({what}). {see_docs(anchor)}")
    folders = sorted(entry.name for entry in os.scandir(parent) if entry.is_dir() and not entry.name.startswith("."))
    if not folders:
        loose = sum(1 for name in os.listdir(parent) if is_image_file(name))
        hint = (f" It holds {loose} images directly: sort them into one sub-folder per class." if loose else "")
        raise DatasetLayoutError(f"{parent} ({what}) has no class sub-folders.{hint} {see_docs(anchor)}")
    return folders


def list_images(folder: Path, anchor: str = "") -> list[str]:
    """Sorted image file names in ``folder``; an empty class folder is an error, not a silent empty class."""
    # scandir's is_file() comes from the directory listing: no stat per image (1.28M on ImageNet, slow on Drive)
    names = sorted(entry.name for entry in os.scandir(folder) if is_image_file(entry.name) and entry.is_file())
    if not names:
        raise DatasetLayoutError(
            f"The class folder {folder} holds no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}). "
            f"Re-extract the dataset, or delete the folder if that class should not exist. {see_docs(anchor)}")
    return names


def folder_items(image_dir: Path, folders: Sequence[str], classnames: Sequence[str],
                 anchor: str = "") -> list[Item]:
    """Every image of ``image_dir/<folder>`` labelled by the folder's position in ``folders``."""
    items: list[Item] = []
    for label, (folder, classname) in enumerate(zip(folders, classnames, strict=True)):
        for name in list_images(image_dir / folder, anchor):
            items.append(Item(str(image_dir / folder / name), label, classname))
    return items


def read_lines(path: Path, why: str, anchor: str = "") -> list[str]:
    """Non-empty, stripped lines of a metadata text file, or a clear error saying what it was needed for."""
    if not path.is_file():
        raise DatasetNotFoundError(f"Expected the file {path} ({why}). {see_docs(anchor)}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
