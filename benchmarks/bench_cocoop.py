"""CoCoOp time per epoch and peak memory, ours vs the official structure, at 10 and 100 classes.

* official-style: ``CoCoOpConfig(cached=False)``: every step augments and encodes its images with the frozen image
  encoder, then, for each image, runs the text tower over all ``n_cls`` full-length prompts (the loop of the
  official ``trainers/cocoop.py``: its memory grows with classes x batch, official issue #21);
* ours: ``cached=True`` (the default): cached image features, the text pass truncated to the longest prompt, and
  each image's ``[SOS][ctx + pi(x)]`` run once and shared by all its classes (``cocoop.py``'s module docstring).

Both train with the paper's recipe (``CoCoOpConfig.paper()``: batch 1, SGD) for a few steps on random 16-shot data
of ``n`` ImageNet class names. Per configuration, in a fresh process: the median step time after one warm-up step,
extrapolated to an epoch (``16 * n / batch`` steps), and the peak memory of the steps (CUDA: the allocator's peak;
CPU: the highest resident memory seen by a thread polling every 2 ms during training, minus the resident memory
before it; training includes the image augmentation and encoding of the official-style loop). Our one-time
encoding of 8 views per image is reported apart. Models: the embedded tiny CLIP and a random-weight ViT-B-16
(no download; timing and memory do not depend on the weights).

    python benchmarks/bench_cocoop.py               # tiny and ViT-B-16, 10 and 100 classes (about 15 min on 1 core)
    python benchmarks/bench_cocoop.py --smoke       # seconds: tiny random model, 4 classes, 1 step
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import _common as C  # noqa: E402  (puts the repository on sys.path)
import torch
import torch.nn.functional as F

import coop_tutorial as ct
from coop_tutorial.cocoop import CoCoOpConfig, train_cocoop

SCRIPT = Path(__file__).resolve()
SHOTS = 16


class RssSampler:
    """Polls this process's resident memory every few milliseconds in a thread, so the peak of one stretch of
    work can be read (``ru_maxrss`` also holds model loading's peak, which can exceed a small step's)."""

    def __init__(self, every: float = 0.002):
        import threading

        self.every, self.peak, self._stop = every, C.current_rss_bytes(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, C.current_rss_bytes())
            self._stop.wait(self.every)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, C.current_rss_bytes())


class StepClock:
    """Callback stamping every step's end (``log_every=1``); memory peaks are read around the whole run."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_step_end(self, record: dict, learner: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())

    def step_seconds(self) -> list[float]:  # after the first step (a warm-up)
        return [b - a for a, b in zip(self.stamps, self.stamps[1:])]


def worker(payload: dict) -> dict:
    """One (model, classes, loop) configuration in this fresh process: step times and peak memory."""
    C.set_threads(payload["threads"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    clip = ct.load_clip(payload["model"], pretrained=payload["pretrained"], device=device)
    names = C.class_names(payload["classes"])
    steps, batch = payload["steps"], payload["batch_size"]
    images = C.RandomImages(steps * batch, clip.image_size, names)
    config = CoCoOpConfig.paper(epochs=1, warmup_epochs=0, batch_size=batch, log_every=1, progress=False)
    if payload["loop"] == "ours":  # the step cost does not depend on feature values: random features stand in
        features = F.normalize(torch.randn(1, len(images), clip.embed_dim, generator=torch.Generator().manual_seed(0)),
                               dim=-1)
        train_set: Any = ct.FeatureSet(features, torch.tensor(images.targets), names)
    else:
        train_set, config = images, config.replace(cached=False)
    clock = StepClock()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    base_rss = C.current_rss_bytes()
    with RssSampler() as sampler:
        result = train_cocoop(clip, train_set, config=config, callbacks=[clock], classnames=names)
    peak = torch.cuda.max_memory_allocated() - before if device == "cuda" else sampler.peak - base_rss
    out = {"steps_s": clock.step_seconds(), "peak": peak, "device": device, "fast": result.classifier.fast,
           "context_length": clip.context_length,
           "longest": int(result.learner.tokenized_prompts.argmax(dim=-1).max()) + 1, "n_ctx": result.learner.n_ctx}
    if payload.get("encode"):
        views = C.RandomImages(payload["encode"], clip.image_size, ["thing"])
        seconds, _ = C.timed(lambda: ct.encode_dataset(clip, views, augment=True, n_views=1, progress=False,
                                                       batch_size=payload["encode"]))
        out["per_image_s"] = seconds / payload["encode"]
    return out


def positions(r: dict, classes: int, loop: str) -> str:
    """Text positions per image: official ``n x L``; ours ``prefix + n x (rest up to the longest EOS)``."""
    prefix = 1 + r["n_ctx"]
    if loop == "ours":
        return f"{prefix} + {classes} x {r['longest'] - prefix} of {r['context_length']}"
    return f"{classes} x {r['context_length']} of {r['context_length']}"


def benchmark(models: Sequence[tuple[str, str]], classes: Sequence[int], steps: int, batch_size: int,
              threads: int) -> tuple[list[dict], list[dict]]:
    rows, ratios = [], []
    for model, pretrained in models:
        per_image = None
        for n in classes:
            measured = {}
            for loop in ("ours", "official-style"):  # smaller peak first
                payload = dict(model=model, pretrained=pretrained, classes=n, loop=loop, steps=steps + 1,
                               batch_size=batch_size, threads=threads,
                               encode=0 if per_image is not None or loop != "ours" else 16)
                r = C.run_worker(SCRIPT, payload)
                per_image = r.get("per_image_s", per_image)
                step = C.median(r["steps_s"])
                steps_per_epoch = max(SHOTS * n // batch_size, 1)
                measured[loop] = (steps_per_epoch * step, r["peak"])
                rows.append({"model": model, "classes": n, "loop": loop, "text positions per image":
                             positions(r, n, loop), "step (median)": C.fmt_seconds(step),
                             "steps/epoch": steps_per_epoch, "epoch (extrapolated)": C.fmt_seconds(measured[loop][0]),
                             "one-time encode, 8 views (est.)":
                                 C.fmt_seconds(8 * SHOTS * n * per_image) if loop == "ours" else "-",
                             f"peak memory ({r['device']})": C.fmt_bytes(r["peak"])})
            ratios.append({"model": model, "classes": n,
                           "epoch speed-up": f"{measured['official-style'][0] / measured['ours'][0]:.1f}x",
                           "memory ratio (official / ours)":
                               f"{measured['official-style'][1] / max(measured['ours'][1], 1):.1f}x",
                           "_speed": measured["official-style"][0] / measured["ours"][0]})
    return rows, ratios


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "ViT-B-16"],
                        help="embedded 'tiny' (shipped weights) and/or open_clip names (random weights)")
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per loop, after one warm-up step")
    parser.add_argument("--batch-size", type=int, default=1, help="images per step (the paper's: 1)")
    C.add_common_arguments(parser, "tiny random model, 4 classes, 1 step: seconds", worker=True)
    args = parser.parse_args(argv)
    if C.serve_worker(args, worker):
        return
    models = [("tiny", "random" if args.smoke else None) if m == "tiny" else (m, "random") for m in args.models]
    if args.smoke:
        models, args.classes, args.steps = [("tiny", "random")], [4], 1
    threads = C.set_threads(args.threads)
    print(C.machine_header(threads, "bench_cocoop: CoCoOp epoch time and peak memory, ours vs official-style"))
    print(f"\nrecipe: CoCoOpConfig.paper() (SGD, batch {args.batch_size}, n_ctx 4 from 'a photo of a'), {SHOTS} shots "
          f"per class, ImageNet class names, random images; {args.steps} timed steps per loop after 1 warm-up step, "
          f"each configuration in a fresh process\n")
    rows, ratios = benchmark(models, args.classes, args.steps, args.batch_size, threads)
    print(C.markdown_table(rows))
    print()
    print(C.markdown_table([{k: v for k, v in r.items() if not k.startswith("_")} for r in ratios]))
    summary = ", ".join(f"{r['model']} {r['classes']} classes {r['epoch speed-up']} faster, "
                        f"{r['memory ratio (official / ours)']} less memory" for r in ratios)
    print(f"\nSUMMARY: CoCoOp per-epoch, ours vs official-style: {summary}.")


if __name__ == "__main__":
    main()
