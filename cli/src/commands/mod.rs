//! Command-line arguments (clap). Each subcommand lives in its own file with its `Args`
//! and an `exec` that resolves them into options and calls `ops`.

use clap::{Parser, Subcommand};

use crate::shell::{Shell, Verbosity};

pub mod build;
pub mod doctor;
pub mod inspect;
pub mod login;
pub mod new;
pub mod publish;
pub mod pull;
pub mod run;
pub mod serve;
pub mod templates;

/// kiln: build, run and ship WebAssembly components.
#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    propagate_version = true,
    after_help = "Exit status: 0 on success, 1 on failure, 2 on a usage error; `kiln run` exits with the guest's status \
(134 when the guest traps; each limit has its own code, see `kiln help run`).\n\n\
Environment:\n  \
KILN_CACHE_DIR   compiled code and pulled components [default: ~/.cache/kiln]\n  \
KILN_RUNNER      the kiln-runner `build --exe` uses [default: beside kiln]\n  \
KILN_CONFIG_DIR  where `kiln login` saves credentials [default: ~/.config/kiln]\n  \
KILN_REGISTRY_USERNAME, KILN_REGISTRY_PASSWORD, KILN_REGISTRY_TOKEN   registry credentials\n  \
KILN_REGISTRY_CA_FILE   extra PEM root certificates for registries\n  \
KILN_ALLOW_FOREIGN_URLS=1   pulls may fetch layers from the foreign URLs manifests name\n  \
DOCKER_CONFIG    the Docker configuration read for registry credentials [default: ~/.docker]\n  \
SOURCE_DATE_EPOCH   `created` of published artifacts [default: 1970-01-01]\n  \
CARGO, RUSTC     the Rust toolchain for Rust guests\n  \
CC, WASI_SDK_PATH, WASI_SYSROOT   the C toolchain (see `kiln doctor`)\n  \
GO, TINYGO       the Go toolchains [default: on PATH]\n  \
CI, TERM=dumb    no progress bars\n\n\
See `kiln help <command>` for more on a command."
)]
pub struct Cli {
    /// Print only errors and warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail: commands run, cache hits.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// When to use colors: auto, always, never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: clap::ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    New(new::Args),
    Templates(templates::Args),
    Build(build::Args),
    Run(run::Args),
    Serve(serve::Args),
    Publish(publish::Args),
    Pull(pull::Args),
    Login(login::Args),
    Logout(login::LogoutArgs),
    Inspect(inspect::Args),
    Doctor(doctor::Args),
}

impl Cli {
    /// The verbosity the flags ask for.
    pub fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Normal,
        }
    }
}

/// Runs the command; the `Ok` value is the process exit code.
pub fn exec(shell: &Shell, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::New(args) => new::exec(shell, args),
        Command::Templates(args) => templates::exec(shell, args),
        Command::Build(args) => build::exec(shell, args),
        Command::Run(args) => run::exec(shell, args),
        Command::Serve(args) => serve::exec(shell, args),
        Command::Publish(args) => publish::exec(shell, args),
        Command::Pull(args) => pull::exec(shell, args),
        Command::Login(args) => login::exec(shell, args),
        Command::Logout(args) => login::exec_logout(shell, args),
        Command::Inspect(args) => inspect::exec(shell, args),
        Command::Doctor(args) => doctor::exec(shell, args),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
