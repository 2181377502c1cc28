"""What the embedded world leaves for CoOp to learn, measured on a checkpoint.

    python -m coop_tutorial.embedded.report                  # the shipped tiny CLIP, all tables
    python -m coop_tutorial.embedded.report --quick          # prompts and linear probe only (about a minute)
    python -m coop_tutorial.embedded.report --checkpoint runs/p1/tiny_clip.safetensors --markdown

Tables: zero-shot accuracy of every hand-written prompt per task; the 16-shot linear probe against the best
prompt; CoOp at 1, 2 and 16 shots against the prompts; and the shapes task under its four shifts. Each
target the project set for the world is checked and printed as PASS or FAIL. Nothing here is tuned on
the test sets: every number is computed from the checkpoint.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from ..clip_loader import load_clip
from ..evaluation import sweep_summary
from ..prompt_study import prompt_summary, prompt_table
from ..shift_study import paper_verdicts, shift_checks, sketch_checks
from ..sweeps import shift_table, shot_sweep
from ..task_features import encode_task, encode_test_split
from ..validation import MAX_SEED
from ..worlds import World
from .suite import TASKS, shifted_sets

MAIN_TASKS = [name for name, spec in TASKS.items() if spec.source is None]
SHIFTS = shifted_sets("shapes")


@dataclass
class WorldReport:
    prompts: pd.DataFrame  # task, template, accuracy
    summary: pd.DataFrame  # per task: prompts, probe, CoOp
    shift: Optional[pd.DataFrame]
    checks: list[tuple[str, bool, str]]
    sweep: Optional[pd.DataFrame] = None


def build_report(checkpoint: Optional[str] = None, seeds=(1, 2, 3), coop: bool = True, shift: bool = True,
                 progress: bool = True) -> WorldReport:
    clip = load_clip("tiny", pretrained=checkpoint)
    tasks = [encode_task(clip, name) for name in MAIN_TASKS]
    prompts = prompt_table(clip, tasks)
    summary = prompt_summary(prompts)
    shots = (1, 2, 16) if coop else (16,)
    methods = ("linear_probe", "coop") if coop else ("linear_probe",)
    recipe = World("embedded", device="cpu").recipe()  # the embedded preset, as the notebooks train
    sweep = shot_sweep(clip, tasks, shots=shots, seeds=seeds, methods=methods, config=recipe, progress=progress)
    means = sweep_summary(sweep)["mean"]
    summary["probe_16"] = [means[(t, "linear_probe", 16)] for t in summary.index]
    summary["probe_minus_best"] = summary["probe_16"] - summary["best_prompt"]
    if coop:
        for k in shots:
            summary[f"coop_{k}"] = [means[(t, "coop", k)] for t in summary.index]
        summary["coop16_minus_best"] = summary["coop_16"] - summary["best_prompt"]
    shift_frame = None
    if shift:
        source = next(t for t in tasks if t.name == "shapes")
        targets = {name: encode_test_split(clip, name).test for name in SHIFTS}
        shift_frame = shift_table(clip, source, targets, shots=16, seeds=seeds, config=recipe)
    return WorldReport(prompts, summary, shift_frame, world_checks(summary, shift_frame, coop), sweep)


def world_checks(summary: pd.DataFrame, shift: Optional[pd.DataFrame], coop: bool) -> list[tuple[str, bool, str]]:
    """The targets of the embedded world, each with the numbers behind it."""
    checks = []
    best = summary["best_prompt"]
    checks.append(("best hand-written prompt in [35, 85] % on every task", bool(best.between(35, 85).all()),
                   ", ".join(f"{t} {v:.1f}" for t, v in best.items())))
    spread = summary["spread"]
    checks.append((">= 2 tasks with a best-worst prompt spread >= 8 points", int((spread >= 8).sum()) >= 2,
                   ", ".join(f"{t} {v:.1f}" for t, v in spread.items())))
    gap = summary["probe_minus_best"]
    checks.append((">= 2 tasks where the 16-shot probe beats the best prompt by >= 10", int((gap >= 10).sum()) >= 2,
                   ", ".join(f"{t} {v:+.1f}" for t, v in gap.items())))
    if coop:
        mean_gain = summary["coop16_minus_best"].mean()
        checks.append(("CoOp 16 shots beats the best prompt by >= 10 on average", mean_gain >= 10,
                       f"mean {mean_gain:+.1f}: " + ", ".join(f"{t} {v:+.1f}" for t, v in
                                                            summary["coop16_minus_best"].items())))
        low = summary[["coop_1", "coop_2"]].mean(axis=1).mean()
        checks.append(("CoOp at 1-2 shots >= the average hand-written prompt (mean over tasks)",
                       low >= summary["mean_prompt"].mean(),
                       f"CoOp 1-2 shots {low:.1f} vs mean prompt {summary['mean_prompt'].mean():.1f}"))
    if shift is not None:
        checks += sketch_checks(shift)
        if coop and "coop" in shift.index and SHIFT_SOURCE in summary.index:
            checks += robustness_checks(summary, shift)
    return checks


SHIFT_SOURCE = "shapes"


def robustness_checks(summary: pd.DataFrame, shift: pd.DataFrame) -> list[tuple[str, bool, str]]:
    """The paper's robustness claim by its meaning: ``shift_study.shift_checks`` on the source."""
    return shift_checks(shift, best_prompt=float(summary.loc[SHIFT_SOURCE, "best_prompt"]))


def format_report(report: WorldReport, markdown: bool = False) -> str:
    def table(frame: pd.DataFrame) -> str:
        return frame.to_markdown(floatfmt=".1f") if markdown else frame.to_string(float_format=lambda v: f"{v:.1f}")

    wide = report.prompts.pivot(index="template", columns="task", values="accuracy")
    parts = ["Zero-shot accuracy (%) of each hand-written prompt (rows differ per task: blank = not a prompt of that task)",
             table(wide.reindex(columns=list(report.summary.index))),
             "\nPer task: prompts, 16-shot linear probe and CoOp (test accuracy %, mean over seeds)",
             table(report.summary.drop(columns=["best_template"]))]
    if report.shift is not None:
        parts += ["\nDistribution shift: learned on shapes (16 shots), tested on its shifted test sets (%)",
                  table(report.shift)]
    parts.append("\nTargets (in brackets: the same check on the paper's own tables, where it applies)")
    paper = paper_verdicts()

    def verdict(name: str) -> str:
        if name not in paper:
            return ""
        return "  [" + ", ".join(f"{label}: {'PASS' if ok else 'FAIL'}" for label, ok in paper[name].items()) + "]"

    parts += [f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}{verdict(name)}" for name, ok, detail in report.checks]
    return "\n".join(parts)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="an embedded checkpoint (default: the shipped one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--quick", action="store_true", help="prompts and linear probe only, no CoOp, no shift")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)
    bad = [s for s in args.seeds if not 0 <= s <= MAX_SEED]
    if bad:
        parser.error(f"--seeds must be integers in [0, {MAX_SEED}], got {bad}.")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds lists a seed twice ({args.seeds}); each seed is one run.")
    start = time.time()
    report = build_report(args.checkpoint, tuple(args.seeds), coop=not args.quick, shift=not args.quick)
    print(format_report(report, args.markdown))
    print(f"\n({time.time() - start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"summary": report.summary.reset_index().to_dict(orient="records"),
                                         "shift": None if report.shift is None else report.shift.to_dict(),
                                         "checks": [(n, bool(ok), d) for n, ok, d in report.checks]}, indent=1))


if __name__ == "__main__":
    main()
