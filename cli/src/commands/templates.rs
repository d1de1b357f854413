use crate::shell::{MessageFormat, Shell};

/// List the project templates: id, language, description.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, value_name = "FMT", default_value = "human")]
    pub message_format: MessageFormat,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    crate::ops::new::list(shell, args.message_format == MessageFormat::Json)?;
    Ok(0)
}
