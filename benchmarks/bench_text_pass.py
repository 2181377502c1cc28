"""Issue 6, item 2: the truncated text pass vs the full-context one, on the ViT-B-16 text tower, n_ctx=16.

With a causal mask nothing after the last EOS can change an EOS output, so ``TextEncoder`` runs only the
first ``max(EOS) + 1`` positions. This script times that pass against the full ``context_length`` one,
forward only (evaluation) and forward + backward to the context (a training step's text cost), and reports
the largest difference of the outputs and of the context gradients (they should agree to float rounding).

Repeats alternate the two passes; the speed-up is the median over repeats of the within-repeat ratio.
Class names are ImageNet's (their token lengths set where the truncated pass stops).

    python benchmarks/bench_text_pass.py                 # ViT-B-16 (random weights), 100 classes, 5 repeats
    python benchmarks/bench_text_pass.py --classes 10 100 1000
    python benchmarks/bench_text_pass.py --smoke         # tiny random model, seconds
"""
from __future__ import annotations

import argparse
from typing import Optional

import _common as C  # noqa: E402  (puts the repository on sys.path)
import torch
import torch.nn.functional as F

import coop_tutorial as ct


def _forward(encoder: ct.TextEncoder, learner: ct.PromptLearner, truncate: bool) -> torch.Tensor:
    """Text features ``(n_cls, embed_dim)`` without gradients."""
    with torch.no_grad():
        return encoder(learner(), learner.tokenized_prompts, truncate=truncate)


def _forward_backward(encoder: ct.TextEncoder, learner: ct.PromptLearner, direction: torch.Tensor,
                      truncate: bool) -> torch.Tensor:
    """Gradient of a CoOp-like scalar (normalised features against fixed image directions) w.r.t. ``ctx``."""
    learner.ctx.grad = None
    features = F.normalize(encoder(learner(), learner.tokenized_prompts, truncate=truncate), dim=-1)
    (features @ direction).logsumexp(dim=0).sum().backward()
    return learner.ctx.grad.clone()


def measure(clip: "ct.ClipBundle", n_classes: int, n_ctx: int, repeats: int) -> dict:
    """Timings (per repeat) and output differences of the two passes for ``n_classes`` prompts."""
    learner = ct.PromptLearner(clip, C.class_names(n_classes), n_ctx=n_ctx,
                               generator=torch.Generator().manual_seed(0))
    encoder = ct.TextEncoder(clip.model)
    direction = F.normalize(torch.randn(clip.embed_dim, 32, generator=torch.Generator().manual_seed(1)), dim=0)
    times: dict[str, list[float]] = {key: [] for key in ("fwd_trunc", "fwd_full", "bwd_trunc", "bwd_full")}
    for repeat in range(repeats + 1):  # repeat 0 warms up and is not recorded
        order = (True, False) if repeat % 2 else (False, True)
        for truncate in order:
            fwd, _ = C.timed(lambda: _forward(encoder, learner, truncate))
            bwd, _ = C.timed(lambda: _forward_backward(encoder, learner, direction, truncate))
            if repeat:
                suffix = "trunc" if truncate else "full"
                times[f"fwd_{suffix}"].append(fwd)
                times[f"bwd_{suffix}"].append(bwd)
    truncated, full = _forward(encoder, learner, True), _forward(encoder, learner, False)
    grad_t = _forward_backward(encoder, learner, direction, True)
    grad_f = _forward_backward(encoder, learner, direction, False)
    return {
        "times": times,
        "positions": int(learner.tokenized_prompts.argmax(dim=-1).max()) + 1,
        "context_length": clip.context_length,
        "diff": float((truncated - full).abs().max()),
        "scale": float(full.abs().max()),
        "diff_normalised": float((F.normalize(truncated, dim=-1) - F.normalize(full, dim=-1)).abs().max()),
        "grad_diff_rel": float((grad_t - grad_f).abs().max() / grad_f.abs().max().clamp_min(1e-30)),
    }


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16", help="open_clip name, or 'tiny'")
    parser.add_argument("--pretrained", default="random", help="'random' (default: no download) or a checkpoint")
    parser.add_argument("--classes", type=int, nargs="+", default=[100])
    parser.add_argument("--n-ctx", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; the machine is shared)")
    parser.add_argument("--smoke", action="store_true", help="tiny random model, 8 classes, 1 repeat")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.pretrained, args.classes, args.repeats = "tiny", "random", [8], 1
    threads = C.set_threads(args.threads)
    print(C.machine_header(threads, "bench_text_pass: truncated vs full-context text pass"))
    clip = ct.load_clip(args.model, pretrained=args.pretrained)
    print(f"\nmodel: {args.model} (pretrained={args.pretrained!r}) text tower, n_ctx={args.n_ctx}, "
          f"ImageNet class names, {args.repeats} repeats (medians; ratios within each repeat)\n")
    rows, results = [], []
    for n in args.classes:
        r = measure(clip, n, args.n_ctx, args.repeats)
        t = r["times"]
        fwd_ratio = C.median(f / u for f, u in zip(t["fwd_full"], t["fwd_trunc"]))
        bwd_ratio = C.median(f / u for f, u in zip(t["bwd_full"], t["bwd_trunc"]))
        results.append((n, r, fwd_ratio, bwd_ratio))
        rows.append({
            "classes": n, "positions run": f"{r['positions']} of {r['context_length']}",
            "forward full": C.fmt_seconds(C.median(t["fwd_full"])),
            "forward truncated": C.fmt_seconds(C.median(t["fwd_trunc"])), "forward speed-up": f"{fwd_ratio:.2f}x",
            "fwd+bwd full": C.fmt_seconds(C.median(t["bwd_full"])),
            "fwd+bwd truncated": C.fmt_seconds(C.median(t["bwd_trunc"])), "fwd+bwd speed-up": f"{bwd_ratio:.2f}x",
            "max abs diff (features)": f"{r['diff']:.2e} (max |feature| {r['scale']:.2g})",
            "max abs diff (normalised)": f"{r['diff_normalised']:.2e}",
            "max rel diff (ctx grad)": f"{r['grad_diff_rel']:.2e}"})
    print(C.markdown_table(rows))
    fwd_ok = all(f >= 3 for _, _, f, _ in results)
    bwd_ok = all(b >= 3 for _, _, _, b in results)
    parts = ", ".join(f"{n} classes {f:.2f}x forward / {b:.2f}x fwd+bwd ({r['positions']} of "
                      f"{r['context_length']} positions, max abs diff {r['diff']:.1e})" for n, r, f, b in results)
    print(f"\nSUMMARY: truncated text pass vs full context on {args.model}: {parts}; target >=3x: forward "
          f"{C.holds(fwd_ok)}, forward+backward {C.holds(bwd_ok)}.")


if __name__ == "__main__":
    main()
