use std::path::PathBuf;

use crate::shell::Shell;

/// Describe a component or core module: kind, world, core modules, custom sections, metadata.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln inspect target/kiln/release/hello.wasm\n  \
kiln inspect --wit target/kiln/debug/wordlib.wasm   # the world as WIT text"
)]
pub struct Args {
    /// The .wasm file.
    pub file: PathBuf,

    /// Print the component's world as WIT text instead.
    #[arg(long)]
    pub wit: bool,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    crate::ops::inspect::inspect(shell, &args.file, args.wit)?;
    Ok(0)
}
