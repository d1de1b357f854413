#!/usr/bin/env python3
"""kiln start-up and no-op build benchmarks (issue 2).

Measures, as medians over --runs runs (default 7), in one session so the ratios compare like
with like:

  1. `kiln run md2html.wasm` with an empty compiled-code cache vs a warm cache
     (the example converts docs/manifest.md from stdin to stdout);
  2. a no-op `kiln build` vs a no-op `cargo build --target wasm32-wasip2` of the example.

Usage: bench/startup.py [--runs N] [--kiln PATH]
The kiln binary defaults to target/release/kiln (build it with `cargo build --release`).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "md2html"


def timed(cmd, cwd, env, stdin_path=None):
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{proc.stderr.decode()}")
    return elapsed


def median_ms(samples):
    return statistics.median(samples) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--kiln", default=str(REPO / "target" / "release" / "kiln"))
    args = parser.parse_args()
    kiln = Path(args.kiln).resolve()
    if not kiln.is_file():
        sys.exit(f"{kiln} not found; build it with `cargo build --release` or pass --kiln")

    scratch = Path(tempfile.mkdtemp(prefix="kiln-bench"))
    env = dict(os.environ, KILN_CACHE_DIR=str(scratch / "cache"))
    env.pop("CI", None)
    subprocess.run([kiln, "build", "-q"], cwd=EXAMPLE, env=env, check=True)
    wasm = EXAMPLE / "target" / "kiln" / "debug" / "md2html.wasm"
    doc = REPO / "docs" / "manifest.md"
    run = [kiln, "run", "-q", wasm]

    cold, warm = [], []
    for _ in range(args.runs):
        shutil.rmtree(scratch / "cache", ignore_errors=True)
        cold.append(timed(run, EXAMPLE, env, doc))
        warm.append(timed(run, EXAMPLE, env, doc))

    kiln_noop, cargo_noop = [], []
    cargo = [os.environ.get("CARGO", "cargo"), "build", "-q", "--target", "wasm32-wasip2", "--bin", "md2html"]
    for _ in range(args.runs):
        kiln_noop.append(timed([kiln, "build", "-q"], EXAMPLE, env))
        cargo_noop.append(timed(cargo, EXAMPLE, env))

    shutil.rmtree(scratch, ignore_errors=True)
    size = wasm.stat().st_size
    print(f"kiln: {kiln}  runs: {args.runs}  component: {wasm.relative_to(REPO)} ({size / 1024 / 1024:.1f} MiB)\n")
    print("| measurement | median | baseline | ratio |")
    print("|---|---|---|---|")
    c, w = median_ms(cold), median_ms(warm)
    print(f"| `kiln run` md2html, warm cache vs empty cache | {w:.0f} ms | {c:.0f} ms | {w / c:.2f}x |")
    k, g = median_ms(kiln_noop), median_ms(cargo_noop)
    print(f"| no-op `kiln build` vs no-op `cargo build --target wasm32-wasip2` | {k:.0f} ms | {g:.0f} ms | {k / g:.2f}x |")


if __name__ == "__main__":
    main()
