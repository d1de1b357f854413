use std::path::PathBuf;

use crate::ops::registry::RegistryArgs;
use crate::settings::{Environment, PullSettings};
use crate::shell::Shell;

/// Download a component from an OCI registry.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln pull ghcr.io/you/hello:1.0.0              # writes hello.wasm\n  \
kiln pull 127.0.0.1:5000/demo/hello@sha256:… -o app.wasm\n\n\
The manifest and every blob are checked against their digests and declared sizes before they \
are used or cached; manifests over 4 MiB are refused. Pulled content is kept in the cache \
(KILN_CACHE_DIR), so pulling the same digest again downloads nothing. An existing output \
file is replaced only with --force.\n\n\
On success, stdout carries the path written."
)]
pub struct Args {
    /// REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:DIGEST.
    pub reference: String,

    /// Where to write the component [default: <repository name>.wasm here].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,

    #[command(flatten)]
    pub verify: crate::ops::sign::VerifyArgs,
}

pub fn exec(shell: &Shell, args: Args, show_settings: bool) -> anyhow::Result<i32> {
    let env = Environment::capture()?;
    let settings = PullSettings::resolve(args, &env)?;
    if show_settings {
        crate::settings::show(shell, "pull", &settings, &env)?;
        return Ok(0);
    }
    crate::ops::pull::pull(shell, &settings)?;
    Ok(0)
}
