use crate::ops::login::LoginOptions;
use crate::shell::{MessageFormat, Shell};

/// Save credentials for a registry, after checking that it accepts them.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  echo \"$TOKEN\" | kiln login ghcr.io -u you --password-stdin\n  \
kiln login 127.0.0.1:5000 -u admin              # prompts for the password on a terminal\n\n\
Credentials are saved in credentials.json in kiln's configuration directory (KILN_CONFIG_DIR, \
default ~/.config/kiln), readable only by you. They are used after --username and the \
KILN_REGISTRY_* variables, before the Docker configuration."
)]
pub struct Args {
    /// The registry: HOST[:PORT].
    pub registry: String,

    /// The user name [default: prompted for on a terminal].
    #[arg(short, long, value_name = "USER")]
    pub username: Option<String>,

    /// Read the password (or token) from stdin, up to the first newline.
    #[arg(long)]
    pub password_stdin: bool,

    /// Allow plain HTTP to a registry that is not on this machine.
    #[arg(long)]
    pub insecure: bool,

    /// Output format.
    #[arg(long, value_enum, value_name = "FMT", default_value = "human")]
    pub message_format: MessageFormat,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    crate::ops::login::login(
        shell,
        &LoginOptions {
            registry: args.registry,
            username: args.username,
            password_stdin: args.password_stdin,
            insecure: args.insecure,
            format: args.message_format,
        },
    )?;
    Ok(0)
}

/// Forget the credentials `kiln login` saved for a registry.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry: HOST[:PORT].
    pub registry: String,

    /// Output format.
    #[arg(long, value_enum, value_name = "FMT", default_value = "human")]
    pub message_format: MessageFormat,
}

pub fn exec_logout(shell: &Shell, args: LogoutArgs) -> anyhow::Result<i32> {
    crate::ops::login::logout(shell, &args.registry, args.message_format)?;
    Ok(0)
}
