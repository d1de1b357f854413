#!/usr/bin/env bash
# Rebuilds kiln's vfs component (the core module that kiln embeds, patches with the bundle
# archive and componentizes): `vfs/build.sh [OUT]`, OUT defaulting to `vfs/kiln_vfs.wasm`.
#
# The build is reproducible for a given Rust toolchain: paths of the checkout, of CARGO_HOME
# and of the toolchain's sysroot are remapped, dependencies come from the committed
# `vfs/Cargo.lock` (`--locked`; the vfs's own workspace is `vfs/`), and RUSTFLAGS from the environment or cargo config
# are replaced. Uses CARGO_TARGET_DIR when set, else `vfs/target`.
set -euo pipefail

vfs_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd "$vfs_dir/.." && pwd -P)"
crate_dir="$vfs_dir/component"
out="${1:-$vfs_dir/kiln_vfs.wasm}"
target_dir="${CARGO_TARGET_DIR:-$vfs_dir/target}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
sysroot="$(rustc --print sysroot)"

# One `--remap-path-prefix` per path (and its physical spelling, when that differs); the
# repo root comes last so that it wins if another path lies inside it.
flags=()
remap() {
    flags+=("--remap-path-prefix=$1=$2")
    if [[ -d "$1" ]]; then
        local physical
        physical="$(cd "$1" && pwd -P)"
        if [[ "$physical" != "$1" ]]; then
            flags+=("--remap-path-prefix=$physical=$2")
        fi
    fi
}
remap "$sysroot" /rustc-sysroot
remap "$cargo_home" /cargo
remap "$repo_root" /kiln
encoded="$(IFS=$'\x1f'; echo "${flags[*]}")"

CARGO_ENCODED_RUSTFLAGS="$encoded" CARGO_TARGET_DIR="$target_dir" cargo build \
    --manifest-path "$crate_dir/Cargo.toml" \
    --release --locked --target wasm32-unknown-unknown

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cp "$target_dir/wasm32-unknown-unknown/release/kiln_vfs.wasm" "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out ($(wc -c <"$out") bytes)"
