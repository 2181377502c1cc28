"""Reproduce the paper's grid: (protocol, dataset, backbone, shots, seed) runs, resumable, on one machine or a cluster.

    python -m coop_tutorial.reproduce                                    # the embedded grid, in-process (minutes)
    python -m coop_tutorial.reproduce --workers 2                        # the same on a 2-worker Dask LocalCluster
    python -m coop_tutorial.reproduce --world real --data-root ~/data --backbones RN50 ViT-B-16 \\
        --scheduler tcp://host:8786 --out /shared/coop-grid              # the paper's grid on a Dask cluster
    python -m coop_tutorial.reproduce --report-only --out runs/reproduce/embedded

Each run is a pure function of its ``RunSpec``: it loads the world's CLIP and data, draws the few-shot split
(the official draws in the real world), trains CoOp with the paper's recipe (``World.recipe``: the embedded preset
in the embedded world) and writes one JSON result file, atomically (temporary file, then rename). A rerun skips
runs whose file says ``ok``; a failed run records its error and traceback and does not stop the others (a rerun
tries it again). Runs sharing a (protocol, dataset, backbone) form one task, so a worker loads the model and
encodes the test set once for all their shots and seeds. The report puts mean +- std over seeds (``np.std``,
ddof=0, as the official ``parse_test_res.py``) beside the paper's numbers (``metadata/paper_results.json``, each
with its source) and draws the shot-scaling curves.

Protocols: ``few_shot`` (every main dataset, test accuracy) and ``domain_generalization`` (learn on ImageNet, or
its embedded stand-in ``shapes``, at 16 shots; test on it and its shifted sets). ``base_to_new`` is refused here
for now, with a pointer to ``python -m coop_tutorial.base_to_new``, which runs it (CoOp and CoCoOp).
"""
from __future__ import annotations

import argparse
import json
import socket
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ._io import atomic_path

PROTOCOLS = ("few_shot", "domain_generalization", "base_to_new")
AVAILABLE_PROTOCOLS = ("few_shot", "domain_generalization")
PAPER_SHOTS = (1, 2, 4, 8, 16)
PAPER_SEEDS = (1, 2, 3)
PAPER_BACKBONES = ("RN50", "RN101", "ViT-B-32", "ViT-B-16")
DG_SHOTS = 16  # the paper's domain-generalisation table learns on 16-shot ImageNet
RESULT_FORMAT = "coop-tutorial/reproduce-run"


class SchedulerUnreachable(ConnectionError):
    """No Dask scheduler answered at the given address."""


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid. ``precision``/``cached``/``epochs`` left at None/True/None mean the paper's recipe."""

    protocol: str
    dataset: str
    backbone: str
    shots: int
    seed: int
    world: str = "embedded"
    pretrained: Optional[str] = None
    data_root: Optional[str] = None
    precision: Optional[str] = None  # None: the recipe's (paper: fp16 on GPU, fp32 on CPU)
    cached: bool = True  # False: the official loop, a fresh augmentation every step
    epochs: Optional[int] = None  # None: the recipe's; set only for smoke runs (then not the paper's numbers)

    @property
    def key(self) -> str:
        """The result file's path under the output folder."""
        return f"{self.protocol}/{self.dataset}/{self.backbone.replace('/', '-')}/{self.shots}shots_seed{self.seed}.json"

    @property
    def group(self) -> tuple:
        """Runs with the same group share one task: one model load and one test encoding."""
        return (self.protocol, self.dataset, self.backbone, self.world, self.pretrained, self.data_root)

    def settings(self) -> dict:
        """What must match for an existing result to count as this run's."""
        return asdict(self)


# ------------------------------------------------------------------------------------------------------ grid
def make_grid(protocols: Sequence[str] = AVAILABLE_PROTOCOLS, datasets: Union[str, Sequence[str]] = "all",
              backbones: Optional[Sequence[str]] = None, shots: Sequence[int] = PAPER_SHOTS,
              seeds: Sequence[int] = PAPER_SEEDS, world: str = "embedded", **options: Any) -> list[RunSpec]:
    """The runs of a grid, validated before anything runs.

    Args:
        datasets: ``"all"`` (the world's main tasks; domain generalisation always learns on its source) or names.
        backbones: default ``["tiny"]`` (embedded) or ``["RN50"]`` (real); the paper's are ``PAPER_BACKBONES``.
        options: ``pretrained``, ``data_root``, ``precision``, ``cached``, ``epochs`` (see ``RunSpec``).

    Raises:
        ValueError: an unknown protocol, world, dataset, backbone, shot count or seed, naming the valid ones.
    """
    from .task_roles import SHIFT_SOURCES
    from .training import PRECISIONS
    from .worlds import World

    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"Unknown protocol(s) {unknown}; choose from {list(AVAILABLE_PROTOCOLS)}.")
    if "base_to_new" in protocols:
        raise ValueError("The base_to_new protocol is not part of this grid yet: run it with `python -m "
                         "coop_tutorial.base_to_new` (CoOp and CoCoOp, learned on the base classes, tested on both "
                         f"halves); this grid runs {list(AVAILABLE_PROTOCOLS)}.")
    if world not in ("embedded", "real"):
        raise ValueError(f"Unknown world {world!r}: use 'embedded' or 'real'.")
    if not protocols:
        raise ValueError(f"No protocol given; choose from {list(AVAILABLE_PROTOCOLS)}.")
    for name, values in (("shots", shots), ("seeds", seeds)):
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "shots" else 0)]
        if bad or not values:
            raise ValueError(f"{name} must be a non-empty list of integers >= {1 if name == 'shots' else 0}, "
                             f"got {list(values)}.")
    if options.get("precision") is not None and options["precision"] not in PRECISIONS:
        raise ValueError(f"Unknown precision {options['precision']!r}; use one of {list(PRECISIONS)}.")
    backbones = list(backbones or (["tiny"] if world == "embedded" else ["RN50"]))
    for backbone in backbones:
        _check_backbone(backbone, world)
    roles = World(kind=world, backbone=backbones[0]).roles(only_available=False)
    main = roles.main
    wanted = main if datasets == "all" or list(datasets) == ["all"] else [_canonical(d, world, main) for d in datasets]
    specs = []
    for protocol in protocols:
        if protocol == "few_shot":
            specs += [RunSpec(protocol, d, b, k, s, world, **options)
                      for b in backbones for d in wanted for k in shots for s in seeds]
        else:
            source = SHIFT_SOURCES[world]
            specs += [RunSpec(protocol, source, b, DG_SHOTS, s, world, **options) for b in backbones for s in seeds]
    return specs


def _check_backbone(backbone: str, world: str) -> None:
    from .clip_loader import list_models

    if world == "embedded":
        if backbone != "tiny":
            raise ValueError(f"Unknown backbone {backbone!r} for the embedded world: it has one model, 'tiny'.")
        return
    known = list_models()["open_clip"]
    if backbone.replace("/", "-") not in known:
        raise ValueError(f"Unknown backbone {backbone!r}; the paper's are {list(PAPER_BACKBONES)} (any name from "
                         f"coop_tutorial.list_models()['open_clip'] works).")


def _canonical(name: str, world: str, main: Sequence[str]) -> str:
    from .datasets import canonical_name

    found = canonical_name(name) if world == "real" else (name if name in main else None)
    if found is None or found not in main:
        raise ValueError(f"Unknown dataset {name!r} for the {world} world's few-shot grid; choose from {list(main)} "
                         f"or 'all'.")
    return found


# ------------------------------------------------------------------------------------------------------ runs
def result_path(out_dir: Union[str, Path], spec: RunSpec) -> Path:
    return Path(out_dir) / spec.key


def read_result(out_dir: Union[str, Path], spec: RunSpec) -> Optional[dict]:
    path = result_path(out_dir, spec)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # unreadable: run again (writes are atomic, so this is a file someone else broke)


def write_result(out_dir: Union[str, Path], spec: RunSpec, record: dict) -> Path:
    """Write one run's record atomically: a reader sees the old file or the new one, never half of one."""
    path = result_path(out_dir, spec)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=str))
    return path


def run_group(specs: Sequence[RunSpec], out_dir: str, threads: int = 1) -> list[dict]:
    """Run specs that share a model and dataset (``RunSpec.group``), writing each result as it ends.

    This is what a Dask worker executes: everything it needs is in its arguments, and all it leaves behind are
    the result files (and each learned context beside its result).
    """
    from .worlds import World

    torch.set_num_threads(threads)
    world, clip, shared, records = None, None, {}, []
    for spec in specs:
        start = time.perf_counter()
        try:
            world = world or World(kind=spec.world, backbone=spec.backbone, pretrained=spec.pretrained,
                                   data_root=spec.data_root)
            clip = clip or world.load_clip()
            outcome = _run(spec, world, clip, shared, out_dir)
            record = {"status": "ok", **outcome}
        except Exception as exc:  # recorded, and the next run goes on: one bad dataset must not stop a grid
            record = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc(limit=8)}
        record.update(format=RESULT_FORMAT, spec=spec.settings(), seconds=round(time.perf_counter() - start, 3),
                      host=socket.gethostname(), finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        write_result(out_dir, spec, record)
        records.append(record)
    return records


def _config(spec: RunSpec, world):
    config = world.recipe(dataset=spec.dataset)(spec.shots)
    changes: dict[str, Any] = dict(seed=spec.seed, progress=False, cached=spec.cached)
    if spec.precision is not None:
        changes["precision"] = spec.precision
    if spec.epochs is not None:
        changes.update(epochs=spec.epochs, warmup_epochs=min(config.warmup_epochs, spec.epochs - 1))
    config = config.replace(**changes)
    return config.replace(eval_every=config.epochs)  # validation after the last epoch only (it picks nothing)


def _test_set(name: str, world, clip, shared: dict) -> dict:
    """A test split encoded once per task, with its zero-shot accuracy."""
    if name not in shared:
        from .features import encode_dataset
        from .evaluation import score
        from .task_features import task_templates
        from .zero_shot import zero_shot_classifier

        test = world.load_task(name, "test")
        features = encode_dataset(clip, test, progress=False, name=f"{name}-test")
        templates = task_templates(test, name)
        zero = zero_shot_classifier(clip, list(test.classnames), templates[0])
        shared[name] = {"features": features, "classnames": list(test.classnames),
                        "zero_shot": 100 * score(zero, features)}
    return shared[name]


def _draws(spec: RunSpec, world):
    from .few_shot import draw_method, few_shot_split, few_shot_val_split, official_few_shot_splits

    train = world.load_task(spec.dataset, "train")
    val = None if spec.dataset == "imagenet" else world.load_task(spec.dataset, "val")  # ImageNet: official draws no val
    if draw_method(train) == "official":
        return official_few_shot_splits(train, val, spec.shots, spec.seed)
    return (few_shot_split(train, spec.shots, seed=spec.seed),
            None if val is None else few_shot_val_split(val, spec.shots, seed=spec.seed))


def _run(spec: RunSpec, world, clip, shared: dict, out_dir: str) -> dict:
    from .checkpoint import save_context
    from .classifier import CoOpClassifier
    from .evaluation import score
    from .training import train_coop

    config = _config(spec, world)
    targets = [spec.dataset]
    if spec.protocol == "domain_generalization":
        targets += world.roles(only_available=True).shifts
    tests = {name: _test_set(name, world, clip, shared) for name in targets}
    train, val = _draws(spec, world)
    result = train_coop(clip, train, val, config=config)
    accuracies = {}
    for name, test in tests.items():
        classifier = result.classifier
        if test["classnames"] != list(train.classnames):  # ImageNet-A/-R: 200 classes, same context
            classifier = CoOpClassifier(result.classifier.clip, result.learner.with_classnames(
                result.classifier.clip, test["classnames"]))
            classifier.eval()
        accuracies[name] = 100 * score(classifier, test["features"])
    save_context(result_path(out_dir, spec).with_suffix(".safetensors"), result,
                 extra={"spec": spec.settings(), "accuracy": accuracies})
    last = result.history[-1]
    return {"accuracy": accuracies, "zero_shot": {n: t["zero_shot"] for n, t in tests.items()},
            "val_accuracy": None if last["val_acc"] is None else 100 * last["val_acc"],
            "train_loss": last["loss"], "config": config.to_dict(), "n_train": len(train)}


# ------------------------------------------------------------------------------------------------------ the grid
@dataclass
class GridOutcome:
    """What ``run_grid`` did: runs executed now, runs skipped as already finished, and the failures."""

    ran: int
    skipped: int
    failed: list[dict]
    out_dir: Path


def pending_runs(specs: Sequence[RunSpec], out_dir: Union[str, Path], retry_failed: bool = True) -> list[RunSpec]:
    """The specs without a finished result. Raises a ValueError when the folder holds a run of the same key
    made with other settings (precision, loop, epochs, weights...): results must not mix."""
    pending = []
    for spec in specs:
        record = read_result(out_dir, spec)
        if record is None:
            pending.append(spec)
            continue
        if record.get("spec") != spec.settings():
            differ = {k: (record.get("spec", {}).get(k), v) for k, v in spec.settings().items()
                      if record.get("spec", {}).get(k) != v}
            raise ValueError(f"{result_path(out_dir, spec)} was made with other settings (saved, asked): {differ}. "
                             f"Use another --out folder for this grid, or delete that folder's results.")
        if record.get("status") != "ok" and retry_failed:
            pending.append(spec)
    return pending


def _groups(specs: Iterable[RunSpec]) -> list[list[RunSpec]]:
    groups: dict[tuple, list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.group, []).append(spec)
    return list(groups.values())


def run_grid(specs: Sequence[RunSpec], out_dir: Union[str, Path], workers: int = 0, scheduler: Optional[str] = None,
             threads: int = 1, retry_failed: bool = True, progress: bool = True,
             connect_timeout: float = 10.0) -> GridOutcome:
    """Run the specs not finished yet, in-process (default), on a local Dask cluster of ``workers`` processes, or
    on the Dask scheduler at ``scheduler`` (e.g. ``"tcp://host:8786"``; its workers must see ``out_dir``).

    Raises:
        SchedulerUnreachable: nothing answers at ``scheduler`` (finished results stay where they are).
    """
    if workers and scheduler:
        raise ValueError("Pass either workers (a local cluster) or scheduler (an existing cluster), not both.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pending = pending_runs(specs, out, retry_failed)
    groups = _groups(pending)
    if groups and (workers or scheduler):
        _run_on_dask(groups, out, workers, scheduler, threads, progress, connect_timeout, len(specs) - len(pending))
    else:
        for group in tqdm(groups, desc="reproduce", disable=not progress):
            run_group(group, str(out), threads)
    records = [read_result(out, spec) or {} for spec in pending]
    failed = [r for r in records if r.get("status") != "ok"]
    return GridOutcome(ran=len(pending), skipped=len(specs) - len(pending), failed=failed, out_dir=out)


def _run_on_dask(groups: list[list[RunSpec]], out: Path, workers: int, scheduler: Optional[str], threads: int,
                 progress: bool, connect_timeout: float, finished: int) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise ImportError("Running on several workers needs Dask distributed: pip install 'dask[distributed]' "
                          "(or drop --workers/--scheduler to run in this process).") from exc
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{connect_timeout}s")
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachable(
                f"No Dask scheduler answers at {scheduler} ({type(exc).__name__}: {exc}). Start one there "
                f"(`dask scheduler`, then `dask worker {scheduler}` on each machine), check the address and port, "
                f"or drop --scheduler to run in this process. The {finished} finished result(s) in {out} are kept; "
                f"the same command resumes from them.") from None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        futures = client.map(run_group, groups, out_dir=str(out), threads=threads, pure=False)
        group_of = {future.key: group for future, group in zip(futures, groups)}
        for future in tqdm(as_completed(futures), total=len(futures), desc="reproduce (dask)", disable=not progress):
            try:
                future.result()
            except Exception as exc:  # the task itself died (a worker lost, out of memory): record, go on
                for spec in group_of[future.key]:
                    if (read_result(out, spec) or {}).get("status") != "ok":
                        write_result(out, spec, {"status": "failed", "format": RESULT_FORMAT,
                                                 "spec": spec.settings(), "error": f"{type(exc).__name__}: {exc} "
                                                 f"(the Dask task running this run's group failed)"})
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------------------------------------------ report
def _records(out_dir: Union[str, Path]) -> Iterable[tuple[Path, dict]]:
    """``(path, record)`` of every grid result file under ``out_dir``; unreadable or foreign JSON is skipped."""
    for path in sorted(Path(out_dir).rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and record.get("format") == RESULT_FORMAT:
            yield path, record


def load_results(out_dir: Union[str, Path]) -> pd.DataFrame:
    """Every finished run under ``out_dir``: one row per (run, test set, method) with its accuracy (%)."""
    rows = []
    for _, record in _records(out_dir):
        if record.get("status") != "ok":
            continue
        spec = record["spec"]
        base = dict(protocol=spec["protocol"], dataset=spec["dataset"], backbone=spec["backbone"].replace("/", "-"),
                    seed=spec["seed"])
        for target, value in record["accuracy"].items():
            rows.append(dict(base, target=target, method="coop", shots=spec["shots"], accuracy=value))
        for target, value in record.get("zero_shot", {}).items():
            rows.append(dict(base, target=target, method="zero_shot", shots=0, accuracy=value))
    columns = ["protocol", "dataset", "backbone", "seed", "target", "method", "shots", "accuracy"]
    frame = pd.DataFrame(rows, columns=columns)
    # Zero-shot is computed by every run of a task; keep one row per (task, target, backbone): it has no seed.
    zero = frame["method"] == "zero_shot"
    frame.loc[zero, "seed"] = 0
    return frame.drop_duplicates(subset=["protocol", "dataset", "backbone", "seed", "target", "method", "shots"])


def failed_runs(out_dir: Union[str, Path]) -> pd.DataFrame:
    rows = []
    for path, record in _records(out_dir):
        if record.get("status") != "ok":
            rows.append(dict(run=str(path.relative_to(out_dir)), error=record.get("error", "?")))
    return pd.DataFrame(rows, columns=["run", "error"])


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard deviation over seeds as the official ``parse_test_res.py``: ``np.std`` (ddof=0)."""
    values = np.asarray(list(values), dtype=float)
    return float(np.mean(values)), float(np.std(values))


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean +- std over seeds per (protocol, dataset, backbone, target, method, shots), beside the paper's number."""
    keys = ["protocol", "dataset", "backbone", "target", "method", "shots"]
    rows = []
    for key, group in frame.groupby(keys, sort=False):
        mean, std = mean_std(group["accuracy"])
        rows.append(dict(zip(keys, key), mean=mean, std=std, seeds=len(group),
                         ours=f"{mean:.2f} +- {std:.2f}"))
    table = pd.DataFrame(rows, columns=keys + ["mean", "std", "seeds", "ours"])
    table = table.sort_values(["protocol", "dataset", "backbone", "target", "method", "shots"], ignore_index=True)
    paper = paper_results()
    merged = table.merge(paper[keys + ["accuracy", "source"]], on=keys, how="left")
    merged = merged.rename(columns={"accuracy": "paper"})
    merged["ours_minus_paper"] = merged["mean"] - merged["paper"]
    return merged


def paper_results() -> pd.DataFrame:
    """The published numbers the report compares with (``metadata/paper_results.json``; each row has a source)."""
    path = Path(__file__).parent / "metadata" / "paper_results.json"
    frame = pd.DataFrame(json.loads(path.read_text())["rows"])
    frame["backbone"] = frame["backbone"].str.replace("/", "-")
    return frame


def _with_averages(table: pd.DataFrame) -> pd.DataFrame:
    """Add the 'average' rows of the few-shot protocol (mean over datasets), where the paper quotes averages."""
    few = table[table["protocol"] == "few_shot"]
    if few.empty:
        return table
    rows = []
    for (backbone, method, shots), group in few.groupby(["backbone", "method", "shots"], sort=False):
        rows.append(dict(protocol="few_shot", dataset="average", backbone=backbone, target="average", method=method,
                         shots=shots, mean=group["mean"].mean(), std=float("nan"), seeds=int(group["seeds"].min()),
                         ours=f"{group['mean'].mean():.2f} (over {len(group)} datasets)"))
    extra = pd.DataFrame(rows)
    paper = paper_results()
    keys = ["protocol", "dataset", "backbone", "target", "method", "shots"]
    extra = extra.merge(paper[keys + ["accuracy", "source"]], on=keys, how="left").rename(columns={"accuracy": "paper"})
    extra["ours_minus_paper"] = extra["mean"] - extra["paper"]
    return pd.concat([table, extra], ignore_index=True)


def report(out_dir: Union[str, Path], figure: bool = True) -> str:
    """The report as Markdown (also written to ``out_dir/report.md``; the figure to ``out_dir/report.png``)."""
    out = Path(out_dir)
    frame = load_results(out)
    lines = [f"# CoOp reproduction: {out}", "", _settings_line(out), ""]
    if frame.empty:
        lines.append("No finished runs yet.")
    else:
        table = _with_averages(summarize(frame))
        shown = table.copy()
        shown["paper"] = shown["paper"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
        shown["ours_minus_paper"] = shown["ours_minus_paper"].map(lambda v: "" if pd.isna(v) else f"{v:+.1f}")
        columns = ["dataset", "target", "backbone", "method", "shots", "ours", "seeds", "paper", "ours_minus_paper"]
        for protocol, part in shown.groupby("protocol", sort=False):
            lines += [f"## {protocol}", "", "Accuracy (%), mean +- std over seeds (np.std, ddof=0, as parse_test_res.py).",
                      "", part[columns].to_markdown(index=False), ""]
        sources = sorted(set(table["source"].dropna()))
        if sources:
            lines += ["Paper numbers: " + " | ".join(sources), ""]
        if figure:
            fig = report_figure(frame)
            if fig is not None:
                from .plots import save_figure

                save_figure(fig, out / "report.png")
                lines += ["![shot scaling](report.png)", ""]
    failures = failed_runs(out)
    if not failures.empty:
        lines += [f"## Failed runs ({len(failures)}; rerun the command to retry them)", "",
                  failures.to_markdown(index=False), ""]
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    return text


def _settings_line(out: Path) -> str:
    """How the runs were made (precision, loop, epochs), so a smoke or non-paper setting is never mistaken."""
    seen = set()
    for path in out.rglob("*.json"):
        try:
            spec = json.loads(path.read_text()).get("spec") or {}
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if spec:
            seen.add((spec.get("precision") or "the recipe's", "cached views" if spec.get("cached", True)
                      else "official fresh crops", "the recipe's" if spec.get("epochs") is None
                      else f"{spec['epochs']} (smoke: not the paper's recipe)"))
    return "Runs made with: " + "; ".join(f"precision {p}, loop {l}, epochs {e}" for p, l, e in sorted(seen)) \
        if seen else "Runs made with: (none yet)"


def report_figure(frame: pd.DataFrame):
    """Shot-scaling curves (mean +- std over seeds) per dataset and backbone, zero-shot as a dashed line."""
    import matplotlib.pyplot as plt

    few = frame[(frame["protocol"] == "few_shot") & (frame["target"] == frame["dataset"])]
    if few.empty:
        return None
    panels = list(few.groupby(["dataset", "backbone"], sort=False))
    n_cols = min(4, len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols, 2.6 * n_rows), squeeze=False)
    for ax, ((dataset, backbone), part) in zip(axes.flat, panels):
        coop = part[part["method"] == "coop"].groupby("shots")["accuracy"]
        stats = pd.DataFrame({"mean": coop.mean(), "std": coop.agg(lambda v: np.std(v.to_numpy()))})
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label="CoOp")
        zero = part[part["method"] == "zero_shot"]["accuracy"]
        if not zero.empty:
            ax.axhline(zero.mean(), linestyle="--", color="grey", label="zero-shot")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(stats.index))
        ax.set_xticklabels([str(k) for k in sorted(stats.index)])
        ax.set_title(f"{dataset} ({backbone})", fontsize=9)
        ax.set_xlabel("shots per class")
        ax.set_ylabel("accuracy (%)")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------------ command
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m coop_tutorial.reproduce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", choices=("embedded", "real"), default="embedded")
    parser.add_argument("--protocols", nargs="+", default=list(AVAILABLE_PROTOCOLS), metavar="PROTOCOL",
                        help=f"from {list(AVAILABLE_PROTOCOLS)} (base_to_new: python -m coop_tutorial.base_to_new)")
    parser.add_argument("--datasets", nargs="+", default=["all"], help="'all' or names (few-shot protocol)")
    parser.add_argument("--backbones", nargs="+", default=None,
                        help=f"default: tiny (embedded) or RN50 (real); the paper's: {' '.join(PAPER_BACKBONES)}")
    parser.add_argument("--shots", type=int, nargs="+", default=list(PAPER_SHOTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(PAPER_SEEDS))
    parser.add_argument("--out", default=None, help="results folder (default runs/reproduce/<world>)")
    parser.add_argument("--data-root", default=None, help="real world: where the datasets are")
    parser.add_argument("--pretrained", default=None, help="weights tag or file (default: the backbone's)")
    parser.add_argument("--precision", default=None, help="fp32, fp16, bf16 or amp (default: the recipe's)")
    parser.add_argument("--uncached", action="store_true", help="the official loop: a fresh crop every step")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (smoke runs only)")
    engine = parser.add_mutually_exclusive_group()
    engine.add_argument("--workers", type=int, default=0, help="run on a local Dask cluster of N worker processes")
    engine.add_argument("--scheduler", default=None, help="run on the Dask cluster at this address (tcp://host:8786)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--keep-failed", action="store_true", help="do not retry runs that failed before")
    parser.add_argument("--report-only", action="store_true", help="only print the report of --out")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The ``reproduce`` command: run (or resume) the grid, then print the report. Returns the exit status."""
    args = build_parser().parse_args(argv)
    out = Path(args.out or Path("runs") / "reproduce" / args.world)
    if args.report_only and not out.is_dir():
        print(f"error: no results folder at {out}; run the grid first (drop --report-only) or pass --out.")
        return 2
    if not args.report_only:
        options = dict(pretrained=args.pretrained, data_root=args.data_root, precision=args.precision,
                       cached=not args.uncached, epochs=args.epochs)
        try:
            specs = make_grid(args.protocols, args.datasets, args.backbones, args.shots, args.seeds, args.world,
                              **options)
            start = time.perf_counter()
            outcome = run_grid(specs, out, workers=args.workers, scheduler=args.scheduler, threads=args.threads,
                               retry_failed=not args.keep_failed)
        except (ValueError, SchedulerUnreachable) as exc:
            print(f"error: {exc}")
            return 2
        print(f"{outcome.ran} run(s) now, {outcome.skipped} already finished, {len(outcome.failed)} failed "
              f"({time.perf_counter() - start:.0f} s); results in {out}")
    print(report(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
