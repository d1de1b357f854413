//! `kiln-runner`: the native part of a single-file executable made by `kiln build --exe`.
//!
//! It reads its own file, verifies the payload kiln appended (length and SHA-256; see
//! `kiln_runtime::exe`), and runs the component on the embedded Wasmtime with its own
//! arguments and stdio, the capabilities and limits fixed at build time, and the guest's exit
//! status. Only documented `KILN_*` variables change those settings at run time:
//!
//! | variable | effect |
//! |---|---|
//! | `KILN_DIRS` | replaces the directory grants: `HOST[::GUEST][:ro]`, separated by `;` (empty: none) |
//! | `KILN_ENV` | adds variable grants: `NAME[=VALUE]`, separated by `;` |
//! | `KILN_INHERIT_ENV` | `1` grants every host variable (except `KILN_*`), `0` none |
//! | `KILN_INHERIT_NETWORK` | `1` grants the host's network, `0` denies it |
//! | `KILN_TIMEOUT` | wall-clock limit, e.g. `10s` |
//! | `KILN_MAX_MEMORY` | linear-memory limit, e.g. `256MiB` |
//! | `KILN_FUEL` | fuel limit (only when built with a `fuel` limit) |
//!
//! It holds no toolchain drivers, registry client or optimizer: only what running needs.

use std::io::Write;
use std::process::ExitCode;

use kiln_runtime::exe::{self, ExeSettings};
use kiln_runtime::text::escape_controls;
use kiln_runtime::{RunConfig, Runtime, RuntimeConfig};

/// The exit status when the runner fails before the guest runs.
const FAILURE: u8 = 1;

/// A failure to report: the message, optional detail (a backtrace) and hint.
struct Failure {
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    code: i32,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            detail: None,
            hint: None,
            code: FAILURE.into(),
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => exit_code(code),
        Err(failure) => {
            report(&failure);
            exit_code(failure.code)
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(FAILURE))
}

/// The one place the runner writes human output.
#[allow(clippy::print_stderr)]
fn report(failure: &Failure) {
    let style = anstyle::Style::new()
        .bold()
        .fg_color(Some(anstyle::AnsiColor::Red.into()));
    let mut err = anstream::stderr().lock();
    // Trap messages and backtraces carry the guest's own names: shown, never obeyed.
    let _ = writeln!(
        err,
        "{style}error{style:#}: {}",
        escape_controls(&failure.message)
    );
    if let Some(detail) = &failure.detail {
        let _ = writeln!(err, "{}", escape_controls(detail));
    }
    if let Some(hint) = &failure.hint {
        let _ = writeln!(err, "hint: {}", escape_controls(hint));
    }
}

fn run() -> Result<i32, Failure> {
    let exe_path = std::env::current_exe()
        .map_err(|e| Failure::new(format!("cannot find this executable's own file: {e}")))?;
    let payload = exe::open(&exe_path).map_err(|e| {
        Failure::new(format!("`{}` cannot run: {e}", exe_path.display()))
            .hint("rebuild it with `kiln build --exe`")
    })?;

    let mut args = Vec::new();
    for (i, arg) in std::env::args_os().enumerate() {
        let arg = match arg.into_string() {
            Ok(arg) => arg,
            Err(arg) => {
                return Err(Failure::new(format!(
                    "argument {i} is not valid UTF-8: {}",
                    arg.to_string_lossy()
                )));
            }
        };
        args.push(if i == 0 { program_name(&arg) } else { arg });
    }

    let config = overridden(&payload.settings, |key| std::env::var(key).ok())?;
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::new(format!("cannot read the current directory: {e}")))?;
    // `capabilities` leaves kiln's own `KILN_*` variables out (`kiln_runtime::is_inheritable`),
    // as `kiln run --inherit-env` does.
    let host_vars = || {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    };
    let caps = config
        .capabilities(&cwd, args, |k| std::env::var(k).ok(), host_vars)
        .map_err(|e| Failure::new(chain(&e)))?;

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        fuel: payload.settings.fuel_metering,
        max_wasm_stack: config.max_wasm_stack,
        pooling: false,
    })
    .map_err(|e| Failure::new(chain(&e)))?;
    // SAFETY: the precompiled code was verified against the payload digest above, and kiln
    // made it with `Runtime::precompile_portable` for these settings.
    let loaded = unsafe { runtime.load_precompiled(payload.precompiled(), payload.component()) }
        .map_err(|e| Failure::new(chain(&e)))?;

    // One thread: a command guest runs on one fiber and its host calls are async, so worker
    // threads would only cost their start (and reading cgroup limits to size the pool).
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("failed to start the async runtime: {e}")))?;
    match tokio.block_on(runtime.run_command(&loaded, &caps, &config.limits())) {
        Ok(status) => Ok(status.code),
        Err(error) => Err(Failure {
            message: chain(&error),
            detail: error.backtrace().map(|b| b.trim_end().to_string()),
            hint: None,
            code: error.exit_code().unwrap_or(FAILURE.into()),
        }),
    }
}

/// An error and its causes on one line, `outer: inner: innermost`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// `argv[0]` as a program sees it: the file name it was started as.
fn program_name(arg0: &str) -> String {
    std::path::Path::new(arg0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| arg0.to_string())
}

/// The build-time settings with the documented `KILN_*` overrides applied.
fn overridden(
    settings: &ExeSettings,
    var: impl Fn(&str) -> Option<String>,
) -> Result<RunConfig, Failure> {
    let mut config = settings.run.clone();
    let bad = |key: &str, why: String| Failure::new(format!("`{key}`: {why}"));
    let list = |text: &str| {
        text.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let switch = |key: &str, text: &str| match text.trim() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" | "" => Ok(false),
        other => Err(bad(key, format!("expected 1 or 0, got `{other}`"))),
    };
    if let Some(dirs) = var("KILN_DIRS") {
        config.dirs = list(&dirs)
            .iter()
            .map(|d| d.parse().map_err(|e| bad("KILN_DIRS", e)))
            .collect::<Result<_, _>>()?;
    }
    if let Some(env) = var("KILN_ENV") {
        for grant in list(&env) {
            config
                .env
                .push(grant.parse().map_err(|e| bad("KILN_ENV", e))?);
        }
    }
    if let Some(text) = var("KILN_INHERIT_ENV") {
        config.inherit_env = switch("KILN_INHERIT_ENV", &text)?;
    }
    if let Some(text) = var("KILN_INHERIT_NETWORK") {
        config.inherit_network = switch("KILN_INHERIT_NETWORK", &text)?;
    }
    if let Some(text) = var("KILN_TIMEOUT") {
        config.timeout =
            Some(kiln_runtime::parse_duration(&text).map_err(|e| bad("KILN_TIMEOUT", e))?);
    }
    if let Some(text) = var("KILN_MAX_MEMORY") {
        config.max_memory =
            Some(kiln_runtime::parse_size(&text).map_err(|e| bad("KILN_MAX_MEMORY", e))?);
    }
    if let Some(text) = var("KILN_FUEL") {
        let fuel: u64 = text
            .trim()
            .parse()
            .map_err(|e| bad("KILN_FUEL", format!("`{text}` is not a number: {e}")))?;
        if !settings.fuel_metering {
            return Err(bad(
                "KILN_FUEL",
                "this executable was built without fuel metering".into(),
            )
            .hint("set `[run] fuel` in Kiln.toml and rebuild to meter fuel"));
        }
        config.fuel = Some(fuel);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(fuel_metering: bool) -> ExeSettings {
        ExeSettings {
            name: "t".into(),
            component_sha256: String::new(),
            fuel_metering,
            run: RunConfig {
                dirs: vec!["data".parse().unwrap()],
                ..RunConfig::default()
            },
        }
    }

    #[test]
    fn overrides_apply_only_through_kiln_variables() {
        let vars = |key: &str| match key {
            "KILN_DIRS" => Some("a::/a:ro; b".to_string()),
            "KILN_ENV" => Some("X=1;Y".to_string()),
            "KILN_TIMEOUT" => Some("2s".to_string()),
            "KILN_INHERIT_NETWORK" => Some("1".to_string()),
            _ => None,
        };
        let config = overridden(&settings(false), vars)
            .map_err(|f| f.message)
            .unwrap();
        assert_eq!(config.dirs.len(), 2);
        assert!(config.dirs[0].read_only);
        assert_eq!(config.env.len(), 2);
        assert_eq!(config.timeout, Some(std::time::Duration::from_secs(2)));
        assert!(config.inherit_network);
        assert!(!config.inherit_env);

        let unchanged = overridden(&settings(false), |_| None)
            .map_err(|f| f.message)
            .unwrap();
        assert_eq!(unchanged, settings(false).run);
    }

    #[test]
    fn bad_overrides_are_refused() {
        let fuel = |key: &str| (key == "KILN_FUEL").then(|| "100".to_string());
        let err = overridden(&settings(false), fuel).err().unwrap();
        assert!(
            err.message.contains("without fuel metering"),
            "{}",
            err.message
        );
        assert_eq!(
            overridden(&settings(true), fuel)
                .map_err(|f| f.message)
                .unwrap()
                .fuel,
            Some(100)
        );
        let timeout = |key: &str| (key == "KILN_TIMEOUT").then(|| "soon".to_string());
        let err = overridden(&settings(false), timeout).err().unwrap();
        assert!(err.message.starts_with("`KILN_TIMEOUT`"), "{}", err.message);
    }

    #[test]
    fn program_name_is_the_file_name() {
        assert_eq!(program_name("/usr/local/bin/hello"), "hello");
        assert_eq!(program_name("hello"), "hello");
    }
}
