"""Save and load a learned context: one small safetensors file with JSON metadata.

Only ``ctx`` is stored; ``token_prefix``/``token_suffix`` are rebuilt from the class names at load time (the
official code saves them and then deletes them on load, for the same reason: they depend on the class names,
so a unified context can be loaded for other classes). The file format is safetensors, which cannot carry
code, so loading a context never unpickles anything. Writes go to a temporary file that is renamed into
place, so an interrupted save never leaves a half-written checkpoint.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .clip_loader import ClipBundle, weights_fingerprint
from .prompt_learner import PromptLearner

FORMAT = "coop-tutorial/context"
FORMAT_VERSION = 1


def save_context(path: Union[str, Path], learner_or_result: Any, config: Any = None,
                 extra: Optional[dict] = None) -> Path:
    """Write the context of a PromptLearner (or of a ``train_coop`` result) to ``path``.

    Args:
        learner_or_result: a ``PromptLearner`` or a ``TrainResult`` (whose config is then saved too).
        config: a ``CoOpConfig`` to record (default: the result's).
        extra: any JSON-serialisable notes (dataset, shots, seed, accuracy...).

    Metadata: model name and pretrained tag, n_ctx, csc, class token position, class names, ctx_init, width,
    context length, config, library version, ``extra``.
    """
    from . import __version__

    learner = getattr(learner_or_result, "learner", learner_or_result)
    if not isinstance(learner, PromptLearner):
        raise ValueError(f"save_context needs a PromptLearner or a TrainResult, "
                         f"got {type(learner_or_result).__name__}.")
    config = config if config is not None else getattr(learner_or_result, "config", None)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
        "model_name": learner.clip_name, "pretrained": getattr(learner, "clip_pretrained", None),
        "weights_fingerprint": getattr(learner, "weights_fingerprint", None),
        "width": learner.width, "context_length": learner.context_length,
        "n_ctx": learner.n_ctx, "csc": learner.csc, "class_token_position": learner.class_token_position,
        "classnames": list(learner.classnames), "ctx_init": learner.ctx_init,
        "config": config.to_dict() if hasattr(config, "to_dict") else config, "extra": extra or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        save_file({"ctx": learner.ctx.detach().float().cpu().contiguous()}, tmp,
                  metadata={"coop_tutorial": json.dumps(meta)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


REQUIRED_KEYS = ("model_name", "width", "n_ctx", "csc", "class_token_position", "classnames")


def read_context(path: Union[str, Path]) -> tuple[torch.Tensor, dict]:
    """``(ctx, metadata)`` of a saved context, without building a learner; a damaged file is named as such."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; pass the context file (.safetensors) saved by "
                                f"ct.save_context.")
    if not path.exists():
        raise FileNotFoundError(f"No context at {path}; save one with ct.save_context(path, result).")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            ctx = handle.get_tensor("ctx") if "ctx" in handle.keys() else None
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file ({exc}). Contexts are saved with "
                         f"ct.save_context; pickle checkpoints (.pth, .pt) are never loaded this way.") from exc
    try:
        meta = json.loads(header.get("coop_tutorial", "{}"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the context's metadata is not valid JSON ({exc}); the file was edited or "
                         f"damaged. Save the context again with ct.save_context.") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or ctx is None:
        raise ValueError(f"{path} is a safetensors file but not a coop-tutorial context (no 'ctx' tensor or "
                         f"metadata); save one with ct.save_context.")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ValueError(f"{path}: the context's metadata lacks {missing}, which ct.save_context always writes; "
                         f"the file was edited. Save the context again with ct.save_context.")
    if not torch.isfinite(ctx).all():
        raise ValueError(f"{path}: the context holds NaN or infinite values "
                         f"({int((~torch.isfinite(ctx)).sum())} of {ctx.numel()}); it was saved from a diverged "
                         f"run. Train it again (a lower CoOpConfig.lr).")
    return ctx, meta


def load_context(path: Union[str, Path], clip: ClipBundle, classnames: Optional[Sequence[str]] = None,
                 allow_other_weights: bool = False) -> PromptLearner:
    """A PromptLearner carrying the saved context.

    Args:
        clip: the CLIP to use; must be the model the context was learned on (same name and width).
        classnames: build the prompts for these classes (default: the saved ones). A unified context loads
            for any class names; a class-specific one only for its own.
        allow_other_weights: load onto a model of the same architecture but other weights (another pretraining,
            LAION instead of OpenAI) on purpose; by default that is refused, since the context was optimised
            for the weights it was learned with.

    Raises:
        ValueError: naming each field that differs (``model_name``, ``width``, ``classnames``).
    """
    ctx, meta = read_context(path)
    names = list(classnames) if classnames is not None else list(meta["classnames"])
    problems = []
    if meta["model_name"] != clip.name:
        problems.append(f"model_name: saved {meta['model_name']!r}, given {clip.name!r}")
    if meta["width"] != clip.width:
        problems.append(f"width: saved {meta['width']}, given model has {clip.width}")
    saved_print, given_print = meta.get("weights_fingerprint"), weights_fingerprint(clip)
    if saved_print and saved_print != given_print and not allow_other_weights and meta["model_name"] == clip.name:
        problems.append(f"weights: learned on {meta['model_name']!r} with pretrained={meta.get('pretrained')!r} "
                        f"(weights {saved_print}), given pretrained={clip.pretrained!r} (weights {given_print}); "
                        f"load the weights it was learned with, or pass allow_other_weights=True to transfer it "
                        f"knowingly")
    saved_names = list(meta["classnames"])
    if meta["csc"] and names != saved_names:
        if sorted(names) == sorted(saved_names):
            problems.append("classnames: the same classes in another order; a class-specific (csc) context holds "
                            "one context per class in the saved order, so pass classnames in that order "
                            f"(e.g. {saved_names[:3]}...) or leave classnames=None")
        else:
            unknown = [c for c in names if c not in set(saved_names)]
            problems.append("classnames: a class-specific (csc) context only loads for the classes it was trained "
                            f"on ({len(saved_names)} saved, {len(names)} given"
                            + (f"; not trained on {unknown[:3]}" if unknown else "")
                            + "); train a unified context for new classes")
    expected = (meta["n_ctx"], meta["width"])
    if meta["csc"]:
        expected = (len(meta["classnames"]),) + expected
    if tuple(ctx.shape) != expected:
        problems.append(f"ctx: shape {tuple(ctx.shape)} does not match the metadata {expected}")
    if problems:
        raise ValueError(f"Cannot load the context in {path}: " + "; ".join(problems) + ".")
    learner = PromptLearner(clip, names, n_ctx=meta["n_ctx"], csc=meta["csc"],
                            class_token_position=meta["class_token_position"], generator=torch.Generator())
    with torch.no_grad():
        learner.ctx.copy_(ctx.to(learner.ctx.dtype))
    learner.ctx_init = meta.get("ctx_init")
    return learner
