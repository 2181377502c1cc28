"""The embedded tiny CLIP's weight files: the one module that reads and writes them.

A file is safetensors with two JSON headers, ``config`` (the open_clip architecture and transforms, so a file
pretrained with another ``--model-config`` rebuilds itself) and ``metadata`` (seed, steps, duration, commit of
the run that trained it). Weights are stored in fp16 (half the size; the package ships them) and loaded as
fp32. The token table keeps only the rows pretraining used (``token_embedding.compact`` and
``trained_token_ids``): the corpus uses a few hundred of CLIP's 49,408 tokens, and every other row reads back as
the mean trained row, so any text still tokenises to something neutral rather than a random direction.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Union

import open_clip
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .._io import atomic_path
from ..validation import check_finite

ASSETS_DIR = Path(__file__).parents[1] / "assets"
EMBEDDED_MODELS = {"tiny": ASSETS_DIR / "tiny_clip.safetensors"}
EMBEDDED_CONFIGS = {"tiny": ASSETS_DIR / "tiny_clip.json"}
STORAGE_DTYPE = torch.float16
_REMEDY = ("Reinstall coop-tutorial for the shipped weights, or recreate them with "
           "`python -m coop_tutorial.pretrain --out <file>`.")


def embedded_model_config(name: str = "tiny") -> dict:
    """The open_clip-style JSON config of an embedded model (architecture, transforms)."""
    return json.loads(EMBEDDED_CONFIGS[name].read_text())


def build_embedded_model(config: dict) -> open_clip.CLIP:
    """A randomly initialised CLIP of an embedded architecture (what pretraining starts from)."""
    return open_clip.CLIP(embed_dim=config["embed_dim"],
                          vision_cfg=open_clip.CLIPVisionCfg(**config["vision_cfg"]),
                          text_cfg=open_clip.CLIPTextCfg(**config["text_cfg"]))


def read_embedded_checkpoint(path: Union[str, Path]) -> tuple[dict, dict, dict]:
    """(config, state dict, metadata) of an embedded-model safetensors file, checked before use.

    A damaged file (truncated, flipped bytes, unreadable JSON header, NaN weights) is refused with what is
    wrong and how to get a good copy, instead of a raw ``SafetensorError`` or a model that predicts one class.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; pass the embedded checkpoint file (.safetensors) inside it.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable safetensors file ({exc}); it is damaged or not a "
                         f"checkpoint. {_REMEDY}") from exc
    if "config" not in header:
        raise ValueError(f"{path} is not an embedded coop-tutorial checkpoint (no 'config' in its metadata).")
    try:
        config = json.loads(header["config"])
        meta = json.loads(header.get("metadata", "{}"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: its metadata header is not valid JSON ({exc}). {_REMEDY}") from exc
    check_finite(state, path)
    return config, state, meta


def load_embedded_state(model: open_clip.CLIP, state: dict, path: Union[str, Path]) -> torch.Tensor:
    """Load an embedded checkpoint's tensors into ``model`` (built from its config); return the trained token ids.

    A file whose tensors do not fit its own config (edited, truncated, or another model's weights under an
    embedded header) is refused here with the tensors that differ, not with torch's long size-mismatch dump.
    """
    state = dict(state)
    for key in ("trained_token_ids", "token_embedding.compact"):
        if key not in state:
            raise ValueError(f"{path} has no {key!r} tensor, which every checkpoint written by "
                             f"`python -m coop_tutorial.pretrain` has; recreate it with that command.")
    trained_ids = state.pop("trained_token_ids").long()
    vocab_size = model.token_embedding.weight.shape[0]
    compact = state.pop("token_embedding.compact")
    if trained_ids.dim() != 1 or (trained_ids.numel() and not 0 <= int(trained_ids.min()) <= int(trained_ids.max())
                                  < vocab_size) or compact.shape[0] != trained_ids.numel():
        raise ValueError(f"{path}: its token table is damaged (trained_token_ids do not index a {vocab_size}-token "
                         f"vocabulary, or do not match token_embedding.compact). {_REMEDY}")
    state["token_embedding.weight"] = _expand_token_table(compact, trained_ids, vocab_size)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k} {tuple(state[k].shape)} (config wants {tuple(expected[k].shape)})"
             for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
                 f"wrong shapes {wrong[:3]}" if wrong else ""]
        raise ValueError(f"{path}: its weights do not fit the architecture in its own 'config' header "
                         f"({'; '.join(p for p in parts if p)}). The file was edited or mixes two models; "
                         f"recreate it with `python -m coop_tutorial.pretrain` (or --resave the original).")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return trained_ids


def _expand_token_table(compact: torch.Tensor, trained_ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The full (vocab_size, width) token table from the rows seen in pretraining; the others are the mean row."""
    compact = compact.float()
    full = compact.mean(0, keepdim=True).repeat(vocab_size, 1)
    full[trained_ids] = compact
    return full


def save_embedded_checkpoint(model: open_clip.CLIP, model_config: dict, trained_ids: torch.Tensor,
                             metadata: dict, out: Union[str, Path]) -> None:
    """Write the weights with a compact token table (only rows seen in training), in fp16, atomically."""
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    table = state.pop("token_embedding.weight")
    state["token_embedding.compact"] = table[trained_ids].contiguous()
    state.pop("attn_mask", None)
    _write_state(state, trained_ids, model_config, metadata, out)


def resave(checkpoint: Union[str, Path], out: Union[str, Path]) -> dict:
    """Rewrite an embedded checkpoint in the current storage format (fp16), weights otherwise unchanged.

    For a checkpoint trained before the format changed: its metadata (seed, steps, duration, commit of the
    training run) is kept and ``resaved_from`` records the sha1 of the file it came from.
    """
    config, state, metadata = read_embedded_checkpoint(checkpoint)
    load_embedded_state(build_embedded_model(config), state, checkpoint)  # refuse what would not load
    trained_ids = state.pop("trained_token_ids")
    digest = hashlib.sha1(Path(checkpoint).read_bytes()).hexdigest()
    metadata = {**metadata, "resaved_from": {"sha1": digest, "storage_dtype": str(
        next(v for v in state.values() if v.is_floating_point()).dtype).replace("torch.", "")}}
    _write_state(state, trained_ids, config, metadata, out)
    return metadata


def _write_state(state: dict, trained_ids: torch.Tensor, model_config: dict, metadata: dict,
                 out: Union[str, Path]) -> None:
    state = {k: (v.to(STORAGE_DTYPE) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    state["trained_token_ids"] = trained_ids.to(torch.int32)
    metadata = {**metadata, "storage_dtype": str(STORAGE_DTYPE).replace("torch.", "")}
    with atomic_path(out) as tmp:
        save_file(state, str(tmp), metadata={"config": json.dumps(model_config), "metadata": json.dumps(metadata)})
