"""The truncated text pass vs the full-context one, on the ViT-B-16 text tower, n_ctx=16.

With a causal mask nothing after the last EOS can change an EOS output, so ``TextEncoder`` runs only the
first ``max(EOS) + 1`` positions; and the positions every class shares (SOS + a unified context) need running
only once, so our default also computes that prefix once (the "shared" pass). This script times that pass against the full ``context_length`` one,
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


# The passes compared: (truncate, share the prefix). "full" is the official pass; "shared" is our default.
PASSES = {"full": (False, False), "truncated": (True, False), "shared": (True, True)}


def _encode(encoder: ct.TextEncoder, learner: ct.PromptLearner, name: str) -> torch.Tensor:
    truncate, share = PASSES[name]
    return encoder(learner(), learner.tokenized_prompts, truncate=truncate,
                   shared_prefix=learner.shared_prefix_length if share else 0)


def _forward(encoder: ct.TextEncoder, learner: ct.PromptLearner, name: str) -> torch.Tensor:
    """Text features ``(n_cls, embed_dim)`` without gradients."""
    with torch.no_grad():
        return _encode(encoder, learner, name)


def _forward_backward(encoder: ct.TextEncoder, learner: ct.PromptLearner, direction: torch.Tensor,
                      name: str) -> torch.Tensor:
    """Gradient of a CoOp-like scalar (normalised features against fixed image directions) w.r.t. ``ctx``."""
    learner.ctx.grad = None
    features = F.normalize(_encode(encoder, learner, name), dim=-1)
    (features @ direction).logsumexp(dim=0).sum().backward()
    return learner.ctx.grad.clone()


def measure(clip: "ct.ClipBundle", n_classes: int, n_ctx: int, repeats: int) -> dict:
    """Timings (per repeat) and output differences of the three passes for ``n_classes`` prompts."""
    learner = ct.PromptLearner(clip, C.class_names(n_classes), n_ctx=n_ctx,
                               generator=torch.Generator().manual_seed(0))
    encoder = ct.TextEncoder(clip.model)
    direction = F.normalize(torch.randn(clip.embed_dim, 32, generator=torch.Generator().manual_seed(1)), dim=0)
    times: dict[str, list[float]] = {f"{kind}_{name}": [] for kind in ("fwd", "bwd") for name in PASSES}
    names = list(PASSES)
    for repeat in range(repeats + 1):  # repeat 0 warms up and is not recorded
        order = names[repeat % len(names):] + names[:repeat % len(names)]  # rotate who goes first
        for name in order:
            fwd, _ = C.timed(lambda: _forward(encoder, learner, name))
            bwd, _ = C.timed(lambda: _forward_backward(encoder, learner, direction, name))
            if repeat:
                times[f"fwd_{name}"].append(fwd)
                times[f"bwd_{name}"].append(bwd)
    features = {name: _forward(encoder, learner, name) for name in names}
    grads = {name: _forward_backward(encoder, learner, direction, name) for name in names}
    full, full_grad = features["full"], grads["full"]
    out = {"times": times, "positions": int(learner.tokenized_prompts.argmax(dim=-1).max()) + 1,
           "prefix": learner.shared_prefix_length, "n_classes": n_classes,
           "context_length": clip.context_length, "scale": float(full.abs().max())}
    for name in ("truncated", "shared"):
        out[name] = {
            "diff": float((features[name] - full).abs().max()),
            "diff_normalised": float((F.normalize(features[name], dim=-1) - F.normalize(full, dim=-1)).abs().max()),
            "grad_diff_rel": float((grads[name] - full_grad).abs().max() / full_grad.abs().max().clamp_min(1e-30))}
    return out


def _ratio(times: dict, kind: str, name: str) -> float:
    """Median over repeats of (full pass time / this pass time), both from the same repeat."""
    return C.median(f / u for f, u in zip(times[f"{kind}_full"], times[f"{kind}_{name}"]))


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16", help="open_clip name, or 'tiny'")
    parser.add_argument("--pretrained", default="random", help="'random' (default: no download) or a checkpoint")
    parser.add_argument("--classes", type=int, nargs="+", default=[100])
    parser.add_argument("--n-ctx", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    C.add_common_arguments(parser, "tiny random model, 8 classes, 1 repeat")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.pretrained, args.classes, args.repeats = "tiny", "random", [8], 1
    threads = C.set_threads(args.threads)
    print(C.machine_header(threads, "bench_text_pass: truncated (and shared-prefix) vs full-context text pass"))
    clip = ct.load_clip(args.model, pretrained=args.pretrained)
    print(f"\nmodel: {args.model} (pretrained={args.pretrained!r}) text tower, n_ctx={args.n_ctx}, "
          f"ImageNet class names, {args.repeats} repeats (medians; ratios within each repeat). Passes: full = "
          f"all {clip.context_length} positions for every class (official); truncated = up to the longest EOS; "
          f"shared = truncated, with SOS + the context computed once for all classes (our default)\n")
    time_rows, diff_rows, results = [], [], []
    for n in args.classes:
        r = measure(clip, n, args.n_ctx, args.repeats)
        t = r["times"]
        ratios = {(kind, name): _ratio(t, kind, name) for kind in ("fwd", "bwd") for name in ("truncated", "shared")}
        results.append((n, r, ratios))
        positions = r["positions"]
        for name, run in (("full", f"{n} x {r['context_length']}"), ("truncated", f"{n} x {positions}"),
                          ("shared", f"{r['prefix']} + {n} x {positions - r['prefix']}")):
            time_rows.append({
                "classes": n, "pass": name, "positions run": run,
                "forward": C.fmt_seconds(C.median(t[f"fwd_{name}"])),
                "forward speed-up": "1x" if name == "full" else f"{ratios[('fwd', name)]:.2f}x",
                "fwd+bwd": C.fmt_seconds(C.median(t[f"bwd_{name}"])),
                "fwd+bwd speed-up": "1x" if name == "full" else f"{ratios[('bwd', name)]:.2f}x"})
        for name in ("truncated", "shared"):
            d = r[name]
            diff_rows.append({"classes": n, "pass vs full": name,
                              "max abs diff (features)": f"{d['diff']:.2e} (max |feature| {r['scale']:.2g})",
                              "max abs diff (normalised)": f"{d['diff_normalised']:.2e}",
                              "max rel diff (ctx grad)": f"{d['grad_diff_rel']:.2e}"})
    print(C.markdown_table(time_rows))
    print()
    print(C.markdown_table(diff_rows))
    # The target is judged on the pass the package runs (truncated + shared prefix); truncation alone is shown.
    fwd_ok = all(ratios[("fwd", "shared")] >= 3 for _, _, ratios in results)
    bwd_ok = all(ratios[("bwd", "shared")] >= 3 for _, _, ratios in results)
    parts = ", ".join(
        f"{n} classes truncated {ratios[('fwd', 'truncated')]:.2f}x forward / {ratios[('bwd', 'truncated')]:.2f}x "
        f"fwd+bwd, shared prefix {ratios[('fwd', 'shared')]:.2f}x / {ratios[('bwd', 'shared')]:.2f}x (max abs diff "
        f"{max(r['truncated']['diff'], r['shared']['diff']):.1e})" for n, r, ratios in results)
    print(f"\nSUMMARY: text pass vs full context on {args.model}: {parts}; target >=3x (our default pass: truncated, "
          f"shared prefix): forward {C.holds(fwd_ok)}, forward+backward {C.holds(bwd_ok)}.")


if __name__ == "__main__":
    main()
