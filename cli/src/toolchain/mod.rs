//! Guest toolchain drivers: each turns a project into a core module or a component.
//! The helpers here are what the drivers (and `kiln doctor`) share: finding programs,
//! running a compiler with its messages shown as it printed them, and componentizing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::shell::Shell;

pub mod c;
pub mod custom;
pub mod go;
mod go_glue;
pub mod rust;

/// Finds `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = crate::env_vars::path()?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The trimmed stdout of `cmd`, when it runs and succeeds.
pub fn stdout_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The first line of `text`, trimmed (a `--version` banner).
pub fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

/// The first line of what `cmd` prints, when it runs and succeeds (a `--version` banner).
pub fn version_line(cmd: &mut Command) -> Option<String> {
    stdout_of(cmd).map(|out| first_line(&out))
}

/// Runs a compiler or linker: its stderr is shown as it printed it (even with `-q`: these
/// are diagnostics), and a failure is an error saying `failure`.
///
/// # Errors
///
/// The program cannot be started, or exits unsuccessfully.
pub fn run_tool(shell: &Shell, cmd: &mut Command, failure: String) -> anyhow::Result<()> {
    let out = crate::signals::output(cmd)
        .with_context(|| format!("cannot run `{}`", cmd.get_program().to_string_lossy()))?;
    let text = String::from_utf8_lossy(&out.stderr);
    if !text.trim().is_empty() {
        shell.forward_stderr_always(&text);
    }
    if !out.status.success() {
        bail!("{failure}");
    }
    Ok(())
}

thread_local! {
    /// The adapter the last [`componentize`] on this thread embedded: a build reads it (with
    /// [`take_adapter`]) right after its driver ran, for the SBOM. Builds run one per thread.
    static ADAPTED: std::cell::Cell<Option<kiln_componentize::Adapter>> =
        const { std::cell::Cell::new(None) };
}

/// The adapter the driver that just ran on this thread embedded, if it componentized a core
/// module; clears it.
pub fn take_adapter() -> Option<kiln_componentize::Adapter> {
    ADAPTED.with(|a| a.take())
}

/// Turns the WASI preview1 module at `module` into a component at `out` (written
/// atomically), embedding the WIT world at `world` for a library.
///
/// # Errors
///
/// The module cannot be read, the adapter cannot make a component, or the write fails.
pub fn componentize(
    shell: &Shell,
    name: &str,
    module: &Path,
    world: Option<&Path>,
    out: &Path,
) -> anyhow::Result<()> {
    let bytes = fs_err::read(module)?;
    shell.status(
        "Componentizing",
        format_args!("{name} (WASI preview1 adapter)"),
    );
    let source = world.map(|path| kiln_componentize::WorldSource { path, world: None });
    let made = kiln_componentize::componentize(&bytes, source)
        .with_context(|| format!("failed to turn `{name}`'s core module into a component"))?;
    ADAPTED.with(|a| a.set(Some(made.adapter)));
    crate::fsutil::write_atomic(out, &made.bytes)
}
