"""CoOp epoch time and accuracy, our loop vs the official loop structure.

* ours: ``CoOpConfig`` defaults, ``cached=True``: image features encoded once (``n_views`` augmented views
  per image), text pass truncated to the longest prompt, with the prefix every class shares (SOS + the
  unified context) computed once per step instead of once per class;
* official-style: ``cached=False``: every step augments (random resized crop + flip) and encodes its batch
  with the frozen image encoder, and the text pass runs all context positions, as the official
  ``trainers/coop.py``.

Part A trains both, same model, task, shots, epochs and seed, on the embedded tiny CLIP
(``CoOpConfig.embedded(shots)``) and reports per-epoch time (median over epochs, then over seeds), the one-time
encoding, and test accuracy. Each seed is one repeat, both loops run back to back in that repeat, and the
speed-up is the median over repeats of the within-repeat ratio.

Part B times a few steps of both loops on a large CLIP with random weights (default ViT-B-16: no download) for
10, 100 and 1000 classes (ImageNet class names, random 224 px images, 16 shots per class) and extrapolates
one epoch (``steps per epoch * median step``) and a paper-length run (200 epochs at 16 shots, plus our one-time
encoding of ``n_views`` views, estimated from a measured per-image encoding time). Each class count runs in a
fresh process. A loop whose plain text pass would not fit in the RAM available (its memory extrapolated from
the smaller class counts) runs with the memory-saving option instead (``text_chunk_size``, chunks of ``--chunk``
classes) for one step without warm-up, and its row says so: step times are always measured, never extrapolated.

    python benchmarks/bench_training.py            # the full benchmark (tens of minutes on 2 cores)
    python benchmarks/bench_training.py --smoke    # seconds: 1 shot, 1 seed, 2 epochs, tiny random "large" model
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import _common as C  # noqa: E402  (puts the repository on sys.path)
import numpy as np
import torch
import torch.nn.functional as F

import coop_tutorial as ct
from coop_tutorial.evaluation import score
from coop_tutorial.training import PAPER_EPOCHS

SCRIPT = Path(__file__).resolve()


# ----------------------------------------------------------------------------------------------- helpers
class StepClock:
    """Training callback that stamps the end of every step (needs ``CoOpConfig.log_every=1``)."""

    def __init__(self) -> None:
        self.start: Optional[float] = None
        self.stamps: list[float] = []

    def on_train_start(self, learner: Any) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, record: dict, learner: Any) -> None:
        self.stamps.append(time.perf_counter())

    def step_seconds(self, include_first: bool = False) -> list[float]:
        """Duration of each step after the first (the first one also builds the loader: a warm-up), or of
        every step, the first counted from the start of training (for steps too long to afford a warm-up)."""
        stamps = ([self.start] if include_first and self.start is not None else []) + self.stamps
        return [b - a for a, b in zip(stamps, stamps[1:])]


def _text_positions(learner: ct.PromptLearner, config: ct.CoOpConfig) -> str:
    """Positions the text transformer runs per step, e.g. ``"10 x 32 of 32"`` (official: every class, the whole
    context) or ``"17 + 10 x 5 of 32"`` (ours: the shared prefix once, then each class up to the longest EOS)."""
    n, length = learner.n_cls, learner.context_length
    if not (config.cached and config.truncate_text):
        return f"{n} x {length} of {length}"
    longest = int(learner.tokenized_prompts.argmax(dim=-1).max()) + 1
    prefix = learner.shared_prefix_length if config.share_prefix else 0
    if prefix > 1:
        return f"{prefix} + {n} x {longest - prefix} of {length}"
    return f"{n} x {longest} of {length}"


# ------------------------------------------------------------------------------- part A: embedded model
def embedded_benchmark(task: str, shots_list: Sequence[int], repeats: int, epochs: Optional[int],
                       pretrained: Optional[str]) -> tuple[list[dict], list[dict]]:
    """(per-method rows, per-shots ratio rows) of the embedded-model comparison."""
    clip = ct.load_clip("tiny", pretrained=pretrained)
    train, test = ct.load_task(task, "train"), ct.load_task(task, "test")
    test_features = ct.encode_dataset(clip, test, progress=False)
    method_rows, ratio_rows = [], []
    for shots in shots_list:
        runs: dict[str, list[dict]] = {"ours": [], "official-style": []}
        for seed in range(1, repeats + 1):
            subset = ct.few_shot_split(train, shots, seed=seed)
            config = ct.CoOpConfig.embedded(shots, seed=seed, progress=False,
                                            **({} if epochs is None else {"epochs": epochs}))
            configs = [("ours", config), ("official-style", config.replace(cached=False))]
            if seed % 2 == 0:  # alternate which loop runs first, so neither always meets a cold cache
                configs.reverse()
            for method, cfg in configs:
                wall, result = C.timed(lambda: ct.train_coop(clip, subset, config=cfg))
                runs[method].append(dict(
                    epoch_s=C.median(h["seconds"] for h in result.history), encode_s=result.encode_seconds,
                    train_s=result.encode_seconds + sum(h["seconds"] for h in result.history), wall_s=wall,
                    accuracy=100 * score(result.classifier, test_features),
                    positions=_text_positions(result.learner, cfg),
                    epochs=cfg.epochs))
        for method, rs in runs.items():
            accs = [r["accuracy"] for r in rs]
            method_rows.append({
                "shots": shots, "epochs": rs[0]["epochs"], "loop": method,
                "text positions": rs[0]["positions"],
                "epoch (median)": C.fmt_seconds(C.median(r["epoch_s"] for r in rs)),
                "one-time encode": C.fmt_seconds(C.median(r["encode_s"] for r in rs)),
                "encode + all epochs": C.fmt_seconds(C.median(r["train_s"] for r in rs)),
                "test acc % (mean ± sd)": f"{np.mean(accs):.1f} ± {np.std(accs):.1f}",
                "_epoch_s": C.median(r["epoch_s"] for r in rs), "_acc": float(np.mean(accs))})
        ours, official = runs["ours"], runs["official-style"]
        epoch_ratios = [o["epoch_s"] / u["epoch_s"] for u, o in zip(ours, official)]
        total_ratios = [o["train_s"] / u["train_s"] for u, o in zip(ours, official)]
        diffs = [u["accuracy"] - o["accuracy"] for u, o in zip(ours, official)]  # paired by seed
        diff = float(np.mean(diffs))
        se = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")
        ratio_rows.append({
            "shots": shots, "repeats (seeds)": repeats,
            "epoch speed-up (median [min, max])": f"{C.median(epoch_ratios):.1f}x "
                                                   f"[{min(epoch_ratios):.1f}, {max(epoch_ratios):.1f}]",
            "encode + training speed-up": f"{C.median(total_ratios):.1f}x",
            "acc ours - official (points, mean ± se over seeds)": f"{diff:+.1f} ± {se:.1f}",
            "_epoch_ratio": C.median(epoch_ratios), "_acc_diff": diff})
    return method_rows, ratio_rows


# ---------------------------------------------------------------------------------- part B: large model
def worker(payload: dict) -> dict:
    """One class count of part B in this (fresh) process: step times and peak memory of each run asked
    (``runs``: ``{"method", "chunk", "steps"}``, smaller memory first so each peak can be read), and (when
    ``encode_images`` is set) the per-image encoding time, measured after the steps."""
    C.set_threads(payload["threads"])
    clip = ct.load_clip(payload["model"], pretrained=payload["pretrained"])
    names = C.class_names(payload["classes"])
    config = ct.CoOpConfig.paper(16, epochs=1, warmup_epochs=0, batch_size=payload["batch_size"], log_every=1,
                                 progress=False)
    out: dict[str, Any] = {"runs": []}
    for run in payload["runs"]:
        n_images = run["steps"] * payload["batch_size"]
        images = C.RandomImages(n_images, clip.image_size, names)
        if run["method"] == "ours":  # the step cost does not depend on feature values: random features stand in
            features = F.normalize(torch.randn(1, n_images, clip.embed_dim, generator=torch.Generator().manual_seed(0)),
                                   dim=-1)
            train_set: Any = ct.FeatureSet(features, torch.tensor(images.targets), names)
            cfg = config.replace(text_chunk_size=run["chunk"])
        else:
            train_set, cfg = images, config.replace(cached=False, text_chunk_size=run["chunk"])
        base_rss, base_peak = C.current_rss_bytes(), C.peak_rss_bytes()
        clock = StepClock()
        result = ct.train_coop(clip, train_set, config=cfg, callbacks=[clock], classnames=names)
        peak = C.peak_rss_bytes()
        out["runs"].append({**run, "steps_s": clock.step_seconds(include_first=run["steps"] == 1),
                            "peak_delta": peak - base_rss if peak > base_peak else None,
                            "positions": _text_positions(result.learner, cfg)})
    out["context_length"] = clip.context_length
    if payload.get("encode_images"):
        out["per_image_s"] = _per_image_encode_seconds(clip, payload["encode_images"])
    return out


def _per_image_encode_seconds(clip: Any, n: int) -> float:
    """Seconds to augment and encode one image, from one batch of ``n`` (after a 2-image warm-up)."""
    images = C.RandomImages(n + 2, clip.image_size, ["thing"])
    for index in (range(2), range(2, n + 2)):
        part = torch.utils.data.Subset(images, index)
        part.classnames = images.classnames
        seconds, _ = C.timed(lambda: ct.encode_dataset(clip, part, augment=True, n_views=1, batch_size=n,
                                                       progress=False))
    return seconds / n


def large_benchmark(model: str, pretrained: str, classes: Sequence[int], steps: int, shots: int, threads: int,
                    batch_size: int, n_views: int, chunk: int) -> tuple[list[dict], list[dict], dict]:
    """(per-loop rows, ratio rows, facts) of the large-model timing, one fresh process per class count.

    A loop whose plain text pass would not fit in the RAM available (extrapolated from the smaller class
    counts) runs with the memory-saving option (``text_chunk_size=chunk``) instead, for one step without
    warm-up (such steps take minutes on a CPU), and is labelled so: every step time is measured.
    """
    common = dict(model=model, pretrained=pretrained, threads=threads)
    per_image: Optional[float] = None
    paper_epochs = PAPER_EPOCHS[max(k for k in PAPER_EPOCHS if k <= shots)]
    plain: dict[str, list[dict]] = {"ours": [], "official-style": []}  # measured plain runs, for the guard
    rows, ratios = [], []
    for n in sorted(classes):
        runs, too_big = [], {}
        for method in ("ours", "official-style"):
            need = C.too_big_for_ram([(m["classes"], m["peak_delta"]) for m in plain[method]], n)
            if need is None:
                runs.append({"method": method, "chunk": 0, "steps": steps + 1})
            else:
                too_big[method] = need
                runs.append({"method": method, "chunk": chunk, "steps": 1})
        # Smallest expected peak first (chunked runs, then ours, then official), so each run's peak shows.
        runs.sort(key=lambda r: (r["chunk"] == 0, r["method"] != "ours"))
        # The first class count also measures the per-image encoding (it does not depend on the classes).
        result = C.run_worker(SCRIPT, {**common, "classes": n, "batch_size": batch_size, "runs": runs,
                                       "encode_images": 0 if per_image else batch_size})
        per_image = per_image or result["per_image_s"]
        steps_per_epoch = max(n * shots // batch_size, 1)
        epoch: dict[str, float] = {}
        for r in sorted(result["runs"], key=lambda r: r["method"] != "ours"):  # rows: ours, then official
            method, step_s = r["method"], C.median(r["steps_s"])
            if r["chunk"]:
                label = f"{method} + chunks of {r['chunk']}"
                how = (f"1 step, no warm-up; the plain text pass needs ~{C.fmt_bytes(too_big[method])} RAM (est.), "
                       f"more than this machine can spare")
            else:
                label, how = method, f"median of {len(r['steps_s'])} steps after 1 warm-up"
                plain[method].append({"classes": n, "step_s": step_s, "peak_delta": r["peak_delta"]})
            epoch[method] = steps_per_epoch * step_s
            encode = n_views * n * shots * per_image if method == "ours" else 0.0
            rows.append({"classes": n, "loop": label,
                         "text positions": r["positions"],
                         "step": C.fmt_seconds(step_s), "how": how, "steps/epoch": steps_per_epoch,
                         "epoch (extrapolated)": C.fmt_seconds(epoch[method]),
                         "one-time encode (est.)": C.fmt_seconds(encode) if method == "ours" else "-",
                         f"{paper_epochs}-epoch run (est.)": C.fmt_seconds(encode + paper_epochs * epoch[method]),
                         "peak RSS delta": C.fmt_bytes(r["peak_delta"]) if r["peak_delta"] is not None
                         else "below an earlier peak of its process",
                         "_run_s": encode + paper_epochs * epoch[method]})
        run_ratio = rows[-1]["_run_s"] / rows[-2]["_run_s"]
        ratios.append({"classes": n, "epoch speed-up": f"{epoch['official-style'] / epoch['ours']:.1f}x",
                       f"{paper_epochs}-epoch run speed-up (incl. encoding)": f"{run_ratio:.1f}x",
                       "compared": f"{rows[-1]['loop']} / {rows[-2]['loop']}",
                       "_epoch_ratio": epoch["official-style"] / epoch["ours"]})
    facts = {"per_image_s": per_image, "paper_epochs": paper_epochs, "scaling": _scaling_notes(plain)}
    return rows, ratios, facts


def _scaling_notes(measured: dict[str, list[dict]]) -> list[str]:
    """How each loop's measured plain step time grew between class counts, next to how the classes grew."""
    notes = []
    for method, points in measured.items():
        for a, b in zip(points, points[1:]):
            growth, more = b["step_s"] / a["step_s"], b["classes"] / a["classes"]
            notes.append(f"{method}: step x{growth:.1f} from {a['classes']} to {b['classes']} classes (x{more:g} "
                         f"the classes{', faster than linear' if growth > 1.1 * more else ''})")
    return notes


def _recipe(config: ct.CoOpConfig) -> str:
    """The fields of a config that set the training cost and outcome, as one short string."""
    return (f"{config.optimizer} lr {config.lr:g}, batch {config.batch_size}, {config.epochs} epochs, "
            f"{config.n_views} views, n_ctx {config.n_ctx}")


def _visible(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]


# ---------------------------------------------------------------------------------------------------- main
def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="patterns", help="embedded task (default: patterns)")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=5,
                        help="part A: seeds 1..N, both loops per seed (default 5: accuracy differences need "
                             "several seeds to mean anything)")
    parser.add_argument("--epochs", type=int, default=None, help="override CoOpConfig.embedded(shots).epochs")
    C.add_embedded_weights_argument(parser)
    parser.add_argument("--large-model", default="ViT-B-16", help="open_clip name, or 'tiny' for smoke runs")
    parser.add_argument("--large-pretrained", default="random")
    parser.add_argument("--large-classes", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--large-steps", type=int, default=3, help="timed steps per loop, after one warm-up step")
    parser.add_argument("--large-shots", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=50,
                        help="text_chunk_size for a loop whose plain text pass would not fit in RAM (default 50)")
    C.add_common_arguments(parser, "tiny configuration: seconds, for the smoke test", worker=True)
    args = parser.parse_args(argv)
    if C.serve_worker(args, worker):
        return
    if args.smoke:
        args.shots, args.repeats, args.epochs = [1], 1, 2
        args.embedded_pretrained = "random"
        args.large_model, args.large_pretrained, args.large_classes, args.large_steps = "tiny", "random", [4], 1
    threads = C.set_threads(args.threads)
    print(C.machine_header(threads, "bench_training: CoOp epoch time and accuracy, ours vs official-style"))
    pretrained, note = C.embedded_weights(args.embedded_pretrained)
    random_weights = pretrained == "random"

    recipes = "; ".join(f"{shots} shots: {_recipe(ct.CoOpConfig.embedded(shots))}" for shots in args.shots)
    print(f"\n## A. Embedded model, task {args.task!r}, CoOpConfig.embedded(shots)\n{note}\nrecipe: {recipes}"
          + (f" (epochs overridden: {args.epochs})" if args.epochs else "") + "\n")
    method_rows, ratio_rows = embedded_benchmark(args.task, args.shots, args.repeats, args.epochs, pretrained)
    print(C.markdown_table(_visible(method_rows)))
    print()
    print(C.markdown_table(_visible(ratio_rows)))

    large_ratios: list[dict] = []
    if args.large_classes:
        n_views = ct.CoOpConfig().n_views
        print(f"\n## B. {args.large_model} (pretrained={args.large_pretrained!r}), timing only: a few steps, "
              f"extrapolated\n{args.large_shots} shots per class, batch {args.batch_size}, "
              f"{args.large_steps} timed steps per loop after 1 warm-up step, ImageNet class names, random images; "
              f"our one-time encoding = {n_views} views x images x measured per-image time.\n")
        rows, large_ratios, facts = large_benchmark(args.large_model, args.large_pretrained, args.large_classes,
                                                    args.large_steps, args.large_shots, threads, args.batch_size,
                                                    n_views, args.chunk)
        print(f"measured image encoding (augment + encode): {C.fmt_seconds(facts['per_image_s'])} per image\n")
        print(C.markdown_table(_visible(rows)))
        print()
        print(C.markdown_table(_visible(large_ratios)))
        if facts["scaling"]:
            print("\nscaling (plain runs): " + "; ".join(facts["scaling"]) + ".")

    fast = all(r["_epoch_ratio"] >= 20 for r in ratio_rows)
    close = all(abs(r["_acc_diff"]) <= 1 for r in ratio_rows)
    embedded = ", ".join(f"{r['shots']} shot{'s' if r['shots'] != 1 else ''} {r['_epoch_ratio']:.1f}x "
                         f"({r['_acc_diff']:+.1f} pts)" for r in ratio_rows)
    large = ", ".join(f"{r['classes']} classes {r['_epoch_ratio']:.1f}x"
                      + (f" ({r['compared']})" if "chunks" in r["compared"] else "") for r in large_ratios)
    large_fast = [str(r["classes"]) for r in large_ratios if r["_epoch_ratio"] >= 20]
    verdict = (f"target >=20x per epoch {C.holds(fast)} on the embedded model"
               + (f" (on {args.large_model}: holds at "
                  f"{(', '.join(large_fast) + ' classes') if large_fast else 'no class count'})"
                  if large_ratios else "")
               + "; accuracy within 1 point " + ("NOT ASSESSABLE (random weights)" if random_weights
                                                 else C.holds(close)))
    print(f"\nSUMMARY: per-epoch speed-up ours vs official-style: embedded {embedded}"
          + (f"; {args.large_model} {large} (from a few steps)" if large else "") + f"; {verdict}.")

if __name__ == "__main__":
    main()
