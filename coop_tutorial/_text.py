"""Text helpers shared by the prompt learner and the zero-shot baseline (private).

open_clip's tokenizer silently truncates a text that is too long (and overwrites its last token with EOS),
which would quietly move the EOS token a classifier pools from. Everything that builds prompts in this
package therefore goes through ``tokenize_checked``, which refuses instead of truncating.
"""
from __future__ import annotations

import html
import unicodedata
from typing import Callable, Sequence

import torch


def clean_classname(name: str) -> str:
    """CoOp's class-name rule: underscores become spaces (``"golden_retriever"`` -> ``"golden retriever"``)."""
    return name.replace("_", " ")


def classname_key(name: str) -> str:
    """What makes two class names the same prompt: ``_`` versus space, case and repeated spaces do not count,
    nor do the differences CLIP's tokenizer erases before reading (HTML entities such as ``&amp;``, unicode
    composed or decomposed, as ``"é"`` and ``"e" + combining accent``)."""
    text = html.unescape(html.unescape(clean_classname(name)))
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def validate_classnames(classnames: Sequence[str]) -> list[str]:
    """Return ``classnames`` as a list, or raise a ValueError saying what is wrong with it.

    Two names that differ only by ``_`` versus space give the same prompt, so they count as duplicates.
    """
    if isinstance(classnames, str) or not isinstance(classnames, Sequence):
        raise ValueError(f"classnames must be a list of strings, got {type(classnames).__name__}; "
                         f"pass e.g. dataset.classnames.")
    names = list(classnames)
    if not names:
        raise ValueError("classnames is empty: pass at least one class name (e.g. dataset.classnames).")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not clean_classname(name).strip():
            raise ValueError(f"classnames[{i}] = {name!r} is not a non-empty string; every class needs a name "
                             f"the text encoder can read.")
    duplicates = duplicate_classnames(names)
    if duplicates:
        first, i = duplicates[0]
        raise ValueError(f"Duplicate class name: classnames[{first}] = {names[first]!r} and "
                         f"classnames[{i}] = {names[i]!r} give the same prompt. Make class names unique "
                         f"(e.g. add a qualifier such as 'crane (bird)' / 'crane (machine)').")
    return names


def duplicate_classnames(names: Sequence[str]) -> list[tuple[int, int]]:
    """(index of the first, index of a later one) for every name that gives the same prompt as an earlier one."""
    first: dict[str, int] = {}
    pairs = []
    for i, name in enumerate(names):
        key = classname_key(name)
        if key in first:
            pairs.append((first[key], i))
        first.setdefault(key, i)
    return pairs


def token_ids(tokenizer: Callable, text: str) -> list[int]:
    """BPE token ids of ``text`` without SOS/EOS and without truncation."""
    if hasattr(tokenizer, "encode"):
        return list(tokenizer.encode(text))
    # Tokenizers without ``encode`` (rare for CLIPs): tokenize with a generous length and strip SOS/EOS.
    row = tokenizer([text], context_length=1024)[0]
    eos = int(row.argmax())
    return [int(t) for t in row[1:eos]]


def tokenize_checked(tokenizer: Callable, texts: Sequence[str], context_length: int,
                     what: str = "prompt", advice: str = "") -> torch.Tensor:
    """Tokenize ``texts`` to ``(n, context_length)`` ids, refusing any text that would be truncated.

    Raises:
        ValueError: naming the longest text, its length in tokens (SOS and EOS included) and what to do.
    """
    lengths = [len(token_ids(tokenizer, t)) + 2 for t in texts]
    if lengths and max(lengths) > context_length:
        worst = max(range(len(texts)), key=lengths.__getitem__)
        too_long = sum(n > context_length for n in lengths)
        raise ValueError(
            f"{too_long} {what}(s) do not fit the text encoder's context length {context_length}; the longest, "
            f"{texts[worst]!r}, needs {lengths[worst]} tokens (SOS and EOS included). {advice}".rstrip())
    return tokenizer(list(texts), context_length=context_length)
