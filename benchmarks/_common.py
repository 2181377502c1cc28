"""Helpers shared by the benchmark scripts: machine description, timing, tables, subprocess workers.

Every script prints a header describing the machine (CPU, cores, torch, threads, load), one or more
Markdown tables, and a one-line ``SUMMARY:``. Nothing here asserts speed: the numbers are reported, and
targets are stated as holding or not.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

WORKER_MARK = "BENCH-WORKER-RESULT "


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads (the benchmarks default to 1: the machine is shared) and return it."""
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available_memory_bytes() -> Optional[int]:
    """Memory the OS could give a new allocation now (``MemAvailable``), or None where unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_header(threads: int, title: str) -> str:
    """A few lines naming the benchmark and the machine it ran on."""
    import open_clip

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    memory = available_memory_bytes()
    lines = [
        f"# {title}",
        f"machine: {os.cpu_count()} CPU cores ({cpu_model()}), GPU: {device}, "
        f"RAM available: {'n/a' if memory is None else f'{memory / 2**30:.1f} GiB'}",
        f"software: python {platform.python_version()}, torch {torch.__version__}, open_clip {open_clip.__version__}",
        f"torch threads: {threads} (torch.set_num_threads); load average at start: {load}",
        f"started: {time.strftime('%Y-%m-%d %H:%M:%S')}",
    ]
    return "\n".join(lines)


def median(values: Iterable[float]) -> float:
    """Median of the values (NaN when there are none)."""
    values = list(values)
    return statistics.median(values) if values else float("nan")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call of ``fn``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def markdown_table(rows: Sequence[dict], columns: Optional[Sequence[str]] = None) -> str:
    """Rows (dicts) as a Markdown table, columns in the given order (default: the first row's keys)."""
    from tabulate import tabulate

    columns = list(columns or (rows[0].keys() if rows else []))
    body = [["" if row.get(c) is None else row.get(c) for c in columns] for row in rows]
    return tabulate(body, headers=columns, tablefmt="github", disable_numparse=True)


def fmt_seconds(seconds: Optional[float]) -> str:
    """Seconds with units that keep 3 significant digits (``1.23 ms``, ``45.6 s``, ``2.1 h``)."""
    if seconds is None or seconds != seconds:
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    if seconds < 600:
        return f"{seconds:.3g} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:,.0f} days" if seconds >= 100 * 86400 else f"{seconds / 86400:.3g} days"


def fmt_bytes(n: Optional[float]) -> str:
    """Bytes as MiB or GiB."""
    if n is None or n != n:
        return "n/a"
    return f"{n / 2**30:.2f} GiB" if abs(n) >= 2**30 else f"{n / 2**20:.0f} MiB"


def holds(ok: bool) -> str:
    return "HOLDS" if ok else "DOES NOT HOLD"


def class_names(n: int) -> list[str]:
    """``n`` distinct class names: ImageNet's (``ct.IMAGENET_CLASSNAMES``, 1000 distinct names with realistic
    token lengths, so a truncated pass is not flattered), then numbered copies of them beyond 1000."""
    from coop_tutorial import IMAGENET_CLASSNAMES

    base = list(IMAGENET_CLASSNAMES)
    return [base[i % len(base)] + ("" if i < len(base) else f" {i // len(base)}") for i in range(n)]


def too_big_for_ram(points: Sequence[tuple[int, float]], n: int, share: float = 0.7) -> Optional[float]:
    """Predicted bytes for ``n`` classes when that exceeds ``share`` of the RAM available now, else None.

    The prediction is the larger of the line through the measured ``(classes, bytes)`` points and the
    proportional guess from the largest one (``bytes * n / classes``, an over-estimate when there is a fixed
    part): running out of memory on a shared machine would kill other people's jobs, so the guard errs high.
    """
    points = [(c, b) for c, b in points if b is not None]
    available = available_memory_bytes()
    if not points or available is None:
        return None
    largest = max(points)
    guesses = [largest[1] * n / largest[0]]
    if len({c for c, _ in points}) >= 2:
        import numpy as np

        slope, intercept = np.polyfit([c for c, _ in points], [b for _, b in points], 1)
        guesses.append(float(intercept + slope * n))
    predicted = max(guesses)
    return predicted if predicted > share * available else None


def run_worker(script: Path, payload: dict, timeout: Optional[float] = None) -> dict:
    """Run ``script --worker JSON`` in a fresh Python process and return the dict it reports.

    A fresh process per measurement isolates peak memory (``ru_maxrss`` only grows) and keeps one
    configuration's allocator state from leaking into the next.
    """
    command = [sys.executable, str(script), "--worker", json.dumps(payload)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=Path.cwd())
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(WORKER_MARK):
            return json.loads(line[len(WORKER_MARK):])
    tail = (done.stdout + done.stderr)[-3000:]
    raise RuntimeError(f"worker {script.name} {payload} failed with exit code {done.returncode}:\n{tail}")


def report_worker_result(result: dict) -> None:
    """What a worker prints last, for ``run_worker`` to read."""
    print(WORKER_MARK + json.dumps(result), flush=True)


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def current_rss_bytes() -> int:
    """Resident memory of this process now."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        fields = Path("/proc/self/statm").read_text().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def add_common_arguments(parser: argparse.ArgumentParser, smoke_help: str, worker: bool = False) -> None:
    """``--threads`` and ``--smoke`` (every benchmark), and the hidden ``--worker`` of scripts that measure in
    fresh processes (see ``run_worker`` / ``serve_worker``)."""
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; the machine is shared)")
    parser.add_argument("--smoke", action="store_true", help=smoke_help)
    if worker:
        parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)


def serve_worker(args: argparse.Namespace, worker: Callable[[dict], dict]) -> bool:
    """When this process was started by ``run_worker``, run ``worker`` on its payload, report, and return True."""
    if getattr(args, "worker", None) is None:
        return False
    report_worker_result(worker(json.loads(args.worker)))
    return True


def add_embedded_weights_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--embedded-pretrained", default="auto",
                        help="'auto' (shipped weights, else random with a note), 'random', or a checkpoint path")


def embedded_weights(choice: str) -> tuple[Optional[str], str]:
    """(``pretrained`` for ``load_clip("tiny")``, a note on which weights) for ``--embedded-pretrained``."""
    if choice == "auto":
        return embedded_weights_note()
    return choice, f"embedded model: tiny, weights {choice!r}"


def embedded_weights_note() -> tuple[Optional[str], str]:
    """(``pretrained`` argument for ``load_clip("tiny")``, a note on which weights that is).

    The shipped weights are read at run time (they may be retrained); without them the random
    initialisation is used, and accuracies mean nothing, which the note says.
    """
    import hashlib

    from coop_tutorial.embedded.weights import EMBEDDED_MODELS

    path = EMBEDDED_MODELS["tiny"]
    if not path.exists():
        return "random", (f"embedded model: tiny with RANDOM weights ({path.name} is not shipped yet): "
                          f"timings are valid, accuracies are meaningless")
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:10]
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    return None, f"embedded model: tiny, shipped weights {path.name} (sha1 {digest}, modified {stamp})"


class RandomImages(torch.utils.data.Dataset):
    """``n`` random RGB noise images of ``size`` px as PIL images, labels cycling over ``classnames`` (benchmark inputs: content does not matter)."""

    def __init__(self, n: int, size: int, classnames: Sequence[str], seed: int = 0):
        rng = np.random.default_rng(seed)
        self.arrays = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
        self.classnames = list(classnames)
        self.targets = [i % len(self.classnames) for i in range(n)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return Image.fromarray(self.arrays[index]), self.targets[index]
