//! `kiln build --exe`: a single-file native executable — the `kiln-runner` binary with the
//! component, its precompiled code and the `[run]` settings appended (format:
//! [`kiln_runtime::exe`]).

use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_runtime::exe::{self, ExeSettings};
use kiln_runtime::{Runtime, RuntimeConfig};

use crate::errors::hinted;
use crate::manifest::Project;
use crate::ops::build::{Artifact, Profile};
use crate::shell::Shell;

/// Where kiln looks for `kiln-runner`: `KILN_RUNNER` when set, else beside the running kiln.
pub fn runner_path() -> Option<PathBuf> {
    crate::env_vars::runner().or_else(|| {
        let kiln = std::env::current_exe().ok()?;
        Some(kiln.with_file_name(format!("kiln-runner{}", std::env::consts::EXE_SUFFIX)))
    })
}

/// Finds `kiln-runner`, or says where it should be and how to get it.
pub fn find_runner() -> anyhow::Result<PathBuf> {
    let path = runner_path().context("cannot find kiln's own executable")?;
    if path.is_file() {
        return Ok(path);
    }
    let origin = if crate::env_vars::runner().is_some() {
        "KILN_RUNNER points at"
    } else {
        "kiln looks for its runner beside itself, at"
    };
    Err(hinted(
        format!(
            "{origin} `{}`, which does not exist, so kiln cannot make executables",
            path.display()
        ),
        "kiln-runner is installed with kiln (`./install.sh`, or `cargo install --path . --bins`); \
         or point KILN_RUNNER at one",
    ))
}

/// Writes `target/kiln/<profile>/<name>` for a built component from the runner at
/// `runner_path`, unless an identical one is already there. Returns its path.
///
/// # Errors
///
/// An unreadable runner, a component Wasmtime cannot compile, or a failure to write.
pub fn package(
    shell: &Shell,
    project: &Project,
    artifact: &Artifact,
    runner_path: &Path,
    profile: Profile,
) -> anyhow::Result<PathBuf> {
    let runner_file = fs_err::read(runner_path)?;
    let runner = exe::runner_part(&runner_file);
    let run = project.manifest.run.clone();
    let settings = ExeSettings {
        name: artifact.name.clone(),
        component_sha256: artifact.sha256.clone(),
        fuel_metering: run.fuel.is_some(),
        run,
    };
    let out_path =
        artifact
            .path
            .with_file_name(format!("{}{}", artifact.name, std::env::consts::EXE_SUFFIX));
    let shown = crate::fsutil::display_relative(&out_path);

    let fresh = is_current(&out_path, runner, &settings);
    let size = if let Some(size) = fresh {
        size
    } else {
        shell.status("Packaging", format_args!("{shown}"));
        let component = fs_err::read(&artifact.path)?;
        // An executable runs `wasi:cli/run`: anything else would be packaged only to fail
        // wherever it is copied to.
        let world = kiln_componentize::describe(&component)
            .with_context(|| format!("cannot package `{}`", artifact.name))?;
        if world.command_export().is_none() {
            return Err(crate::errors::hinted(
                format!(
                    "cannot package `{}` as an executable: it does not export `wasi:cli/run`, so it is not a command",
                    artifact.name
                ),
                "`--exe` (and `[package] exe`) is for `wasi:cli/command` components; \
                 serve an HTTP component with `kiln serve`",
            ));
        }
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: None,
            fuel: settings.fuel_metering,
            max_wasm_stack: settings.run.max_wasm_stack,
            pooling: false,
        })?;
        let precompiled = runtime
            .precompile_portable(&component)
            .with_context(|| format!("failed to compile `{}` for this host", artifact.name))?;
        let bytes = exe::assemble(runner, &settings, &component, &precompiled);
        crate::fsutil::write_atomic_mode(&out_path, &bytes, 0o755)?;
        bytes.len() as u64
    };
    shell.emit(crate::messages::Executable {
        name: artifact.name.clone(),
        profile: profile.dir_name().to_string(),
        kind: "executable".to_string(),
        path: out_path.clone(),
        size,
        runner_size: runner.len() as u64,
        fresh: fresh.is_some(),
        shown,
    });
    Ok(out_path)
}

/// The size of the executable at `path` when it already holds this runner and these settings
/// (which name the component by digest), so nothing needs writing.
fn is_current(path: &Path, runner: &[u8], settings: &ExeSettings) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let payload = exe::read(&bytes).ok()?;
    (payload.settings == *settings && exe::runner_part(&bytes) == runner)
        .then_some(bytes.len() as u64)
}
