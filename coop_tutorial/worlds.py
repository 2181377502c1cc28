"""The one switch between worlds: ``world = use_world("embedded")`` or ``use_world("real", backbone="RN50")``.

A notebook calls it once and keeps the returned ``World``; every later cell asks it for the model and the
tasks, so the same code runs offline on the embedded world (tiny CLIP, synthetic tasks) and in Colab on real
CLIP and the paper's datasets. It is a plain value: nothing global changes.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import pandas as pd
import torch
from torch.utils.data import Dataset

from .claims import Claims
from .clip_loader import ClipBundle, load_clip
from .datasets.metadata import REAL_DATASETS
from .features import FeatureSet
from .task_features import EncodedTestSplit, TaskFeatures, encode_task, encode_test_split, task_templates
from .task_roles import TaskRoles
from .tasks import WORLDS, list_tasks, load_task
from .training import CoOpConfig, check_epochs, with_epochs

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
        _check_types(self)
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
        """The world's frozen CLIP, on the world's device (in the real world, a warning when its weights are random:
        its accuracies then mean nothing, and the notebooks' claims about them are skipped)."""
        clip = load_clip(self.backbone, pretrained=self.pretrained, device=self.device)
        if self.kind == "real" and clip.untrained:
            warnings.warn(f"{clip.name} has random weights ({clip.pretrained}): every accuracy below is meaningless, "
                          f"and claims about them are skipped. Pass pretrained='openai' (or another tag, or a "
                          f"checkpoint file) for a trained CLIP.", stacklevel=2)
        return clip

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

    # ---- what the notebooks set up from a world ---------------------------------------------------------------

    def roles(self, tasks: Optional[Sequence[str]] = None, source: Optional[str] = None,
              only_available: bool = True) -> TaskRoles:
        """Which task plays which role here (``TaskRoles``): ``tasks`` picks the main tasks (None: all), ``source``
        the shift study's source (None: ImageNet in the real world, ``shapes`` in the embedded one)."""
        return TaskRoles.of(self, only_available=only_available, tasks=tasks, source=source)

    def recipe(self, epochs: Optional[int] = None, dataset: Optional[str] = None) -> Callable[..., CoOpConfig]:
        """``(shots, dataset=None, **overrides) -> CoOpConfig``: the embedded preset in the embedded world, the
        paper's recipe in the real one (per dataset: ImageNet trains 50 epochs at every shot count).

        Notebooks and sweeps take their configs from here (sweeps call it with each task's name), so retuning
        ``CoOpConfig.embedded`` reaches every notebook. ``epochs``: fewer epochs than the recipe's, for a quick look
        (a warm-up epoch is dropped if it would leave none). ``dataset``: the default when a call names none.
        """
        check_epochs(epochs)  # a bad EPOCHS is reported now, not at the first training
        default, embedded = dataset, self.kind == "embedded"

        def recipe(shots: int, dataset: Optional[str] = None, **overrides) -> CoOpConfig:
            name = dataset if dataset is not None else default
            config = CoOpConfig.embedded(shots) if embedded else CoOpConfig.paper(shots, dataset=name)
            config = with_epochs(config, epochs)
            return config.replace(**overrides) if overrides else config

        return recipe

    @property
    def cache_dir(self) -> Path:
        """Where learned contexts (and, in the real world, image features) are kept between notebooks:
        ``<data root>/cache/<backbone>`` (data root: the world's, else ``$COOP_DATA``, else ``./data``, as
        ``load_task`` finds data)."""
        root = Path(self.data_root) if self.data_root is not None else Path(os.environ.get("COOP_DATA", "data"))
        return root / "cache" / str(self.backbone).replace("/", "-")

    def task_overview(self, names: Sequence[str]) -> pd.DataFrame:
        """One row per task: classes, split sizes, the default hand-written template and what it stands for."""
        rows = []
        for name in names:
            splits = {}
            for split in ("train", "val", "test"):
                try:
                    splits[split] = self.load_task(name, split)
                except ValueError:  # a shifted set has a test split only
                    continue
            test = splits["test"]
            classes = list(test.classnames)
            rows.append(dict(task=name, classes=len(classes),
                             examples=", ".join(classes[:4]) + (", ..." if len(classes) > 4 else ""),
                             **{f"n_{s}": len(d) for s, d in splits.items()},
                             default_template=task_templates(test, name)[0],
                             stands_for=getattr(getattr(test, "spec", None), "analogue", name)))
        frame = pd.DataFrame(rows).set_index("task")
        return frame.astype({c: "Int64" for c in frame.columns if c.startswith("n_")})

    def encode_task(self, clip: ClipBundle, name: str, progress: bool = False) -> TaskFeatures:
        """Task ``name`` encoded by ``clip`` (``TaskFeatures``): its test split now, the images of each few-shot
        draw when drawn; in the real world their features are cached on disk for the next notebook."""
        self.require(name)
        return encode_task(clip, name, load_task=self.load_task, progress=progress, cache_dir=self._feature_cache())

    def encode_test_split(self, clip: ClipBundle, name: str, progress: bool = False) -> EncodedTestSplit:
        """Only the test split of ``name`` encoded, with its class names and templates (``EncodedTestSplit``): all
        zero-shot tables and a shifted test set need; cached on disk in the real world."""
        self.require(name)
        return encode_test_split(clip, name, load_task=self.load_task, progress=progress,
                                 cache_dir=self._feature_cache())

    def claims(self, clip: ClipBundle) -> Claims:
        """The claims helper of a notebook running here on ``clip`` (``coop_tutorial.claims.Claims``)."""
        return Claims.of(self, clip)

    def encode_shift_study(self, clip: ClipBundle, roles: TaskRoles,
                           progress: bool = False) -> tuple[TaskFeatures, dict[str, FeatureSet]]:
        """``(source TaskFeatures, {shifted set: test FeatureSet})`` of the robustness study of ``roles`` (from
        ``roles()``): the source and every one of its shifted test sets must be there, or the error says which is
        missing, where it is expected and how to get it."""
        if self.kind == "real":
            expected = [n for n in self.tasks if REAL_DATASETS[n].splits == ("test",)] if roles.source == "imagenet" else []
            if not expected:
                raise ValueError(f"{roles.source!r} has no shifted test sets: in the real world only ImageNet has them "
                                 f"(ImageNet-V2, -Sketch, -A and -R). Leave the source at ImageNet (SHIFT_SOURCE = None).")
            for name in [roles.source] + expected:
                try:
                    self.require(name)
                except FileNotFoundError as exc:
                    raise type(exc)(f"The robustness study needs {name!r}, the source or one of its shifted test sets: "
                                    f"{exc}") from exc
        source = self.encode_task(clip, roles.source, progress=progress)
        return source, {name: self.encode_test_split(clip, name).test for name in roles.shifts}

    def _feature_cache(self) -> Optional[Path]:
        # the embedded world encodes its small generated tasks in seconds; real datasets are worth keeping
        return self.cache_dir / "features" if self.kind == "real" else None

    def require(self, name: str) -> None:
        """Nothing if task ``name`` loads; else a ``DatasetNotFoundError`` naming the folder it is expected in and
        how to get it (``download=True`` for what torchvision can fetch)."""
        if self.kind == "embedded":
            return
        self.load_task(name, "test")

    def limit_threads(self) -> None:
        """On a CPU, one thread for torch and BLAS: the embedded model's matrices are so small that handing work
        between threads costs more than it saves (measured on a 2-core CPU shared with another job: one seed of the
        shot sweep on one task took 4.4 s with 1 thread and 68 s with 2; scikit-learn's probe fits ran 40x
        faster with one BLAS thread). On a GPU nothing changes."""
        if self.device != "cpu":
            return
        import threadpoolctl

        torch.set_num_threads(1)
        threadpoolctl.threadpool_limits(1)

    def __str__(self) -> str:
        weights = f", pretrained={self.pretrained}" if self.pretrained is not None else ""
        data = f", data_root={self.data_root}" if self.data_root is not None else ""
        return f"{self.kind} world: backbone={self.backbone}{weights} on {self.device}{data}"


def _check_types(world: World) -> None:
    """Notebook parameters arrive as strings from papermill's command line: say which one is wrong and how."""
    expected = {"kind": (str,), "backbone": (str, type(None)), "pretrained": (str, Path, type(None)),
                "data_root": (str, Path, type(None)), "device": (str, type(None)), "download": (bool,)}
    names = {"kind": "WORLD", "backbone": "BACKBONE", "pretrained": "PRETRAINED", "data_root": "DATA_ROOT",
             "device": "device", "download": "DOWNLOAD"}
    for field_name, types in expected.items():
        value = getattr(world, field_name)
        if not isinstance(value, types):
            wanted = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise TypeError(f"{names[field_name]} ({field_name}) must be {wanted}, got {value!r} "
                            f"({type(value).__name__}); with papermill, pass booleans as -p DOWNLOAD True.")


def use_world(kind: str = "embedded", **options) -> World:
    """The world a notebook runs in; keep the returned object (``world.load_clip()``, ``world.load_task(...)``)."""
    return World(kind=kind, **options)
