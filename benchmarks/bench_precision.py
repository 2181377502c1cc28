"""What ``CoOpConfig.precision`` costs and changes on this CPU.

Part A, step time: one CoOp training step of the cached loop (batch 32 of image features, the text pass over every
class, backward, optimiser step) in fp32, bf16 and amp (autocast to bfloat16 on CPU), for ViT-B-16 with random
weights (no download; the step cost does not depend on weight values) at 100 and 1000 classes, and for the embedded
tiny CLIP at 10 classes. Each precision runs ``train_coop`` on random features with one step per epoch; the first
step is a warm-up and the median of the others is reported (1000 classes: one step only, warm-up included; say so).
fp16 is not measured: it does not run on CPU (the error is the point).

Part B, accuracy: CoOp (``CoOpConfig.embedded``, 16 shots, seeds 1-3) on every embedded task in each precision,
test accuracy, and the change from fp32.

    python benchmarks/bench_precision.py                  # both parts (tens of minutes on 1 thread)
    python benchmarks/bench_precision.py --part speed     # part A only
    python benchmarks/bench_precision.py --smoke          # seconds: tiny model, 2 steps, one task and seed
"""
from __future__ import annotations

import argparse
import statistics
import time

import _common as C  # noqa: E402  (puts the repository on sys.path)
import pandas as pd
import torch
import torch.nn.functional as F

import coop_tutorial as ct
from coop_tutorial.features import FeatureSet
from coop_tutorial.evaluation import score
from coop_tutorial.sweeps import final_val_only, fit_coop
from coop_tutorial.task_features import encode_task

PRECISIONS = ("fp32", "bf16", "amp")


class StepClock:
    """Stamps the end of every step (``log_every=1``)."""

    def __init__(self) -> None:
        self.start, self.stamps = 0.0, []

    def on_train_start(self, learner) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, record, learner) -> None:
        self.stamps.append(time.perf_counter())

    def steps(self) -> list[float]:
        marks = [self.start] + self.stamps
        return [b - a for a, b in zip(marks, marks[1:])]


def step_seconds(clip: ct.ClipBundle, n_classes: int, precision: str, steps: int) -> tuple[float, int]:
    """(median step seconds after the warm-up step, steps timed) of the cached loop on random features."""
    names = C.class_names(n_classes)
    generator = torch.Generator().manual_seed(0)
    features = F.normalize(torch.randn(1, 32, clip.embed_dim, generator=generator), dim=-1)
    labels = torch.arange(32) % n_classes
    data = FeatureSet(features, labels, names)
    clock = StepClock()
    config = ct.CoOpConfig(epochs=steps, warmup_epochs=0, precision=precision, log_every=1, progress=False)
    ct.train_coop(clip, data, config=config, callbacks=[clock], classnames=names)
    times = clock.steps()
    timed = times[1:] if len(times) > 1 else times
    return statistics.median(timed), len(timed)


def speed(models: list[tuple[str, str, int, int]], repeats: int) -> list[dict]:
    """Per model, ``repeats`` rounds over the precisions (interleaved, so a change in the machine's load hits all
    of them alike); each round's median step, then the median over rounds."""
    rows = []
    for model, pretrained, n_classes, steps in models:
        clip = ct.load_clip(model, pretrained=pretrained)
        rounds = repeats if steps > 1 else 1
        seconds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
        timed = 0
        for _ in range(rounds):
            for precision in PRECISIONS:
                value, timed = step_seconds(clip, n_classes, precision, steps)
                seconds[precision].append(value)
                print(f"  {model} {n_classes} classes {precision}: {value:.3f} s/step", flush=True)
        base = statistics.median(seconds["fp32"])
        for precision in PRECISIONS:
            value = statistics.median(seconds[precision])
            rows.append(dict(model=model, classes=n_classes, precision=precision, step=C.fmt_seconds(value),
                             speedup_vs_fp32=f"{base / value:.2f}x",
                             steps_timed=f"{rounds} x {timed}" + (" (incl. warm-up)" if steps == 1 else "")))
        del clip
    return rows


def accuracy(tasks: list[str], seeds: list[int], shots: int, epochs) -> pd.DataFrame:
    clip = ct.load_clip("tiny")
    rows = []
    for name in tasks:
        task = encode_task(clip, name)
        for seed in seeds:
            for precision in PRECISIONS:
                config = ct.CoOpConfig.embedded(shots, precision=precision)
                config = final_val_only(config if epochs is None else config.replace(epochs=epochs))
                result = fit_coop(clip, task, shots, seed, config)
                rows.append(dict(task=name, seed=seed, precision=precision,
                                 accuracy=100 * score(result.classifier, task.test)))
            print(f"  {name} seed {seed}: " + ", ".join(f"{r['precision']} {r['accuracy']:.1f}" for r in rows[-3:]),
                  flush=True)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    from coop_tutorial.embedded.report import MAIN_TASKS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_arguments(parser, "seconds: tiny model, 2 steps, one task and seed, 2 epochs")
    parser.add_argument("--part", choices=("speed", "accuracy", "all"), default="all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds over the precisions")
    parser.add_argument("--models", nargs="+", default=["vit100", "vit1000", "tiny"],
                        choices=["vit100", "vit1000", "tiny"], help="part A's models")
    args = parser.parse_args(argv)
    threads = C.set_threads(args.threads)
    print(C.machine_header(threads, "CoOp precision: bf16 and amp against fp32 on CPU"))
    if args.smoke:
        models = [("tiny", "random", 10, 2)]
        tasks, seeds, epochs = MAIN_TASKS[:1], args.seeds[:1], 2
    else:
        choices = {"vit100": ("ViT-B-16", "random", 100, 4), "vit1000": ("ViT-B-16", "random", 1000, 1),
                   "tiny": ("tiny", None, 10, 11)}
        models = [choices[m] for m in args.models]
        tasks, seeds, epochs = MAIN_TASKS, args.seeds, None
    start = time.perf_counter()
    if args.part in ("speed", "all"):
        rows = speed(models, args.repeats)
        print("\n## Step time of the cached loop (batch 32, text pass over every class, backward, SGD step)\n")
        print(C.markdown_table(rows))
    if args.part in ("accuracy", "all"):
        frame = accuracy(tasks, seeds, 16, epochs)
        table = frame.pivot_table(index="task", columns="precision", values="accuracy", aggfunc="mean", sort=False)
        table = table[list(PRECISIONS)]
        for precision in PRECISIONS[1:]:
            table[f"{precision}_minus_fp32"] = table[precision] - table["fp32"]
        table.loc["mean"] = table.mean()
        print(f"\n## Test accuracy (%), embedded tasks, 16 shots, mean over seeds {seeds}\n")
        print(table.to_markdown(floatfmt=".1f"))
        paired = frame.pivot_table(index=["task", "seed"], columns="precision", values="accuracy")
        parts = []
        for precision in PRECISIONS[1:]:
            diff = paired[precision] - paired["fp32"]
            parts.append(f"{precision} - fp32 over {len(diff)} runs: mean {diff.mean():+.2f}, largest |difference| "
                         f"{diff.abs().max():.1f} points")
        print("\nSUMMARY: " + "; ".join(parts))
    print(f"\n({C.fmt_seconds(time.perf_counter() - start)})")


if __name__ == "__main__":
    main()
