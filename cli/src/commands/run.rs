use std::path::PathBuf;

use std::time::Duration;

use kiln_runtime::{DirGrant, EnvGrant, RunConfig};

use crate::settings::{Environment, RunSettings};
use crate::shell::Shell;

/// Run a command component on the embedded Wasmtime, building it first inside a project.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln run -- world                    # build the project here, run it with `world`\n  \
kiln run app.wasm --dir data::/data   # run a component, granting ./data as /data\n  \
kiln run ghcr.io/you/hello:1.0.0      # pull (through the cache), then run\n  \
kiln run --invoke 'add(40, 2)'        # call a library component's export (WAVE in and out)\n\n\
Nothing is granted by default: no host directory, no environment variable, no network. \
Stdin, stdout and stderr are the terminal's. --inherit-env passes every host variable except \
kiln's own `KILN_*` (registry credentials among them); grant one of those with --env NAME.\n\n\
Inside a project, Kiln.toml's `[run]` table applies first: flags add grants to it and \
replace its limits. Relative `--dir` paths are taken from the current directory.\n\n\
Exit status: the guest's (0 when `wasi:cli/run` returns ok, 1 when it returns err, or the code given to \
`exit-with-code`); 124 when --timeout stops it, 137 when --max-memory or --max-table-elements does, 152 when its fuel runs out, \
139 when it exhausts its wasm stack, 134 when it traps; 1 when kiln fails before the guest runs; \
2 for a usage error, such as a limit out of range."
)]
pub struct Args {
    /// A component (.wasm), a project directory or manifest, or a registry reference
    /// (REGISTRY/REPOSITORY:TAG or @sha256:DIGEST) [default: the project here].
    pub path: Option<PathBuf>,

    #[command(flatten)]
    pub grants: GrantArgs,

    /// Build with the release profile before running.
    #[arg(short, long)]
    pub release: bool,

    /// Path to the project's Kiln.toml or Cargo.toml.
    #[arg(long, value_name = "PATH", conflicts_with = "path")]
    pub manifest_path: Option<PathBuf>,

    /// In a workspace (Kiln.toml `[workspace]` or a cargo workspace), run this member (by
    /// package name).
    #[arg(short, long, value_name = "NAME")]
    pub package: Option<String>,

    #[command(flatten)]
    pub verify: crate::ops::sign::VerifyArgs,

    /// Call an export of a library component instead of running a command: a function name
    /// and its arguments in WAVE, e.g. `add(40, 2)`, `greet("wasm")` or
    /// `acme:math/ops#area({width: 2, height: 3})`; the result is printed in WAVE.
    #[arg(long, value_name = "CALL", conflicts_with = "args")]
    pub invoke: Option<String>,

    /// Watch the project's files (and bundled directories): on every change stop the guest,
    /// rebuild and run it again, until Ctrl-C.
    #[arg(long)]
    pub watch: bool,

    /// Arguments for the guest.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

pub fn exec(shell: &Shell, args: Args, show_settings: bool) -> anyhow::Result<i32> {
    let env = Environment::capture()?;
    let settings = RunSettings::resolve(
        crate::settings::RunPlace {
            path: args.path.as_deref(),
            manifest_path: args.manifest_path.as_deref(),
            package: args.package.as_deref(),
        },
        args.release,
        args.grants.into_config(),
        args.args,
        args.verify,
        &env,
    )?;
    if show_settings {
        crate::settings::show(shell, "run", &settings, &env)?;
        return Ok(0);
    }
    if args.watch {
        let set = crate::ops::watch::WatchSet::for_run(&settings)?;
        return crate::ops::watch::watch(shell, &set);
    }
    match &args.invoke {
        Some(call) => crate::ops::invoke::invoke(shell, &settings, call),
        None => crate::ops::run::run(shell, &settings),
    }
}

/// Capabilities and limits, shared by `kiln run` and `kiln serve`.
#[derive(Debug, clap::Args)]
pub struct GrantArgs {
    /// Grant a host directory, at GUEST in the guest (default: the same path); `:ro` makes
    /// it read-only.
    #[arg(long = "dir", value_name = "HOST[::GUEST][:ro]")]
    pub dirs: Vec<DirGrant>,

    /// Grant an environment variable; NAME alone passes the host's value.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<EnvGrant>,

    /// Grant every host environment variable except kiln's own (`KILN_*`, which hold registry
    /// credentials).
    #[arg(long)]
    pub inherit_env: bool,

    /// Grant the host's network: TCP and UDP sockets and name lookups.
    #[arg(long)]
    pub inherit_network: bool,

    /// Stop the guest after this much wall-clock time (e.g. `10s`, `500ms`; at most 30 days)
    /// [default: none].
    #[arg(long, value_name = "DURATION", value_parser = kiln_runtime::parse_duration)]
    pub timeout: Option<Duration>,

    /// Limit the guest's linear memory, all memories together (e.g. `64MiB`) [default: none
    /// beyond wasm32's 4 GiB per memory].
    #[arg(long, value_name = "SIZE", value_parser = kiln_runtime::parse_size)]
    pub max_memory: Option<usize>,

    /// Give the guest this much fuel (about one unit per wasm instruction) [default: unmetered].
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// Limit the guest's wasm stack (e.g. `1MiB`; 16KiB to 1GiB) [default: 512KiB].
    #[arg(long, value_name = "SIZE", value_parser = kiln_runtime::parse_wasm_stack)]
    pub max_wasm_stack: Option<usize>,

    /// Limit the guest's table elements, all tables together (1 to 4294967295)
    /// [default: 1000000].
    #[arg(long, value_name = "N", value_parser = kiln_runtime::parse_table_elements)]
    pub max_table_elements: Option<usize>,

    /// Limit the guest's live resource handles (1 to 268435456) [default: 100000].
    #[arg(long, value_name = "N", value_parser = kiln_runtime::parse_handles)]
    pub max_handles: Option<usize>,
}

impl GrantArgs {
    /// The flags as a [`RunConfig`], to merge over Kiln.toml's `[run]`.
    pub fn into_config(self) -> RunConfig {
        RunConfig {
            dirs: self.dirs,
            env: self.env,
            inherit_env: self.inherit_env,
            inherit_network: self.inherit_network,
            timeout: self.timeout,
            max_memory: self.max_memory,
            fuel: self.fuel,
            max_wasm_stack: self.max_wasm_stack,
            max_table_elements: self.max_table_elements,
            max_handles: self.max_handles,
        }
    }
}
