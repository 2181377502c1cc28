"""Claims that know their world: the one way a notebook states a finding and checks it.

A sentence in a notebook that claims something is followed by ``claims.check(statement, holds, world=...)``:

* in the **embedded** world it asserts what this world measures (``world="embedded"`` or both);
* in the **real** world with trained weights it asserts the paper's claim, with the tolerance its tables support
  (``world="real"`` or both);
* with an **untrained** model (random weights: the real-world dry run of the test suite) a claim about accuracy
  means nothing, so it is skipped, visibly: ``not checkable: the model is untrained``. The model says so itself
  (``ClipBundle.untrained``); nothing is skipped because it failed.

Where the two worlds disagree (the embedded world was designed until the paper's phenomena showed, not all of
them do), a notebook states both claims, each for its world, next to the paper's number.
Structural checks (shapes, exactness, frozen weights) stay plain ``assert`` statements: they hold for any model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Union

import numpy as np
import pandas as pd

WORLD_KINDS = ("embedded", "real")


@dataclass
class Claims:
    """The claims of one notebook run: ``world`` is ``"embedded"`` or ``"real"``; ``untrained`` comes from the
    model (``Claims.of(world, clip)``). ``record`` keeps every claim with its outcome (``frame()``)."""

    world: str
    untrained: bool = False
    record: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.world not in WORLD_KINDS:
            raise ValueError(f"world must be 'embedded' or 'real', got {self.world!r}.")

    @classmethod
    def of(cls, world, clip) -> "Claims":
        """The claims of a notebook running in ``world`` (a ``World``) on ``clip`` (a ``ClipBundle``)."""
        return cls(world.kind, bool(clip.untrained))

    def check(self, statement: str, holds: Union[bool, np.bool_], world: Union[str, Iterable[str]] = WORLD_KINDS,
              detail: str = "") -> None:
        """Assert ``holds`` when the claim is made for this world (``world``: "embedded", "real" or both) and the
        model is trained; print what was checked and record it (``frame()``)."""
        worlds = (world,) if isinstance(world, str) else tuple(world)
        unknown = set(worlds) - set(WORLD_KINDS)
        if unknown:
            raise ValueError(f"world must name 'embedded' and/or 'real', got {sorted(unknown)}.")
        suffix = f" ({detail})" if detail else ""
        if self.world not in worlds:
            outcome = f"not asserted in the {self.world} world (a claim about the {' and '.join(worlds)} world)"
        elif self.untrained:
            outcome = "not checkable: the model is untrained"
        else:
            if _is_boolean_scalar(holds):
                holds = bool(holds)
            if not isinstance(holds, bool):
                raise TypeError(f"A claim's `holds` must be a boolean, got {type(holds).__name__} for {statement!r}.")
            if not bool(holds):
                self.record.append(dict(claim=statement, world=self.world, outcome="FAILED", detail=detail))
                raise AssertionError(f"Claim failed in the {self.world} world: {statement}{suffix}")
            outcome = "holds"
        self.record.append(dict(claim=statement, world="/".join(worlds), outcome=outcome, detail=detail))
        mark = "✓" if outcome == "holds" else "·"
        print(f"{mark} {statement}{suffix}: {outcome}")

    def frame(self) -> pd.DataFrame:
        """Every claim checked so far, with its outcome."""
        return pd.DataFrame(self.record, columns=["claim", "world", "outcome", "detail"])


def _is_boolean_scalar(value) -> bool:
    """A numpy or torch boolean holding one value (what a comparison of two tensor elements gives)."""
    dtype = getattr(value, "dtype", None)
    return dtype is not None and "bool" in str(dtype) and getattr(value, "size", lambda: 1) is not None and \
        int(np.prod(getattr(value, "shape", ()))) == 1


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` over matched pairs (same task and seed): mean, standard error of the mean, count."""

    mean: float
    se: float
    n: int

    def above(self, margin: float = 0.0, z: float = 2.0) -> bool:
        """Whether the mean difference exceeds ``margin`` by more than ``z`` standard errors."""
        return self.n > 1 and self.mean - z * self.se > margin

    def below(self, margin: float = 0.0, z: float = 2.0) -> bool:
        """Whether the mean difference is under ``margin`` by more than ``z`` standard errors."""
        return self.n > 1 and self.mean + z * self.se < margin

    def within(self, margin: float) -> bool:
        """Whether the mean difference and its 2-SE interval lie inside ``(-margin, margin)``."""
        return abs(self.mean) + 2 * self.se < margin

    def __str__(self) -> str:
        return f"{self.mean:+.1f} ± {self.se:.1f} points (mean ± standard error over {self.n} pairs)"


def paired_difference(a: pd.Series, b: pd.Series) -> PairedDifference:
    """The difference of two measurements taken on the same pairs (index: e.g. ``(task, seed)``).

    Pairing removes what the two share (a hard task, a lucky draw), so the noise left is that of the difference
    itself; a claim ``a > b`` then asks the mean difference to clear twice its standard error, rather than
    comparing two means with the spread of three seeds each.
    """
    joined = pd.concat({"a": a, "b": b}, axis=1, join="inner").dropna()
    if joined.empty:
        raise ValueError("No pairs in common: the two series must share their index (e.g. task and seed).")
    diff = (joined["a"] - joined["b"]).to_numpy(dtype=float)
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    return PairedDifference(float(diff.mean()), se, int(len(diff)))
