"""Training CoOp: the paper's recipe, on cached image features.

The loop is the official one (cross-entropy on ``logit_scale.exp() * cos``, only ``ctx`` optimised, lr set
per epoch by a cosine schedule after a constant warm-up epoch, last incomplete batch dropped) with three
speed-ups; the first is an approximation, the other two are exact:

* image features are computed once, for ``n_views`` augmented views per image; each epoch every image
  uses one of its views (the official loop re-encodes a fresh augmentation at every step, so it sees many more
  distinct crops; ``benchmarks/bench_augmentation.py`` measures the difference);
* the text transformer runs only up to the longest prompt's EOS (see ``text_encoder.py``);
* the positions every class shares (SOS + a unified context) run once per step, not once per class.

``cached=False`` runs the official structure instead (augment and encode every batch, full-length text pass)
so the two can be compared.

``precision`` (``CoOpConfig.precision``) as the official ``PREC``: ``"fp32"``; ``"fp16"``, the frozen CLIP and
the context in half precision (the official default, GPU only); ``"bf16"``, the same in bfloat16 (runs on CPUs too);
``"amp"``, fp32 weights with autocast (fp16 with a gradient scaler on GPU, bfloat16 on CPU). For fp16/bf16 the run
uses a converted copy of the CLIP, so the caller's model is never changed.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Optional, Sequence, Union

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .classifier import CoOpClassifier
from .evaluation import score
from .clip_loader import ClipBundle
from .features import AugmentedViews, FeatureSet, check_labels, encode_dataset
from .few_shot import dataset_labels
from .prompt_learner import CLASS_TOKEN_POSITIONS, PromptLearner
from .validation import MAX_SEED, check_features, check_same_classes

OPTIMIZERS = ("sgd", "adam")
MAX_LR = 100.0
SCHEDULES = ("cosine", "constant")
PRECISIONS = ("fp32", "fp16", "amp", "bf16")
# The dtype the frozen CLIP and the context are held in, per precision ("amp" keeps fp32 weights, autocasts).
PRECISION_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "amp": torch.float32}

# Epochs of the official configs by number of shots (ImageNet: 50 for every K).
PAPER_EPOCHS = {1: 50, 2: 100, 4: 100, 8: 200, 16: 200}

# Preset for the embedded tiny CLIP. SGD at 0.002 barely moves the context (the tiny model's logit scale is ~20,
# not CLIP's 100, so gradients are 5x smaller); Adam learns it. The paper's epoch counts are kept: an epoch of
# 16 shots of 4-10 classes is only 2-5 steps. No warm-up epoch with Adam. How it was chosen, on validation splits
# only, and what the alternatives scored: README, "The embedded world" (`python -m coop_tutorial.embedded.recipe_search`).
EMBEDDED_RECIPE: dict[str, Any] = dict(optimizer="adam", lr=3e-3, momentum=0.9, weight_decay=0.0, batch_size=32,
                                       warmup_epochs=0, warmup_lr=1e-5, schedule="cosine", n_views=8)
EMBEDDED_EPOCHS = dict(PAPER_EPOCHS)


@dataclass
class CoOpConfig:
    """Everything a CoOp run depends on. Defaults are the paper's recipe for 1 shot (``CoOpConfig.paper``)."""

    # The prompt (paper: M = 16 random vectors, class at the end, one context for all classes).
    n_ctx: int = 16
    ctx_init: Optional[str] = None  # e.g. "a photo of a": initialise from words, n_ctx = their token count
    csc: bool = False  # class-specific context
    class_token_position: str = "end"  # "end", "middle" or "front"
    # Optimisation (official configs/trainers/CoOp/*.yaml).
    optimizer: str = "sgd"  # "sgd" or "adam"
    lr: float = 0.002
    momentum: float = 0.9  # SGD only
    weight_decay: float = 5e-4
    epochs: int = 50
    batch_size: int = 32
    warmup_epochs: int = 1  # epochs at the constant warmup_lr before the schedule starts
    warmup_lr: float = 1e-5
    schedule: str = "cosine"  # "cosine" (stepped per epoch, as Dassl) or "constant"
    # Speed: cached features with augmented views; cached=False is the official uncached loop.
    n_views: int = 8  # augmented views per image (random resized crop + flip); 0 = the eval view only
    cached: bool = True
    truncate_text: bool = True  # text pass only up to the longest prompt (cached loop only)
    share_prefix: bool = True  # SOS + a unified context computed once, not once per class (cached loop only)
    # Numerics: "fp32", "fp16" (official PREC, GPU only), "bf16", "amp" (autocast: fp16 on GPU, bf16 on CPU).
    precision: str = "fp32"
    # Memory: 0 = every class's prompt in one text batch (fastest); k > 0 = k classes at a time, checkpointed,
    # so backward holds one chunk's activations (for many classes on a small GPU; ~1 extra text forward).
    text_chunk_size: int = 0
    # Bookkeeping.
    seed: int = 1  # context init, batch order, view choice and augmentations
    device: Optional[str] = None  # None: wherever the CLIP is; otherwise must match it
    eval_every: int = 1  # validation accuracy every this many epochs (and after the last)
    log_every: int = 0  # call step callbacks every this many steps (0: never)
    feature_batch_size: int = 64  # images per encoder call when caching features
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a ValueError naming the first invalid field; ``train_coop`` calls it again, so a field changed
        after construction (``config.epochs = 0``) is caught before any work."""
        for name, minimum in (("n_ctx", 1), ("epochs", 1), ("batch_size", 1), ("warmup_epochs", 0), ("n_views", 0),
                              ("seed", 0), ("eval_every", 1), ("log_every", 0), ("feature_batch_size", 1),
                              ("text_chunk_size", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                _bad(name, value, f"an integer >= {minimum}")
        for name, low, strict in (("lr", 0.0, True), ("momentum", 0.0, False), ("weight_decay", 0.0, False),
                                  ("warmup_lr", 0.0, False)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < low or (strict and value == low):
                _bad(name, value, f"a finite number {'>' if strict else '>='} {low}")
        if self.lr > MAX_LR:
            _bad("lr", self.lr, f"at most {MAX_LR:g} (larger steps overflow the optimiser; the paper uses 0.002)")
        if self.seed > MAX_SEED:
            _bad("seed", self.seed, f"an integer in [0, {MAX_SEED}]")
        if self.momentum >= 1:
            _bad("momentum", self.momentum, "a number in [0, 1)")
        for name in ("csc", "cached", "truncate_text", "share_prefix", "progress"):
            if not isinstance(getattr(self, name), bool):
                _bad(name, getattr(self, name), "True or False")
        for name, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                              ("class_token_position", CLASS_TOKEN_POSITIONS), ("precision", PRECISIONS)):
            if getattr(self, name) not in choices:
                _bad(name, getattr(self, name), f"one of {', '.join(repr(c) for c in choices)}")
        if self.ctx_init is not None and (not isinstance(self.ctx_init, str) or not self.ctx_init.strip()):
            _bad("ctx_init", self.ctx_init, "None or a non-empty string of words such as 'a photo of a'")
        if self.device is not None and not isinstance(self.device, (str, torch.device)):
            _bad("device", self.device, "None or a device name such as 'cpu' or 'cuda'")
        if self.warmup_epochs >= self.epochs:
            _bad("warmup_epochs", self.warmup_epochs, f"smaller than epochs ({self.epochs})")

    @classmethod
    def paper(cls, shots: int = 16, dataset: Optional[str] = None, **overrides: Any) -> "CoOpConfig":
        """The official recipe: SGD 0.002, momentum 0.9, wd 5e-4, batch 32, cosine with one warm-up epoch at
        1e-5; 50/100/100/200/200 epochs for 1/2/4/8/16 shots (50 for every K on ImageNet); precision fp16 (the
        official PREC) when a GPU is visible, else fp32 (half matrix products do not run on CPU)."""
        epochs = 50 if dataset is not None and dataset.lower() == "imagenet" else _epochs_for(shots, PAPER_EPOCHS)
        recipe = dict(optimizer="sgd", lr=0.002, momentum=0.9, weight_decay=5e-4, batch_size=32, warmup_epochs=1,
                      warmup_lr=1e-5, schedule="cosine", epochs=epochs,
                      precision="fp16" if torch.cuda.is_available() else "fp32")
        return cls(**{**recipe, **overrides})

    @classmethod
    def embedded(cls, shots: int = 16, **overrides: Any) -> "CoOpConfig":
        """The recipe tuned for the embedded tiny CLIP (``EMBEDDED_RECIPE``, ``EMBEDDED_EPOCHS``)."""
        return cls(**{**EMBEDDED_RECIPE, "epochs": _epochs_for(shots, EMBEDDED_EPOCHS), **overrides})

    def replace(self, **changes: Any) -> "CoOpConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, torch.device) else v) for k, v in asdict(self).items()}


def _bad(name: str, value: Any, expected: str) -> None:
    raise ValueError(f"CoOpConfig.{name} must be {expected}, got {value!r} ({type(value).__name__}).")


def check_epochs(epochs: Optional[int], name: str = "EPOCHS") -> None:
    """A notebook's ``EPOCHS``: ``None`` (the recipe's) or a positive integer; ``name`` is what the error calls it."""
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"{name} must be a positive integer, or None for the recipe's, got {epochs!r}.")


def with_epochs(config: Any, epochs: Optional[int], name: str = "EPOCHS") -> Any:
    """``config`` (a ``CoOpConfig`` or ``CoCoOpConfig``) trained for ``epochs`` instead of its own, its schedule
    squeezed into them; a warm-up epoch is dropped if it would leave none. ``None`` keeps the config's epochs."""
    check_epochs(epochs, name)
    if epochs is None:
        return config
    return config.replace(epochs=epochs, warmup_epochs=min(config.warmup_epochs, epochs - 1))


def _epochs_for(shots: int, table: dict[int, int]) -> int:
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ValueError(f"shots must be an integer >= 1, got {shots!r}.")
    return table[max(k for k in table if k <= shots)]


def learning_rate(epoch: int, config: CoOpConfig) -> float:
    """Learning rate of (0-based) ``epoch``, as Dassl's ConstantWarmupScheduler around CosineAnnealingLR.

    Warm-up epochs use ``warmup_lr``; then the cosine starts from ``lr`` with period ``epochs`` (not
    ``epochs - warmup``, so as in the official runs the last epoch does not reach 0).
    """
    if epoch < config.warmup_epochs:
        return config.warmup_lr
    if config.schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - config.warmup_epochs) / config.epochs))


@dataclass
class TrainResult:
    """What ``train_coop`` returns. ``history`` has one dict per epoch:
    ``epoch, loss, train_acc, val_acc, lr, seconds`` (accuracies in [0, 1]; ``val_acc`` None without val)."""

    learner: PromptLearner
    classifier: CoOpClassifier
    history: list[dict]
    config: CoOpConfig
    train_features: Optional[FeatureSet] = None
    val_features: Optional[FeatureSet] = None
    encode_seconds: float = 0.0

    def history_frame(self) -> pd.DataFrame:
        """The history as a DataFrame indexed by epoch, ready to ``.plot()``."""
        return pd.DataFrame(self.history).set_index("epoch")


Callback = Union[Callable[[dict], None], Any]


def build_classifier(clip: ClipBundle, learner: PromptLearner, config: CoOpConfig) -> CoOpClassifier:
    """The classifier a config trains: the official structure (``cached=False``) runs the full-length text pass
    for every class; the cached loop truncates it and computes the shared prefix once, as the config says."""
    return CoOpClassifier(clip, learner, truncate_text=config.truncate_text and config.cached,
                          text_chunk_size=config.text_chunk_size,
                          share_prefix=config.share_prefix and config.cached)


def train_coop(clip: ClipBundle, train_set: Union[Dataset, FeatureSet],
               val_set: Union[Dataset, FeatureSet, None] = None, config: Optional[CoOpConfig] = None,
               callbacks: Sequence[Callback] = (), classnames: Optional[Sequence[str]] = None) -> TrainResult:
    """Learn a CoOp context on ``train_set``.

    Args:
        clip: the frozen CLIP.
        train_set: few-shot training data yielding ``(PIL image, label)``, or a FeatureSet already encoded
            (e.g. to share one encoding between runs; its views are used as augmentations).
        val_set: optional validation data (Dataset or FeatureSet) for ``val_acc`` in the history; encoded
            once with the eval transform in both loops (validation is not part of the official-vs-cached
            comparison).
        config: the recipe; default ``CoOpConfig()``.
        callbacks: plain callables are called with each epoch's record; objects may instead define any of
            ``on_train_start(learner)``, ``on_step_end(record, learner)`` (every ``config.log_every``
            steps), ``on_epoch_end(record, learner)``, ``on_train_end(result)``.
        classnames: class names in label order (default: ``train_set.classnames``).

    Raises:
        RuntimeError: when the loss becomes NaN or infinite.
    """
    config = CoOpConfig() if config is None else config
    if not isinstance(config, CoOpConfig):
        raise ValueError(f"config must be a CoOpConfig, got {type(config).__name__}; e.g. ct.CoOpConfig.paper(16).")
    config.validate()
    names = training_classnames(train_set, val_set, classnames, "CoOp")
    _check_device(clip, config)
    clip = precision_clip(clip, config.precision)
    generator = torch.Generator().manual_seed(config.seed)
    learner = PromptLearner(clip, names, n_ctx=config.n_ctx, ctx_init=config.ctx_init, csc=config.csc,
                            class_token_position=config.class_token_position, generator=generator)
    classifier = build_classifier(clip, learner, config)
    optimizer = _build_optimizer(learner, config)

    history, train_features, val_features, encode_seconds = run_training(
        clip, classifier, learner, optimizer, generator, train_set, val_set, names, config, callbacks, "CoOp")
    result = TrainResult(learner, classifier, history, config, train_features, val_features, encode_seconds)
    _emit(callbacks, "on_train_end", result)
    return result


def training_classnames(train_set, val_set, classnames: Optional[Sequence[str]], method: str) -> list[str]:
    """The class names a run learns (``classnames`` or ``train_set.classnames``), after the checks every prompt
    learner's training needs: names exist, the training set is not empty, ``val_set`` is of the same task."""
    names = list(classnames) if classnames is not None else getattr(train_set, "classnames", None)
    if names is None:
        raise ValueError("train_set has no .classnames; pass classnames=... (one name per label).")
    if len(train_set) == 0:
        raise ValueError(f"train_set is empty: {method} needs at least one labelled image per class (check the split "
                         f"and the few-shot shots).")
    if val_set is not None:
        check_same_classes(names, getattr(val_set, "classnames", None), "the training set", "val_set",
                           "Pass the validation split of the same task (world.load_task(task, 'val')).")
    return list(names)


def run_training(clip: ClipBundle, classifier: nn.Module, learner: nn.Module, optimizer: torch.optim.Optimizer,
                 generator: torch.Generator, train_set: Union[Dataset, FeatureSet],
                 val_set: Union[Dataset, FeatureSet, None], names: Sequence[str], config: Any,
                 callbacks: Sequence[Callback], desc: str) -> tuple[list[dict], Optional[FeatureSet],
                                                                    Optional[FeatureSet], float]:
    """The loop CoOp and CoCoOp share: encode (or not) the training views and the validation images, then per
    epoch set the scheduled lr, run the batches, validate (``evaluation.score``) and report to the callbacks.

    Returns ``(history, train_features, val_features, encode_seconds)``; ``classifier`` ends in eval mode.
    """
    start = time.perf_counter()
    train_features = _train_features(clip, train_set, names, config)
    val_features = None
    if val_set is not None:
        val_features = val_set if isinstance(val_set, FeatureSet) else encode_dataset(
            clip, val_set, batch_size=config.feature_batch_size, name="val", progress=config.progress)
        check_labels(val_features.labels, names)
        check_features(val_features.view(0), clip.embed_dim, "val_set's features")
    encode_seconds = time.perf_counter() - start

    _emit(callbacks, "on_train_start", learner)
    history: list[dict] = []
    bar = tqdm(range(config.epochs), desc=desc, disable=not config.progress)
    for epoch in bar:
        lr = learning_rate(epoch, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        classifier.train()
        tick = time.perf_counter()
        if train_features is not None:
            batches = _cached_batches(train_features, config, generator)
        else:
            batches = _uncached_batches(clip, classifier, train_set, config, generator, epoch)
        loss, train_acc = _run_epoch(classifier, optimizer, batches, epoch, lr, config, callbacks, learner)
        seconds = time.perf_counter() - tick
        classifier.eval()
        val_acc = None
        if val_features is not None and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs):
            val_acc = score(classifier, val_features)
        record = dict(epoch=epoch + 1, loss=loss, train_acc=train_acc, val_acc=val_acc, lr=lr, seconds=seconds)
        history.append(record)
        shown = dict(loss=f"{loss:.3f}", acc=f"{train_acc:.2f}")
        bar.set_postfix(shown if val_acc is None else {**shown, "val": f"{val_acc:.2f}"})
        _emit(callbacks, "on_epoch_end", record, learner)
    classifier.eval()
    return history, train_features, val_features, encode_seconds


def precision_clip(clip: ClipBundle, precision: str) -> ClipBundle:
    """The CLIP a run in ``precision`` uses: ``clip`` itself when its weights already have that dtype, else a
    converted copy (the caller's model is not touched). Raises a ValueError for fp16 on CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; use one of {', '.join(map(repr, PRECISIONS))}.")
    device = clip.model.logit_scale.device
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision='fp16' needs a GPU: half-precision matrix products are not implemented on CPU "
                         "(the official code stops there with \"addmm_impl_cpu_\" not implemented for 'Half'). On "
                         "CPU use precision='bf16' (bfloat16 weights), 'amp' (autocast to bfloat16) or 'fp32'; "
                         "CoOpConfig.paper picks fp32 when no GPU is visible.")
    dtype = PRECISION_DTYPES[precision]
    if clip.dtype == dtype:
        return clip
    return dataclasses.replace(clip, model=copy.deepcopy(clip.model).to(dtype))


def _autocast(config: CoOpConfig, device: torch.device):
    """Autocast for ``precision="amp"`` (fp16 on GPU, bfloat16 on CPU); a no-op otherwise."""
    if getattr(config, "precision", "fp32") != "amp":  # configs without the field (CoCoOpConfig) run fp32
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


def _check_device(clip: ClipBundle, config: CoOpConfig) -> None:
    if config.device is None:
        return
    wanted, actual = torch.device(config.device), clip.model.logit_scale.device
    if wanted.type != actual.type or (wanted.index is not None and wanted.index != actual.index):
        raise ValueError(f"CoOpConfig.device is {str(wanted)!r} but the CLIP is on {str(actual)!r}; load it there "
                         f"with ct.load_clip(name, device={str(wanted)!r}) or leave device=None.")


def _build_optimizer(learner: PromptLearner, config: CoOpConfig) -> torch.optim.Optimizer:
    params = [p for p in learner.parameters() if p.requires_grad]  # only ctx
    if config.optimizer == "sgd":  # Dassl: dampening 0, no Nesterov
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def _train_features(clip: ClipBundle, train_set, names: Sequence[str], config: CoOpConfig) -> Optional[FeatureSet]:
    """Cached training features, or None for the uncached loop (labels are checked either way)."""
    if isinstance(train_set, FeatureSet):
        if not config.cached:
            raise ValueError("cached=False re-encodes images every step and needs the image dataset, not a "
                             "FeatureSet; pass the dataset or use cached=True.")
        check_labels(train_set.labels, names)
        check_features(train_set.flat()[0], clip.embed_dim, "train_set's features")
        return train_set
    if not config.cached:
        check_labels(torch.tensor(dataset_labels(train_set), dtype=torch.long), names)
        return None
    features = encode_dataset(clip, train_set, augment=config.n_views > 0, n_views=max(config.n_views, 1),
                              seed=config.seed, batch_size=config.feature_batch_size, name="train",
                              progress=config.progress)
    check_labels(features.labels, names)
    return features


def _batch_indices(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled batches; the last incomplete one is dropped when a full batch exists (Dassl's drop_last)."""
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    if n >= batch_size and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def _cached_batches(features: FeatureSet, config: CoOpConfig, generator: torch.Generator):
    """Yields ``(image features (B, D), labels (B,))``; each image uses one randomly chosen view this epoch."""
    batches = _batch_indices(features.n_images, config.batch_size, generator)
    views = torch.randint(features.n_views, (features.n_images,), generator=generator)
    for index in batches:
        yield features.features[views[index], index], features.labels[index]


def _uncached_batches(clip: ClipBundle, classifier: CoOpClassifier, dataset: Dataset, config: CoOpConfig,
                      generator: torch.Generator, epoch: int):
    """The official structure: a fresh augmentation of every image, encoded by the frozen image encoder."""
    batches = _batch_indices(len(dataset), config.batch_size, generator)
    augmented = AugmentedViews(dataset, clip.train_preprocess, 1, seed_key=(config.seed, epoch + 1))
    loader = DataLoader(augmented, batch_sampler=[b.tolist() for b in batches], generator=torch.Generator())
    for images, labels in loader:
        with torch.no_grad(), _autocast(config, classifier.logit_scale.device):
            features = classifier.encode_images(images[:, 0])
        yield features, labels


def _run_epoch(classifier: CoOpClassifier, optimizer: torch.optim.Optimizer, batches, epoch: int, lr: float,
               config: CoOpConfig, callbacks: Sequence[Callback], learner: PromptLearner) -> tuple[float, float]:
    device = classifier.logit_scale.device
    # amp on GPU computes in fp16: scale the loss so small gradients do not flush to zero (as the official "amp").
    amp = getattr(config, "precision", "fp32") == "amp"  # CoCoOpConfig (which shares this loop) has no precision
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")
    total_loss, correct, seen = 0.0, 0, 0
    for step, (image_features, labels) in enumerate(batches, start=1):
        image_features, labels = image_features.to(device), labels.to(device)
        with _autocast(config, device):
            logits = classifier.logits_from_features(image_features)
            loss = F.cross_entropy(logits, labels)
        if not torch.isfinite(loss):
            raise RuntimeError(
                f"The loss became {loss.item()} at epoch {epoch + 1}, step {step} (lr {lr:g}). Try a lower learning "
                f"rate (CoOpConfig.lr), check the images/features for NaN or inf, and keep the model in float32.")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        b = labels.shape[0]
        total_loss += loss.item() * b
        correct += int((logits.argmax(1) == labels).sum())
        seen += b
        if config.log_every and step % config.log_every == 0:
            _emit(callbacks, "on_step_end", dict(epoch=epoch + 1, step=step, loss=loss.item(), lr=lr), learner)
    return total_loss / max(seen, 1), correct / max(seen, 1)


def _emit(callbacks: Sequence[Callback], hook: str, *args: Any) -> None:
    for callback in callbacks:
        method = getattr(callback, hook, None)
        if method is not None:
            method(*args)
        elif hook == "on_epoch_end" and callable(callback):
            callback(args[0])
