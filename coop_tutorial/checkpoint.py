"""Save and load a learned context: one small safetensors file with JSON metadata.

Only ``ctx`` is stored; ``token_prefix``/``token_suffix`` are rebuilt from the class names at load time (the
official code saves them and then deletes them on load, for the same reason: they depend on the class names,
so a unified context can be loaded for other classes). The file format is safetensors, which cannot carry
code, so loading a context never unpickles anything. Writes go to a temporary file that is renamed into
place, so an interrupted save never leaves a half-written checkpoint.

The official code's prompt checkpoints (``<output>/prompt_learner/model.pth.tar-<epoch>``, written by Dassl's
``save_checkpoint``) are read too, without running pickled code: ``torch.load(weights_only=True)`` only, which
builds tensors and plain containers and refuses every other global. Dassl's checkpoints also pickle the learning
rate scheduler's successor (a ``CosineAnnealingLR`` holding its ``SGD``); those few optimiser/scheduler names are
mapped to an inert record class of this module (``_OpaqueRecord``: it stores the fields, runs nothing), so the
file loads and the context is read while torch's classes are never instantiated. ``save_context(...,
format="official")`` writes a file the official ``--eval-only --load-epoch N`` path reads.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ._io import atomic_path
from .clip_loader import ClipBundle, weights_fingerprint
from .prompt_learner import PromptLearner

FORMAT = "coop-tutorial/context"
FORMAT_VERSION = 1


def save_context(path: Union[str, Path], learner_or_result: Any, config: Any = None,
                 extra: Optional[dict] = None, format: str = "safetensors", epoch: Optional[int] = None) -> Path:
    """Write the context of a PromptLearner (or of a ``train_coop`` result) to ``path``.

    Args:
        learner_or_result: a ``PromptLearner`` or a ``TrainResult`` (whose config is then saved too).
        config: a ``CoOpConfig`` to record (default: the result's).
        extra: any JSON-serialisable notes (dataset, shots, seed, accuracy...).
        format: ``"safetensors"`` (this package's file) or ``"official"``: the official code's
            ``prompt_learner/model.pth.tar-<epoch>`` (``path`` is then the run's output folder, or the file itself
            when its name is ``model.pth.tar-N``); evaluate it there with ``--eval-only --model-dir <folder>
            --load-epoch <epoch>``.
        epoch: the official file's epoch (default: the config's epochs, else 1).

    Metadata (safetensors): model name and pretrained tag, n_ctx, csc, class token position, class names,
    ctx_init, width, context length, config, library version, ``extra``.
    """
    from . import __version__

    if format not in ("safetensors", "official"):
        raise ValueError(f"Unknown checkpoint format {format!r}; use 'safetensors' (this package's) or 'official' "
                         f"(the official code's prompt_learner/model.pth.tar-N).")
    learner = getattr(learner_or_result, "learner", learner_or_result)
    if not isinstance(learner, PromptLearner):
        raise ValueError(f"save_context needs a PromptLearner or a TrainResult, "
                         f"got {type(learner_or_result).__name__}.")
    config = config if config is not None else getattr(learner_or_result, "config", None)
    if format == "official":
        return save_official_context(path, learner, epoch, default_epoch=int(getattr(config, "epochs", 1)))
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
    with atomic_path(path) as tmp:
        save_file({"ctx": learner.ctx.detach().float().cpu().contiguous()}, str(tmp),
                  metadata={"coop_tutorial": json.dumps(meta)})
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
                         f"ct.save_context; pickle checkpoints (.pth, .pt) are never loaded this way: an official "
                         f"prompt_learner/model.pth.tar-N is read by ct.load_context or read_official_context "
                         f"(tensors only, never arbitrary pickled objects).") from exc
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
                 allow_other_weights: bool = False, class_token_position: str = "end",
                 n_ctx: Optional[int] = None) -> PromptLearner:
    """A PromptLearner carrying the saved context: this package's safetensors file, or an official
    ``prompt_learner/model.pth.tar-N`` (or the run folder holding one).

    Args:
        clip: the CLIP to use; must be the model the context was learned on (same name and width).
        classnames: build the prompts for these classes (default: the saved ones). A unified context loads
            for any class names; a class-specific one only for its own. Official files record no class names:
            pass them (in label order, as the official dataset lists them).
        allow_other_weights: load onto a model of the same architecture but other weights (another pretraining,
            LAION instead of OpenAI) on purpose; by default that is refused, since the context was optimised
            for the weights it was learned with. (Official files do not record their weights.)
        class_token_position: official files only (they do not record it): ``"end"`` (the official default),
            ``"middle"`` or ``"front"``.
        n_ctx: official files only: the context length you expect (checked against the file).

    Raises:
        ValueError: naming each field that differs (``model_name``, ``width``, ``classnames``, ``n_ctx``).
    """
    if not _is_safetensors(path):
        return _load_official(path, clip, classnames, class_token_position, n_ctx)
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


# ---------------------------------------------------------------------------------------------------------------
# The official code's checkpoints (Dassl's save_checkpoint): {"state_dict": {...}, "epoch", "optimizer", ...}.
# ---------------------------------------------------------------------------------------------------------------

OFFICIAL_FILE = re.compile(r"model(\.pth\.tar-\d+|-best\.pth\.tar)$")

# Classes Dassl's checkpoints pickle besides tensors (the warm-up scheduler keeps its successor scheduler, which
# keeps its optimiser). They are read as inert records, never built as the real classes.
_OPAQUE_NAMES = tuple(f"torch.optim.lr_scheduler.{n}" for n in (
    "CosineAnnealingLR", "StepLR", "MultiStepLR", "LambdaLR", "ExponentialLR", "_LRScheduler", "LRScheduler")) + \
    tuple(f"torch.optim.{m}.{n}" for m, n in (("sgd", "SGD"), ("adam", "Adam"), ("adamw", "AdamW"),
                                              ("rmsprop", "RMSprop"), ("optimizer", "Optimizer")))


class _OpaqueRecord:
    """Stands in for an optimiser or scheduler object inside an official checkpoint: keeps its fields, runs
    nothing (no ``__init__``, no ``__setstate__``)."""


def _plain_dict(*_: Any) -> dict:
    """Stands in for ``collections.defaultdict`` (an optimiser's ``state``): a plain dict, no default factory."""
    return {}


def _official_safe_globals() -> list:
    return [(_OpaqueRecord, name) for name in _OPAQUE_NAMES] + [(_plain_dict, "collections.defaultdict"),
                                                                (dict, "builtins.dict")]


def _is_safetensors(path: Union[str, Path]) -> bool:
    """True for a safetensors file; False for anything else (a folder, a torch zip or pickle file)."""
    path = Path(path)
    if path.is_dir():
        return False
    try:
        with safe_open(str(path), framework="pt"):
            return True
    except Exception:  # SafetensorError, OSError...: whatever it is, it is not a readable safetensors file
        return False


def official_checkpoint_file(path: Union[str, Path]) -> Path:
    """The checkpoint file ``path`` names: itself, or the one ``prompt_learner/model.pth.tar-N`` under a run folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No context checkpoint at {path}.")
    if path.is_file():
        return path
    folder = path / "prompt_learner" if (path / "prompt_learner").is_dir() else path
    found = sorted(p for p in folder.iterdir() if OFFICIAL_FILE.match(p.name))
    if not found:
        raise IsADirectoryError(f"{path} is a directory, not a context file, and holds no official "
                                f"prompt_learner/model.pth.tar-N; pass the .safetensors file ct.save_context wrote "
                                f"(or an official run folder).")
    if len(found) != 1:
        listing = ", ".join(p.name for p in found) or "none"
        raise ValueError(f"{folder} holds {len(found)} official prompt checkpoints ({listing}); pass the file itself, "
                         f"e.g. {folder / 'model.pth.tar-50'}.")
    return found[0]


def read_official_context(path: Union[str, Path]) -> tuple[torch.Tensor, dict]:
    """``(ctx, info)`` of an official prompt checkpoint, read with ``torch.load(weights_only=True)``.

    ``info``: ``n_ctx``, ``csc``, ``width``, ``n_classes`` (from ``token_prefix``, or None), ``context_length``
    (from ``token_suffix``, or None), ``epoch`` and ``dtype``; ``token_prefix``/``token_suffix`` themselves are
    dropped, as the official loader drops them (they are rebuilt from the class names).
    """
    file = official_checkpoint_file(path)
    try:
        with torch.serialization.safe_globals(_official_safe_globals()):
            checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # the weights-only unpickler runs no code, so any failure just means 'not loadable'
        # (random bytes raise UnpicklingError, EOFError, IndexError, ... depending on the bytes)
        text = str(exc).strip()
        found = re.search(r"Unsupported (global|operand)[^.\n]*", text)
        first = found.group(0) if found else (text.splitlines()[0] if text else type(exc).__name__)
        raise ValueError(f"{file} is not a readable safetensors file, nor a plain tensor checkpoint: it was not "
                         f"loaded ({first}). Only tensors and "
                         f"containers are read (torch.load(weights_only=True)); a file that needs other Python "
                         f"objects is refused rather than executed. Official CoOp prompt checkpoints "
                         f"(prompt_learner/model.pth.tar-N) and this package's .safetensors contexts load.") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not isinstance(state.get("ctx"), torch.Tensor):
        keys = sorted(state)[:8] if isinstance(state, dict) else type(checkpoint).__name__
        raise ValueError(f"{file} holds no prompt context: expected a 'state_dict' with a 'ctx' tensor (the official "
                         f"prompt_learner checkpoint), found {keys}.")
    ctx = state["ctx"]
    if ctx.dim() not in (2, 3):
        raise ValueError(f"{file}: 'ctx' has shape {tuple(ctx.shape)}; a CoOp context is (n_ctx, width) or, "
                         f"class-specific, (n_classes, n_ctx, width).")
    prefix, suffix = state.get("token_prefix"), state.get("token_suffix")
    info = {"n_ctx": int(ctx.shape[-2]), "csc": ctx.dim() == 3, "width": int(ctx.shape[-1]),
            "n_classes": int(prefix.shape[0]) if isinstance(prefix, torch.Tensor) else None,
            "context_length": (1 + int(ctx.shape[-2]) + int(suffix.shape[1]))
            if isinstance(suffix, torch.Tensor) and suffix.dim() == 3 else None,
            "epoch": checkpoint.get("epoch") if isinstance(checkpoint, dict) else None,
            "dtype": str(ctx.dtype).replace("torch.", ""), "file": str(file)}
    if info["csc"]:
        info["n_classes"] = int(ctx.shape[0])
    return ctx.float(), info


def _load_official(path: Union[str, Path], clip: ClipBundle, classnames: Optional[Sequence[str]],
                   class_token_position: str, n_ctx: Optional[int]) -> PromptLearner:
    ctx, info = read_official_context(path)
    file = info["file"]
    if classnames is None:
        raise ValueError(f"{file} is an official checkpoint, which records no class names: pass classnames=[...] in "
                         f"label order (the dataset's .classnames).")
    names = list(classnames)
    problems = []
    if info["width"] != clip.width:
        problems.append(f"width: the context vectors have {info['width']} dimensions, {clip.name} has "
                        f"{clip.width} (a context only loads on the backbone it was learned on)")
    if info["context_length"] is not None and info["context_length"] != clip.context_length:
        problems.append(f"context length: the checkpoint's prompts are {info['context_length']} tokens long, "
                        f"{clip.name}'s {clip.context_length}")
    if n_ctx is not None and n_ctx != info["n_ctx"]:
        problems.append(f"n_ctx: the checkpoint has {info['n_ctx']} context vectors, you expected {n_ctx}")
    if info["csc"] and info["n_classes"] != len(names):
        problems.append(f"classes: a class-specific context for {info['n_classes']} classes, {len(names)} class "
                        f"names given (a class-specific context only loads for the classes it was trained on)")
    if problems:
        raise ValueError(f"Cannot load the official checkpoint {file}: " + "; ".join(problems) + ".")
    learner = PromptLearner(clip, names, n_ctx=info["n_ctx"], csc=info["csc"],
                            class_token_position=class_token_position, generator=torch.Generator())
    with torch.no_grad():
        learner.ctx.copy_(ctx.to(learner.ctx.dtype))
    return learner


def save_official_context(path: Union[str, Path], learner: PromptLearner, epoch: Optional[int] = None,
                          default_epoch: int = 1) -> Path:
    """Write ``learner`` as the official code's prompt checkpoint (see ``save_context(..., format="official")``).

    The file holds what the official ``load_model`` reads: ``{"state_dict": {"ctx", "token_prefix",
    "token_suffix"}, "epoch"}`` (plus empty optimiser/scheduler entries), tensors only, saved with ``torch.save``.
    The epoch is ``epoch``, else the N of a ``model.pth.tar-N`` path, else ``default_epoch``.
    """
    path = Path(path)
    named = re.fullmatch(r"model\.pth\.tar-(\d+)", path.name)
    if named and epoch is not None and int(named.group(1)) != epoch:
        raise ValueError(f"The file name says epoch {named.group(1)} but epoch={epoch} was given; drop one.")
    epoch = epoch if epoch is not None else int(named.group(1)) if named else default_epoch
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise ValueError(f"epoch must be an integer >= 1 (the N of model.pth.tar-N), got {epoch!r}.")
    file = path if OFFICIAL_FILE.match(path.name) else path / "prompt_learner" / f"model.pth.tar-{epoch}"
    file.parent.mkdir(parents=True, exist_ok=True)
    state = {name: getattr(learner, name).detach().float().cpu().contiguous()
             for name in ("ctx", "token_prefix", "token_suffix")}
    checkpoint = {"state_dict": state, "epoch": epoch, "optimizer": None, "scheduler": None, "val_result": None}
    with atomic_path(file) as tmp:
        torch.save(checkpoint, tmp)
    return file
