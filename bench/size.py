#!/usr/bin/env python3
"""kiln's release output size vs the toolchain's raw output and a hand-optimized pipeline
(issue 4), plus the run time of a CPU-bound guest optimized vs not.

For each guest (the rust-cli and rust-lib templates, examples/md2html, and the CPU-bound
tests/fixtures/cpu-guest):

  raw    cargo's wasm32-wasip2 release component (what the toolchain alone gives)
  kiln   `kiln build --release` (wasm-opt -Os on every core module, strip, metadata)
  kilnz  the same with `[release] optimize = "z"` and `strip = "symbols"` (names dropped too,
         as the hand pipeline's --strip-debug does); "z" also has rustc optimize for size
         (opt-level "z", LTO, one codegen unit)
  hand   `jco opt raw.wasm -- -Oz --strip-debug` (npm @bytecodealliance/jco, binaryen from npm):
         the only other tool that optimizes a component's core modules
  hand'  the same jco opt on what rustc gives under kilnz's settings (`--no-optimize`): the
         binaryen part alone, like for like

and the optimize step's time: kiln's (the kilnz build less the same build with
`--no-optimize`, cargo fresh) next to jco opt's on the same input (hand'),

and, for the CPU-bound guest, `kiln run` of cargo's release output, of kiln's default release
(-Os) and of kilnz (what opt-level "z" costs in speed), medians over --runs runs.

Usage: bench/size.py [--runs N] [--kiln PATH] [--jco-dir DIR]
jco is installed with npm into --jco-dir (default: a cache under bench/.jco) when missing.
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

import record

REPO = Path(__file__).resolve().parent.parent


def run(cmd, **kw):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{proc.stderr.decode()}")
    return proc.stdout


def ensure_jco(jco_dir):
    jco = jco_dir / "node_modules" / ".bin" / "jco"
    if not jco.exists():
        jco_dir.mkdir(parents=True, exist_ok=True)
        run(["npm", "install", "--silent", "--prefix", str(jco_dir), "@bytecodealliance/jco"])
    return jco


def set_optimize(project, level):
    manifest = project / "Kiln.toml"
    text = manifest.read_text() if manifest.exists() else ""
    text = "\n".join(l for l in text.splitlines() if not l.startswith(("optimize", "strip")))
    if "[release]" not in text:
        text += "\n[release]\n"
    text = text.replace("[release]", f"[release]\noptimize = \"{level}\"\nstrip = \"symbols\"")
    manifest.write_text(text + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--kiln", default=str(REPO / "target" / "release" / "kiln"))
    parser.add_argument("--jco-dir", default=str(REPO / "bench" / ".jco"))
    args = parser.parse_args()
    kiln = Path(args.kiln).resolve()
    if not kiln.is_file():
        sys.exit(f"{kiln} not found; build it with `cargo build --release` or pass --kiln")
    jco = ensure_jco(Path(args.jco_dir))

    scratch = Path(tempfile.mkdtemp(prefix="kiln-size"))
    env = dict(os.environ, KILN_CACHE_DIR=str(scratch / "cache"))
    env.pop("CI", None)
    run([kiln, "new", scratch / "hello", "--template", "rust-cli", "-q"], env=env)
    run([kiln, "new", scratch / "wordlib", "--template", "rust-lib", "-q"], env=env)
    shutil.copytree(REPO / "examples" / "md2html", scratch / "md2html", ignore=shutil.ignore_patterns("target"))
    shutil.copytree(REPO / "tests" / "fixtures" / "cpu-guest", scratch / "cpu-guest", ignore=shutil.ignore_patterns("target"))

    rows = []
    for name in ["hello", "wordlib", "md2html", "cpu-guest"]:
        project = scratch / name
        run([kiln, "build", "--release", "-q", "--no-optimize"], cwd=project, env=env)
        # Cargo writes every release build to the same file: keep this one, its default settings'.
        raw = scratch / f"{name}.raw.wasm"
        shutil.copy(project / "target" / "wasm32-wasip2" / "release" / f"{name.replace('-', '_') if name == 'wordlib' else name}.wasm", raw)
        run([kiln, "build", "--release", "-q"], cwd=project, env=env)
        out = project / "target" / "kiln" / "release" / f"{name}.wasm"
        kiln_size = out.stat().st_size
        shutil.copy(out, scratch / f"{name}.kiln.wasm")
        set_optimize(project, "z")
        run([kiln, "build", "--release", "-q"], cwd=project, env=env)
        kilnz_size = out.stat().st_size
        hand = scratch / f"{name}.hand.wasm"
        run([jco, "opt", raw, "-o", hand, "--", "-Oz", "--strip-debug"], env=env)
        # The optimize step alone: kilnz's build with and without it, cargo fresh either way.
        start = time.perf_counter()
        run([kiln, "build", "--release", "-q", "--no-optimize"], cwd=project, env=env)
        unoptimized = time.perf_counter() - start
        zraw = scratch / f"{name}.zraw.wasm"
        shutil.copy(out, zraw)
        start = time.perf_counter()
        run([kiln, "build", "--release", "-q"], cwd=project, env=env)
        kiln_opt = time.perf_counter() - start - unoptimized
        assert out.stat().st_size == kilnz_size, "the optimized build is reproducible"
        shutil.copy(out, scratch / f"{name}.kilnz.wasm")
        hand2 = scratch / f"{name}.hand2.wasm"
        start = time.perf_counter()
        run([jco, "opt", zraw, "-o", hand2, "--", "-Oz", "--strip-debug"], env=env)
        jco_opt = time.perf_counter() - start
        rows.append((name, raw.stat().st_size, kiln_size, kilnz_size, hand.stat().st_size,
                     hand2.stat().st_size, kiln_opt, jco_opt))

    print(f"kiln: {kiln}\n")
    print("| guest | raw | kiln -Os (names kept) | kiln -Oz, strip symbols | jco opt -Oz --strip-debug | kiln -Os / raw | kiln -Oz / hand |"
          " jco opt, same rustc settings | kiln -Oz / hand' | optimize: kiln | optimize: jco opt |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, raw, k, kz, hand, hand2, kt, jt in rows:
        print(f"| {name} | {raw / 1024:.1f} KiB | {k / 1024:.1f} KiB | {kz / 1024:.1f} KiB | {hand / 1024:.1f} KiB | {k / raw:.2f} | {kz / hand:.2f} |"
              f" {hand2 / 1024:.1f} KiB | {kz / hand2:.2f} | {kt:.2f} s | {jt:.2f} s |")
        record.record(f"release size `-Oz`, {name}", kz / 1024, "KiB",
                      baseline="`jco opt -Oz --strip-debug` of cargo's release output",
                      baseline_value=hand / 1024, goal="≤ 0.92×")
        record.record(f"optimize step `-Oz`, {name}", kt * 1000, "ms",
                      baseline="`jco opt -Oz --strip-debug`, same input", baseline_value=jt * 1000,
                      goal="< 1.0×")

    # Run time of the CPU-bound guest: cargo's release output as it is, kiln's default
    # release (-Os on rustc's opt-level 3), and `optimize = "z"` (rustc's opt-level "z" too).
    builds = {
        "cargo's output, unoptimized": scratch / "cpu-guest.raw.wasm",
        "kiln -Os": scratch / "cpu-guest.kiln.wasm",
        "kiln -Oz": scratch / "cpu-guest.kilnz.wasm",
    }
    for wasm in builds.values():  # warm the compiled-code cache
        run([kiln, "run", "-q", wasm, "--", "1000", "10"], env=env)
    times = {label: [] for label in builds}
    outputs = {}
    for _ in range(args.runs):
        for label, wasm in builds.items():
            start = time.perf_counter()
            outputs[label] = run([kiln, "run", "-q", wasm, "--", "20000000", "2000000"], env=env)
            times[label].append(time.perf_counter() - start)
    assert len(set(outputs.values())) == 1, "the builds of the CPU-bound guest disagree"
    base = statistics.median(times["cargo's output, unoptimized"])
    print(f"\ncpu-guest run time (median of {args.runs}):")
    for label in builds:
        t = statistics.median(times[label])
        print(f"  {label}: {t:.3f} s ({t / base:.2f}x)")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
