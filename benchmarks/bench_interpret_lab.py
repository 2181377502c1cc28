"""The interpretation lab at real CLIP's scale (49,408-token vocabulary, width 512).

Times the vocabulary searches the lab runs (nearest-word projection of a unified context and of a class-specific
one, which the chunked search keeps within ``row_chunk x token_chunk`` distances), one step of discrete prompt
recovery (projection + text forward and backward for every class) and one scored context (the unit of ablations and
paths), on a random-weight open_clip text tower (no download). Reports the memory an unchunked distance matrix
would need next to the chunked search's working set; nothing is asserted.

    python benchmarks/bench_interpret_lab.py                   # ViT-B-16 (random weights), 100 classes
    python benchmarks/bench_interpret_lab.py --smoke           # tiny random model, seconds
"""
from __future__ import annotations

import argparse
from typing import Optional

import _common as C  # noqa: E402  (puts the repository on sys.path)
import torch

import coop_tutorial as ct
from coop_tutorial import interpret_lab as lab
from coop_tutorial.features import FeatureSet


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16", help="open_clip name, or 'tiny'")
    parser.add_argument("--pretrained", default="random", help="'random' (default: no download) or a checkpoint")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--csc-classes", type=int, default=1000, help="classes of the class-specific context searched")
    parser.add_argument("--n-ctx", type=int, default=16)
    parser.add_argument("--images", type=int, default=2000, help="image features a context is scored on")
    C.add_common_arguments(parser, "tiny random model, 8 classes, 40 csc classes")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.pretrained, args.classes, args.csc_classes, args.images = "tiny", "random", 8, 40, 200
    threads = C.set_threads(args.threads)
    print(C.machine_header(threads, "bench_interpret_lab: vocabulary searches and scoring at real scale"))
    clip = ct.load_clip(args.model, pretrained=args.pretrained)
    ids, table = lab.token_table(clip)
    print(f"\nmodel: {args.model} (pretrained={args.pretrained!r}), width {clip.width}, token table "
          f"{clip.model.token_embedding.weight.shape[0]} rows, {len(ids)} candidate words; n_ctx={args.n_ctx}\n")
    generator = torch.Generator().manual_seed(0)
    learner = ct.PromptLearner(clip, C.class_names(args.classes), n_ctx=args.n_ctx, generator=generator)
    csc_rows = torch.randn(args.csc_classes * args.n_ctx, clip.width, generator=generator) * 0.02
    rows = []
    seconds, _ = C.timed(lambda: lab.nearest_word_projection(clip, learner))
    rows.append({"operation": f"nearest-word projection, unified ({args.n_ctx} vectors)",
                 "time": C.fmt_seconds(seconds),
                 "unchunked distances": C.fmt_bytes(4 * args.n_ctx * len(ids))})
    seconds, _ = C.timed(lambda: lab.nearest_rows(csc_rows, table))
    chunk = 4 * min(1024, csc_rows.shape[0]) * min(8192, len(ids))
    rows.append({"operation": f"nearest words, class-specific ({args.csc_classes} x {args.n_ctx} vectors)",
                 "time": C.fmt_seconds(seconds), "unchunked distances": C.fmt_bytes(4 * csc_rows.shape[0] * len(ids)),
                 "chunked working set": C.fmt_bytes(chunk)})
    features = torch.nn.functional.normalize(torch.randn(1, args.images, clip.embed_dim, generator=generator), dim=-1)
    test = FeatureSet(features, torch.randint(args.classes, (args.images,), generator=generator), learner.classnames)
    scorer = lab.ContextScorer(clip, learner, test)
    seconds, _ = C.timed(lambda: scorer.accuracy(learner))
    rows.append({"operation": f"score one context ({args.classes} classes, {args.images} images)",
                 "time": C.fmt_seconds(seconds)})
    dataset = type("Split", (), {"val": test, "test": test})()
    seconds, result = C.timed(lambda: lab.recover_discrete_prompt(clip, learner, dataset, steps=2, eval_every=100))
    rows.append({"operation": f"discrete prompt recovery, 3 steps ({args.classes} classes) + final zero-shot score",
                 "time": C.fmt_seconds(seconds)})
    print(C.markdown_table(rows, ["operation", "time", "unchunked distances", "chunked working set"]))
    print(f"\nSUMMARY: on {args.model}, a class-specific context of {args.csc_classes} classes is projected onto "
          f"{len(ids)} words in {rows[1]['time']} within {C.fmt_bytes(chunk)} of distances (unchunked: "
          f"{rows[1]['unchunked distances']}); one scored context takes {rows[2]['time']}.")


if __name__ == "__main__":
    main()
