use crate::shell::Shell;

/// List the project templates: id, language, description.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn exec(shell: &Shell, _args: Args) -> anyhow::Result<i32> {
    crate::ops::new::list(shell)?;
    Ok(0)
}
