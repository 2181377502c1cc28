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
"""
from __future__ import annotations

from typing import Optional

import torch
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
    """

    def __init__(self, clip_model: nn.Module, truncate: bool = True, chunk_size: int = 0):
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

    def eos_positions(self, tokenized_prompts: torch.Tensor) -> torch.Tensor:
        """``(n,)`` index of each prompt's EOS token (CLIP's EOS has the highest id in its vocabulary)."""
        if self.eos_token_id is not None:
            return (tokenized_prompts == self.eos_token_id).int().argmax(dim=-1)
        return tokenized_prompts.argmax(dim=-1)

    def forward(self, prompts: torch.Tensor, tokenized_prompts: torch.Tensor,
                truncate: Optional[bool] = None) -> torch.Tensor:
        """Text features ``(n, embed_dim)``, not normalised.

        Args:
            prompts: prompt embeddings ``(n, context_length, width)`` (``PromptLearner()`` or
                ``model.token_embedding(ids)``).
            tokenized_prompts: ``(n, context_length)`` token ids, used only to find each EOS.
            truncate: override the default set at construction (``False`` = full-length official pass).
        """
        truncate = self.truncate if truncate is None else truncate
        eos = self.eos_positions(tokenized_prompts)
        n = prompts.shape[0]
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
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), eos]  # (n, width)
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x @ self.text_projection
