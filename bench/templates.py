#!/usr/bin/env python3
"""Template build figures (issue 3): for each template kiln ships, the wall time of a cold
`kiln build` (fresh project, dependencies already downloaded) and of `kiln build --release`
after it, and the component size of each, one run each (builds are long; rerun to compare).

Usage: bench/templates.py [--kiln PATH] [--templates ID,ID,...]
Needs the toolchains of each language on PATH (see `kiln doctor`); a template whose
toolchain is missing is reported as skipped.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln", default=str(REPO / "target" / "release" / "kiln"))
    parser.add_argument("--templates", default="rust-cli,rust-lib,rust-http,c-cli,go-cli,tinygo-cli")
    args = parser.parse_args()
    kiln = Path(args.kiln).resolve()
    if not kiln.is_file():
        sys.exit(f"{kiln} not found; build it with `cargo build --release --bins` or pass --kiln")
    scratch = Path(tempfile.mkdtemp(prefix="kiln-bench-templates"))
    env = dict(os.environ, KILN_CACHE_DIR=str(scratch / "cache"))
    env.pop("CI", None)
    print(f"kiln: {kiln}\n")
    print("| template | debug build | debug size | release build | release size | release / debug size |")
    print("|---|---|---|---|---|---|")
    for template in args.templates.split(","):
        name = template.replace("-", "")
        subprocess.run([kiln, "new", "-q", name, "--template", template], cwd=scratch, env=env, check=True)
        project = scratch / name
        row = [template]
        sizes = []
        for profile in (["build"], ["build", "--release"]):
            start = time.perf_counter()
            proc = subprocess.run([kiln, *profile, "-q", "--message-format", "json"], cwd=project, env=env,
                                  capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                row = [template, f"skipped: {proc.stderr.strip().splitlines()[0]}"]
                break
            artifact = next(json.loads(l) for l in proc.stdout.splitlines() if '"artifact"' in l)
            sizes.append(artifact["size"])
            row += [f"{elapsed:.1f} s", f"{artifact['size'] / 1024:.1f} KiB"]
        if len(sizes) == 2:
            row.append(f"{sizes[1] / sizes[0]:.2f}")
        print("| " + " | ".join(row) + " |")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
