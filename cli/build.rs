//! kiln's build script.
//!
//! - Templates are embedded with `include_dir!`, which cannot tell cargo to watch them.
//! - `kiln-runner` (the native half of `kiln build --exe`) is built here, by a nested
//!   `cargo build -p kiln-runner`, and kiln carries its bytes (`KILN_RUNNER_BIN`). Built on its
//!   own, the runner gets a Wasmtime without Cranelift: in one build with kiln, cargo would
//!   unify Wasmtime's features and the runner would carry the compiler too (about 16 MB).
//!   The nested build has its own target directory beside this profile's, so it is
//!   incremental, and it shares the outer build's jobserver, so it never runs more jobs than
//!   `-j` allows.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=templates");
    let runner = build_runner();
    println!("cargo:rustc-env=KILN_RUNNER_BIN={}", runner.display());
    // kiln is a large position-independent executable: about 95,000 relative relocations,
    // 2.3 MB of `.rela.dyn` that the loader reads at every start. RELR packs them into a few
    // KB (glibc 2.36+; a linker or libc without it keeps the usual format).
    let target = env::var("TARGET").expect("cargo sets it");
    if target.ends_with("linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Builds `kiln-runner` for the target kiln is built for, in the `runner` profile for a
/// release kiln (small, quick to start) and `dev` otherwise; returns its path.
fn build_runner() -> PathBuf {
    for path in ["runner", "runtime", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    let target = env::var("TARGET").expect("cargo sets it");
    let release = env::var("PROFILE").as_deref() == Ok("release");
    let (profile, profile_dir) = if release {
        ("runner", "runner")
    } else {
        ("dev", "debug")
    };
    // OUT_DIR is <target-dir>/[<triple>/]<profile>/build/kiln-<hash>/out: the nested build
    // goes in the profile's directory (not at `kiln-runner`, where a workspace build puts
    // the runner's binary), shared by every build of this profile.
    let target_dir = out_dir
        .ancestors()
        .nth(3)
        .map(|profile_dir| profile_dir.join("kiln-runner-build"))
        .unwrap_or_else(|| out_dir.join("kiln-runner-build"));

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--package", "kiln-runner", "--bin", "kiln-runner"])
        .args(["--profile", profile, "--target-dir"])
        .arg(&target_dir)
        // The lock is the workspace's; the outer build has already downloaded every crate
        // the runner uses, so this makes no request (and works offline).
        .arg("--locked")
        // `cargo clippy` lints kiln through this wrapper; the runner is linted on its own.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    if !release {
        // Symbols and std's line tables would make a debug runner about 60 MB, copied into
        // every executable a test builds.
        command.env("CARGO_PROFILE_DEV_STRIP", "true");
    }
    // A cross-compiled kiln carries a runner for its own target; otherwise the host's build
    // (no `--target`, so the usual layout).
    let host = env::var("HOST").expect("cargo sets it");
    let cross = target != host;
    if cross {
        command.args(["--target", &target]);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build kiln-runner: {e}"));
    if !output.status.success() {
        panic!(
            "building kiln-runner failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let name = format!("kiln-runner{}", exe_suffix(&target));
    let built = if cross {
        target_dir.join(&target).join(profile_dir).join(&name)
    } else {
        target_dir.join(profile_dir).join(&name)
    };
    // A copy in OUT_DIR: the nested target directory may be rebuilt by another build while
    // this one is compiling kiln, which includes the file's bytes.
    let copy = out_dir.join(&name);
    copy_if_changed(&built, &copy);
    copy
}

fn exe_suffix(target: &str) -> &'static str {
    if target.contains("windows") {
        ".exe"
    } else {
        ""
    }
}

/// Copies `from` to `to` unless `to` already has the same bytes, so that an unchanged runner
/// does not make cargo recompile kiln.
fn copy_if_changed(from: &Path, to: &Path) {
    let bytes = std::fs::read(from)
        .unwrap_or_else(|e| panic!("cannot read the built runner `{}`: {e}", from.display()));
    if std::fs::read(to).ok().as_deref() == Some(bytes.as_slice()) {
        return;
    }
    std::fs::write(to, bytes).unwrap_or_else(|e| panic!("cannot write `{}`: {e}", to.display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("cannot make `{}` executable: {e}", to.display()));
    }
}
