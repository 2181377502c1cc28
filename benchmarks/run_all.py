"""Run every benchmark in turn (``make bench``), keep each one's output, and list the summaries.

Each benchmark runs in its own process at the lowest CPU priority (``nice``), since the machine may be shared;
its output is shown as it comes and saved to ``--out/<name>.txt`` (default ``runs/benchmarks``).

    python benchmarks/run_all.py                       # everything (the ViT-B-16 parts take tens of minutes)
    python benchmarks/run_all.py --only text_pass memory
    python benchmarks/run_all.py --smoke               # every benchmark in its tiny configuration
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("training", "text_pass", "memory", "end_to_end", "cocoop")


def run_one(name: str, extra: list[str], out_dir: Path, nice: bool) -> tuple[int, list[str], float]:
    """Run ``bench_<name>.py`` with ``extra`` arguments, echoing and saving its output.

    Returns (exit code, its SUMMARY lines, seconds).
    """
    command = [sys.executable, str(HERE / f"bench_{name}.py"), *extra]
    if nice and hasattr(os, "nice"):
        command = ["nice", "-n", "19", *command]
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries: list[str] = []
    start = time.perf_counter()
    with open(out_dir / f"{name}.txt", "w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
            if line.startswith("SUMMARY:"):
                summaries.append(line.strip())
        code = process.wait()
    return code, summaries, time.perf_counter() - start


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--smoke", action="store_true", help="pass --smoke to every benchmark")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every benchmark (default 1)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks"), help="where each output is saved")
    parser.add_argument("--no-nice", action="store_true", help="run at normal priority")
    args = parser.parse_args(argv)
    extra = ["--threads", str(args.threads)] + (["--smoke"] if args.smoke else [])
    results = []
    for name in args.only:
        print(f"\n===== bench_{name}.py {' '.join(extra)} =====", flush=True)
        results.append((name, *run_one(name, extra, args.out, not args.no_nice)))
    print("\n===== summaries =====")
    for name, code, summaries, seconds in results:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"bench_{name}.py: {status}, {seconds:.0f} s")
        for line in summaries or ["(no SUMMARY line)"]:
            print(f"  {line}")
    print(f"outputs saved in {args.out}/")
    return 0 if all(code == 0 for _, code, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
