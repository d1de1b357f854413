//! `kiln run`: build when stale (inside a project) or take a `.wasm` file, then run it as a
//! `wasi:cli/command` on the embedded Wasmtime with exactly the capabilities asked for.

use std::path::PathBuf;

use anyhow::{Context, bail};
use kiln_componentize::WasmKind;
use kiln_runtime::{Capabilities, CodeSource, Preopen, Runtime, RuntimeConfig};

use crate::errors::hinted;
use crate::manifest::{CARGO_TOML, KILN_TOML, Project};
use crate::ops::build::{Profile, build_project};
use crate::shell::{MessageFormat, Shell};

/// `--dir HOST[::GUEST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The host directory.
    pub host: PathBuf,
    /// Where the guest sees it; the host path as written when not given.
    pub guest: String,
}

impl std::str::FromStr for DirGrant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (host, guest) = match s.split_once("::") {
            Some((host, guest)) => (host, guest),
            None => (s, s),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!("expected HOST or HOST::GUEST, got `{s}`"));
        }
        Ok(DirGrant {
            host: PathBuf::from(host),
            guest: guest.to_string(),
        })
    }
}

/// `--env NAME[=VALUE]`: a value, or `NAME` alone to pass the host's value through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvGrant {
    /// The variable name.
    pub name: String,
    /// The value; `None` inherits the host's.
    pub value: Option<String>,
}

impl std::str::FromStr for EnvGrant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, value) = match s.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (s, None),
        };
        if name.is_empty() {
            return Err(format!("expected NAME or NAME=VALUE, got `{s}`"));
        }
        Ok(EnvGrant {
            name: name.to_string(),
            value,
        })
    }
}

/// Resolved `kiln run` settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// A `.wasm` file, or a project directory or manifest; `None` for the project around `cwd`.
    pub path: Option<PathBuf>,
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// The current directory.
    pub cwd: PathBuf,
    /// Build profile when building first.
    pub profile: Profile,
    /// Directories to grant.
    pub dirs: Vec<DirGrant>,
    /// Environment variables to grant.
    pub env: Vec<EnvGrant>,
    /// Pass the whole host environment.
    pub inherit_env: bool,
    /// Arguments after `--`.
    pub args: Vec<String>,
}

/// What to run: a component file, named for `argv[0]`.
struct Runnable {
    path: PathBuf,
    program_name: String,
}

/// Builds if needed, then runs; returns the guest's exit code.
///
/// # Errors
///
/// Build errors; a missing file, a core module, a library component or a non-wasm file;
/// a directory grant that does not exist; a trap (exit code [`kiln_runtime::TRAP_EXIT_CODE`]).
pub fn run(shell: &Shell, opts: &RunOptions) -> anyhow::Result<i32> {
    // Check grants before building or compiling, so a typo fails fast.
    let capabilities = capabilities(opts)?;
    let runnable = locate(shell, opts)?;

    let bytes = fs_err::read(&runnable.path)?;
    let shown = crate::fsutil::display_relative(&runnable.path);
    match kiln_componentize::detect(&bytes) {
        WasmKind::Component => {}
        WasmKind::CoreModule => {
            return Err(hinted(
                format!("`{shown}` is a core module, not a component"),
                "`kiln run` runs components that export `wasi:cli/run`; build for `wasm32-wasip2`, \
                 or turn a WASI preview1 module into a component with `wasm-tools component new --adapt`",
            ));
        }
        WasmKind::NotWasm => {
            let why = kiln_componentize::validate(&bytes)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            bail!("`{shown}` is {why}");
        }
    }

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: crate::env_vars::cache_dir(),
        ..RuntimeConfig::default()
    })?;
    let loaded = runtime
        .load(&bytes)
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
    }
    shell.verbose_status("Running", format_args!("`{shown}`"));

    let mut capabilities = capabilities;
    capabilities.args.insert(0, runnable.program_name);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let outcome = tokio.block_on(runtime.run_command(
        &loaded,
        &capabilities,
        &kiln_runtime::Limits::default(),
    ));
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
            "`kiln run` runs `wasi:cli/command` components, which export `wasi:cli/run`",
        );
    }
    hinted(
        format!("`{shown}` is a library component: it {listed} but not `wasi:cli/run`"),
        "`kiln run` runs `wasi:cli/command` components; a library component's exports are called by \
         another component or a host",
    )
}

/// Resolves the grants into [`Capabilities`] (without `argv[0]`).
fn capabilities(opts: &RunOptions) -> anyhow::Result<Capabilities> {
    let mut caps = Capabilities {
        args: opts.args.clone(),
        ..Capabilities::default()
    };
    if opts.inherit_env {
        caps.env = crate::env_vars::host_vars();
    }
    for grant in &opts.env {
        let value = match &grant.value {
            Some(value) => value.clone(),
            None => match crate::env_vars::host_var(&grant.name) {
                Some(value) => value,
                None => continue, // `--env NAME` with NAME unset on the host grants nothing.
            },
        };
        caps.env.retain(|(k, _)| k != &grant.name);
        caps.env.push((grant.name.clone(), value));
    }
    for grant in &opts.dirs {
        let host = opts.cwd.join(&grant.host);
        match std::fs::metadata(&host) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!(
                "cannot grant `--dir {}`: `{}` is not a directory",
                grant.host.display(),
                grant.host.display()
            ),
            Err(_) => bail!(
                "cannot grant `--dir {}`: the directory `{}` does not exist",
                grant.host.display(),
                host.display()
            ),
        }
        caps.preopens.push(Preopen {
            host,
            guest: grant.guest.clone(),
            read_only: false,
        });
    }
    Ok(caps)
}

/// Finds (and if needed builds) the component to run.
fn locate(shell: &Shell, opts: &RunOptions) -> anyhow::Result<Runnable> {
    let project = match (&opts.path, &opts.manifest_path) {
        (Some(path), _) => {
            let full = opts.cwd.join(path);
            let is_manifest = matches!(
                full.file_name().and_then(|n| n.to_str()),
                Some(KILN_TOML | CARGO_TOML)
            );
            if full.is_dir() {
                Project::at(full)?
            } else if is_manifest && full.is_file() {
                Project::find(&opts.cwd, Some(path))?
            } else if full.is_file() {
                let program_name = full
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "main".to_string());
                return Ok(Runnable {
                    path: full,
                    program_name,
                });
            } else {
                bail!("`{}` does not exist", path.display());
            }
        }
        (None, manifest_path) => Project::find(&opts.cwd, manifest_path.as_deref())?,
    };
    let artifact = build_project(shell, &project, opts.profile, false, MessageFormat::Human)?;
    Ok(Runnable {
        path: artifact.path,
        program_name: artifact.name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grants() {
        assert_eq!(
            "data::/data".parse::<DirGrant>().unwrap(),
            DirGrant {
                host: "data".into(),
                guest: "/data".into()
            }
        );
        assert_eq!(
            "data".parse::<DirGrant>().unwrap(),
            DirGrant {
                host: "data".into(),
                guest: "data".into()
            }
        );
        assert!("::/x".parse::<DirGrant>().is_err());
        assert_eq!(
            "A=b=c".parse::<EnvGrant>().unwrap(),
            EnvGrant {
                name: "A".into(),
                value: Some("b=c".into())
            }
        );
        assert_eq!(
            "A".parse::<EnvGrant>().unwrap(),
            EnvGrant {
                name: "A".into(),
                value: None
            }
        );
        assert!("=x".parse::<EnvGrant>().is_err());
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
