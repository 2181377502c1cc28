"""Pretrain the embedded tiny CLIP from scratch on the synthetic caption stream.

    python -m coop_tutorial.pretrain --steps 4000 --snapshot-every 2000 --out runs/tiny_clip.safetensors

The shipped weights are that command's ``runs/tiny_clip.step2000.safetensors`` (``make pretrain`` copies it into
the package; the checkpoint's metadata records seed, steps, corpus size, duration, git commit and the run's length).
Beside each checkpoint it writes a loss log (``.log.csv``) and the training curve (``.curve.png``).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import open_clip
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .embedded.weights import EMBEDDED_CONFIGS, build_embedded_model, resave, save_embedded_checkpoint
from .text_encoder import TextEncoder
from .validation import check_positive_int, check_seed
from .embedded.corpus import CaptionStream


@dataclass
class PretrainConfig:
    """Defaults are the run the shipped model comes from: it is that run's step-2000 snapshot
    (``--snapshot-every 2000``), chosen on validation images (README, "The embedded world").

    Batch 256 gives each caption 255 negatives, enough for the contrastive loss to need colours, shapes,
    counts and styles; lr 2e-3 with AdamW is fast for a model this small and stays stable with warm-up.
    """

    steps: int = 4000
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup_steps: int = 100
    seed: int = 0
    workers: int = 1
    threads: Optional[int] = None  # torch threads for the model; None = leave torch's default
    log_every: int = 10
    # also write the weights and the log so far every this many steps (``<out>.step<N>.safetensors``), so a long
    # run that is stopped early still leaves checkpoints to judge; None writes only the final one
    snapshot_every: Optional[int] = None

    def __post_init__(self) -> None:
        for name, minimum in (("steps", 1), ("batch_size", 2), ("warmup_steps", 0), ("workers", 0), ("log_every", 1)):
            check_positive_int(getattr(self, name), f"PretrainConfig.{name} (--{name.replace('_', '-')})", minimum)
        if self.snapshot_every is not None:
            check_positive_int(self.snapshot_every, "PretrainConfig.snapshot_every (--snapshot-every)")
            if self.snapshot_every >= self.steps:
                raise ValueError(f"PretrainConfig.snapshot_every (--snapshot-every) is {self.snapshot_every}, not less "
                                 f"than steps ({self.steps}): no snapshot would be written (the final checkpoint "
                                 f"always is). Use a smaller N, or leave it out.")
        if self.threads is not None:
            check_positive_int(self.threads, "PretrainConfig.threads (--threads)")
        check_seed(self.seed, "PretrainConfig.seed (--seed)")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0 or (name == "lr" and not 0 < value <= 1):
                raise ValueError(f"PretrainConfig.{name} must be a finite number "
                                 f"{'in (0, 1]' if name == 'lr' else '>= 0'}, got {value!r}.")


def normalise_images(images: torch.Tensor, config: dict) -> torch.Tensor:
    pre = config["preprocess"]
    mean = torch.tensor(pre["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(pre["std"]).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def _lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    # as in CLIP: no decay on gains, biases, embeddings and the logit scale
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        skip = param.ndim < 2 or "embedding" in name or "logit_scale" in name or name.endswith(".bias")
        (no_decay if skip else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True,
                               cwd=Path(__file__).parent, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pretrain(cfg: PretrainConfig, out: Path, model_config_path: Path = EMBEDDED_CONFIGS["tiny"]) -> dict:
    """Train, then write the checkpoint, its loss log and curve. Returns the checkpoint metadata."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    commit = git_commit()  # the code that trains, not whatever is checked out when training ends
    model_config = json.loads(Path(model_config_path).read_text())
    model = build_embedded_model(model_config)
    model.train()
    tokenizer = open_clip.SimpleTokenizer(context_length=model_config["text_cfg"]["context_length"])
    stream = CaptionStream(tokenizer, cfg.batch_size, cfg.steps, cfg.seed,
                           image_size=model_config["vision_cfg"]["image_size"])
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=cfg.workers,
                                         persistent_workers=False, prefetch_factor=4 if cfg.workers else None)
    text_encoder = TextEncoder(model)  # runs each batch only up to its longest caption (exact: causal mask)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    seen_tokens = torch.zeros(model_config["text_cfg"]["vocab_size"], dtype=torch.bool)
    flip = torch.Generator().manual_seed(cfg.seed)
    log: list[dict] = []
    start = time.time()
    bar = tqdm(loader, total=cfg.steps, desc="pretraining tiny CLIP")
    for step, batch in enumerate(bar):
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg)
        images = normalise_images(batch.images, model_config)
        flipped = torch.rand(images.shape[0], generator=flip) < 0.5
        images[flipped] = images[flipped].flip(-1)
        seen_tokens[batch.tokens.unique()] = True
        image_features = F.normalize(model.encode_image(images), dim=-1)
        text_features = F.normalize(text_encoder(model.token_embedding(batch.tokens), batch.tokens), dim=-1)
        logits = model.logit_scale.exp() * image_features @ text_features.T
        labels = torch.arange(logits.shape[0])
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        if not torch.isfinite(loss):
            raise RuntimeError(f"Pretraining loss became {loss.item()} at step {step}; lower --lr and rerun.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            accuracy = (logits.argmax(1) == labels).float().mean().item()
            row = {"step": step, "loss": round(loss.item(), 4), "batch_accuracy": round(accuracy, 4),
                   "logit_scale": round(model.logit_scale.exp().item(), 3), "lr": _lr_at(step, cfg),
                   "seconds": round(time.time() - start, 1)}
            log.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{accuracy:.2f}")
        done = step + 1
        if cfg.snapshot_every and done % cfg.snapshot_every == 0 and done < cfg.steps:
            snapshot = Path(out).with_suffix(f".step{done}.safetensors")
            _save_run(model, model_config, seen_tokens, log, cfg, commit, time.time() - start, done, snapshot)
    return _save_run(model, model_config, seen_tokens, log, cfg, commit, time.time() - start, cfg.steps, out)


def _save_run(model: open_clip.CLIP, model_config: dict, seen_tokens: torch.Tensor, log: list[dict],
              cfg: PretrainConfig, commit: str, duration: float, steps_done: int, out: Path) -> dict:
    """Write the checkpoint with its metadata, loss log and curve after ``steps_done`` steps."""
    seen = seen_tokens.clone()
    seen[0] = True  # the padding row is read by every prompt's padded positions
    metadata = {
        "seed": cfg.seed, "steps": steps_done, "batch_size": cfg.batch_size, "corpus_pairs": steps_done * cfg.batch_size,
        "duration_s": round(duration, 1), "cpu_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "git_commit": commit, "torch": torch.__version__, "open_clip": open_clip.__version__,
        "final_loss": log[-1]["loss"], "distinct_tokens": int(seen.sum()), "config": asdict(cfg),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if steps_done < cfg.steps:
        metadata["snapshot_of_run_steps"] = cfg.steps  # the lr had not finished its schedule here
    save_embedded_checkpoint(model, model_config, seen.nonzero().flatten(), metadata, out)
    _write_log(log, out)
    return metadata


def _write_log(log: list[dict], out: Path) -> None:
    base = Path(out).with_suffix("")
    with open(f"{base}.log.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(log[0]))
        writer.writeheader()
        writer.writerows(log)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in log], [r["loss"] for r in log], lw=1)
    ax.set_xlabel("step (batch of pairs)")
    ax.set_ylabel("contrastive loss")
    ax.set_title("Pretraining the tiny CLIP on the synthetic corpus")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(f"{base}.curve.png", dpi=110)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> None:
    defaults = PretrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="processes drawing the corpus")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the model")
    parser.add_argument("--out", type=Path, default=Path("runs/tiny_clip.safetensors"))
    parser.add_argument("--snapshot-every", type=int, default=None, metavar="N",
                        help="also write <out>.step<N>.safetensors (and the log so far) every N steps")
    parser.add_argument("--model-config", type=Path, default=EMBEDDED_CONFIGS["tiny"],
                        help="architecture JSON (default: the shipped tiny_clip.json), e.g. to try a wider tower")
    parser.add_argument("--resave", type=Path, default=None, metavar="CHECKPOINT",
                        help="do not train: rewrite CHECKPOINT in the current storage format (fp16) to --out")
    args = parser.parse_args(argv)
    if args.out.is_dir():
        parser.error(f"--out {args.out} is a directory; give the file to write, e.g. {args.out / 'tiny_clip.safetensors'}.")
    if args.out.suffix != ".safetensors":
        parser.error(f"--out {args.out} must end in .safetensors: the weights are written in that format, and the "
                     f"snapshots, log and curve beside them are named from it (e.g. {args.out.with_suffix('.safetensors')}).")
    if args.resave is not None:
        try:
            metadata = resave(args.resave, args.out)
        except (ValueError, OSError) as exc:
            parser.error(f"--resave {args.resave}: {exc}")
        print(json.dumps({k: v for k, v in metadata.items() if k != "config"}, indent=1))
        return
    if not args.model_config.is_file():
        parser.error(f"--model-config {args.model_config} is not a file; copy "
                     f"{EMBEDDED_CONFIGS['tiny']} and edit it.")
    try:
        cfg = PretrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             workers=args.workers, threads=args.threads, snapshot_every=args.snapshot_every)
    except ValueError as exc:
        parser.error(str(exc))
    metadata = pretrain(cfg, args.out, args.model_config)
    print(json.dumps({k: v for k, v in metadata.items() if k != "config"}, indent=1))


if __name__ == "__main__":
    main()
