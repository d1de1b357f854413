#!/usr/bin/env python3
"""Bundled-files benchmark (issue 6): the vfs component's read speed, start-up and size cost.

Copies the Rust reader fixture (tests/fixtures/reader-rust: `cat PATH...` copies files to
stdout, `stat PATH` prints a size) into a scratch directory four times and builds each with
`kiln build --release`: with no bundle (the `[[bundle]]` table removed from Kiln.toml), with
an empty `assets/`, with `assets/` of 10,000 files of 20 bytes (d00..d99, 100 files each) and
with `assets/big.bin`, 64 MiB of random bytes. Then measures, as medians over --runs rounds
(default 7) after one warm-up run per case (kiln caches compiled code), in one session so the
ratios compare like with like:

  1. reading the 64 MiB file: `kiln run FILE -- cat /assets/big.bin` (bundled) vs the same
     component reading a copy of it through `--dir DATA::/data` (`cat /data/big.bin`), stdout
     to /dev/null; `stat` of the same file in each mode is the start-up, so the read net of
     start-up (cat minus stat) and its throughput are given too;
  2. start-up: `cat` without paths (prints nothing) of each component, 10,000 files, an empty
     bundle and the 64 MiB bundle vs no bundle; `stat /assets/d00/f00000.txt` with 10,000 files;
  3. build: the first release build of each project (one run, includes compiling the guest)
     and, as medians, rebuilds with the output removed (cargo is fresh, so this is kiln's
     stages: strip, wasm-opt, bundle, metadata), 10,000 files vs no bundle;
  4. size: each release component vs the one without a bundle, and the vfs core module
     kiln embeds (vfs/kiln_vfs.wasm).

Usage: bench/bundle.py [--runs N] [--kiln PATH]
The kiln binary defaults to target/release/kiln (build it with `cargo build --release --bins`).
"""

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "reader-rust"
BIG = 64 * 1024 * 1024


def timed(cmd, cwd, env, expect=None):
    """Wall time of `cmd`; stdout is checked against `expect` (bytes) when given, else discarded."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE if expect is not None else subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or (expect is not None and proc.stdout != expect):
        out = proc.stdout[:200].decode(errors="replace") if proc.stdout else ""
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out}{proc.stderr.decode()}")
    return elapsed


def project(kiln, scratch, env, name, fill):
    """A copy of the reader fixture named `name`: `fill(assets)` populates its assets/, or the
    bundle is dropped when `fill` is None. Returns (component path, first build time)."""
    root = scratch / name
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("target"))
    manifest = root / "Kiln.toml"
    if fill is None:
        text = re.sub(r"\[\[bundle\]\][^\[]*", "", manifest.read_text())
        assert "bundle" not in text and "source" not in text, text
        manifest.write_text(text)
    else:
        (root / "assets").mkdir()
        fill(root / "assets")
    build = timed([kiln, "build", "-q", "--release"], root, env)
    return root / "target" / "kiln" / "release" / "reader-rust.wasm", build


def many_files(assets):
    for d in range(100):
        (assets / f"d{d:02}").mkdir()
        for f in range(d * 100, d * 100 + 100):
            (assets / f"d{d:02}" / f"f{f:05}.txt").write_text(f"file {f:05} of 10000\n")


def kib(n):
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--kiln", default=str(REPO / "target" / "release" / "kiln"))
    args = parser.parse_args()
    kiln = Path(args.kiln).resolve()
    if not kiln.is_file():
        sys.exit(f"{kiln} not found; build it with `cargo build --release --bins` or pass --kiln")

    scratch = Path(tempfile.mkdtemp(prefix="kiln-bench-bundle"))
    env = dict(os.environ, KILN_CACHE_DIR=str(scratch / "cache"))
    env.pop("CI", None)
    data = os.urandom(BIG)
    (scratch / "data").mkdir()
    (scratch / "data" / "big.bin").write_bytes(data)
    wasm, first = {}, {}
    for name, fill in [("none", None), ("empty", lambda a: None), ("many", many_files),
                       ("big", lambda a: (a / "big.bin").write_bytes(data))]:
        wasm[name], first[name] = project(kiln, scratch, env, name, fill)
    sizes = {name: path.stat().st_size for name, path in wasm.items()}

    run = lambda name, *rest: [kiln, "run", "-q", *rest, wasm[name], "--"]
    host = ("--dir", f"{scratch / 'data'}::/data")
    cases = {
        "cat bundled": (run("big") + ["cat", "/assets/big.bin"], data),
        "cat dir": (run("big", *host) + ["cat", "/data/big.bin"], data),
        "stat bundled": (run("big") + ["stat", "/assets/big.bin"], f"file {BIG}\n".encode()),
        "stat dir": (run("big", *host) + ["stat", "/data/big.bin"], f"file {BIG}\n".encode()),
        "start none": (run("none") + ["cat"], b""),
        "start empty": (run("empty") + ["cat"], b""),
        "start many": (run("many") + ["cat"], b""),
        "start big": (run("big") + ["cat"], b""),
        "stat many": (run("many") + ["stat", "/assets/d00/f00000.txt"], b"file 20\n"),
    }
    samples = {name: [] for name in cases}
    for cmd, expect in cases.values():  # warm the compiled-code and page caches, check output
        timed(cmd, scratch, env, expect)
    for _ in range(args.runs):
        for name, (cmd, _) in cases.items():
            samples[name].append(timed(cmd, scratch, env))
    rebuild = {"none": [], "many": []}
    for _ in range(args.runs):
        for name, s in rebuild.items():
            wasm[name].unlink()
            s.append(timed([kiln, "build", "-q", "--release"], scratch / name, env))
    shutil.rmtree(scratch, ignore_errors=True)

    m = {name: statistics.median(s) * 1000 for name, s in samples.items()}
    rb = {name: statistics.median(s) * 1000 for name, s in rebuild.items()}
    net_b, net_d = m["cat bundled"] - m["stat bundled"], m["cat dir"] - m["stat dir"]
    mibs = lambda ms: f"{BIG / 1024 / 1024 / (ms / 1000):.0f} MiB/s" if ms > 0 else "n/a"
    print(f"kiln: {kiln}  runs: {args.runs}  guest: {FIXTURE.relative_to(REPO)}\n")
    print("| measurement | median | baseline | ratio |")
    print("|---|---|---|---|")
    rows = [
        ("read 64 MiB (`cat`): bundled `/assets` vs `--dir` `/data`", m["cat bundled"], m["cat dir"]),
        ("start-up of that component (`stat` the file): bundled vs `--dir`", m["stat bundled"], m["stat dir"]),
        ("start-up (`cat`, no paths): 10,000 bundled files vs no bundle", m["start many"], m["start none"]),
        ("`stat /assets/d00/f00000.txt` (10,000 files) vs no-bundle start-up", m["stat many"], m["start none"]),
        ("start-up (`cat`, no paths): empty bundle vs no bundle", m["start empty"], m["start none"]),
        ("start-up (`cat`, no paths): 64 MiB bundle vs no bundle", m["start big"], m["start none"]),
        ("release rebuild, output removed: 10,000 files vs no bundle", rb["many"], rb["none"]),
        ("first release build (1 run): 10,000 files vs no bundle", first["many"] * 1000, first["none"] * 1000),
        ("first release build (1 run): 64 MiB file vs no bundle", first["big"] * 1000, first["none"] * 1000),
    ]
    for label, value, base in rows:
        print(f"| {label} | {value:.0f} ms | {base:.0f} ms | {value / base:.2f}x |")
    print(f"| read 64 MiB net of start-up (`cat` − `stat`): bundled vs `--dir` "
          f"| {net_b:.0f} ms ({mibs(net_b)}) | {net_d:.0f} ms ({mibs(net_d)}) "
          f"| {net_b / net_d if net_d > 0 else float('nan'):.2f}x |")

    base = sizes["none"]
    print("\n| release component | size | added vs no bundle | ratio |")
    print("|---|---|---|---|")
    for name, label in [("none", "no bundle"), ("empty", "empty `assets/`"),
                        ("many", "10,000 files × 20 B (195 KiB of contents)"), ("big", "one 64 MiB file")]:
        print(f"| {label} | {sizes[name]:,} B ({kib(sizes[name])}) | {sizes[name] - base:+,} B | {sizes[name] / base:.2f}x |")
    vfs = REPO / "vfs" / "kiln_vfs.wasm"
    print(f"\nvfs core module embedded by kiln: {vfs.relative_to(REPO)} {vfs.stat().st_size:,} B "
          f"({kib(vfs.stat().st_size)}), sha256 {hashlib.sha256(vfs.read_bytes()).hexdigest()[:12]}")


if __name__ == "__main__":
    main()
