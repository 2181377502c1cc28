"""Zero-shot CLIP: class weights from hand-written prompts, the baseline CoOp is measured against.

One template gives the weight of class ``c`` as ``normalise(encode_text(template.format(c)))``. A template
ensemble (CLIP's 80 ImageNet templates) averages the normalised features of all templates and renormalises,
as CLIP and open_clip's ``build_zero_shot_classifier`` do.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ._text import clean_classname, tokenize_checked, validate_classnames
from .validation import check_images
from .clip_loader import ClipBundle
from .evaluation import accuracy
from .features import FeatureSet, check_labels, encode_dataset
from .templates import dataset_template
from .text_encoder import TextEncoder

Template = Union[str, Callable[[str], str]]
DEFAULT_TEMPLATE = "a photo of a {}."


def format_prompt(template: Template, classname: str) -> str:
    """``template`` filled with the class name (``_`` read as a space); accepts ``"{}"`` strings or callables."""
    name = clean_classname(classname)
    if callable(template):
        return template(name)
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(f"Template {template!r} must be a string with exactly one '{{}}' where the class name "
                         f"goes, e.g. 'a photo of a {{}}.'.")
    return template.format(name)


def encode_texts(clip: ClipBundle, texts: Sequence[str], batch_size: int = 256,
                 progress: bool = False) -> torch.Tensor:
    """L2-normalised text features ``(len(texts), embed_dim)`` (frozen CLIP, truncated text pass)."""
    encoder = TextEncoder(clip.model, truncate=True)
    device = clip.model.logit_scale.device
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start:start + batch_size])
            ids = tokenize_checked(clip.tokenizer, batch, clip.context_length,
                                   advice="Shorten the template or the class names.").to(device)
            chunks.append(F.normalize(encoder(clip.model.token_embedding(ids), ids).float(), dim=-1))
    return torch.cat(chunks) if chunks else torch.empty(0, clip.embed_dim)


def _template_list(templates: Union[Template, Sequence[Template]]) -> list[Template]:
    listed = [templates] if isinstance(templates, str) or callable(templates) else list(templates)
    if not listed:
        raise ValueError("templates is empty: pass at least one template such as 'a photo of a {}.'.")
    return listed


def template_features(clip: ClipBundle, classnames: Sequence[str], templates: Union[Template, Sequence[Template]],
                      batch_size: int = 256) -> torch.Tensor:
    """Normalised features ``(n_templates, n_cls, embed_dim)`` of every template filled with every class."""
    names = validate_classnames(classnames)
    listed = _template_list(templates)
    prompts = [format_prompt(t, c) for t in listed for c in names]
    return encode_texts(clip, prompts, batch_size).reshape(len(listed), len(names), -1)


def zero_shot_weights(clip: ClipBundle, classnames: Sequence[str],
                      templates: Union[Template, Sequence[Template]] = DEFAULT_TEMPLATE,
                      batch_size: int = 256) -> torch.Tensor:
    """Class weights ``(n_cls, embed_dim)``: the (ensemble-averaged, renormalised) prompt features."""
    features = template_features(clip, classnames, templates, batch_size)
    return F.normalize(features.mean(dim=0), dim=-1)


class ZeroShotClassifier(nn.Module):
    """Frozen CLIP with fixed class weights; same interface as ``CoOpClassifier``."""

    def __init__(self, clip: ClipBundle, weights: torch.Tensor, classnames: Sequence[str],
                 templates: Sequence[Template] = ()):
        super().__init__()
        self.image_encoder = clip.model.visual
        self.logit_scale = clip.model.logit_scale
        self.register_buffer("weights", weights)  # (n_cls, embed_dim), L2-normalised
        self.clip = clip
        self.classnames = list(classnames)
        self.templates = list(templates)

    def text_features(self) -> torch.Tensor:
        """``(n_cls, embed_dim)`` L2-normalised class weights."""
        return self.weights

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image features ``(B, embed_dim)`` from preprocessed images ``(B, 3, S, S)``."""
        check_images(images, self.clip.image_size)
        return F.normalize(self.image_encoder(images.to(self.weights.device, self.clip.dtype)), dim=-1)

    def logits_from_features(self, image_features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_cls)`` for image features ``(B, embed_dim)``."""
        image_features = F.normalize(image_features.to(self.weights.device, self.weights.dtype), dim=-1)
        return self.logit_scale.exp() * image_features @ self.weights.t()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.encode_images(images))

    def train(self, mode: bool = True) -> "ZeroShotClassifier":
        super().train(mode)
        self.image_encoder.eval()  # frozen: never update BatchNorm statistics
        return self


def zero_shot_classifier(clip: ClipBundle, classnames: Sequence[str],
                         templates: Optional[Union[Template, Sequence[Template]]] = None,
                         dataset: Optional[str] = None, batch_size: int = 256) -> ZeroShotClassifier:
    """Zero-shot classifier from one template, a list of templates (ensemble) or a dataset's default template.

    Args:
        templates: ``"a photo of a {}."``, a list such as ``ct.CLIP_IMAGENET_TEMPLATES``, or None.
        dataset: with ``templates=None``, use this dataset's hand-written template from the CoOp paper
            (``"eurosat"`` -> ``"a centered satellite photo of {}."``); with neither, ``"a photo of a {}."``.
    """
    if templates is None:
        templates = dataset_template(dataset) if dataset is not None else DEFAULT_TEMPLATE
    listed = _template_list(templates)
    weights = zero_shot_weights(clip, classnames, listed, batch_size)
    return ZeroShotClassifier(clip, weights, classnames, listed)


def template_accuracies(clip: ClipBundle, data: Union[Dataset, FeatureSet],
                        templates: Sequence[Template], classnames: Optional[Sequence[str]] = None,
                        batch_size: int = 256) -> pd.DataFrame:
    """Zero-shot accuracy of each template on ``data``: one image pass, one batched text pass.

    Returns a DataFrame with columns ``template`` and ``accuracy`` (in [0, 1]), in the order given.
    """
    features = data if isinstance(data, FeatureSet) else encode_dataset(clip, data, progress=False)
    names = list(classnames) if classnames is not None else features.classnames
    if names is None:
        raise ValueError("The data has no .classnames; pass classnames=... explicitly.")
    check_labels(features.labels, names)
    listed = _template_list(templates)
    text = template_features(clip, names, listed, batch_size)  # (T, n_cls, D)
    image = features.view(0).to(text.device)  # (N, D)
    labels = features.labels.to(text.device)
    predictions = torch.einsum("nd,tcd->tnc", image, text).argmax(dim=-1)  # (T, N)
    shown = [t if isinstance(t, str) else format_prompt(t, "{}") for t in listed]
    return pd.DataFrame({"template": shown, "accuracy": [accuracy(p, labels) for p in predictions]})
