use std::path::PathBuf;

use crate::manifest::Project;
use crate::ops::wit_deps::Mode;
use crate::shell::Shell;

/// Resolve the project's registry WIT dependencies again and rewrite wkg.lock
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each registry entry of Kiln.toml's `[wit-dependencies]` is resolved to the newest \
release its version requirement accepts, ignoring the versions wkg.lock holds; the lock file is \
rewritten when that changes anything (wkg reads and writes the same file), and the packages are \
laid out in wit/deps/. `kiln build --locked` then fails whenever the lock would change, and \
`kiln build --offline` builds from the lock and the cache alone."
)]
pub struct Args {
    /// Path to the project's Kiln.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    let cwd = std::env::current_dir()?;
    let project = Project::find(&cwd, args.manifest_path.as_deref())?;
    crate::ops::wit_deps::lay_out(
        shell,
        &project,
        Mode {
            update: true,
            ..Mode::default()
        },
    )?;
    Ok(0)
}
