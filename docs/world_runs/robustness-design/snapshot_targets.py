"""Throwaway: which robustness targets each judged snapshot meets on the design draw of the shifted sets.

    python docs/world_runs/robustness-design/snapshot_targets.py > docs/world_runs/robustness-design/snapshot_targets.md

Reads the `judge --shifts` rows (seed 0's four snapshots, the shipped one among them, and seed 2's seven); no
test image is read.
"""
from pathlib import Path

import pandas as pd

from coop_tutorial.embedded.judge import shift_summary

here = Path(__file__).parent
frames = [pd.read_csv(here / name) for name in ("judge_shifts_seed0.csv", "judge_shifts_seed2.csv")]
short = {"source: CoOp": "source gain >= 3", "source: the 16-shot probe": "probe <= zs + 3",
         "every shifted set": "shifts harder", "CoOp >= zero-shot": "CoOp >= zs on 3/4",
         "CoOp keeps": "keeps half on V2", "the probe loses >= 1.5x": "probe 1.5x",
         "sketch shift: probe loses >= 2x": "sketch: probe 2x", "sketch shift: CoOp loses": "sketch: CoOp <= zs"}
rows = []
for frame in frames:
    for checkpoint, rows_of in frame.groupby("checkpoint", sort=False):
        _, checks = shift_summary(rows_of, "shapes")
        row = {"checkpoint": Path(checkpoint).name.replace("tiny_clip.safetensors", "shipped (s0 step 2000)")}
        for name, ok, _ in checks:
            label = next(v for k, v in short.items() if name.startswith(k))
            row[label] = "PASS" if ok else "fail"
        row["passed"] = f"{sum(ok for _, ok, _ in checks)} of {len(checks)}"
        rows.append(row)
print(pd.DataFrame(rows).to_markdown(index=False))
