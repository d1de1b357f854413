use std::path::PathBuf;

use crate::shell::Shell;

/// Describe a component or core module: kind, world, core modules, custom sections, metadata.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln inspect target/kiln/release/hello.wasm\n  \
kiln inspect --wit target/kiln/debug/wordlib.wasm   # the world as WIT text\n  \
kiln inspect --sbom target/kiln/release/hello.wasm  # the SBOM a release build wrote beside it\n  \
kiln inspect --sbom ghcr.io/you/hello:0.1.0         # the SBOM kiln publish attached"
)]
pub struct Args {
    /// The .wasm file (with --sbom also its SBOM file, or a registry reference).
    pub file: PathBuf,

    /// Print the component's world as WIT text instead.
    #[arg(long, conflicts_with = "sbom")]
    pub wit: bool,

    /// Show the component's SBOM (CycloneDX) instead: the `.cdx.json` a release build wrote
    /// beside it, that file itself, or for a registry reference the SBOM `kiln publish`
    /// attached to it as an OCI referrer.
    #[arg(long)]
    pub sbom: bool,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    if args.sbom {
        crate::ops::inspect::sbom(shell, &args.file)?;
    } else {
        crate::ops::inspect::inspect(shell, &args.file, args.wit)?;
    }
    Ok(0)
}
