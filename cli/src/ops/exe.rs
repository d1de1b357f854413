//! `kiln build --exe`: a single-file native executable — the `kiln-runner` binary with the
//! component, its precompiled code and the `[run]` settings appended (format:
//! [`kiln_runtime::exe`]).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_runtime::exe::{self, ExeSettings};
use kiln_runtime::{Runtime, RuntimeConfig};

use crate::errors::hinted;
use crate::manifest::Project;
use crate::ops::build::{Artifact, Profile};
use crate::shell::Shell;

/// The runtime-only `kiln-runner` built with this kiln (`cli/build.rs`): a Wasmtime without
/// Cranelift, which loads the precompiled code an executable carries.
static BUILTIN_RUNNER: &[u8] = include_bytes!(env!("KILN_RUNNER_BIN"));

/// The runner an executable starts with.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runner {
    /// The one kiln carries.
    Builtin,
    /// A file `KILN_RUNNER` names.
    File(PathBuf),
}

impl Runner {
    /// The runner's bytes (with any payload of its own left out when packaging).
    fn bytes(&self) -> anyhow::Result<Cow<'static, [u8]>> {
        Ok(match self {
            Runner::Builtin => Cow::Borrowed(BUILTIN_RUNNER),
            Runner::File(path) => Cow::Owned(fs_err::read(path)?),
        })
    }
}

/// The size in bytes of the runner kiln carries.
pub fn builtin_runner_size() -> u64 {
    BUILTIN_RUNNER.len() as u64
}

/// The runner to package with: the file `KILN_RUNNER` names (which must exist), else the one
/// kiln carries.
pub fn find_runner() -> anyhow::Result<Runner> {
    let Some(path) = crate::env_vars::runner() else {
        return Ok(Runner::Builtin);
    };
    if path.is_file() {
        return Ok(Runner::File(path));
    }
    Err(hinted(
        format!(
            "KILN_RUNNER points at `{}`, which does not exist, so kiln cannot make executables",
            path.display()
        ),
        "unset KILN_RUNNER to use the runner built into kiln",
    ))
}

/// Writes `target/kiln/<profile>/<name>` for a built component, starting with `runner`,
/// unless an identical one is already there. Returns its path.
///
/// # Errors
///
/// An unreadable runner, a component Wasmtime cannot compile, or a failure to write.
pub fn package(
    shell: &Shell,
    project: &Project,
    artifact: &Artifact,
    runner: &Runner,
    profile: Profile,
) -> anyhow::Result<PathBuf> {
    let runner_file = runner.bytes()?;
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
