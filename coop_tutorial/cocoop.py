"""CoCoOp (Zhou et al., CVPR 2022): a CoOp context shifted per image by a small meta-network.

CoOp learns one context for all images; on classes it never saw it tends to fall below the hand-written prompt.
CoCoOp adds ``meta_net``, a two-layer bottleneck MLP from the image feature to one vector ``pi(x)`` that is added to
every context vector, so the prompt of image ``x`` is ``[SOS] [V_1 + pi(x)] ... [V_M + pi(x)] [CLASS] . [EOS]``.
Layout, names and recipe follow the official ``trainers/cocoop.py``: ``ctx`` (unified, class at the end only),
``meta_net`` with ``linear1`` (vis_dim -> vis_dim // 16), ``relu``, ``linear2`` (-> ctx_dim), ``token_prefix``,
``token_suffix``; ``forward(image_features)`` returns prompts ``(batch, n_cls, context_length, width)``.

The cost: the prompts now depend on the image, so the official loop runs the text tower over ``n_cls`` prompts *per
image* (about ``batch`` times CoOp's work and memory). ``CoCoOpClassifier`` computes the same logits with less:

* image features are cached (the image encoder is frozen), as for CoOp;
* the text pass runs only up to the longest prompt's EOS (the causal mask makes the rest irrelevant);
* the shared prefix: ``[SOS][V + pi(x)]`` is the same for every class of one image, and under the causal mask its
  hidden states never see the class name. It runs once per image; each class then runs only its own positions
  (class name, ``.``, EOS) against that image's cached keys and values. The first layer's queries, keys and
  values of those positions do not depend on the image at all, so they are computed once per class.

Same logits as the official structure up to float rounding (``tests/test_cocoop.py`` checks <= 1e-5).
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import Dataset

from ._io import atomic_path
from .classifier import check_images
from .clip_loader import ClipBundle, weights_fingerprint
from .features import FeatureSet
from .prompt_learner import PromptLearner
from .text_encoder import TextEncoder, _block_forward, _qkv
from .training import TrainResult

COCOOP_FORMAT = "coop-tutorial/cocoop"
EVAL_PAIRS = 8192  # (image, class) prompts per text pass when no gradient is needed


class CoCoOpPromptLearner(PromptLearner):
    """CoOp's unified context plus the official meta-network.

    Args:
        clip: the frozen CLIP whose token table and tokenizer build the prompts.
        classnames: one name per class, in label order.
        n_ctx: context vectors M when ``ctx_init`` is None (the paper: 4 from ``"a photo of a"``).
        ctx_init: words that initialise the context (M = their token count).
        csc, class_token_position: accepted only as the official code supports them (``False``, ``"end"``): CoCoOp
            shifts one shared context per image, and its prompts are always ``[SOS][context][CLASS]``.
        generator: seeds the random context (``ctx_init=None``) and the meta-network's initialisation (the
            official code draws both from torch's global RNG; ``None`` does the same).

    Shapes: ``ctx`` ``(n_ctx, width)``; ``meta_net(image_features (B, embed_dim)) -> (B, width)``;
    ``forward(image_features)`` ``(B, n_cls, context_length, width)``.
    """

    def __init__(self, clip: ClipBundle, classnames: Sequence[str], n_ctx: int = 4,
                 ctx_init: Optional[str] = "a photo of a", csc: bool = False, class_token_position: str = "end",
                 generator: Optional[torch.Generator] = None):
        check_official_layout(csc, class_token_position)
        super().__init__(clip, classnames, n_ctx=n_ctx, ctx_init=ctx_init, csc=False, class_token_position="end",
                         generator=generator)
        vis_dim, ctx_dim = clip.embed_dim, self.width
        if vis_dim // 16 < 1:
            raise ValueError(f"The meta-network's hidden layer has image-feature width // 16 units, but "
                             f"{clip.name!r}'s image features have only {vis_dim} dimensions; CoCoOp needs at "
                             f"least 16.")
        self.meta_net = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(vis_dim, vis_dim // 16)),
            ("relu", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(vis_dim // 16, ctx_dim)),
        ]))
        if generator is not None:  # nn.Linear's default initialisation, drawn from the generator
            for layer in (self.meta_net.linear1, self.meta_net.linear2):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        self.meta_net.to(device=self.ctx.device, dtype=self.ctx.dtype)
        self.embed_dim = vis_dim

    def shifts(self, image_features: torch.Tensor) -> torch.Tensor:
        """The meta-network's per-image shift ``pi(x)`` ``(B, width)``, added to every context vector."""
        if image_features.dim() != 2 or image_features.shape[-1] != self.embed_dim:
            raise ValueError(f"Expected image features (B, {self.embed_dim}), got {tuple(image_features.shape)}; "
                             f"pass L2-normalised CLIP image features (e.g. FeatureSet.view(0)).")
        return self.meta_net(image_features.to(self.ctx.dtype))

    def shifted_context(self, image_features: torch.Tensor) -> torch.Tensor:
        """``ctx + pi(x)``: ``(B, n_ctx, width)``."""
        return self.ctx.unsqueeze(0) + self.shifts(image_features).unsqueeze(1)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Prompt embeddings ``(B, n_cls, context_length, width)``: every class's prompt with image b's context.

        As the official code: the same concatenation ``[prefix, ctx + bias, suffix]`` for each image.
        """
        ctx = self.shifted_context(image_features)  # (B, n_ctx, width)
        n = self.n_cls
        return torch.stack([torch.cat([self.token_prefix, ctx_i.unsqueeze(0).expand(n, -1, -1), self.token_suffix],
                                      dim=1) for ctx_i in ctx])

    def with_classnames(self, clip: ClipBundle, classnames: Sequence[str]) -> "CoCoOpPromptLearner":
        """The same context and meta-network for other classes (how base-to-new tests on the new classes)."""
        new = CoCoOpPromptLearner(clip, classnames, n_ctx=self.n_ctx, ctx_init=None, generator=torch.Generator())
        if new.width != self.width or new.embed_dim != self.embed_dim:
            raise ValueError(f"This CoCoOp learner has width {self.width} and image features of {self.embed_dim}, "
                             f"but {clip.name!r} has {new.width} and {new.embed_dim}; use the CLIP it was trained on.")
        new.load_state_dict({k: v for k, v in self.state_dict().items() if k not in ("token_prefix", "token_suffix")},
                            strict=False)
        new.ctx_init = self.ctx_init
        return new

    def extra_repr(self) -> str:
        return f"n_cls={self.n_cls}, n_ctx={self.n_ctx}, width={self.width}, ctx_init={self.ctx_init!r}"


def check_official_layout(csc: Any, class_token_position: Any) -> None:
    """CoCoOp's official code has one unified context and the class at the end; say so for anything else."""
    if csc is not False:
        raise ValueError(f"CoCoOp learns one context shared by all classes and shifts it per image; csc={csc!r} "
                         f"(class-specific context) is not part of it (the official trainers/cocoop.py has no CSC "
                         f"option). Use csc=False, or ct.PromptLearner(..., csc=True) for CoOp's class-specific "
                         f"variant.")
    if class_token_position != "end":
        raise ValueError(f"CoCoOp puts the class name after the context (class_token_position='end'), the only "
                         f"layout the official trainers/cocoop.py builds; got {class_token_position!r}. "
                         f"'middle'/'front' exist for CoOp only (ct.PromptLearner).")


class CoCoOpClassifier(nn.Module):
    """Frozen CLIP + a ``CoCoOpPromptLearner`` (the official ``CustomCLIP`` of ``trainers/cocoop.py``).

    Args:
        clip: the frozen CLIP bundle.
        learner: the CoCoOp prompt learner; its class order is the label order.
        truncate_text: run the text tower only up to the longest prompt's EOS (``False``: the official
            full-length pass).
        share_prefix: run ``[SOS][ctx + pi(x)]`` once per image instead of once per (image, class) (needs
            ``truncate_text`` and a standard open_clip text tower; otherwise the per-image loop runs).

    ``truncate_text=False, share_prefix=False`` is the official structure: for each image, the text tower over
    all ``n_cls`` full-length prompts.
    """

    def __init__(self, clip: ClipBundle, learner: CoCoOpPromptLearner, truncate_text: bool = True,
                 share_prefix: bool = True):
        super().__init__()
        if not isinstance(learner, CoCoOpPromptLearner):
            raise ValueError(f"CoCoOpClassifier needs a CoCoOpPromptLearner, got {type(learner).__name__}; a CoOp "
                             f"PromptLearner goes into ct.CoOpClassifier.")
        if learner.width != clip.width or learner.clip_name != clip.name or learner.embed_dim != clip.embed_dim:
            raise ValueError(f"The prompt learner was built for {learner.clip_name!r} (width {learner.width}) but the "
                             f"classifier gets {clip.name!r} (width {clip.width}); build both from one CLIP.")
        self.prompt_learner = learner
        self.image_encoder = clip.model.visual
        self.text_encoder = TextEncoder(clip.model, truncate=truncate_text, share_prefix=share_prefix)
        self.logit_scale = clip.model.logit_scale
        self.clip = clip
        self.classnames = learner.classnames
        self.truncate_text = truncate_text
        self.share_prefix = share_prefix
        self.train()

    @property
    def tokenized_prompts(self) -> torch.Tensor:
        return self.prompt_learner.tokenized_prompts

    @property
    def fast(self) -> bool:
        """Whether ``logits_from_features`` takes the shared-prefix path (else the per-image loop)."""
        encoder = self.text_encoder
        return self.share_prefix and self.truncate_text and encoder._can_share

    def train(self, mode: bool = True) -> "CoCoOpClassifier":
        """Switch the prompt learner only; the frozen encoders stay in eval mode (as ``CoOpClassifier.train``)."""
        self.training = mode
        self.prompt_learner.train(mode)
        for frozen in (self.image_encoder, self.text_encoder):
            if frozen.training:
                frozen.eval()
        return self

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image features ``(B, embed_dim)`` from preprocessed images ``(B, 3, S, S)``."""
        check_images(images, self.clip.image_size)
        features = self.image_encoder(images.to(device=self.logit_scale.device, dtype=self.clip.dtype))
        return F.normalize(features, dim=-1)

    def text_features(self, image_features: torch.Tensor) -> torch.Tensor:
        """L2-normalised class embeddings of each image's prompts ``(B, n_cls, embed_dim)``."""
        image_features = F.normalize(image_features.to(self.prompt_learner.ctx.dtype), dim=-1)
        if self.fast:
            features = self._shared_prefix_pass(image_features)
        else:
            learner = self.prompt_learner
            prompts = learner(image_features)
            features = torch.stack([self.text_encoder(p, learner.tokenized_prompts) for p in prompts])
        return F.normalize(features, dim=-1)

    def logits_from_features(self, image_features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_cls)`` for image features ``(B, embed_dim)`` (normalised here if they are not).

        Without gradients (evaluation, e.g. ``ct.evaluate`` with its batches of 1000) the images go through in
        groups of at most ``EVAL_PAIRS`` (image, class) prompts, so memory stays bounded."""
        ctx = self.prompt_learner.ctx
        image_features = F.normalize(image_features.to(ctx.device, ctx.dtype), dim=-1)
        step = max(1, EVAL_PAIRS // self.prompt_learner.n_cls)
        if not torch.is_grad_enabled() and image_features.shape[0] > step:
            return torch.cat([self.logits_from_features(image_features[s:s + step])
                              for s in range(0, image_features.shape[0], step)])
        text = self.text_features(image_features)
        return self.logit_scale.exp() * torch.einsum("bd,bcd->bc", image_features, text)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_cls)`` for preprocessed images ``(B, 3, S, S)``."""
        return self.logits_from_features(self.encode_images(images))

    def _shared_prefix_pass(self, image_features: torch.Tensor) -> torch.Tensor:
        """Unnormalised text features ``(B, n_cls, embed_dim)``, each image's prefix computed once (module doc)."""
        learner, encoder = self.prompt_learner, self.text_encoder
        dtype, pos = encoder.dtype, encoder.positional_embedding
        b, n = image_features.shape[0], learner.n_cls
        shared = 1 + learner.n_ctx
        eos = encoder.eos_positions(learner.tokenized_prompts)
        length = int(eos.max()) + 1
        sos = learner.token_prefix[:1].expand(b, -1, -1)  # SOS is the same token for every class
        prefix = torch.cat([sos, learner.shifted_context(image_features)], dim=1).to(dtype) + pos[:shared].to(dtype)
        rest = learner.token_suffix[:, :length - shared].to(dtype) + pos[shared:length].to(dtype)  # (n, S, width)
        blocks = list(encoder.transformer.resblocks)
        past_kv = []
        for i, block in enumerate(blocks):
            q, k, v = _qkv(block, prefix)  # (b, heads, P, head_dim)
            past_kv.append((k, v))
            if i + 1 < len(blocks):
                prefix = _block_forward(block, prefix, q, k, v, past=0)

        def per_pair(t: torch.Tensor) -> torch.Tensor:  # (b, ...) -> (b * n, ...), image-major
            return t.unsqueeze(1).expand(b, n, *t.shape[1:]).reshape(b * n, *t.shape[1:])

        def per_image(t: torch.Tensor) -> torch.Tensor:  # (n, ...) -> (b * n, ...)
            return t.unsqueeze(0).expand(b, *t.shape).reshape(b * n, *t.shape[1:])

        x = per_image(rest)
        for i, (block, (k_past, v_past)) in enumerate(zip(blocks, past_kv)):
            if i == 0:  # the class positions' first-layer input does not depend on the image
                q, k, v = (per_image(t) for t in _qkv(block, rest))
            else:
                q, k, v = _qkv(block, x)
            k = torch.cat([per_pair(k_past), k], dim=2)
            v = torch.cat([per_pair(v_past), v], dim=2)
            x = _block_forward(block, x, q, k, v, past=shared)
        eos_rest = per_image(eos - shared)
        return encoder._project(x[torch.arange(b * n, device=x.device), eos_rest]).reshape(b, n, -1)


# ------------------------------------------------------------------------------------------------- config


# The embedded tiny CLIP's recipe: the paper's with 8 images per step, lr x10 and 20 epochs, a quarter of the paper's
# steps for notebook 07's time budget. How it was chosen, on validation splits only, and what the alternatives
# scored: README, "New classes: CoCoOp and base-to-new" (`python -m coop_tutorial.base_to_new --recipe-search`).
EMBEDDED_COCOOP_RECIPE: dict[str, Any] = dict(optimizer="sgd", lr=2e-2, momentum=0.9, weight_decay=5e-4,
                                              batch_size=8, epochs=20, warmup_epochs=1, warmup_lr=1e-5,
                                              schedule="cosine", n_views=8)


@dataclass
class CoCoOpConfig:
    """Everything a CoCoOp run depends on. Defaults are the paper's recipe (``CoCoOpConfig.paper()``):
    the official ``configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml``."""

    n_ctx: int = 4
    ctx_init: Optional[str] = "a photo of a"
    csc: bool = False  # only False: the official code has no class-specific CoCoOp
    class_token_position: str = "end"  # only "end"
    optimizer: str = "sgd"
    lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 5e-4  # Dassl's default, applied to ctx and the meta-network
    epochs: int = 10
    batch_size: int = 1  # the paper's: every step is one image (the official loop's memory grows with it)
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    schedule: str = "cosine"
    n_views: int = 8  # cached augmented views per training image (0: the eval view only)
    cached: bool = True  # False: the official loop (augment and encode every step, per-image full text pass)
    truncate_text: bool = True
    share_prefix: bool = True
    seed: int = 1
    device: Optional[str] = None
    eval_every: int = 1
    log_every: int = 0
    feature_batch_size: int = 64
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a ValueError naming the first invalid field; ``train_cocoop`` calls it again, so a field changed
        after construction is caught before any work."""
        from .training import CoOpConfig

        check_official_layout(self.csc, self.class_token_position)
        shared = {f.name for f in fields(CoOpConfig)}
        try:  # every field CoOp has too is checked by CoOp's rules, with this class's name in the message
            CoOpConfig(**{k: v for k, v in asdict(self).items() if k in shared})
        except ValueError as exc:
            raise ValueError(str(exc).replace("CoOpConfig.", "CoCoOpConfig.")) from None

    @classmethod
    def paper(cls, **overrides: Any) -> "CoCoOpConfig":
        """The official recipe: 4 vectors from "a photo of a", SGD 0.002, momentum 0.9, wd 5e-4, batch 1,
        10 epochs, cosine after one warm-up epoch at 1e-5 (16 shots in base-to-new and cross-dataset)."""
        return cls(**overrides)

    @classmethod
    def embedded(cls, **overrides: Any) -> "CoCoOpConfig":
        """The recipe for the embedded tiny CLIP (``EMBEDDED_COCOOP_RECIPE``), chosen on validation splits."""
        return cls(**{**EMBEDDED_COCOOP_RECIPE, **overrides})

    def replace(self, **changes: Any) -> "CoCoOpConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, torch.device) else v) for k, v in asdict(self).items()}


# ----------------------------------------------------------------------------------------------- training


@dataclass
class CoCoOpResult(TrainResult):
    """What ``train_cocoop`` returns: ``train_coop``'s result, with a ``CoCoOpPromptLearner``, a
    ``CoCoOpClassifier`` and a ``CoCoOpConfig`` in its fields."""


def build_cocoop_classifier(clip: ClipBundle, learner: CoCoOpPromptLearner, config: CoCoOpConfig) -> CoCoOpClassifier:
    """The classifier a config trains (``cached=False``: the official structure, full-length per-image passes)."""
    return CoCoOpClassifier(clip, learner, truncate_text=config.truncate_text and config.cached,
                            share_prefix=config.share_prefix and config.cached)


def train_cocoop(clip: ClipBundle, train_set: Union[Dataset, FeatureSet],
                 val_set: Union[Dataset, FeatureSet, None] = None, config: Optional[CoCoOpConfig] = None,
                 callbacks: Sequence[Any] = (), classnames: Optional[Sequence[str]] = None) -> CoCoOpResult:
    """Learn a CoCoOp context and meta-network on ``train_set`` (same arguments and callbacks as ``train_coop``).

    The loop is CoOp's (``training.py``): cross-entropy on the logits, ``ctx`` and ``meta_net`` optimised, lr per
    epoch by the warm-up + cosine schedule, the last incomplete batch dropped; cached augmented views unless
    ``config.cached`` is False.
    """
    from .training import _build_optimizer, _check_device, _emit, run_training, training_classnames

    config = CoCoOpConfig() if config is None else config
    if not isinstance(config, CoCoOpConfig):
        raise ValueError(f"config must be a CoCoOpConfig, got {type(config).__name__}; e.g. ct.CoCoOpConfig.paper() "
                         f"(a CoOpConfig goes to ct.train_coop).")
    config.validate()
    names = training_classnames(train_set, val_set, classnames, "CoCoOp")
    _check_device(clip, config)
    generator = torch.Generator().manual_seed(config.seed)
    learner = CoCoOpPromptLearner(clip, names, n_ctx=config.n_ctx, ctx_init=config.ctx_init, generator=generator)
    classifier = build_cocoop_classifier(clip, learner, config)
    optimizer = _build_optimizer(learner, config)

    history, train_features, val_features, encode_seconds = run_training(
        clip, classifier, learner, optimizer, generator, train_set, val_set, names, config, callbacks, "CoCoOp")
    result = CoCoOpResult(learner, classifier, history, config, train_features, val_features, encode_seconds)
    _emit(callbacks, "on_train_end", result)
    return result


# -------------------------------------------------------------------------------------------- checkpoints


def save_cocoop(path: Union[str, Path], learner_or_result: Any, extra: Optional[dict] = None) -> Path:
    """Write a CoCoOp learner's ``ctx`` and ``meta_net`` weights (safetensors, JSON metadata; no token buffers,
    which depend on the class names: the official loader deletes them too)."""
    from . import __version__

    learner = getattr(learner_or_result, "learner", learner_or_result)
    if not isinstance(learner, CoCoOpPromptLearner):
        raise ValueError(f"save_cocoop needs a CoCoOpPromptLearner or a train_cocoop result, got "
                         f"{type(learner_or_result).__name__} (CoOp contexts: ct.save_context).")
    config = getattr(learner_or_result, "config", None)
    meta = {"format": COCOOP_FORMAT, "library_version": __version__, "model_name": learner.clip_name,
            "pretrained": learner.clip_pretrained, "weights_fingerprint": learner.weights_fingerprint,
            "width": learner.width, "embed_dim": learner.embed_dim, "context_length": learner.context_length,
            "n_ctx": learner.n_ctx, "classnames": list(learner.classnames), "ctx_init": learner.ctx_init,
            "config": config.to_dict() if config is not None else None, "extra": extra or {}}
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in learner.state_dict().items()
               if k not in ("token_prefix", "token_suffix")}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"coop_tutorial": json.dumps(meta)})
    return path


def load_cocoop(path: Union[str, Path], clip: ClipBundle, classnames: Optional[Sequence[str]] = None,
                new_classes: bool = False, allow_other_weights: bool = False) -> CoCoOpPromptLearner:
    """A ``CoCoOpPromptLearner`` carrying a saved context and meta-network.

    Args:
        clip: the CLIP it was trained on (same name, text width and image-feature width).
        classnames: the classes to build prompts for (default: the saved ones).
        new_classes: allow ``classnames`` other than the saved ones, e.g. base-to-new's new half. Off by default
            so that a class list passed by mistake (another dataset, another order) is reported, not evaluated.
        allow_other_weights: load onto other weights of the same architecture (the checkpoint records a
            fingerprint of the weights it was trained with; by default another one is refused).

    Raises:
        ValueError: for a file that is not a CoCoOp checkpoint, another model, or another class list.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("coop_tutorial", "{}"))
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except SafetensorError as exc:
        raise ValueError(f"{path} is not a safetensors file ({exc}); CoCoOp checkpoints are written by "
                         f"ct.save_cocoop, and pickle files are never loaded.") from exc
    if meta.get("format") != COCOOP_FORMAT:
        hint = " It is a CoOp context: load it with ct.load_context." if meta.get("format") == "coop-tutorial/context" \
            else ""
        raise ValueError(f"{path} is not a CoCoOp checkpoint (written by ct.save_cocoop).{hint}")
    problems = [f"{field}: saved {meta[field]!r}, given model has {value!r}"
                for field, value in (("model_name", clip.name), ("width", clip.width), ("embed_dim", clip.embed_dim))
                if meta[field] != value]
    saved_print, given_print = meta.get("weights_fingerprint"), weights_fingerprint(clip)
    if saved_print and saved_print != given_print and not allow_other_weights and meta["model_name"] == clip.name:
        problems.append(f"weights: trained on {meta['model_name']!r} with pretrained={meta.get('pretrained')!r} "
                        f"(weights {saved_print}), given pretrained={clip.pretrained!r} (weights {given_print}); load "
                        f"the weights it was trained with, or pass allow_other_weights=True to transfer it knowingly")
    saved = list(meta["classnames"])
    names = saved if classnames is None else list(classnames)
    if names != saved and not new_classes:
        problems.append(f"classnames: trained on {len(saved)} classes ({', '.join(saved[:3])}, ...), given "
                        f"{len(names)} others ({', '.join(names[:3])}, ...); pass new_classes=True to use the "
                        f"learned context on other classes (base-to-new, cross-dataset)")
    if problems:
        raise ValueError(f"Cannot load the CoCoOp checkpoint {path}: " + "; ".join(problems) + ".")
    learner = CoCoOpPromptLearner(clip, names, n_ctx=meta["n_ctx"], ctx_init=None, generator=torch.Generator())
    learner.load_state_dict({k: v.to(learner.ctx.dtype) for k, v in tensors.items()}, strict=False)
    learner.ctx_init = meta.get("ctx_init")
    return learner
