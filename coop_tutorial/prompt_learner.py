"""The learnable prompt of CoOp: ``[SOS] [V]_1 ... [V]_M [CLASS] . [EOS]``.

Token for token this is the ``PromptLearner`` of the official code (KaiyangZhou/CoOp, ``trainers/coop.py``):
each class gets the text ``"X X ... X {classname}."`` (``_`` in the name becomes a space), which is tokenized
and embedded once. The embedding is cut into three pieces:

* ``token_prefix`` ``(n_cls, 1, width)``: the SOS token;
* the ``n_ctx`` placeholder ``X`` tokens, replaced by the learnable ``ctx`` vectors;
* ``token_suffix`` ``(n_cls, context_length - 1 - n_ctx, width)``: the class-name tokens, ``.``, EOS and padding.

``forward()`` glues them back in the order of ``class_token_position``. Only ``ctx`` is a parameter; the
prefix and suffix are frozen embeddings of real tokens. Attribute names follow the official code so that
its checkpoints, notebooks and equivalence harnesses read the same.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ._text import clean_classname, token_ids, tokenize_checked, validate_classnames
from .clip_loader import ClipBundle, warn_if_untrained, weights_fingerprint

CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


def arrange(position: str, context: Sequence, name: Sequence) -> list:
    """The context items and the class-name items in ``position``'s order: ``end`` puts the name after the
    context, ``middle`` after its first half (``M // 2`` items, as the official code), ``front`` before it. The one
    place the three layouts are written; tensors' row orders, readable prompts and figures all call it."""
    context, name, half = list(context), list(name), len(context) // 2
    if position == "end":
        return context + name
    if position == "middle":
        return context[:half] + name + context[half:]
    if position == "front":
        return name + context
    raise ValueError(f"class_token_position must be one of {', '.join(repr(p) for p in CLASS_TOKEN_POSITIONS)}, "
                     f"got {position!r}.")


class PromptLearner(nn.Module):
    """Learnable context vectors plus the frozen token embeddings around them.

    Args:
        clip: the frozen CLIP whose token table and tokenizer build the prompts.
        classnames: one name per class, in label order; ``_`` is read as a space.
        n_ctx: number of context vectors M (ignored when ``ctx_init`` is given).
        ctx_init: words whose token embeddings initialise the context, e.g. ``"a photo of a"``; M becomes
            their number of *tokens* (the official code counts space-separated words, which is the same for
            ordinary words and misaligns the prompt for a word that splits into several BPE tokens).
        csc: class-specific context, ``ctx`` of shape ``(n_cls, M, width)`` instead of ``(M, width)``. With
            ``ctx_init`` the word embeddings are copied to every class (the official code silently ignores
            ``csc`` when ``ctx_init`` is set and learns one shared context; here ``csc=True`` always means
            class-specific, starting from the words).
        class_token_position: ``"end"`` (the paper's default), ``"middle"`` (first ``M // 2`` vectors, the
            class, the remaining vectors) or ``"front"`` (class first).
        generator: RNG for the random N(0, 0.02) initialisation; ``None`` uses torch's global RNG, as the
            official code does.

    Shapes: ``ctx`` ``(n_ctx, width)`` or ``(n_cls, n_ctx, width)``; ``forward()`` returns the prompt
    embeddings ``(n_cls, context_length, width)``; ``tokenized_prompts`` ``(n_cls, context_length)`` tells the
    text encoder where each EOS is.
    """

    def __init__(self, clip: ClipBundle, classnames: Sequence[str], n_ctx: int = 16,
                 ctx_init: Optional[str] = None, csc: bool = False, class_token_position: str = "end",
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        names = validate_classnames(classnames)
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise ValueError(f"Unknown class_token_position {class_token_position!r}; use one of "
                             f"{', '.join(repr(p) for p in CLASS_TOKEN_POSITIONS)} ('end' is the paper's default).")
        if not isinstance(csc, bool):
            raise ValueError(f"csc must be True or False, got {csc!r}.")
        model, tokenizer = clip.model, clip.tokenizer
        dtype, width, context_length = clip.dtype, clip.width, clip.context_length
        device = model.token_embedding.weight.device
        n_cls = len(names)

        if ctx_init is not None:
            ctx_vectors, n_ctx, prompt_prefix = _word_context(clip, ctx_init)
            if csc:
                ctx_vectors = ctx_vectors.unsqueeze(0).repeat(n_cls, 1, 1)
        else:
            if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 1:
                raise ValueError(f"n_ctx must be an integer >= 1 (the number of context vectors; the paper uses "
                                 f"16, or 4 with ctx_init='a photo of a'), got {n_ctx!r}.")
            shape = (n_cls, n_ctx, width) if csc else (n_ctx, width)
            ctx_vectors = torch.empty(shape, dtype=torch.float32)
            nn.init.normal_(ctx_vectors, std=0.02, generator=generator)
            ctx_vectors = ctx_vectors.to(device=device, dtype=dtype)
            prompt_prefix = " ".join(["X"] * n_ctx)
        self.ctx = nn.Parameter(ctx_vectors)

        cleaned = [clean_classname(name) for name in names]
        name_lens = [len(token_ids(tokenizer, name)) for name in cleaned]
        prompts = [prompt_prefix + " " + name + "." for name in cleaned]
        tokenized_prompts = tokenize_checked(
            tokenizer, prompts, context_length,
            advice=f"Use fewer context vectors (n_ctx={n_ctx}), shorter class names, or a CLIP with a longer "
                   f"context.")
        with torch.no_grad():
            embedding = model.token_embedding(tokenized_prompts.to(device)).type(dtype)

        # Persistent, as in the official code (its state dicts carry them); a loader should rebuild them from
        # the current class names rather than trust saved ones.
        self.register_buffer("token_prefix", embedding[:, :1, :].clone())  # SOS
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx:, :].clone())  # CLASS, ".", EOS, padding
        self.register_buffer("tokenized_prompts", tokenized_prompts.to(device), persistent=False)
        self.register_buffer("layout_index", _layout_index(class_token_position, n_ctx, name_lens, context_length)
                             .to(device), persistent=False)

        self.n_cls = n_cls
        self.n_ctx = n_ctx
        self.name_lens = name_lens
        self.class_token_position = class_token_position
        self.classnames = names
        self.csc = csc
        self.ctx_init = prompt_prefix if ctx_init is not None else None
        self.clip_name = clip.name
        self.clip_pretrained = None if clip.pretrained is None else str(clip.pretrained)
        self.weights_fingerprint = weights_fingerprint(clip)  # saved with the context: which weights it fits
        self.width = width
        self.context_length = context_length

    def forward(self) -> torch.Tensor:
        """Prompt embeddings ``(n_cls, context_length, width)`` in the layout of ``class_token_position``."""
        ctx = self.ctx
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        # "end" layout: [SOS][V]_1..[V]_M[CLASS . EOS pad], exactly the official concatenation.
        prompts = torch.cat([self.token_prefix, ctx, self.token_suffix], dim=1)
        if self.class_token_position == "end":
            return prompts
        # "middle"/"front": the same rows in another order. layout_index[c, p] says which row of the end layout
        # goes to position p of class c; one gather replaces the official per-class loop (a pure copy, so the
        # result is bit-identical to it).
        index = self.layout_index.unsqueeze(-1).expand(-1, -1, prompts.shape[-1])
        return prompts.gather(1, index)

    @property
    def shared_prefix_length(self) -> int:
        """How many leading prompt positions are the same function of ``ctx`` for every class.

        SOS plus the context vectors placed before the class name when the context is unified (all of them for
        ``end``, the first half for ``middle``); only SOS for ``front`` or a class-specific context. The text
        encoder computes these positions once instead of once per class (``TextEncoder`` docstring).
        """
        if self.csc:
            return 1
        return 1 + arrange(self.class_token_position, range(self.n_ctx), [None]).index(None)

    def layout_string(self, class_index: int = 0) -> str:
        """The prompt of one class as a readable layout, e.g. ``"[SOS] [V1] [V2] golden retriever . [EOS]"``."""
        ctx = [f"[V{i + 1}]" for i in range(self.n_ctx)]
        name = [clean_classname(self.classnames[class_index])]
        return " ".join(["[SOS]"] + arrange(self.class_token_position, ctx, name) + [".", "[EOS]"])

    def with_classnames(self, clip: ClipBundle, classnames: Sequence[str]) -> "PromptLearner":
        """A learner for other class names that reuses this (unified) context.

        This is how CoOp is evaluated on new classes (base-to-new) and on ImageNet-A/-R's 200-class subsets:
        rebuild the prompts, keep ``ctx``. A class-specific context has no vector for an unseen class.
        """
        if self.csc and list(classnames) != list(self.classnames):
            raise ValueError("csc: a class-specific context holds one context per training class and cannot be "
                             "moved to other class names; train a unified context (csc=False) for that.")
        new = PromptLearner(clip, classnames, n_ctx=self.n_ctx, csc=self.csc,
                            class_token_position=self.class_token_position)
        if new.width != self.width:
            raise ValueError(f"width: this context has width {self.width} but {clip.name!r} uses {new.width}.")
        with torch.no_grad():
            new.ctx.copy_(self.ctx)
        new.ctx_init = self.ctx_init
        return new

    def extra_repr(self) -> str:
        return (f"n_cls={self.n_cls}, n_ctx={self.n_ctx}, width={self.width}, csc={self.csc}, "
                f"class_token_position={self.class_token_position!r}, ctx_init={self.ctx_init!r}")


def _word_context(clip: ClipBundle, ctx_init: str) -> tuple[torch.Tensor, int, str]:
    """Context vectors ``(n_tokens, width)`` copied from the token embeddings of ``ctx_init``'s words."""
    if not isinstance(ctx_init, str) or not ctx_init.replace("_", " ").strip():
        raise ValueError(f"ctx_init must be a non-empty string of words such as 'a photo of a', got {ctx_init!r}; "
                         f"pass ctx_init=None for a random context.")
    words = " ".join(ctx_init.replace("_", " ").split())
    n_ctx = len(token_ids(clip.tokenizer, words))
    # SOS + context + at least one class token + "." + EOS must fit.
    if n_ctx == 0 or n_ctx + 4 > clip.context_length:
        raise ValueError(f"ctx_init {ctx_init!r} is {n_ctx} tokens, but {clip.name!r} has room for at most "
                         f"{clip.context_length - 4} context tokens (context length {clip.context_length} minus SOS, "
                         f"a class token, '.' and EOS). Use fewer words, e.g. 'a photo of a'.")
    warn_if_untrained(clip, words)  # an embedded model's unseen words start from a meaningless vector
    device = clip.model.token_embedding.weight.device
    ids = clip.tokenizer([words], context_length=clip.context_length).to(device)
    with torch.no_grad():
        embedding = clip.model.token_embedding(ids).type(clip.dtype)
    return embedding[0, 1:1 + n_ctx, :].clone(), n_ctx, words


def _layout_index(position: str, n_ctx: int, name_lens: Sequence[int], context_length: int) -> torch.Tensor:
    """``(n_cls, context_length)`` row order that turns the ``end`` layout into ``position``'s layout.

    End-layout rows: 0 = SOS, 1..n_ctx = context, then the class tokens, ".", EOS and padding.
    """
    rows = []
    for name_len in name_lens:
        ctx = range(1, 1 + n_ctx)
        cls = range(1 + n_ctx, 1 + n_ctx + name_len)
        rest = list(range(1 + n_ctx + name_len, context_length))
        rows.append([0] + arrange(position, ctx, cls) + rest)
    return torch.tensor(rows, dtype=torch.long)
