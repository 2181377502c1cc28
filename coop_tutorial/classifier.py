"""CoOp's classifier: CLIP with learned prompts as the class weights (the official ``CustomCLIP``).

``logits = logit_scale.exp() * cos(image_feature, text_feature_of_class)``. Training usually goes through
``logits_from_features`` on cached image features, since the image encoder is frozen and its output for a
given (augmented) image never changes.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .clip_loader import ClipBundle
from .prompt_learner import PromptLearner
from .text_encoder import TextEncoder
from .validation import check_images


class CoOpClassifier(nn.Module):
    """Frozen CLIP + a ``PromptLearner``.

    Args:
        clip: the frozen CLIP bundle (kept as ``.clip`` so evaluation helpers can preprocess raw datasets).
        learner: the prompt learner; its class order is the label order.
        truncate_text: run the text transformer only up to the longest prompt's EOS (same result, faster);
            ``False`` gives the official full-length pass.
        text_chunk_size: memory saving: 0 (default) encodes all prompts in one batch; ``k > 0`` encodes them
            ``k`` classes at a time, checkpointed while training, so backward memory stops growing with the
            number of classes (same features, about one extra text forward per step; see ``TextEncoder``).
        share_prefix: compute the positions every class shares (SOS + a unified context before the class
            name) once instead of once per class (same features, fewer positions; needs ``truncate_text``).
    """

    def __init__(self, clip: ClipBundle, learner: PromptLearner, truncate_text: bool = True,
                 text_chunk_size: int = 0, share_prefix: bool = True):
        super().__init__()
        if learner.width != clip.width or learner.clip_name != clip.name:
            raise ValueError(f"The prompt learner was built for {learner.clip_name!r} (width {learner.width}) but "
                             f"the classifier gets {clip.name!r} (width {clip.width}); build both from one CLIP.")
        self.prompt_learner = learner
        self.image_encoder = clip.model.visual
        self.text_encoder = TextEncoder(clip.model, truncate=truncate_text, chunk_size=text_chunk_size,
                                        share_prefix=share_prefix)
        self.logit_scale = clip.model.logit_scale
        self.clip = clip
        self.classnames = learner.classnames
        self.train()  # the learner trains; the frozen encoders stay in eval mode (see train)

    @property
    def tokenized_prompts(self) -> torch.Tensor:
        """``(n_cls, context_length)`` token ids of the prompts (where each EOS is)."""
        return self.prompt_learner.tokenized_prompts

    def train(self, mode: bool = True) -> "CoOpClassifier":
        """Switch the prompt learner only: the frozen encoders stay in eval mode.

        CLIP's ResNet towers contain BatchNorm; putting them in train mode would update their running
        statistics from few-shot batches. The official trainer never does (it only switches the prompt learner).
        """
        # Only this module's flag and the learner's: walking the whole frozen CLIP on every epoch's
        # train/eval switch cost more than a training step on the embedded model.
        self.training = mode
        self.prompt_learner.train(mode)
        for frozen in (self.image_encoder, self.text_encoder):
            if frozen.training:  # someone switched the shared CLIP to train mode: put it back
                frozen.eval()
        return self

    def text_features(self) -> torch.Tensor:
        """L2-normalised class embeddings ``(n_cls, embed_dim)`` (differentiable w.r.t. ``ctx``)."""
        learner = self.prompt_learner
        features = self.text_encoder(learner(), learner.tokenized_prompts, shared_prefix=learner.shared_prefix_length)
        return F.normalize(features, dim=-1)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image features ``(B, embed_dim)`` from preprocessed images ``(B, 3, S, S)``."""
        check_images(images, self.clip.image_size)
        features = self.image_encoder(images.to(device=self.logit_scale.device, dtype=self.clip.dtype))
        return F.normalize(features, dim=-1)

    def logits_from_features(self, image_features: torch.Tensor,
                             text_features: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits ``(B, n_cls)`` for image features ``(B, embed_dim)`` (normalised here if they are not).

        ``text_features`` ``(n_cls, embed_dim)`` can be passed to reuse one text pass for several batches.
        """
        if text_features is None:
            text_features = self.text_features()  # one text pass, however many images
        image_features = F.normalize(image_features.to(text_features.device, text_features.dtype), dim=-1)
        return self.logit_scale.exp() * image_features @ text_features.t()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_cls)`` = ``logit_scale.exp() * cos`` for preprocessed images ``(B, 3, S, S)``."""
        return self.logits_from_features(self.encode_images(images))

