"""Peak memory of one CoOp step at 1000 classes, with and without the memory-saving option.

One step = the text pass over every class's prompt, logits for a batch of 32 image features, cross-entropy,
backward to the context, an SGD step: what each CoOp training step costs on the text side (the official loop
adds a no-grad image-encoder pass, whose activations are freed before the text pass).

Text passes: ``shared`` (our default: truncated to the longest prompt, with the prefix every class shares,
SOS + the unified context, computed once), ``truncated`` (without sharing) and ``full`` (the official pass).

The memory-saving option is ``CoOpConfig.text_chunk_size`` (``TextEncoder(chunk_size=...)``): the classes go
through the text tower in chunks, each checkpointed, so backward holds one chunk's activations at a time.

Measurement: every (text pass, chunking, classes) configuration runs in a fresh Python process. With CUDA the
figure is ``torch.cuda.max_memory_allocated`` over the step; on a CPU it is the peak resident memory
(``ru_maxrss``) minus the resident memory just before the step. Memory grows linearly with the number of
classes, so a line through the measured class counts gives the memory per class; a configuration whose
extrapolated need exceeds 70% of the RAM available is not run, and its figure is that extrapolation
(marked). How many classes fit on a 16 GB GPU is an ESTIMATE from that line, the model's
weights and a fixed allowance for the CUDA context; see the printed assumptions.

    python benchmarks/bench_memory.py                 # ViT-B-16 (random weights), 1000 classes, chunks of 50
    python benchmarks/bench_memory.py --text-pass shared truncated full --chunk 100
    python benchmarks/bench_memory.py --smoke         # tiny random model, seconds
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional

import _common as C  # noqa: E402  (puts the repository on sys.path)
import numpy as np
import torch
import torch.nn.functional as F

import coop_tutorial as ct

SCRIPT = Path(__file__).resolve()
CUDA_CONTEXT_ALLOWANCE = 1.0 * 2**30  # CUDA context, cuBLAS workspace, allocator slack: an assumption, not measured


def worker(payload: dict) -> dict:
    """Peak memory and time of one CoOp step for one configuration, in this fresh process."""
    C.set_threads(payload["threads"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    clip = ct.load_clip(payload["model"], pretrained=payload["pretrained"], device=device)
    learner = ct.PromptLearner(clip, C.class_names(payload["classes"]), n_ctx=payload["n_ctx"],
                               generator=torch.Generator().manual_seed(0))
    classifier = ct.CoOpClassifier(clip, learner, truncate_text=payload["truncate"],
                                   text_chunk_size=payload["chunk"], share_prefix=payload.get("share", False))
    generator = torch.Generator().manual_seed(1)
    image_features = F.normalize(torch.randn(payload["batch_size"], clip.embed_dim, generator=generator), dim=-1)
    labels = torch.randint(payload["classes"], (payload["batch_size"],), generator=generator)
    image_features, labels = image_features.to(device), labels.to(device)
    optimizer = torch.optim.SGD([learner.ctx], lr=0.002, momentum=0.9, weight_decay=5e-4)
    weights = sum(t.numel() * t.element_size() for t in [*clip.model.parameters(), *clip.model.buffers()])

    def step() -> None:
        loss = F.cross_entropy(classifier.logits_from_features(image_features), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        return {"peak": torch.cuda.max_memory_allocated() - base, "lower_bound": False, "seconds": seconds,
                "weights": weights, "how": "torch.cuda.max_memory_allocated"}
    base_rss, base_peak = C.current_rss_bytes(), C.peak_rss_bytes()
    seconds, _ = C.timed(step)
    peak = C.peak_rss_bytes()
    # If the step never exceeded the peak reached while loading, ru_maxrss did not move: only a lower bound.
    return {"peak": max(peak - base_rss, 0), "lower_bound": peak <= base_peak, "seconds": seconds,
            "weights": weights, "how": "peak RSS delta (ru_maxrss)"}


def _fit(points: list[tuple[int, float]]) -> Optional[tuple[float, float]]:
    """(intercept, slope per class) of a line through measured (classes, bytes); None with < 2 counts."""
    if len({n for n, _ in points}) < 2:
        return None
    slope, intercept = np.polyfit([n for n, _ in points], [b for _, b in points], 1)
    return float(intercept), float(slope)


def _fits_on_gpu(fit: Optional[tuple[float, float]], weights: float, gpu_bytes: float) -> str:
    """Largest class count whose step fits in ``gpu_bytes`` after weights and the CUDA allowance (estimate)."""
    if fit is None:
        return "n/a (needs 2 class counts)"
    intercept, slope = fit
    room = gpu_bytes - weights - CUDA_CONTEXT_ALLOWANCE - max(intercept, 0.0)
    if room <= 0:
        return "none"
    if slope <= 0:
        return "not limited by classes (slope <= 0)"
    return f"~{int(room / slope):,}"


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16", help="open_clip name, or 'tiny'")
    parser.add_argument("--pretrained", default="random")
    parser.add_argument("--classes", type=int, default=1000, help="the class count asked about (default 1000)")
    parser.add_argument("--fit-classes", type=int, nargs="+", default=[100, 200],
                        help="smaller class counts measured for the per-class line (above --chunk, so chunking acts)")
    parser.add_argument("--chunk", type=int, default=50, help="text_chunk_size of the memory-saving runs")
    parser.add_argument("--text-pass", nargs="+", choices=("shared", "truncated", "full"), default=["shared", "full"],
                        help="shared: our default (truncated, shared prefix computed once); truncated: without "
                             "the shared prefix; full: the official full-length pass")
    parser.add_argument("--n-ctx", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32, help="image features per step")
    parser.add_argument("--gpu-gb", type=float, default=16, help="GPU memory for the estimate, in GiB")
    C.add_common_arguments(parser, "tiny random model, 16 classes, chunks of 4", worker=True)
    args = parser.parse_args(argv)
    if C.serve_worker(args, worker):
        return
    if args.smoke:
        args.model, args.pretrained, args.classes, args.fit_classes = "tiny", "random", 16, [8]
        args.chunk, args.text_pass = 4, ["shared"]
    threads = C.set_threads(args.threads)
    print(C.machine_header(threads, "bench_memory: peak memory of one CoOp step, with and without chunking"))
    counts = sorted(set(args.fit_classes) | {args.classes})
    print(f"\nmodel: {args.model} (pretrained={args.pretrained!r}) text tower, n_ctx={args.n_ctx}, ImageNet class "
          f"names, batch of {args.batch_size} image features; class counts measured: {counts} (one fresh process "
          f"each)\n")

    rows, verdicts, weights = [], [], 0.0
    for text_pass in args.text_pass:
        for chunk in (0, args.chunk):
            points: list[tuple[int, float]] = []
            results: dict[int, dict] = {}
            for n in counts:
                guard = C.too_big_for_ram(points, n)
                if guard is not None:
                    fit = _fit(points)  # report the line where there is one (the guard's guess errs high)
                    results[n] = {"predicted": fit[0] + fit[1] * n if fit else guard}
                    continue
                r = C.run_worker(SCRIPT, dict(model=args.model, pretrained=args.pretrained, classes=n,
                                              n_ctx=args.n_ctx, truncate=text_pass != "full",
                                              share=text_pass == "shared", chunk=chunk,
                                              batch_size=args.batch_size, threads=threads))
                weights = r["weights"]
                results[n] = r
                if not r["lower_bound"]:
                    points.append((n, r["peak"]))
            fit = _fit(points)
            for n in counts:
                r = results[n]
                if "predicted" in r:
                    peak = f"~{C.fmt_bytes(r['predicted'])} (ESTIMATE: not run, needs more than 70% of free RAM)"
                    seconds = "not run"
                else:
                    peak = ("<= " if r["lower_bound"] else "") + C.fmt_bytes(r["peak"])
                    seconds = C.fmt_seconds(r["seconds"])
                rows.append({"text pass": text_pass, "memory saving": f"chunks of {chunk}" if chunk else "none",
                             "classes": n, "peak memory of the step": peak, "step time": seconds,
                             "per class (fit)": f"{fit[1] / 2**20:.2f} MiB" if fit else "n/a",
                             f"classes that fit on {args.gpu_gb:g} GB (estimate)":
                                 _fits_on_gpu(fit, weights, args.gpu_gb * 2**30) if n == args.classes else ""})
            target = results[args.classes]
            value = target.get("predicted", target.get("peak"))
            verdicts.append((text_pass, chunk, value, "predicted" in target,
                             _fits_on_gpu(fit, weights, args.gpu_gb * 2**30)))
    print(C.markdown_table(rows))
    print(f"\nHow: {'torch.cuda.max_memory_allocated' if torch.cuda.is_available() else 'peak RSS delta (ru_maxrss) in a fresh process per row, fp32, on the CPU'}. "
          f"The GPU estimate assumes the same fp32 tensors on the GPU: {args.gpu_gb:g} GiB minus the whole CLIP's "
          f"weights ({C.fmt_bytes(weights)}) minus {C.fmt_bytes(CUDA_CONTEXT_ALLOWANCE)} for the CUDA context "
          f"(assumed), minus the line's fixed part, divided by its per-class slope. fp16 (the official default "
          f"precision) roughly halves activations; the official loop's no-grad image pass needs its own "
          f"transient memory before the text pass. Estimates, not measurements.")
    parts = "; ".join(f"{text_pass} {'chunks of ' + str(chunk) if chunk else 'no saving'}: "
                      f"{'~' if est else ''}{C.fmt_bytes(value)}{' (est.)' if est else ''}, {fits} classes on "
                      f"{args.gpu_gb:g} GB (est.)" for text_pass, chunk, value, est, fits in verdicts)
    print(f"\nSUMMARY: peak memory of one CoOp step at {args.classes} classes on {args.model}: {parts}.")


if __name__ == "__main__":
    main()
