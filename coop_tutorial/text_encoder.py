"""CLIP's text tower, fed with prompt *embeddings* instead of token ids.

``model.encode_text`` starts from token ids; CoOp needs to start one step later, from embeddings in which
some rows are learned vectors. This module runs the rest of the tower exactly as open_clip does (positional
embedding, causal transformer, ``ln_final``, the output at the EOS token, ``text_projection``).

The truncated pass: with a causal mask, position ``p`` only attends to positions ``<= p``, so everything after
the last EOS (padding) cannot change any EOS output. Running only the first ``max(EOS position) + 1``
positions gives the same features for a fraction of the cost (a CoOp prompt is ~20 tokens of 77).

Memory saving (``chunk_size``): CoOp's text pass runs every class's prompt at every step, so the activations
kept for backward grow with the number of classes (the official code's memory problem). With ``chunk_size``
the classes go through the tower in chunks, each under gradient checkpointing: forward keeps only each
chunk's input and output, and backward recomputes one chunk at a time. Peak memory is then about one chunk's
activations instead of all classes', for roughly one extra forward pass. The features are the same.

The shared-prefix pass (``shared_prefix > 1``): with a unified context every class's prompt starts with the same
rows, ``[SOS][V]_1..[V]_M`` in the ``end`` layout. Under the causal mask those positions never see the class
name, so their hidden states are identical for every class. The official code still computes them once per
class; here they are computed once, and each class runs only its own positions (class name, ".", EOS), attending
to the prefix's keys and values at every layer (a key/value cache, as in text generation). With 10 classes and
16 context vectors that is 17 + 10 x 5 positions instead of 10 x 22. Same features up to float rounding; the
gradient reaches ``ctx`` through the one shared prefix, which is the same function of ``ctx``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class TextEncoder(nn.Module):
    """Text features from prompt embeddings.

    Args:
        clip_model: an open_clip ``CLIP`` (frozen; its modules are shared, not copied).
        truncate: default for ``forward``: run only up to the longest prompt's EOS. Only used when the model
            has a causal mask; a text tower without one attends to padding, so it always runs full length.
        chunk_size: 0 (default) runs all prompts in one batch; ``k > 0`` runs them ``k`` at a time, and when
            gradients flow (training) each chunk is checkpointed, so backward holds one chunk's activations at
            a time (see the module docstring). Each chunk is truncated to its own longest prompt.
        share_prefix: compute the leading positions that all prompts share once (``forward(shared_prefix=)``
            says how many; see the module docstring). Only with ``truncate`` and a standard open_clip text
            transformer (pre-norm blocks with ``nn.MultiheadAttention`` and a causal mask); otherwise ignored.
    """

    def __init__(self, clip_model: nn.Module, truncate: bool = True, chunk_size: int = 0,
                 share_prefix: bool = True):
        super().__init__()
        if not hasattr(clip_model, "transformer") or not hasattr(clip_model, "token_embedding"):
            raise ValueError(f"{type(clip_model).__name__} has no built-in CLIP text transformer (custom text towers "
                             f"such as Hugging Face ones are not supported); use an open_clip CLIP model.")
        pool = getattr(clip_model, "text_pool_type", "argmax")
        if pool not in ("argmax", "eos"):
            raise ValueError(f"CoOp reads the text feature at the EOS token, but this model pools with {pool!r}.")
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        # (L, L) additive causal mask, or None; a buffer so that moving the encoder moves it too.
        self.register_buffer("attn_mask", getattr(clip_model, "attn_mask", None), persistent=False)
        self.eos_token_id: Optional[int] = getattr(clip_model, "text_eos_id", None) if pool == "eos" else None
        self.dtype = clip_model.transformer.get_cast_dtype()
        self.truncate = truncate
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 0:
            raise ValueError(f"chunk_size must be an integer >= 0 (0: all classes in one pass), got {chunk_size!r}.")
        self.chunk_size = chunk_size
        self.share_prefix = share_prefix
        self._can_share = self.attn_mask is not None and all(_standard_block(b) for b in self.transformer.resblocks)

    def eos_positions(self, tokenized_prompts: torch.Tensor) -> torch.Tensor:
        """``(n,)`` index of each prompt's EOS token (CLIP's EOS has the highest id in its vocabulary)."""
        if self.eos_token_id is not None:
            return (tokenized_prompts == self.eos_token_id).int().argmax(dim=-1)
        return tokenized_prompts.argmax(dim=-1)

    def forward(self, prompts: torch.Tensor, tokenized_prompts: torch.Tensor,
                truncate: Optional[bool] = None, shared_prefix: int = 0) -> torch.Tensor:
        """Text features ``(n, embed_dim)``, not normalised.

        Args:
            prompts: prompt embeddings ``(n, context_length, width)`` (``PromptLearner()`` or
                ``model.token_embedding(ids)``).
            tokenized_prompts: ``(n, context_length)`` token ids, used only to find each EOS.
            truncate: override the default set at construction (``False`` = full-length official pass).
            shared_prefix: how many leading positions are the same *function* for every prompt (e.g.
                ``PromptLearner.shared_prefix_length``: SOS + a unified context). Equal values are not enough:
                a class-specific context initialised from the same words must not share, or every class's
                gradient would flow into the first class's vectors. 0 or 1 runs every prompt in full.
        """
        truncate = self.truncate if truncate is None else truncate
        eos = self.eos_positions(tokenized_prompts)
        n = prompts.shape[0]
        if shared_prefix > 1 and truncate and self.share_prefix and self._can_share:
            if shared_prefix > int(eos.min()):
                raise ValueError(f"shared_prefix={shared_prefix} reaches past a prompt's EOS (position "
                                 f"{int(eos.min())}); it must cover only positions before every class name.")
            return self._encode_shared(prompts, eos, shared_prefix)
        if not self.chunk_size or n <= self.chunk_size:
            return self._encode(prompts, eos, truncate)
        # Checkpointing only pays when autograd would keep activations (a context that requires grad).
        recompute = torch.is_grad_enabled() and prompts.requires_grad
        chunks = []
        for start in range(0, n, self.chunk_size):
            chunk, chunk_eos = prompts[start:start + self.chunk_size], eos[start:start + self.chunk_size]
            if recompute:
                chunks.append(checkpoint(self._encode, chunk, chunk_eos, truncate, use_reentrant=False))
            else:
                chunks.append(self._encode(chunk, chunk_eos, truncate))
        return torch.cat(chunks)

    def _encode(self, prompts: torch.Tensor, eos: torch.Tensor, truncate: bool) -> torch.Tensor:
        """Features ``(n, embed_dim)`` of prompts ``(n, context_length, width)`` whose EOS sit at ``eos`` ``(n,)``."""
        length = prompts.shape[1]
        attn_mask = self.attn_mask
        if truncate and attn_mask is not None:
            length = int(eos.max()) + 1
            attn_mask = attn_mask[:length, :length]
        x = prompts[:, :length].to(self.dtype) + self.positional_embedding[:length].to(self.dtype)
        x = self.transformer(x, attn_mask=attn_mask)  # (n, length, width); open_clip handles batch_first
        return self._project(x[torch.arange(x.shape[0], device=x.device), eos])  # EOS rows (n, width)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """``ln_final`` and ``text_projection`` of EOS hidden states ``(n, width)`` (LayerNorm is per row)."""
        x = self.ln_final(x)
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x @ self.text_projection

    def _encode_shared(self, prompts: torch.Tensor, eos: torch.Tensor, shared: int) -> torch.Tensor:
        """Features of prompts whose first ``shared`` positions are common to all, computed once (see above)."""
        length = int(eos.max()) + 1
        x = prompts[:, :length].to(self.dtype) + self.positional_embedding[:length].to(self.dtype)
        prefix, rest = x[:1, :shared], x[:, shared:]  # (1, P, width), (n, S, width)
        blocks = list(self.transformer.resblocks)
        # The prefix alone is a causal pass of P positions; keep each layer's keys and values (the cache every
        # class's positions attend to). The last layer's prefix output is never read, so it is not computed.
        past_kv = []
        for i, block in enumerate(blocks):
            q, k, v = _qkv(block, prefix)
            past_kv.append((k, v))
            if i + 1 < len(blocks):
                prefix = _block_forward(block, prefix, q, k, v, past=0)
        eos_rest = eos - shared
        if not self.chunk_size or rest.shape[0] <= self.chunk_size:
            return self._project(_run_rest(blocks, past_kv, rest, eos_rest))
        recompute = torch.is_grad_enabled() and rest.requires_grad
        chunks = []
        for start in range(0, rest.shape[0], self.chunk_size):
            # Each chunk runs only up to its own longest prompt, like the unshared chunked pass.
            chunk_eos = eos_rest[start:start + self.chunk_size]
            chunk = rest[start:start + self.chunk_size, :int(chunk_eos.max()) + 1]
            if recompute:
                chunks.append(checkpoint(_run_rest, blocks, past_kv, chunk, chunk_eos, use_reentrant=False))
            else:
                chunks.append(_run_rest(blocks, past_kv, chunk, chunk_eos))
        return self._project(torch.cat(chunks))


def _standard_block(block: nn.Module) -> bool:
    """True for open_clip's pre-norm ``ResidualAttentionBlock`` (the CLIP text block) that ``_qkv`` and
    ``_block_forward`` mirror."""
    attn = getattr(block, "attn", None)
    return (isinstance(attn, nn.MultiheadAttention) and attn._qkv_same_embed_dim and attn.in_proj_weight is not None
            and not hasattr(block, "ln_1_kv") and all(hasattr(block, a) for a in ("ln_1", "ln_2", "mlp", "ls_1", "ls_2")))


def _qkv(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values ``(b, heads, L, head_dim)`` of a block's attention for its input ``x`` ``(b, L, width)``."""
    attn = block.attn
    heads, width = attn.num_heads, x.shape[-1]
    q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    return tuple(t.unflatten(-1, (heads, width // heads)).transpose(1, 2) for t in (q, k, v))


def _block_forward(block: nn.Module, x: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   past: int) -> torch.Tensor:
    """One pre-norm residual block on positions ``x`` ``(n, S, width)``, given the attention's queries ``q``
    (of ``x``) and keys/values ``k``, ``v`` over the ``past`` positions before ``x`` followed by ``x``'s own.
    Causal: each position attends to all ``past`` positions and to ``x`` up to itself. Same computation as
    ``ResidualAttentionBlock.forward``."""
    n, s, width = x.shape
    # Position i of x (absolute past + i) sees keys 0 .. past + i.
    allowed = torch.ones(s, past + s, dtype=torch.bool, device=x.device).tril(diagonal=past)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    out = block.attn.out_proj(out.transpose(1, 2).reshape(n, s, width))
    x = x + block.ls_1(out)
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _run_rest(blocks: list, past_kv: list, rest: torch.Tensor, eos_rest: torch.Tensor) -> torch.Tensor:
    """EOS hidden states ``(n, width)`` of the per-class positions ``rest`` after the shared prefix, whose keys
    and values at each layer are ``past_kv`` (``(1, heads, P, head_dim)`` each, shared by all ``n``)."""
    n = rest.shape[0]
    for block, (k_past, v_past) in zip(blocks, past_kv):
        q, k, v = _qkv(block, rest)
        k = torch.cat([k_past.expand(n, -1, -1, -1), k], dim=2)
        v = torch.cat([v_past.expand(n, -1, -1, -1), v], dim=2)
        rest = _block_forward(block, rest, q, k, v, past=k_past.shape[2])
    return rest[torch.arange(n, device=rest.device), eos_rest]
