"""Finding a dataset under the data root: the CoOp layout, torchvision's layout, or a guarded download.

Errors here say exactly which folder or file was expected, so a user can fix the tree without reading code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from .base import DatasetNotFoundError, see_docs
from .metadata import DatasetInfo, Layout

DATA_ROOT_ENV = "COOP_DATA"
DEFAULT_DATA_ROOT = "data"


@dataclass(frozen=True)
class DatasetLocation:
    """Where one dataset was found: its folder, the layout it follows, and an optional user split file."""

    info: DatasetInfo
    root: Path
    layout: Layout
    dataset_dir: Path
    split_file: Optional[Path] = None

    @property
    def image_dir(self) -> Path:
        """The folder the split json paths start from."""
        return self.dataset_dir / self.layout.image_dir if self.layout.image_dir else self.dataset_dir

    @property
    def json_dirs(self) -> list[Path]:
        """Folders searched for split files: the dataset folder, then CoOp's folder for it under the root."""
        dirs = [self.dataset_dir, self.root / self.info.coop_folder]
        return list(dict.fromkeys(dirs))

    @property
    def anchor(self) -> str:
        return self.info.name


def resolve_data_root(root: Optional[Union[str, Path]] = None) -> Path:
    """``root``, else ``$COOP_DATA``, else ``./data``: the folder holding every dataset (``$DATA`` in CoOp)."""
    chosen = root if root is not None else os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT
    return Path(chosen).expanduser()


def describe_layout(root: Path, layout: Layout) -> str:
    entries = ", ".join(f"{e}/" if "." not in e else e for e in layout.expected) or "(its files)"
    return f"{root / layout.folder}/ holding {entries} ({layout.kind} layout)"


def _missing(root: Path, layout: Layout) -> Optional[list[str]]:
    """Entries of ``layout`` missing under ``root`` (``None`` when its folder does not exist at all)."""
    folder = root / layout.folder
    if not folder.is_dir():
        return None
    return [entry for entry in layout.expected if not (folder / entry).exists()]


def find_dataset(info: DatasetInfo, root: Path, download: bool = False,
                 split_file: Optional[Union[str, Path]] = None) -> DatasetLocation:
    """Locate ``info``'s dataset under ``root``, downloading it through torchvision if asked and possible."""
    split_path = Path(split_file).expanduser() if split_file is not None else None
    if split_path is not None and not split_path.is_file():
        raise DatasetNotFoundError(f"split_file={str(split_file)!r} does not exist. Pass the path of a "
                                   f"{info.split_json or 'split'} file, or leave split_file unset.")
    if not root.is_dir():
        if download and info.torchvision is not None:
            root.mkdir(parents=True, exist_ok=True)
        else:
            raise DatasetNotFoundError(
                f"The data root {root} does not exist. Pass root='/path/to/data' or set the {DATA_ROOT_ENV} "
                f"environment variable to the folder that holds your datasets ($DATA in the CoOp instructions); "
                f"{info.title} is expected in {root / info.coop_folder}/. {_fetch_hint(info)} {see_docs(info.name)}")

    location = _first_complete(info, root, split_path)
    if location is None and download:
        download_with_torchvision(info, root)
        location = _first_complete(info, root, split_path)
    if location is not None:
        return location

    expected = " or ".join(describe_layout(root, layout) for layout in info.layouts)
    partial = [(layout, missing) for layout in info.layouts
               if (missing := _missing(root, layout)) is not None]
    if partial:
        layout, missing = partial[0]
        raise DatasetNotFoundError(
            f"{root / layout.folder} exists but has no {', '.join(missing)}: it is not a complete {info.title} "
            f"folder. Expected {expected}. {see_docs(info.name)}")
    raise DatasetNotFoundError(f"No {info.title} under {root}: expected {expected}. {_fetch_hint(info)} "
                               f"{see_docs(info.name)}")


def _fetch_hint(info: DatasetInfo) -> str:
    """How to get ``info``'s files: torchvision's download (``DOWNLOAD = True`` in a notebook) where it works."""
    if info.torchvision is not None:
        return (f"Pass download=True (DOWNLOAD = True in a notebook) to let torchvision fetch it, or download it by "
                f"hand from {info.source}.")
    return f"It cannot be downloaded automatically: fetch it by hand from {info.source}."


def _first_complete(info: DatasetInfo, root: Path, split_path: Optional[Path]) -> Optional[DatasetLocation]:
    for layout in info.layouts:
        if _missing(root, layout) == []:
            return DatasetLocation(info, root, layout, root / layout.folder, split_path)
    return None


def download_with_torchvision(info: DatasetInfo, root: Path) -> None:
    """Let torchvision download ``info`` into ``root`` (its own layout); any failure becomes an actionable error."""
    if info.torchvision is None:
        raise DatasetNotFoundError(
            f"{info.title} cannot be downloaded automatically (torchvision has no working download for it). "
            f"Fetch it by hand from {info.source} and lay it out as {describe_layout(root, info.layouts[0])}. "
            f"{see_docs(info.name)}")
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, info.torchvision.cls, None)
    if dataset_class is None:
        raise DatasetNotFoundError(
            f"This torchvision ({torchvision.__version__}) has no datasets.{info.torchvision.cls}, so it cannot "
            f"download {info.title}: upgrade torchvision, or fetch it by hand from {info.source}.")
    try:
        dataset_class(root=str(root), download=True, **dict(info.torchvision.kwargs))
    except Exception as exc:  # network, checksum, missing gdown...: all mean the files did not arrive
        raise DatasetNotFoundError(
            f"torchvision could not download {info.title} into {root} ({type(exc).__name__}: {exc}). Without "
            f"network access, download it by hand from {info.source} and lay it out as "
            f"{describe_layout(root, info.layouts[0])}. {see_docs(info.name)}") from exc
