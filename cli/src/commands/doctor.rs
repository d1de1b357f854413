use crate::shell::Shell;

/// Check the guest toolchains kiln can drive: what is found (path, version), what is
/// missing, and the command that installs it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exits 0 even when optional toolchains are missing; each missing one is listed with \
how to install it. With --message-format json, stdout carries one `toolchain` object per line."
)]
pub struct Args {}

pub fn exec(shell: &Shell, _args: Args) -> anyhow::Result<i32> {
    crate::ops::doctor::doctor(shell);
    Ok(0)
}
