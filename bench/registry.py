#!/usr/bin/env python3
"""Registry benchmark (issue 5): kiln publish/pull vs skopeo copy, same registry, same run.

Starts Debian's docker-registry on 127.0.0.1 (a free port, its own config, plain HTTP), makes
components of about 1 MiB and 20 MiB (the rust-cli template's release build with a custom
section of random bytes appended, so nothing compresses or deduplicates), and measures, as
medians over --runs rounds (default 5), each to a fresh repository:

  push: `kiln publish REF --wasm FILE`     vs  `skopeo copy oci:LAYOUT docker://REF`
  pull: `kiln pull REF` (empty cache)       vs  `skopeo copy docker://REF oci:LAYOUT`

skopeo pushes and pulls the very artifact kiln published (its OCI layout is what skopeo
pulled), so both move the same bytes. Ratios are kiln / skopeo (below 1 is faster).

Usage: bench/registry.py [--runs N] [--kiln PATH]
The kiln binary defaults to target/release/kiln (`cargo build --release --bins`).
Needs docker-registry and skopeo (`apt-get install docker-registry skopeo`).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import record

REPO = Path(__file__).resolve().parent.parent


def run(cmd, env=None, cwd=None):
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{proc.stdout.decode()}{proc.stderr.decode()}")
    return elapsed


def leb128(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def padded(component, total):
    """`component` with a custom section of random bytes, about `total` bytes in all."""
    name = b"kiln-bench-padding"
    size = max(0, total - len(component) - len(name) - 16)
    payload = leb128(len(name)) + name + os.urandom(size)
    return component + b"\x00" + leb128(len(payload)) + payload


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(root):
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\nstorage:\n"
        f"  filesystem: {{rootdirectory: {root / 'data'}}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    sys.exit("docker-registry did not start")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--kiln", default=str(REPO / "target/release/kiln"))
    args = parser.parse_args()
    kiln = Path(args.kiln).resolve()

    with tempfile.TemporaryDirectory(prefix="kiln-bench-registry") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, KILN_CONFIG_DIR=str(tmp / "config"), DOCKER_CONFIG=str(tmp / "docker"))
        env.pop("SOURCE_DATE_EPOCH", None)
        run([kiln, "new", "hello", "-q"], env=env, cwd=tmp)
        run([kiln, "build", "--release", "-q"], env=env, cwd=tmp / "hello")
        base = (tmp / "hello/target/kiln/release/hello.wasm").read_bytes()
        registry, addr = start_registry(tmp)
        try:
            print(f"registry: docker-registry at {addr}; {args.runs} rounds, medians")
            print(f"| size | kiln publish | skopeo push | ratio | kiln pull | skopeo pull | ratio |")
            print(f"|---|---|---|---|---|---|---|")
            for mib in (1, 20):
                wasm = tmp / f"c{mib}.wasm"
                wasm.write_bytes(padded(base, mib * 1024 * 1024))
                times = {"kp": [], "sp": [], "kl": [], "sl": []}
                for i in range(args.runs):
                    ref = f"{addr}/bench/k{mib}-{i}:1"
                    times["kp"].append(run([kiln, "publish", "-q", ref, "--wasm", wasm], env=env, cwd=tmp))
                    cache = dict(env, KILN_CACHE_DIR=str(tmp / f"cache-{mib}-{i}"))
                    times["kl"].append(run([kiln, "pull", "-q", ref, "-o", tmp / "pulled.wasm", "--force"], env=cache, cwd=tmp))
                    layout = tmp / f"layout-{mib}-{i}"
                    # A fresh blob-info cache per skopeo call: it would otherwise let the push
                    # mount the blob from the repository it was pulled from, uploading nothing.
                    # As root, containers/image keeps that cache in /var/lib/containers/cache
                    # whatever HOME says; _CONTAINERS_ROOTLESS_UID makes it use XDG_DATA_HOME.
                    def fresh(tag):
                        home = tmp / f"home-{mib}-{i}-{tag}"
                        return dict(os.environ, HOME=str(home), XDG_DATA_HOME=str(home / "data"),
                                    _CONTAINERS_ROOTLESS_UID=str(os.getuid() or 1000))
                    times["sl"].append(run(["skopeo", "copy", "-q", "--src-tls-verify=false",
                                            f"docker://{ref}", f"oci:{layout}:1"], env=fresh("pull")))
                    times["sp"].append(run(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                                            f"oci:{layout}:1", f"docker://{addr}/bench/s{mib}-{i}:1"], env=fresh("push")))
                m = {k: statistics.median(v) for k, v in times.items()}
                print(f"| {wasm.stat().st_size / 1024 / 1024:.1f} MiB "
                      f"| {m['kp'] * 1000:.0f} ms | {m['sp'] * 1000:.0f} ms | {m['kp'] / m['sp']:.2f}× "
                      f"| {m['kl'] * 1000:.0f} ms | {m['sl'] * 1000:.0f} ms | {m['kl'] / m['sl']:.2f}× |")
                record.record(f"`kiln publish` {mib} MiB", m["kp"] * 1000, "ms",
                              baseline="`skopeo copy` push", baseline_value=m["sp"] * 1000, goal="≤ 1.0×")
                record.record(f"`kiln pull` {mib} MiB, empty cache", m["kl"] * 1000, "ms",
                              baseline="`skopeo copy` pull", baseline_value=m["sl"] * 1000, goal="≤ 1.0×")
        finally:
            registry.terminate()
            registry.wait()


if __name__ == "__main__":
    main()
