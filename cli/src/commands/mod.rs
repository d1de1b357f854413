//! Command-line arguments (clap). Each subcommand lives in its own file with its `Args`
//! and an `exec` that resolves them into options and calls `ops`.

use clap::{Parser, Subcommand};

use crate::shell::{MessageFormat, Shell, Verbosity};

pub mod build;
pub mod doctor;
pub mod generate_key_pair;
pub mod inspect;
pub mod login;
pub mod new;
pub mod publish;
pub mod pull;
pub mod run;
pub mod serve;
pub mod templates;
pub mod test;
pub mod update;

/// kiln: build, run and ship WebAssembly components.
#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    propagate_version = true,
    after_help = after_help()
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

    /// Output format: `human`, or `json` (one message per line on stdout, see docs/json.md).
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FMT",
        default_value = "human"
    )]
    pub message_format: MessageFormat,

    /// Print the settings `build`, `run`, `serve`, `publish` or `pull` resolved from the flags,
    /// Kiln.toml and the environment, and stop without doing the work.
    #[arg(long, global = true)]
    pub show_settings: bool,

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
    Test(test::Args),
    Serve(serve::Args),
    Publish(publish::Args),
    Pull(pull::Args),
    Login(login::Args),
    Logout(login::LogoutArgs),
    Inspect(inspect::Args),
    Doctor(doctor::Args),
    GenerateKeyPair(generate_key_pair::Args),
    Update(update::Args),
    /// Runs one test binary for `kiln test` (cargo's target runner, go's `-exec`).
    #[command(hide = true)]
    TestRunner(test::RunnerArgs),
    /// Print docs/json.md, the reference of `--message-format json` (for kiln's own docs).
    #[command(hide = true)]
    JsonReference,
}

/// The end of `kiln --help`: exit statuses and the environment (from
/// [`crate::env_vars::DOCUMENTED`]).
fn after_help() -> String {
    format!(
        "Exit status: 0 on success, 1 on failure, 2 on a usage error; `kiln run` exits with the guest's status \
         (134 when the guest traps; each limit has its own code, see `kiln help run`). A closed stdout \
         (`kiln inspect … | head`) ends kiln quietly with 0.\n\n{}\n\nSee `kiln help <command>` for more on a command.",
        crate::env_vars::help_section()
    )
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
pub fn exec(shell: &Shell, command: Command, show_settings: bool) -> anyhow::Result<i32> {
    match command {
        Command::New(args) => new::exec(shell, args),
        Command::Templates(args) => templates::exec(shell, args),
        Command::Build(args) => build::exec(shell, args, show_settings),
        Command::Run(args) => run::exec(shell, args, show_settings),
        Command::Test(args) => test::exec(shell, args),
        Command::TestRunner(args) => test::exec_runner(shell, args),
        Command::Serve(args) => serve::exec(shell, args, show_settings),
        Command::Publish(args) => publish::exec(shell, args, show_settings),
        Command::Pull(args) => pull::exec(shell, args, show_settings),
        Command::Login(args) => login::exec(shell, args),
        Command::Logout(args) => login::exec_logout(shell, args),
        Command::Inspect(args) => inspect::exec(shell, args),
        Command::Doctor(args) => doctor::exec(shell, args),
        Command::GenerateKeyPair(args) => generate_key_pair::exec(shell, args),
        Command::Update(args) => update::exec(shell, args),
        Command::JsonReference => {
            #[allow(clippy::print_stdout)]
            {
                print!("{}", crate::messages::reference_markdown());
            }
            Ok(0)
        }
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
