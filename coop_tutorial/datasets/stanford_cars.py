"""Stanford Cars: ``stanford_cars/{cars_train,cars_test,devkit}/`` + ``cars_test_annos_withlabels.mat``.

The layout is the same for CoOp and torchvision (whose download no longer works). Class names move the year to
the front, as CoOp writes them (``2012 Tesla Model S``). Without ``split_zhou_StanfordCars.json``: the official
test set, and the official train set split 80/20 into train/val.
"""
from __future__ import annotations

from pathlib import Path

from .base import DatasetLayoutError, DatasetNotFoundError, Item, see_docs
from .layout import DatasetLocation
from .splits import TRAINVAL_RULE, SplitData, resolve_split, select_split, split_trainval


def coop_car_name(official: str) -> str:
    """``"AM General Hummer SUV 2000"`` -> ``"2000 AM General Hummer SUV"`` (CoOp's prompt name)."""
    words = official.split(" ")
    return " ".join([words[-1], *words[:-1]])


def _loadmat(path: Path, key: str):
    from scipy.io import loadmat

    if not path.is_file():
        raise DatasetNotFoundError(f"Expected {path} (Stanford Cars annotations, needed to build a split when "
                                   f"split_zhou_StanfordCars.json is absent). {see_docs('stanford_cars')}")
    content = loadmat(str(path))
    if key not in content:
        raise DatasetLayoutError(f"{path} has no '{key}' array: is it the Stanford Cars devkit file?")
    return content[key][0]


def read_annotations(annos_path: Path, image_folder: Path, class_names: list[str]) -> list[Item]:
    """Items of a devkit annotation .mat (fields ``fname`` and 1-based ``class``)."""
    items = []
    for record in _loadmat(annos_path, "annotations"):
        label = int(record["class"][0, 0]) - 1
        if not 0 <= label < len(class_names):
            raise DatasetLayoutError(f"{annos_path}: class {label + 1} is outside the {len(class_names)} classes "
                                     f"of cars_meta.mat.")
        items.append(Item(str(image_folder / str(record["fname"][0])), label, class_names[label]))
    return items


def read(location: DatasetLocation, split: str) -> SplitData:
    folder = location.dataset_dir

    def build():
        class_names = [coop_car_name(str(name[0])) for name in _loadmat(folder / "devkit" / "cars_meta.mat",
                                                                        "class_names")]
        trainval = read_annotations(folder / "devkit" / "cars_train_annos.mat", folder / "cars_train", class_names)
        train, val = split_trainval(trainval)
        test = read_annotations(folder / "cars_test_annos_withlabels.mat", folder / "cars_test", class_names)
        return {"train": train, "val": val, "test": test}

    splits, source = resolve_split(location, build, TRAINVAL_RULE)
    return select_split(splits, split, source)
