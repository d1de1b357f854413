//! Every environment variable kiln reads, in one place. No other module calls
//! `std::env::var`; documented in docs/cli.md ("Environment").

use std::ffi::OsString;
use std::path::PathBuf;

/// `KILN_CACHE_DIR`: where compiled code is cached. Default: the platform cache directory
/// (`$XDG_CACHE_HOME/kiln` or `~/.cache/kiln` on Linux).
pub const KILN_CACHE_DIR: &str = "KILN_CACHE_DIR";
/// `KILN_RUNNER`: the `kiln-runner` executable `kiln build --exe` builds on. Default: the one
/// installed beside kiln.
pub const KILN_RUNNER: &str = "KILN_RUNNER";
/// `KILN_CONFIG_DIR`: where kiln keeps its configuration, `credentials.json` written by
/// `kiln login`. Default: the platform configuration directory (`~/.config/kiln` on Linux).
pub const KILN_CONFIG_DIR: &str = "KILN_CONFIG_DIR";
/// `KILN_REGISTRY_USERNAME`: the registry user name (with `KILN_REGISTRY_PASSWORD`).
pub const KILN_REGISTRY_USERNAME: &str = "KILN_REGISTRY_USERNAME";
/// `KILN_REGISTRY_PASSWORD`: the registry password (with `KILN_REGISTRY_USERNAME`).
pub const KILN_REGISTRY_PASSWORD: &str = "KILN_REGISTRY_PASSWORD";
/// `KILN_REGISTRY_TOKEN`: a bearer token for the registry.
pub const KILN_REGISTRY_TOKEN: &str = "KILN_REGISTRY_TOKEN";
/// `KILN_REGISTRY_CA_FILE`: a PEM file of extra root certificates to trust for registries.
pub const KILN_REGISTRY_CA_FILE: &str = "KILN_REGISTRY_CA_FILE";
/// `KILN_ALLOW_FOREIGN_URLS`: `1` lets a pull fetch a blob its registry lacks from the
/// foreign `urls` its manifest names (without credentials). Default: only the registry.
pub const KILN_ALLOW_FOREIGN_URLS: &str = "KILN_ALLOW_FOREIGN_URLS";
/// `SOURCE_DATE_EPOCH`: the `created` time of published artifacts, in seconds since the Unix
/// epoch (<https://reproducible-builds.org/specs/source-date-epoch/>). Default: the epoch.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// `DOCKER_CONFIG`: the Docker configuration directory, read for registry credentials.
/// Default: `~/.docker`.
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// `PATH`: where toolchains are searched.
pub const PATH: &str = "PATH";
/// `CC`: the C compiler to use (a clang with the wasm32 target).
pub const CC: &str = "CC";
/// `WASI_SDK_PATH`: a wasi-sdk installation, preferred for C when set.
pub const WASI_SDK_PATH: &str = "WASI_SDK_PATH";
/// `WASI_SYSROOT`: a WASI sysroot for `CC`/clang (default: Debian's multiarch wasi-libc).
pub const WASI_SYSROOT: &str = "WASI_SYSROOT";
/// `GO`: the `go` executable (default: `go` on `PATH`).
pub const GO: &str = "GO";
/// `TINYGO`: the `tinygo` executable (default: `tinygo` on `PATH`).
pub const TINYGO: &str = "TINYGO";
/// `CI`: when set (to anything but `false`/`0`), progress bars are never drawn.
pub const CI: &str = "CI";
/// `TERM`: `dumb` disables progress bars.
pub const TERM: &str = "TERM";
/// `CARGO`: the cargo executable to run (set by cargo itself for its subprocesses).
pub const CARGO: &str = "CARGO";
/// `RUSTC`: the rustc whose sysroot is checked for the `wasm32-wasip2` target.
pub const RUSTC: &str = "RUSTC";

/// Whether we run in CI.
pub fn is_ci() -> bool {
    std::env::var_os(CI).is_some_and(|v| v != "false" && v != "0")
}

/// Whether the terminal is declared dumb.
pub fn term_is_dumb() -> bool {
    std::env::var_os(TERM).is_some_and(|v| v == "dumb")
}

/// The compiled-code cache root, or `None` when no cache directory can be determined.
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os(KILN_CACHE_DIR) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => dirs::cache_dir().map(|d| d.join("kiln")),
    }
}

/// kiln's configuration directory, or `None` when none can be determined.
pub fn config_dir() -> Option<PathBuf> {
    match std::env::var_os(KILN_CONFIG_DIR) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => dirs::config_dir().map(|d| d.join("kiln")),
    }
}

/// A non-empty variable's value (registry credentials, `SOURCE_DATE_EPOCH`).
pub fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The Docker configuration file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config() -> Option<PathBuf> {
    std::env::var_os(DOCKER_CONFIG)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))
        .map(|dir| dir.join("config.json"))
}

/// Whether `KILN_ALLOW_FOREIGN_URLS` is `1` (or `true`).
pub fn allow_foreign_urls() -> bool {
    std::env::var_os(KILN_ALLOW_FOREIGN_URLS).is_some_and(|v| v == "1" || v == "true")
}

/// `KILN_REGISTRY_CA_FILE`, if set and not empty.
pub fn registry_ca_file() -> Option<PathBuf> {
    std::env::var_os(KILN_REGISTRY_CA_FILE)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The runner `--exe` builds on, when `KILN_RUNNER` names one.
pub fn runner() -> Option<PathBuf> {
    std::env::var_os(KILN_RUNNER)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `PATH`, if set.
pub fn path() -> Option<OsString> {
    std::env::var_os(PATH)
}

/// `CC`, if set and not empty.
pub fn cc() -> Option<String> {
    std::env::var(CC).ok().filter(|v| !v.is_empty())
}

/// `WASI_SDK_PATH`, if set and not empty.
pub fn wasi_sdk_path() -> Option<PathBuf> {
    std::env::var_os(WASI_SDK_PATH)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `WASI_SYSROOT`, if set and not empty.
pub fn wasi_sysroot() -> Option<PathBuf> {
    std::env::var_os(WASI_SYSROOT)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `GO`, if set and not empty.
pub fn go() -> Option<String> {
    std::env::var(GO).ok().filter(|v| !v.is_empty())
}

/// `TINYGO`, if set and not empty.
pub fn tinygo() -> Option<String> {
    std::env::var(TINYGO).ok().filter(|v| !v.is_empty())
}

/// The cargo to run.
pub fn cargo() -> OsString {
    std::env::var_os(CARGO).unwrap_or_else(|| "cargo".into())
}

/// The rustc to ask for its sysroot.
pub fn rustc() -> OsString {
    std::env::var_os(RUSTC).unwrap_or_else(|| "rustc".into())
}

/// The value of a host environment variable, for `--env NAME` (inherit one variable).
pub fn host_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// All host environment variables with UTF-8 names and values, for `--inherit-env`.
pub fn host_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}
