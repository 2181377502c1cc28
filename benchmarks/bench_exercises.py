"""How long each self-check of ``coop_tutorial.exercises`` takes (the assignments' grading budget: < 10 s a check).

Each check runs on a correct implementation, written as a student would (the nearest-token search twice: with
``torch.cdist`` and with the broadcast a student often writes first, which builds a (M, V, width) tensor over the
whole 49,408-row token table). The first call of a check also loads the tiny CLIP; it is timed separately.

    python benchmarks/bench_exercises.py            # median of 3 runs per check
    python benchmarks/bench_exercises.py --smoke    # one run
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_seconds, machine_header, markdown_table, median, set_threads, timed  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from coop_tutorial import exercises  # noqa: E402
from coop_tutorial.zero_shot import zero_shot_weights  # noqa: E402

BUDGET_S = 10.0


def layout(prefix, ctx, suffix, name_lens, position):
    ctx = ctx.expand(prefix.shape[0], -1, -1) if ctx.dim() == 2 else ctx
    half = ctx.shape[1] // 2
    rows = []
    for c in range(prefix.shape[0]):
        name, rest = suffix[c, :name_lens[c]], suffix[c, name_lens[c]:]
        middle = {"end": [ctx[c], name], "middle": [ctx[c, :half], name, ctx[c, half:]], "front": [name, ctx[c]]}
        rows.append(torch.cat([prefix[c], *middle[position], rest]))
    return torch.stack(rows)


def text_features(model, prompts, ids):
    x = model.transformer(prompts + model.positional_embedding, attn_mask=model.attn_mask)
    return model.ln_final(x[torch.arange(x.shape[0]), ids.argmax(-1)]) @ model.text_projection


def learning_rate(epoch, max_epochs, base_lr, warmup_epochs, warmup_lr):
    if epoch < warmup_epochs:
        return warmup_lr
    return base_lr * (1 + math.cos(math.pi * (epoch - warmup_epochs) / max_epochs)) / 2


def logits(image, text, scale):
    return scale.exp() * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()


def nearest_cdist(ctx, table, k):
    return torch.cdist(ctx, table).topk(k, dim=1, largest=False).indices


def nearest_broadcast(ctx, table, k):
    return ((ctx[:, None] - table[None]) ** 2).sum(-1).argsort(dim=1)[:, :k]


def training_step(classifier, optimizer, image, labels):
    loss = F.cross_entropy(classifier.logits_from_features(image), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


RUNS = [
    ("check_prompt_layout", exercises.check_prompt_layout, layout),
    ("check_text_features", exercises.check_text_features, text_features),
    ("check_learning_rate", exercises.check_learning_rate, learning_rate),
    ("check_logits", exercises.check_logits, logits),
    ("check_zero_shot_weights", exercises.check_zero_shot_weights, zero_shot_weights),
    ("check_nearest_tokens (torch.cdist)", exercises.check_nearest_tokens, nearest_cdist),
    ("check_nearest_tokens (broadcast)", exercises.check_nearest_tokens, nearest_broadcast),
    ("check_training_step", exercises.check_training_step, training_step),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="one run of each check")
    args = parser.parse_args(argv)
    threads = set_threads(1)
    print(machine_header(threads, "Self-checks of coop_tutorial.exercises"))
    repeats = 1 if args.smoke else args.repeats
    load_s, _ = timed(exercises._tiny_clip)
    rows = []
    for name, check, fn in RUNS:
        times = [timed(lambda: check(fn))[0] for _ in range(repeats)]
        rows.append({"check": name, "seconds": fmt_seconds(median(times)), "raw": median(times)})
    print(markdown_table([{k: v for k, v in row.items() if k != "raw"} for row in rows]))
    slowest = max(rows, key=lambda row: row["raw"])
    print(f"loading the tiny CLIP (once per process): {fmt_seconds(load_s)}")
    print(f"SUMMARY: slowest check {slowest['check']} {fmt_seconds(slowest['raw'])} (median of {repeats}); "
          f"budget {BUDGET_S:.0f} s per check: {'HOLDS' if slowest['raw'] < BUDGET_S else 'DOES NOT HOLD'}")


if __name__ == "__main__":
    main()
