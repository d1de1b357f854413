use crate::ops::login::LoginOptions;
use crate::ops::registry::RegistryArgs;
use crate::shell::Shell;

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

    /// User name, password and `--insecure` (without --username, the user name is prompted
    /// for on a terminal).
    #[command(flatten)]
    pub connection: RegistryArgs,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    crate::ops::login::login(
        shell,
        &LoginOptions {
            registry: args.registry,
            username: args.connection.username,
            password_stdin: args.connection.password_stdin,
            insecure: args.connection.insecure,
        },
    )?;
    Ok(0)
}

/// Forget the credentials `kiln login` saved for a registry.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry: HOST[:PORT].
    pub registry: String,
}

pub fn exec_logout(shell: &Shell, args: LogoutArgs) -> anyhow::Result<i32> {
    crate::ops::login::logout(shell, &args.registry)?;
    Ok(0)
}
