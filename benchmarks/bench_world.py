"""How fast the embedded world draws: images per second and caption batches per second, on one core.

    python benchmarks/bench_world.py [--n 2000]

Prints the rate of `render` alone, of `render` + `caption`, and of a full tokenised corpus batch, and the ratio
of the corpus rate to what pretraining consumes (batch 256 at the measured step rate is printed by pretrain).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import open_clip
import torch

from coop_tutorial.embedded.captions import caption
from coop_tutorial.embedded.corpus import CaptionStream, sample_scene
from coop_tutorial.embedded.render import render


def rate(fn, n: int, repeats: int) -> float:
    """Median items per second of ``fn(n)`` over ``repeats`` runs."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(n)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="images per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng) for _ in range(args.n)]

    def draw(n):
        for scene in scenes[:n]:
            render(scene, rng)

    def draw_and_caption(n):
        for scene in scenes[:n]:
            render(scene, rng)
            caption(scene, rng)

    stream = CaptionStream(open_clip.SimpleTokenizer(context_length=32), batch_size=256, steps=10**6, seed=0)

    def batches(n):
        for index in range(max(1, n // 256)):
            stream.batch(index)

    rows = [("render", rate(draw, args.n, args.repeats)),
            ("render + caption", rate(draw_and_caption, args.n, args.repeats)),
            ("corpus batch (sample, render, caption, tokenise)", rate(batches, args.n, args.repeats))]
    print(f"{'what':52s} images/s (one core, median of {args.repeats})")
    for name, value in rows:
        print(f"{name:52s} {value:8.0f}")
    print(f"summary: the corpus stream draws {rows[-1][1]:.0f} captioned 32-px images/s on one core "
          f"({rows[-1][1] / 256:.1f} batches of 256 per second)")


if __name__ == "__main__":
    main()
