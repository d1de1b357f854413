use crate::shell::{MessageFormat, Shell};

/// Check the guest toolchains kiln can drive: what is found (path, version), what is
/// missing, and the command that installs it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exits 0 even when optional toolchains are missing; each missing one is listed with \
how to install it. With --message-format json, stdout carries one `toolchain` object per line."
)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, value_name = "FMT", default_value = "human")]
    pub message_format: MessageFormat,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    crate::ops::doctor::doctor(shell, args.message_format);
    Ok(0)
}
