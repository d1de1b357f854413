use std::path::PathBuf;

use crate::settings::{BuildSettings, Environment};
use crate::shell::Shell;

/// Compile the project into a component at target/kiln/<profile>/<name>.wasm.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The project is found from the current directory upwards (a Kiln.toml or a Cargo.toml), \
or from --manifest-path. At a cargo virtual workspace's root, every member that is a component \
(a binary, or a `cdylib`) is built, each under its own name; -p picks one. \
A build with nothing changed writes nothing. \
Release builds run wasm-opt on every core module in the component (`[release] optimize`, default \"s\") \
and strip debug information (`[release] strip`, default true); both profiles write name, version, \
description, license, source and processed-by metadata.\n\n\
With --message-format json, stdout carries one JSON object per line: `unit-finished`, \
`compiler-message` and `stage` events, then an `artifact` (name, profile, path, size, sha256, fresh, imports, exports) \
and `build-finished`.\n\n\
With --exe (or `[package] exe = true`), the executable runs the component with its own arguments, stdio \
and exit status, and with the capabilities and limits of Kiln.toml's `[run]` table, fixed at build time; \
only the documented KILN_* variables change them when it runs (see docs/guide.md). \
The runner is the runtime-only `kiln-runner` built into kiln (override with KILN_RUNNER)."
)]
pub struct Args {
    /// Build with the release profile.
    #[arg(short, long)]
    pub release: bool,

    /// Do not run wasm-opt, even in release (stripping and metadata still apply).
    #[arg(long)]
    pub no_optimize: bool,

    /// Also write a single-file native executable, target/kiln/<profile>/<name>: the kiln
    /// runner with the component and its precompiled code appended (also `[package] exe`).
    #[arg(long)]
    pub exe: bool,

    /// At a cargo workspace's root, build only this member (by package name), as `cargo
    /// build -p` does [default: every member that is a component].
    #[arg(short, long, value_name = "NAME")]
    pub package: Option<String>,

    /// Bundle the directory SRC into the component, read-only at MOUNT (an absolute path
    /// like /assets); repeatable, beside Kiln.toml's `[[bundle]]` entries.
    #[arg(long, value_name = "SRC:MOUNT")]
    pub bundle: Vec<String>,

    /// Path to the project's Kiln.toml or Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,

    /// Watch the project's files (and bundled directories) and rebuild on every change, until
    /// Ctrl-C.
    #[arg(long)]
    pub watch: bool,

    /// Fail if `wkg.lock` would change (registry `[wit-dependencies]`), as CI wants.
    #[arg(long)]
    pub locked: bool,

    /// Resolve registry `[wit-dependencies]` from `wkg.lock` and the cache only, without
    /// network.
    #[arg(long)]
    pub offline: bool,
}

pub fn exec(shell: &Shell, args: Args, show_settings: bool) -> anyhow::Result<i32> {
    let env = Environment::capture()?;
    let all = BuildSettings::resolve_all(&args, &env)?;
    if show_settings {
        match all.as_slice() {
            [one] => crate::settings::show(shell, "build", one, &env)?,
            many => crate::settings::show(shell, "build", &many, &env)?,
        }
        return Ok(0);
    }
    if args.watch
        && let Some(first) = all.first()
    {
        let set = crate::ops::watch::WatchSet::for_build(first);
        return crate::ops::watch::watch(shell, &set);
    }
    crate::ops::build::build_all(shell, &all)?;
    Ok(0)
}
