//! `kiln run`: build when stale (inside a project) or take a `.wasm` file, then run it as a
//! `wasi:cli/command` on the embedded Wasmtime with exactly the capabilities asked for.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use kiln_componentize::WasmKind;
use kiln_runtime::{CodeSource, RunConfig, Runtime, RuntimeConfig};

use crate::errors::hinted;
use crate::ops::build::build_project;
use crate::settings::{RunSettings, RunTarget};
use crate::shell::Shell;

/// What to run: a component file, named for `argv[0]`, with its project's `[run]` table.
pub(crate) struct Runnable {
    pub(crate) path: PathBuf,
    /// How to name it in messages when not by its path (a registry reference).
    pub(crate) shown: Option<String>,
    program_name: String,
    /// The component's bytes when they are already in memory, verified: a pulled component
    /// is run from exactly the bytes whose digest was checked, never from its cache file
    /// read a second time.
    verified: Option<bytes::Bytes>,
}

/// A component located (built if needed), checked, and compiled or loaded from the cache.
pub struct Prepared {
    /// The runtime it was loaded into.
    pub runtime: Runtime,
    /// The compiled component.
    pub loaded: kiln_runtime::LoadedComponent,
    /// Its path as shown to the user.
    pub shown: String,
    /// Kiln.toml's `[run]` with the command line's grants and limits merged over it.
    pub config: RunConfig,
    /// `argv[0]` for the guest.
    pub program_name: String,
}

/// The steps `kiln run` and `kiln serve` share: check the command line's grants, locate or
/// build the component, refuse what is not a component (`what` says what the command
/// runs), and load it.
/// `pooling` picks Wasmtime's pooling allocator (for serving many instances).
pub fn prepare(
    shell: &Shell,
    settings: &RunSettings,
    what: &str,
    pooling: bool,
) -> anyhow::Result<Prepared> {
    // Check the command line's grants before building or compiling, so a typo fails fast.
    let _ = capabilities(&settings.flags, settings, String::new())?;
    // And the merged ones, which include the project's.
    let _ = capabilities(&settings.config, settings, String::new())?;
    let runnable = locate(shell, settings)?;
    let config = settings.config.clone();

    // Only the preamble is read here: the runtime hashes the file through a memory map and
    // reads it whole only when its compiled code is not cached (a bundle can be large).
    let mut preamble = Vec::with_capacity(8);
    match &runnable.verified {
        Some(bytes) => preamble.extend(bytes.iter().take(8)),
        None => {
            fs_err::File::open(&runnable.path)?
                .take(8)
                .read_to_end(&mut preamble)?;
        }
    }
    let shown = runnable
        .shown
        .clone()
        .unwrap_or_else(|| crate::fsutil::display_relative(&runnable.path));
    match kiln_componentize::detect(&preamble) {
        WasmKind::Component => {}
        WasmKind::CoreModule => {
            return Err(hinted(
                format!("`{shown}` is a core module, not a component"),
                format!(
                    "{what}; build for `wasm32-wasip2`, or turn a WASI preview1 module into a \
                     component with `wasm-tools component new --adapt`"
                ),
            ));
        }
        WasmKind::NotWasm => {
            let why = kiln_componentize::validate(&fs_err::read(&runnable.path)?)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            bail!("`{shown}` is {why}");
        }
    }

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: crate::env_vars::cache_dir(),
        fuel: config.fuel.is_some(),
        max_wasm_stack: config.max_wasm_stack,
        pooling,
    })?;
    let loaded = match &runnable.verified {
        Some(bytes) => runtime.load(bytes),
        None => runtime.load_file(&runnable.path),
    }
    .with_context(|| format!("failed to load `{shown}`"))?;
    match &loaded.source {
        CodeSource::Cache(path) => shell.verbose_status(
            "Cached",
            format_args!("compiled code from {}", path.display()),
        ),
        CodeSource::Compiled {
            duration,
            cached_at,
        } => shell.verbose_status(
            "Compiled",
            format_args!(
                "{shown} in {:.2}s{}",
                duration.as_secs_f64(),
                cached_at
                    .as_ref()
                    .map(|p| format!(" (cached at {})", p.display()))
                    .unwrap_or_default()
            ),
        ),
        // Only single-file executables load embedded code.
        CodeSource::Embedded | CodeSource::Recompiled { .. } => {}
    }
    Ok(Prepared {
        runtime,
        loaded,
        shown,
        config,
        program_name: runnable.program_name,
    })
}

/// Builds if needed, then runs; returns the guest's exit code.
///
/// # Errors
///
/// Build errors; a missing file, a core module, a library component or a non-wasm file;
/// a directory grant that does not exist; a trap (exit code [`kiln_runtime::TRAP_EXIT_CODE`]).
pub fn run(shell: &Shell, settings: &RunSettings) -> anyhow::Result<i32> {
    let Prepared {
        runtime,
        loaded,
        shown,
        config,
        program_name,
    } = prepare(
        shell,
        settings,
        "`kiln run` runs components that export `wasi:cli/run`",
        false,
    )?;
    let capabilities = capabilities(&config, settings, program_name)?;
    shell.verbose_status("Running", format_args!("`{shown}`"));

    // One thread: a command guest runs on one fiber and its host calls are async, so worker
    // threads would only cost their start (and reading cgroup limits to size the pool).
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let outcome = tokio.block_on(runtime.run_command(&loaded, &capabilities, &config.limits()));
    match outcome {
        Ok(status) => Ok(status.code),
        Err(kiln_runtime::Error::NotACommand { exports }) => Err(not_a_command(&shown, &exports)),
        Err(error) => Err(error).with_context(|| format!("failed to run `{shown}`")),
    }
}

fn not_a_command(shown: &str, exports: &[String]) -> anyhow::Error {
    let world = kiln_componentize::WorldSummary {
        imports: Vec::new(),
        exports: exports.to_vec(),
    };
    let listed = if exports.is_empty() {
        "exports nothing".to_string()
    } else {
        format!(
            "exports {}",
            exports
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if let Some(handler) = world.http_handler_export() {
        return hinted(
            format!("`{shown}` is an HTTP component (it exports `{handler}`), not a command"),
            format!(
                "serve it with `kiln serve {shown}`; `kiln run` runs `wasi:cli/command` components"
            ),
        );
    }
    hinted(
        format!("`{shown}` is a library component: it {listed} but not `wasi:cli/run`"),
        format!(
            "call an export with `kiln run {shown} --invoke 'NAME(ARGS)'` (arguments and result in \
             WAVE); without --invoke, `kiln run` runs `wasi:cli/command` components"
        ),
    )
}

/// Resolves grants against the host, with `program` as `argv[0]`.
pub(crate) fn capabilities(
    config: &RunConfig,
    settings: &RunSettings,
    program: String,
) -> anyhow::Result<kiln_runtime::Capabilities> {
    let mut args = vec![program];
    args.extend(settings.args.iter().cloned());
    config
        .capabilities(
            &settings.cwd,
            args,
            crate::env_vars::host_var,
            crate::env_vars::host_vars,
        )
        .map_err(anyhow::Error::from)
}

/// Finds (pulling or building it if needed) the component to run.
pub(crate) fn locate(shell: &Shell, settings: &RunSettings) -> anyhow::Result<Runnable> {
    match &settings.target {
        RunTarget::File { path } => {
            let program_name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "main".to_string());
            Ok(Runnable {
                path: path.clone(),
                shown: None,
                program_name,
                verified: None,
            })
        }
        RunTarget::Reference { reference, .. } => {
            let (pulled, _) = crate::ops::sign::fetch(
                shell,
                reference,
                &crate::ops::registry::RegistryArgs::default(),
                &settings.verify,
            )?;
            Ok(Runnable {
                path: pulled.component,
                shown: Some(reference.to_string()),
                program_name: reference.name().to_string(),
                verified: Some(pulled.bytes),
            })
        }
        RunTarget::Project { build } => {
            let artifact = build_project(shell, build)?;
            Ok(Runnable {
                verified: None,
                path: artifact.path,
                shown: None,
                program_name: artifact.name,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::looks_like_reference;

    #[test]
    fn references_and_paths() {
        assert!(looks_like_reference("127.0.0.1:5000/demo/hello:0.1.0"));
        assert!(looks_like_reference("ghcr.io/you/app@sha256:00"));
        assert!(looks_like_reference("localhost/app:1"));
        assert!(!looks_like_reference("target/kiln/debug/app.wasm"));
        assert!(!looks_like_reference("app.wasm"));
        assert!(!looks_like_reference("examples/md2html"));
    }

    #[test]
    fn library_and_http_components_get_different_messages() {
        let lib = not_a_command("lib.wasm", &["greet".into()]).to_string();
        assert_eq!(
            lib,
            "`lib.wasm` is a library component: it exports `greet` but not `wasi:cli/run`"
        );
        let http =
            not_a_command("api.wasm", &["wasi:http/incoming-handler@0.2.0".into()]).to_string();
        assert!(
            http.starts_with("`api.wasm` is an HTTP component"),
            "{http}"
        );
    }
}
