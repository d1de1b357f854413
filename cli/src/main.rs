//! kiln: a cargo-like tool for WebAssembly components.
//!
//! The binary is thin: `commands/` parses arguments (clap) into options, `ops/` does the
//! work, `toolchain/` drives guest compilers, and every line for people goes through
//! [`shell::Shell`]. The byte-level passes live in `kiln-componentize`, the embedded Wasmtime
//! in `kiln-runtime`. See docs/architecture.md.

mod commands;
mod driver;
mod env_vars;
mod errors;
mod fsutil;
mod manifest;
mod messages;
mod ops;
mod settings;
mod shell;
mod signals;
mod templates;
mod toolchain;
mod workspace;

use clap::Parser;

fn main() {
    signals::install();
    let cli = commands::Cli::parse();
    anstream::ColorChoice::write_global(match cli.color {
        clap::ColorChoice::Auto => anstream::ColorChoice::Auto,
        clap::ColorChoice::Always => anstream::ColorChoice::Always,
        clap::ColorChoice::Never => anstream::ColorChoice::Never,
    });
    let shell = shell::Shell::new(cli.verbosity(), cli.message_format);
    let code = match commands::exec(&shell, cli.command, cli.show_settings) {
        Ok(code) => code,
        Err(error) => {
            signals::exit_if_signalled();
            shell.progress_finish();
            shell.error(&error);
            errors::exit_code(&error)
        }
    };
    std::process::exit(code);
}
