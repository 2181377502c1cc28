"""A cache of learned contexts, so the notebooks after the shot sweep reuse its runs instead of training again.

A run's file name hashes everything it depends on (the model's weights, the task's features, shots, the config and
the training code), so a changed input is a cache miss, never a stale hit. ``World.cache_dir`` says where a world
keeps them; ``sweeps.fit_coop(..., cache_dir=...)`` reads and writes them.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Union

from .checkpoint import load_context, read_context
from .clip_loader import ClipBundle, weights_fingerprint
from .task_features import TaskFeatures, encode_task
from .training import CoOpConfig, TrainResult, build_classifier

# The modules whose code decides what a run learns (and, in ``code_fingerprint``, the functions that draw and
# encode a task's images and fit CoOp on them): any edit to them invalidates every cached context.
_TRAINING_CODE = ("training.py", "prompt_learner.py", "text_encoder.py", "classifier.py", "few_shot.py",
                  "features.py", "checkpoint.py")


def digest(*parts: bytes) -> str:
    """A short (16 hex digits) SHA-1 of ``parts``: the key part of a cache file's name."""
    hashed = hashlib.sha1()
    for part in parts:
        hashed.update(part)
    return hashed.hexdigest()[:16]


def code_fingerprint() -> str:
    """A digest of the training code: the modules in ``_TRAINING_CODE`` and the functions that fit CoOp on a task."""
    from .sweeps import fit_coop  # imported here: sweeps imports this module

    here = Path(__file__).parent
    own = [inspect.getsource(f).encode() for f in (fit_coop, TaskFeatures.few_shot, TaskFeatures.few_shot_splits,
                                                    TaskFeatures.encode, encode_task)]
    return digest(*((here / name).read_bytes() for name in _TRAINING_CODE), *own)


def coop_cache_path(cache_dir: Union[str, Path], clip: ClipBundle, task: TaskFeatures, shots: int,
                    config: CoOpConfig) -> Path:
    """The file a CoOp run is cached in; its name hashes everything the run depends on: the model's weights,
    the task's features (name, sizes, how the views were made), shots, the config (seed included) and the
    training code."""
    # Settings that change only what is reported, not what is learned, stay out of the key.
    settings = {k: v for k, v in config.to_dict().items()
                if k not in ("progress", "device", "eval_every", "log_every")}
    key = json.dumps({"model": clip.name, "pretrained": str(clip.pretrained), "weights": weights_fingerprint(clip),
                      "task": task.name, "classnames": task.classnames, "n_train": len(task.datasets["train"]),
                      "n_val": len(task.datasets["val"]), "views": {"n_views": task.n_views, "seed": task.seed,
                                                                    "transform": "train",
                                                                    "image_size": clip.image_size},
                      "shots": shots, "config": settings, "code": code_fingerprint()}, sort_keys=True, default=str)
    return Path(cache_dir) / task.name / f"coop_{shots}shots_seed{config.seed}_{digest(key.encode())}.safetensors"


def load_cached_result(path: Path, clip: ClipBundle, task: TaskFeatures, config: CoOpConfig) -> TrainResult:
    """A ``TrainResult`` rebuilt from a cached context (its history comes from the cache's metadata)."""
    learner = load_context(path, clip, classnames=task.classnames)
    classifier = build_classifier(clip, learner, config)
    classifier.eval()
    history = read_context(path)[1].get("extra", {}).get("history", [])
    return TrainResult(learner, classifier, history, config)
