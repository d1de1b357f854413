use std::path::PathBuf;

use anyhow::Context;

use crate::ops::build::Profile;
use crate::ops::run::{DirGrant, EnvGrant, RunOptions};
use crate::shell::Shell;

/// Run a command component on the embedded Wasmtime, building it first inside a project.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln run -- world                    # build the project here, run it with `world`\n  \
kiln run app.wasm --dir data::/data   # run a component, granting ./data as /data\n\n\
Nothing is granted by default: no host directory, no environment variable, no network. \
Stdin, stdout and stderr are the terminal's.\n\n\
Exit status: the guest's (0 when `wasi:cli/run` returns ok, 1 when it returns err, or the code given to \
`exit-with-code`); 134 when the guest traps; 1 when kiln fails before the guest runs."
)]
pub struct Args {
    /// A component (.wasm), or a project directory or manifest [default: the project here].
    pub path: Option<PathBuf>,

    /// Grant a host directory, at GUEST in the guest (default: the same path).
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub dirs: Vec<DirGrant>,

    /// Grant an environment variable; NAME alone passes the host's value.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<EnvGrant>,

    /// Grant every host environment variable.
    #[arg(long)]
    pub inherit_env: bool,

    /// Build with the release profile before running.
    #[arg(short, long)]
    pub release: bool,

    /// Path to the project's Kiln.toml or Cargo.toml.
    #[arg(long, value_name = "PATH", conflicts_with = "path")]
    pub manifest_path: Option<PathBuf>,

    /// Arguments for the guest.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    let opts = RunOptions {
        path: args.path,
        manifest_path: args.manifest_path,
        cwd: std::env::current_dir().context("cannot read the current directory")?,
        profile: if args.release {
            Profile::Release
        } else {
            Profile::Debug
        },
        dirs: args.dirs,
        env: args.env,
        inherit_env: args.inherit_env,
        args: args.args,
    };
    crate::ops::run::run(shell, &opts)
}
