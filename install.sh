#!/bin/sh
# Installs kiln from this checkout.
#
#   ./install.sh
#
# Checks for cargo and rustup, adds the wasm32-wasip2 Rust target that kiln builds guests
# for, then builds and installs kiln with `cargo install --path . --locked`. Safe to run
# again: the target is only added when missing, and the build reuses ./target, so a second
# run rebuilds only what changed. Set KILN_INSTALL_ROOT to install somewhere other than
# cargo's default (~/.cargo).
set -eu

cd "$(dirname "$0")"

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo was not found. Install Rust with rustup first: https://rustup.rs" >&2
    exit 1
fi

if command -v rustup >/dev/null 2>&1; then
    if rustup target list --installed | grep -qx wasm32-wasip2; then
        echo "kiln install: the wasm32-wasip2 target is already installed"
    else
        echo "kiln install: adding the wasm32-wasip2 target"
        rustup target add wasm32-wasip2
    fi
else
    echo "warning: rustup was not found; kiln needs a Rust toolchain with the wasm32-wasip2 target to build Rust guests" >&2
fi

root="${KILN_INSTALL_ROOT:-${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}}"
echo "kiln install: building kiln (release); a first build takes several minutes"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" cargo install --path . --locked --root "$root" --force

bin="$root/bin/kiln"
echo "kiln install: installed $("$bin" --version) to $bin"
case ":$PATH:" in
    *":$root/bin:"*) ;;
    *) echo "kiln install: $root/bin is not on your PATH; add it, e.g. export PATH=\"$root/bin:\$PATH\"" ;;
esac
