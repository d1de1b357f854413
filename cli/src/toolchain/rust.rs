//! The Rust guest driver: `cargo build --target wasm32-wasip2`, which yields a component
//! directly (rustc links with `wasm-component-ld`).
//!
//! The package is found with `cargo metadata`; the build runs with cargo's JSON messages on
//! stdout (artifacts, rendered diagnostics) and cargo's own status lines on stderr, both
//! passed through the [`Shell`]. On a terminal the JSON artifacts drive a progress bar whose
//! total is the number of packages in the build's dependency graph.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use cargo_metadata::{Message, MetadataCommand, PackageId, TargetKind};

use crate::driver::{Check, Profile};
use crate::errors::hinted;
use crate::manifest::Build;
use crate::shell::Shell;

pub use crate::manifest::RUST_TARGET as TARGET;

/// The Rust target a build uses: `[build] target`, else [`TARGET`].
fn target_of(build: &Build) -> &str {
    build
        .target
        .as_ref()
        .map_or(TARGET, |t| t.get_ref().as_str())
}

/// What a Rust build produced.
#[derive(Debug)]
pub struct RustBuild {
    /// The component cargo wrote (under `target/wasm32-wasip2/<profile>/`).
    pub wasm: PathBuf,
    /// Cargo's target directory; kiln writes its output under `<target_dir>/kiln/`.
    pub target_dir: PathBuf,
    /// What Cargo.toml says about the package.
    pub package: CargoPackage,
}

/// The `[package]` fields of Cargo.toml that kiln uses as fallbacks for Kiln.toml's.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CargoPackage {
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
    /// `description`.
    pub description: Option<String>,
    /// `license`.
    pub license: Option<String>,
    /// `repository`.
    pub repository: Option<String>,
}

/// The package and target to build, read from `cargo metadata`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Selected {
    package: PackageId,
    cargo: CargoPackage,
    target: String,
    is_lib: bool,
    /// Cargo's target directory.
    target_directory: PathBuf,
}

/// What a no-op build would otherwise ask cargo and rustc again: the selected package and
/// rustc's sysroot, kept in `KILN_CACHE_DIR/cargo-metadata/<hash of the manifest path>.json`
/// with the [`cache_key`] they were read under.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CachedSelection {
    key: String,
    selected: Selected,
    sysroot: PathBuf,
}

/// (size, modification time in ns) of `path`, or `None` when it does not exist.
fn stamp(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some((meta.len(), mtime))
}

/// Everything `cargo metadata --no-deps` and `rustc --print sysroot` depend on for
/// `cargo_toml`: kiln's version, the manifest and `[build] bin`; the Cargo.toml,
/// `.cargo/config[.toml]` and `rust-toolchain[.toml]` files of every ancestor directory;
/// cargo's and rustup's configuration; the names in `src/` and `src/bin/` (cargo discovers
/// targets there); and the environment variables that move the target directory or pick
/// the toolchain. A change in any of them reads cargo again.
fn cache_key(cargo_toml: &Path, build: &Build) -> String {
    use std::fmt::Write;
    let mut key = format!(
        "kiln {} {} bin={:?}\n",
        env!("CARGO_PKG_VERSION"),
        cargo_toml.display(),
        build.bin
    );
    for var in [
        "CARGO",
        "RUSTC",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
    ] {
        let _ = writeln!(key, "{var}={:?}", std::env::var_os(var));
    }
    let dir = cargo_toml.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = Vec::new();
    for ancestor in dir.ancestors() {
        for name in [
            "Cargo.toml",
            ".cargo/config.toml",
            ".cargo/config",
            "rust-toolchain",
            "rust-toolchain.toml",
        ] {
            files.push(ancestor.join(name));
        }
    }
    if let Some(cargo_home) = crate::env_vars::cargo_home() {
        files.push(cargo_home.join("config.toml"));
        files.push(cargo_home.join("config"));
    }
    if let Some(home) = dirs::home_dir() {
        let rustup_home =
            std::env::var_os("RUSTUP_HOME").map_or_else(|| home.join(".rustup"), PathBuf::from);
        files.push(rustup_home.join("settings.toml"));
    }
    for file in files {
        if let Some((size, mtime)) = stamp(&file) {
            let _ = writeln!(key, "{} {size} {mtime}", file.display());
        }
    }
    for sub in ["src", "src/bin"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let _ = writeln!(key, "{sub}: {}", names.join(" "));
        }
    }
    key
}

/// Where the cached selection for `cargo_toml` lives, if kiln has a cache directory.
fn cache_path(cargo_toml: &Path) -> Option<PathBuf> {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(
        cargo_toml.as_os_str().as_encoded_bytes(),
    ));
    Some(
        crate::env_vars::cache_dir()?
            .join("cargo-metadata")
            .join(format!("{}.json", &hash[..32])),
    )
}

/// rustc's sysroot (`rustc --print sysroot`).
fn sysroot(root: &Path) -> anyhow::Result<PathBuf> {
    let output = Command::new(crate::env_vars::rustc())
        .args(["--print", "sysroot"])
        .current_dir(root)
        .output()
        .context("failed to run `rustc --print sysroot`; is Rust installed? (https://rustup.rs)")?;
    if !output.status.success() {
        bail!(
            "`rustc --print sysroot` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// The selection and sysroot for `cargo_toml`: from the cache when nothing they depend on
/// changed, else from cargo and rustc (run side by side), then cached. The target's
/// standard library is checked either way (one `stat`).
fn select_cached(cargo_toml: &Path, build: &Build) -> anyhow::Result<Selected> {
    let root = cargo_toml.parent().unwrap_or(Path::new("."));
    let canonical = fs_err::canonicalize(cargo_toml)?;
    let key = cache_key(&canonical, build);
    let path = cache_path(&canonical);
    let cached = path
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|bytes| serde_json::from_slice::<CachedSelection>(&bytes).ok())
        .filter(|c| c.key == key);
    let (selected, sysroot) = match cached {
        Some(cached) => (cached.selected, cached.sysroot),
        None => {
            // Both spawn a process; run them side by side.
            let (sysroot, selected) = std::thread::scope(|scope| {
                let sysroot = scope.spawn(|| sysroot(root));
                let selected = select(cargo_toml, build);
                (
                    sysroot.join().expect("the sysroot query does not panic"),
                    selected,
                )
            });
            let (sysroot, selected) = (sysroot?, selected?);
            if let Some(path) = &path {
                let entry = CachedSelection {
                    key,
                    selected: selected.clone(),
                    sysroot: sysroot.clone(),
                };
                // Best effort: a cache that cannot be written costs the next build time only.
                if let Ok(bytes) = serde_json::to_vec(&entry) {
                    let _ = crate::fsutil::write_atomic(path, &bytes);
                }
            }
            (selected, sysroot)
        }
    };
    check_target_in(&sysroot, target_of(build))?;
    Ok(selected)
}

/// Checks that rustc has the standard library of `target` installed.
pub(crate) fn check_target(root: &Path, target: &str) -> anyhow::Result<()> {
    check_target_in(&sysroot(root)?, target)
}

/// Checks that the sysroot `sysroot` has the standard library of `target`.
fn check_target_in(sysroot: &Path, target: &str) -> anyhow::Result<()> {
    if !sysroot
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
    {
        let newer = if target == "wasm32-wasip3" {
            " (rustup has it from Rust 1.100; older toolchains build WASI 0.3 components for \
             `wasm32-wasip2` with the `wasip3` crate)"
        } else {
            ""
        };
        return Err(hinted(
            format!(
                "the `{target}` target is not installed for the Rust toolchain at `{}`",
                sysroot.display()
            ),
            format!(
                "install it with:\n\n    rustup target add {target}\n\n{newer}`kiln doctor` checks every toolchain kiln drives"
            ),
        ));
    }
    Ok(())
}

fn select(cargo_toml: &Path, build: &Build) -> anyhow::Result<Selected> {
    let metadata = MetadataCommand::new()
        .cargo_path(crate::env_vars::cargo())
        .manifest_path(cargo_toml)
        .no_deps()
        .exec()
        .with_context(|| {
            format!(
                "failed to read `{}` with `cargo metadata`",
                cargo_toml.display()
            )
        })?;
    let canonical = fs_err::canonicalize(cargo_toml)?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.manifest_path.as_std_path() == canonical)
        .with_context(|| {
            format!(
                "`{}` is a virtual workspace manifest; point --manifest-path at one of its members",
                cargo_toml.display()
            )
        })?;
    let bins: Vec<_> = package
        .targets
        .iter()
        .filter(|t| t.kind.contains(&TargetKind::Bin))
        .collect();
    let cdylib = package
        .targets
        .iter()
        .find(|t| t.kind.contains(&TargetKind::CDyLib));
    let (target, is_lib) = if let Some(wanted) = &build.bin {
        match bins.iter().find(|t| &t.name == wanted) {
            Some(t) => (t.name.clone(), false),
            None => bail!(
                "`[build] bin = \"{wanted}\"`: package `{}` has no binary named `{wanted}`",
                package.name
            ),
        }
    } else if let [only] = bins.as_slice() {
        (only.name.clone(), false)
    } else if let Some(main) = bins.iter().find(|t| t.name == package.name.as_str()) {
        (main.name.clone(), false)
    } else if bins.len() > 1 {
        let names: Vec<_> = bins.iter().map(|t| t.name.as_str()).collect();
        return Err(hinted(
            format!(
                "package `{}` has several binaries: {}",
                package.name,
                names.join(", ")
            ),
            "choose one with `[build] bin = \"NAME\"` in Kiln.toml",
        ));
    } else if let Some(lib) = cdylib {
        (lib.name.clone(), true)
    } else {
        return Err(hinted(
            format!(
                "package `{}` has neither a binary nor a `cdylib` library to build as a component",
                package.name
            ),
            "add `src/main.rs` for a command, or `[lib] crate-type = [\"cdylib\"]` to Cargo.toml for a library component",
        ));
    };
    Ok(Selected {
        target_directory: metadata.target_directory.clone().into_std_path_buf(),
        package: package.id.clone(),
        cargo: CargoPackage {
            name: package.name.to_string(),
            version: package.version.to_string(),
            description: package.description.clone(),
            license: package.license.clone(),
            repository: package.repository.clone(),
        },
        target,
        is_lib,
    })
}

/// The number of packages the build compiles: the root package plus everything reachable
/// through normal and build dependencies for `wasm32-wasip2`. Used as the progress total.
fn count_units(cargo_toml: &Path, root: &PackageId) -> Option<u64> {
    let metadata = MetadataCommand::new()
        .cargo_path(crate::env_vars::cargo())
        .manifest_path(cargo_toml)
        .other_options(vec!["--filter-platform".into(), TARGET.into()])
        .exec()
        .ok()?;
    let resolve = metadata.resolve?;
    let nodes: HashMap<_, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in &nodes.get(id)?.deps {
            if dep
                .dep_kinds
                .iter()
                .any(|k| k.kind != cargo_metadata::DependencyKind::Development)
            {
                stack.push(&dep.pkg);
            }
        }
    }
    Some(seen.len() as u64)
}

/// Builds the package at `cargo_toml` for `wasm32-wasip2`.
///
/// # Errors
///
/// A missing target (with the `rustup` line to fix it), a package with nothing to build,
/// or a failed compile (after rustc's diagnostics have been shown).
pub fn build(
    shell: &Shell,
    cargo_toml: &Path,
    build: &Build,
    profile: Profile,
    for_size: bool,
) -> anyhow::Result<RustBuild> {
    // A no-op build is mostly process start-up: cargo metadata and rustc are asked only
    // when something they read changed.
    let selected = select_cached(cargo_toml, build)?;

    let mut cmd = Command::new(crate::env_vars::cargo());
    cmd.arg("build")
        .arg("--target")
        .arg(target_of(build))
        .arg("--manifest-path")
        .arg(cargo_toml)
        .arg("--message-format=json-diagnostic-rendered-ansi")
        .arg("--color")
        .arg(if shell.stderr_supports_color() {
            "always"
        } else {
            "never"
        });
    if selected.is_lib {
        cmd.arg("--lib");
    } else {
        cmd.arg("--bin").arg(&selected.target);
    }
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    if for_size {
        for setting in size_settings(cargo_toml, "release") {
            cmd.arg("--config").arg(setting);
        }
    }
    if !build.features.is_empty() {
        cmd.arg("--features").arg(build.features.join(","));
    }
    if !build.default_features {
        cmd.arg("--no-default-features");
    }
    match shell.verbosity() {
        crate::shell::Verbosity::Quiet => {
            cmd.arg("--quiet");
        }
        crate::shell::Verbosity::Verbose => {
            cmd.arg("--verbose");
        }
        crate::shell::Verbosity::Normal => {}
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    shell.verbose_status("Running", format_args!("`{}`", display_command(&cmd)));

    // Counting needs a second, full `cargo metadata`: only pay for it when a bar is drawn.
    if shell.progress_enabled()
        && let Some(total) = count_units(cargo_toml, &selected.package)
    {
        shell.progress_start(total, "Building");
    }
    let mut child = crate::signals::spawn(&mut cmd)
        .context("failed to run `cargo`; is Rust installed? (https://rustup.rs)")?;
    let (Some(stdout), Some(stderr)) = (child.child().stdout.take(), child.child().stderr.take())
    else {
        bail!("cargo was started without its output pipes");
    };

    let mut wasm = None;
    let mut built = 0u64;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                shell.forward_stderr(&line);
            }
        });
        for message in Message::parse_stream(BufReader::new(stdout)).map_while(Result::ok) {
            match message {
                Message::CompilerArtifact(artifact) => {
                    if artifact.target.kind.contains(&TargetKind::CustomBuild) {
                        continue;
                    }
                    built += 1;
                    shell.progress_set(built, &artifact.target.name);
                    shell.emit(crate::messages::UnitFinished {
                        package: artifact.package_id.repr.clone(),
                        target: artifact.target.name.clone(),
                        fresh: artifact.fresh,
                        built,
                    });
                    if artifact.package_id == selected.package
                        && artifact.target.name == selected.target
                    {
                        wasm = artifact
                            .filenames
                            .iter()
                            .find(|f| f.extension() == Some("wasm"))
                            .map(|f| f.clone().into_std_path_buf());
                    }
                }
                Message::CompilerMessage(message) => {
                    let rendered = message
                        .message
                        .rendered
                        .unwrap_or_else(|| message.message.message.clone());
                    let level = serde_json::to_value(message.message.level)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    shell.emit(crate::messages::CompilerMessage {
                        package: message.package_id.repr,
                        level,
                        message: message.message.message,
                        rendered: anstream::adapter::strip_str(&rendered).to_string(),
                        colored: rendered,
                    });
                }
                _ => {}
            }
        }
    });
    let status = child.wait().context("failed to wait for cargo")?;
    shell.progress_finish();
    if !status.success() {
        bail!(
            "could not compile `{}` for {} (cargo exited with {status})",
            selected.cargo.name,
            target_of(build)
        );
    }
    let wasm = wasm.with_context(|| {
        format!(
            "cargo built `{}` but reported no `.wasm` file for target `{}`",
            selected.cargo.name, selected.target
        )
    })?;
    Ok(RustBuild {
        wasm,
        target_dir: selected.target_directory.clone(),
        package: selected.cargo,
    })
}

/// The profile settings `[release] optimize = "z"` gives cargo: what the Rust guide to small
/// binaries sets (<https://github.com/johnthagen/min-sized-rust>) that a wasm build can use.
/// `panic = "abort"` is already the wasm targets' default, and kiln strips afterwards.
const SIZE_SETTINGS: [(&str, &str); 3] = [
    ("opt-level", "\"z\""),
    ("lto", "true"),
    ("codegen-units", "1"),
];

/// `--config` values (`profile.<profile>.<key>=<value>`) for each of [`SIZE_SETTINGS`] that
/// the project and its user left to cargo's default. A key set anywhere cargo reads profiles
/// from is theirs and stays: `[profile.<profile>]` in a Cargo.toml beside or above
/// `cargo_toml`, a `.cargo/config[.toml]` there or above the working directory, cargo's home
/// configuration, or `CARGO_PROFILE_<PROFILE>_<KEY>`
/// (<https://doc.rust-lang.org/cargo/reference/config.html>). A file that does not parse
/// counts as setting nothing: cargo reports it.
fn size_settings(cargo_toml: &Path, profile: &str) -> Vec<String> {
    let mut files: Vec<PathBuf> = Vec::new();
    let dir = cargo_toml.parent().unwrap_or(Path::new("."));
    let cwd = std::env::current_dir().ok();
    for ancestor in dir.ancestors() {
        files.push(ancestor.join("Cargo.toml"));
    }
    for ancestor in dir
        .ancestors()
        .chain(cwd.iter().flat_map(|cwd| cwd.ancestors()))
    {
        files.push(ancestor.join(".cargo/config.toml"));
        files.push(ancestor.join(".cargo/config"));
    }
    if let Some(home) = crate::env_vars::cargo_home() {
        files.push(home.join("config.toml"));
        files.push(home.join("config"));
    }
    // The working directory is usually the project's, or below it: read each file once.
    let mut seen = HashSet::new();
    files.retain(|file| seen.insert(file.clone()));
    let tables: Vec<toml::Table> = files
        .iter()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|text| text.parse::<toml::Table>().ok())
        .collect();
    SIZE_SETTINGS
        .iter()
        .filter(|(key, _)| {
            !crate::env_vars::cargo_profile_setting_is_set(profile, key)
                && !tables.iter().any(|table| {
                    table
                        .get("profile")
                        .and_then(|p| p.get(profile))
                        .and_then(|p| p.get(*key))
                        .is_some()
                })
        })
        .map(|(key, value)| format!("profile.{profile}.{key}={value}"))
        .collect()
}

fn display_command(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `kiln doctor`'s checks for Rust guests: rustc, and the wasm targets in its sysroot.
pub fn probe() -> Vec<Check> {
    let mut checks = Vec::new();
    // Rust: rustc, and the wasm targets in its sysroot.
    let rustc = crate::env_vars::rustc();
    let version = super::version_line(Command::new(&rustc).arg("--version"));
    let sysroot =
        super::version_line(Command::new(&rustc).args(["--print", "sysroot"])).map(PathBuf::from);
    checks.push(Check {
        name: "rust".into(),
        path: super::which(&rustc.to_string_lossy()).or_else(|| Some(PathBuf::from(&rustc))),
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
    checks
}
