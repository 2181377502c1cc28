"""One entry point for every CLIP the tutorial uses: ``load_clip``.

Like open_clip's ``create_model_and_transforms`` it hides where weights come from. The embedded model
(``"tiny"``) is just another registered name whose weights ship inside the package; any open_clip model
name works with a pretrained tag (downloaded from the hub, real world only) or a local checkpoint file.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import open_clip
import torch
from safetensors.torch import load_file
from torchvision import transforms as T

from coop_tutorial import safe_load

from .embedded.weights import (EMBEDDED_MODELS, build_embedded_model, embedded_model_config, load_embedded_state,
                               read_embedded_checkpoint)
from .validation import check_finite


# CoOp papers and the OpenAI repo name backbones "ViT-B/16"; open_clip writes "ViT-B-16".
_ALIASES = {"ViT-B/32": "ViT-B-32", "ViT-B/16": "ViT-B-16", "ViT-L/14": "ViT-L-14"}

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipBundle:
    """A frozen CLIP and everything needed to feed it.

    ``trained_token_ids`` lists the vocabulary rows the model saw in pretraining (known for the embedded
    model, ``None`` for real CLIPs whose whole vocabulary was trained); interpretation tools use it so that
    nearest-word answers are not untrained noise.
    """

    model: open_clip.CLIP
    preprocess: Callable  # eval transform: PIL image -> (3, H, W) float tensor
    train_preprocess: Callable  # augmenting transform of the CoOp recipe (random resized crop + flip)
    tokenizer: Callable  # list[str] -> LongTensor (n, context_length)
    name: str
    pretrained: Optional[str]
    device: torch.device
    trained_token_ids: Optional[torch.Tensor] = None
    metadata: dict = field(default_factory=dict)

    @property
    def context_length(self) -> int:
        return int(self.model.positional_embedding.shape[0])

    @property
    def embed_dim(self) -> int:
        proj = self.model.text_projection
        return int(proj.shape[1] if isinstance(proj, torch.Tensor) else proj.out_features)

    @property
    def width(self) -> int:
        """Width of the text transformer: the size of one token (and one context) vector."""
        return int(self.model.token_embedding.weight.shape[1])

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.token_embedding.weight.dtype

    @property
    def untrained(self) -> bool:
        """True when the weights are random (``pretrained="random"``, or a file saved from a random initialisation,
        as the real-world dry run uses): accuracies then mean nothing, and claims about them cannot be checked."""
        return self.pretrained == "random" or bool(self.metadata.get("untrained", False))


def build_transforms(
    image_size: int,
    mean: Sequence[float] = OPENAI_MEAN,
    std: Sequence[float] = OPENAI_STD,
    crop_scale: tuple[float, float] = (0.08, 1.0),
) -> tuple[Callable, Callable]:
    """(eval, train) transforms of the CoOp recipe.

    Eval: resize the short side to ``image_size`` (bicubic), centre crop. Train: RandomResizedCrop with
    ``crop_scale`` (0.08-1 in the paper), random horizontal flip. Both normalise with ``mean``/``std``.
    """
    bicubic = T.InterpolationMode.BICUBIC
    to_rgb = T.Lambda(_to_rgb)
    normalize = T.Normalize(mean, std)
    eval_tf = T.Compose([to_rgb, T.Resize(image_size, interpolation=bicubic), T.CenterCrop(image_size),
                         T.ToTensor(), normalize])
    train_tf = T.Compose([to_rgb, T.RandomResizedCrop(image_size, scale=crop_scale, interpolation=bicubic),
                          T.RandomHorizontalFlip(), T.ToTensor(), normalize])
    return eval_tf, train_tf


def _to_rgb(image):
    return image.convert("RGB") if hasattr(image, "convert") and image.mode != "RGB" else image


def list_models() -> dict[str, list[str]]:
    """Names ``load_clip`` accepts: the embedded models and every open_clip architecture."""
    return {"embedded": sorted(EMBEDDED_MODELS), "open_clip": sorted(open_clip.list_models())}


def load_clip(name: str, pretrained: Optional[Union[str, Path]] = None,
              device: Union[str, torch.device] = "cpu") -> ClipBundle:
    """Load a CLIP, frozen and in eval mode.

    Args:
        name: ``"tiny"`` (the embedded model, no network needed) or an open_clip architecture such as
            ``"RN50"``, ``"ViT-B-16"`` (``"ViT-B/16"`` is accepted too).
        pretrained: an open_clip tag (``"openai"``, ``"laion2b_s34b_b88k"``...; downloads, real world only),
            a local checkpoint path, or ``"random"`` for random weights (benchmarks, tests). ``None`` means
            the shipped weights for ``"tiny"`` and ``"openai"`` (or the first known tag) for real models.
        device: where the model lives.
    """
    if not isinstance(name, str):
        raise TypeError(f"load_clip takes a model name as a string, got {name!r} ({type(name).__name__}): "
                        f"'tiny' for the embedded model, or an open_clip name such as 'RN50' or 'ViT-B-16'.")
    if pretrained is not None and not isinstance(pretrained, (str, Path)):
        raise TypeError(f"pretrained must be a tag, a file path or 'random', got {type(pretrained).__name__}.")
    device = torch.device(device)
    name = _ALIASES.get(name, name)
    if pretrained is not None and _is_config_file(pretrained):
        return _load_config_file(name, Path(pretrained).expanduser(), device)
    if name in EMBEDDED_MODELS:
        return _load_embedded(name, pretrained, device)
    known = open_clip.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, list(EMBEDDED_MODELS) + known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Use 'tiny' for the embedded model (offline) or any "
                         f"name from coop_tutorial.list_models()['open_clip'].")
    return _load_open_clip(name, pretrained, device)


def _load_open_clip(name: str, pretrained, device: torch.device) -> ClipBundle:
    tags = [t.lower() for t in open_clip.list_pretrained_tags_by_model(name)]
    if pretrained is None:
        pretrained = "openai" if "openai" in tags else (tags[0] if tags else "random")
    pretrained = str(pretrained)
    is_file = Path(pretrained).expanduser().exists()
    if pretrained == "random":
        model = open_clip.create_model(name, pretrained=None, device=device)
    elif is_file:
        model = _open_clip_from_file(name, Path(pretrained).expanduser(), device)
    else:
        if pretrained.lower() not in tags:
            raise ValueError(
                f"{pretrained!r} is neither a file nor a pretrained tag of {name!r}. Known tags: {tags or 'none'}; "
                f"or pass pretrained='random' for random weights, or the path of a checkpoint you downloaded.")
        # open_clip only warns when a tag was trained with QuickGELU (all "openai" weights) but the architecture
        # config uses GELU: the model would run with the wrong activation and lose accuracy. Follow the tag.
        quick_gelu = bool((open_clip.get_pretrained_cfg(name, pretrained) or {}).get("quick_gelu", False))
        try:
            model = open_clip.create_model(name, pretrained=pretrained, device=device, force_quick_gelu=quick_gelu)
        except Exception as exc:  # hub, urllib and filesystem errors all mean: the weights are not here
            raise RuntimeError(
                f"Could not download the {name!r} weights tagged {pretrained!r} ({type(exc).__name__}: {exc}). "
                f"Without network access, download them on a connected machine and pass "
                f"load_clip({name!r}, pretrained='/path/to/checkpoint.bin'), or use load_clip('tiny'), "
                f"the embedded model that needs no network.") from exc
    image_size = _image_size(model)
    eval_tf, train_tf = build_transforms(image_size)
    tokenizer = open_clip.get_tokenizer(name)
    return _finish(model, eval_tf, train_tf, tokenizer, name, pretrained, device, None, {})


def _is_config_file(pretrained: Union[str, Path]) -> bool:
    """A safetensors file that carries its own open_clip architecture (``save_config_file``)."""
    path = Path(pretrained).expanduser()
    if path.suffix != ".safetensors" or not path.is_file():
        return False
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return "open_clip_config" in (handle.metadata() or {})
    except SafetensorError:  # a damaged file: the loader it is meant for says what is wrong with it
        return False


def save_config_file(model: open_clip.CLIP, config: dict, path: Union[str, Path], metadata: Optional[dict] = None) -> Path:
    """Save ``model`` (an ``open_clip.CLIP`` built from ``config``: ``embed_dim``, ``vision_cfg``, ``text_cfg``) as a
    safetensors file that carries its architecture, so ``load_clip(any_name, pretrained=path)`` rebuilds it
    without an open_clip model name. ``metadata={"untrained": True}`` marks random weights."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"open_clip_config": json.dumps(config),
                                          "metadata": json.dumps(metadata or {})})
    return path


# The smallest CLIP that runs the real-world code paths (77-token context, open_clip's tokenizer and vocabulary,
# 224-px ViT input is not needed: images are 32 px): what the real-world dry run of the notebooks uses.
DRY_RUN_CONFIG = {"embed_dim": 32,
                  "vision_cfg": {"image_size": 32, "patch_size": 16, "width": 32, "layers": 1, "head_width": 16},
                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def save_random_clip(path: Union[str, Path], config: Optional[dict] = None, seed: int = 0) -> Path:
    """A randomly initialised open_clip CLIP (default: ``DRY_RUN_CONFIG``) saved with ``save_config_file`` and
    marked untrained: ``World("real", backbone=..., pretrained=path)`` then runs every real-world code path in
    seconds, with accuracies that mean nothing (and claims about them visibly skipped)."""
    config = config or DRY_RUN_CONFIG
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_embedded_model(config)
    return save_config_file(model, config, path, {"untrained": True, "seed": seed})


def _load_config_file(name: str, path: Path, device: torch.device) -> ClipBundle:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata() or {}
    config, meta = json.loads(header["open_clip_config"]), json.loads(header.get("metadata", "{}"))
    state = load_file(str(path))
    check_finite(state, path)
    model = build_embedded_model(config)
    model.load_state_dict(state)
    model = model.to(device)
    eval_tf, train_tf = build_transforms(_image_size(model))
    tokenizer = open_clip.SimpleTokenizer(context_length=config["text_cfg"]["context_length"])
    return _finish(model, eval_tf, train_tf, tokenizer, name, str(path), device, None, meta)


def _open_clip_from_file(name: str, path: Path, device: torch.device) -> open_clip.CLIP:
    """An open_clip architecture with the weights of a local file, read by the safe loader (nothing executed).

    OpenAI ships its CLIPs as TorchScript archives (e.g. ~/.cache/clip/RN50.pt), trained with QuickGELU: such a
    file gets the QuickGELU variant of the architecture, as open_clip's "openai" tag does.
    """
    openai_archive = safe_load.is_torchscript_archive(path)
    state = safe_load.load_state_dict(path)
    state = OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in state.items())
    for extra in ("input_resolution", "context_length", "vocab_size"):  # OpenAI's archive metadata, not weights
        state.pop(extra, None)
    check_finite(state, path)
    model = open_clip.create_model(name, pretrained=None, device="cpu", force_quick_gelu=openai_archive)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (the architecture wants {tuple(v.shape)})"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if openai_archive:
        unexpected = []  # an archive records non-weight attributes (attention masks) too; they are not loaded
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
                 f"wrong shapes {wrong[:3]}" if wrong else ""]
        raise ValueError(f"{path} does not hold {name!r} weights ({'; '.join(p for p in parts if p)}). Check that "
                         f"the file was made for {name!r} (the model name passed to load_clip).")
    model.load_state_dict({k: state[k].to(expected[k].dtype) for k in expected})
    return model.to(device)


def _image_size(model) -> int:
    size = model.visual.image_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def _load_embedded(name: str, pretrained, device: torch.device) -> ClipBundle:
    path = Path(pretrained).expanduser() if pretrained not in (None, "random") else EMBEDDED_MODELS[name]
    if pretrained != "random" and not path.exists():
        raise FileNotFoundError(
            f"No checkpoint at {path}. The embedded model ships inside the package; reinstall coop-tutorial, or "
            f"recreate the weights with `python -m coop_tutorial.pretrain` and pass pretrained=<its output>.")
    if pretrained == "random":
        config, state, meta = embedded_model_config(name), None, {}
    else:
        config, state, meta = read_embedded_checkpoint(path)
    model = build_embedded_model(config)
    trained_ids = None
    if state is not None:
        trained_ids = load_embedded_state(model, state, path)
    model = model.to(device)
    pre = config.get("preprocess", {})
    eval_tf, train_tf = build_transforms(_image_size(model), pre.get("mean", OPENAI_MEAN),
                                         pre.get("std", OPENAI_STD), tuple(pre.get("crop_scale", (0.08, 1.0))))
    tokenizer = open_clip.SimpleTokenizer(context_length=config["text_cfg"]["context_length"])
    return _finish(model, eval_tf, train_tf, tokenizer, name, None if pretrained is None else str(pretrained),
                   device, trained_ids, meta)


def _finish(model, eval_tf, train_tf, tokenizer, name, pretrained, device, trained_ids, meta) -> ClipBundle:
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return ClipBundle(model=model, preprocess=eval_tf, train_preprocess=train_tf, tokenizer=tokenizer, name=name,
                      pretrained=pretrained, device=device, trained_token_ids=trained_ids, metadata=meta)


def weights_fingerprint(bundle: ClipBundle) -> str:
    """A short hash of the model's weights (a sample of every tensor), saved with each context.

    Two checkpoints of one architecture (another pretraining run, LAION vs OpenAI weights) share names and shapes;
    only the weights tell a context which model it was learned on. Sampling keeps this fast on ViT-L.
    """
    digest = hashlib.sha1()
    for name, tensor in sorted(bundle.model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // 4096)
        digest.update(name.encode())
        digest.update(flat[::step].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def warn_if_untrained(bundle: ClipBundle, text: str) -> None:
    """Warn when words of ``text`` were never seen by an embedded model (their vectors carry no meaning)."""
    if bundle.trained_token_ids is None:
        return
    ids = bundle.tokenizer([text])[0]
    known = set(bundle.trained_token_ids.tolist())
    unknown = [int(i) for i in ids if int(i) != 0 and int(i) not in known]
    if unknown:
        warnings.warn(f"{len(unknown)} token(s) of {text!r} never appeared in {bundle.name!r}'s pretraining "
                      f"corpus; they read as a neutral token.", stacklevel=2)
