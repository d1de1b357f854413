use std::path::PathBuf;

use crate::ops::new::NewOptions;
use crate::shell::Shell;

/// Create a new component project from a template.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln new hello                      # a rust-cli command\n  \
kiln new mylib --template rust-lib   # a library component exporting a WIT world\n\n\
The destination must not exist or be empty unless --force is given. `kiln templates` lists the templates."
)]
pub struct Args {
    /// The directory to create.
    pub path: PathBuf,

    /// The template to use (see `kiln templates`).
    #[arg(short, long, value_name = "ID", default_value = "rust-cli")]
    pub template: String,

    /// The component name [default: the directory name]. Lowercase letters, digits, `-`, `_`.
    #[arg(long)]
    pub name: Option<String>,

    /// Write into a non-empty directory, overwriting the files the template creates.
    #[arg(long)]
    pub force: bool,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    let opts = NewOptions {
        path: args.path,
        template: args.template,
        name: args.name,
        force: args.force,
    };
    crate::ops::new::new(shell, &opts)?;
    Ok(0)
}
