//! Every environment variable kiln reads, in one place. No other module calls
//! `std::env::var`; documented in docs/cli.md ("Environment").

use std::ffi::OsString;
use std::path::PathBuf;

/// An environment variable kiln reads, as `kiln --help` and docs/cli.md list it.
pub struct Var {
    /// The variable's name, or several names read together (`CC, WASI_SDK_PATH`).
    pub names: &'static str,
    /// What it does, with its default in brackets.
    pub help: &'static str,
}

/// Every environment variable kiln reads, in the order `kiln --help` lists them. The one list:
/// the constants below are their names for the code, this table their documentation.
pub const DOCUMENTED: &[Var] = &[
    Var {
        names: "KILN_CACHE_DIR",
        help: "compiled code and pulled components [default: ~/.cache/kiln]",
    },
    Var {
        names: "KILN_RUNNER",
        help: "a kiln-runner for `build --exe` [default: the one built into kiln]",
    },
    Var {
        names: "KILN_CONFIG_DIR",
        help: "where `kiln login` saves credentials [default: ~/.config/kiln]",
    },
    Var {
        names: "KILN_REGISTRY_USERNAME, KILN_REGISTRY_PASSWORD, KILN_REGISTRY_TOKEN",
        help: "registry credentials, sent only to the registry the command names (or KILN_REGISTRY_HOST's)",
    },
    Var {
        names: "KILN_REGISTRY_HOST",
        help: "the one registry (host[:port]) the KILN_REGISTRY_* credentials belong to",
    },
    Var {
        names: "KILN_REGISTRY_CA_FILE",
        help: "extra PEM root certificates for registries",
    },
    Var {
        names: "KILN_ALLOW_FOREIGN_URLS=1",
        help: "pulls may fetch layers from the foreign URLs manifests name",
    },
    Var {
        names: "KILN_KEY_PASSWORD",
        help: "the passphrase of cosign-format signing keys (`generate-key-pair`, `publish --sign`) [default: asked on the terminal]",
    },
    Var {
        names: "DOCKER_CONFIG",
        help: "the Docker configuration read for registry credentials [default: ~/.docker]",
    },
    Var {
        names: "SOURCE_DATE_EPOCH",
        help: "`created` of published artifacts, in seconds since the Unix epoch [default: 1970-01-01]",
    },
    Var {
        names: "CARGO, RUSTC",
        help: "the Rust toolchain for Rust guests",
    },
    Var {
        names: "CC, WASI_SDK_PATH, WASI_SYSROOT",
        help: "the C toolchain (see `kiln doctor`)",
    },
    Var {
        names: "KILN_C_TOOLCHAIN",
        help: "the C/C++ toolchain to use, `clang`, `wasi-sdk` or `zig`; overrides `[build] toolchain` [default: the first found]",
    },
    Var {
        names: "GO, TINYGO",
        help: "the Go toolchains [default: on PATH]",
    },
    Var {
        names: "CI, TERM=dumb",
        help: "no progress bars",
    },
    Var {
        names: "PATH",
        help: "where toolchains are found",
    },
    Var {
        names: "KILN_TEST_SANDBOX",
        help: "set by `kiln test` for its test runner (internal)",
    },
];

/// The `Environment:` section of `kiln --help`, from [`DOCUMENTED`].
pub fn help_section() -> String {
    let mut text = String::from("Environment:");
    for var in DOCUMENTED {
        text.push_str(&format!("\n  {}   {}", var.names, var.help));
    }
    text
}

/// `KILN_CACHE_DIR` (see [`DOCUMENTED`]).
pub const KILN_CACHE_DIR: &str = "KILN_CACHE_DIR";
/// `KILN_RUNNER` (see [`DOCUMENTED`]).
pub const KILN_RUNNER: &str = "KILN_RUNNER";
/// `KILN_CONFIG_DIR` (see [`DOCUMENTED`]).
pub const KILN_CONFIG_DIR: &str = "KILN_CONFIG_DIR";
/// `KILN_REGISTRY_USERNAME` (see [`DOCUMENTED`]).
pub const KILN_REGISTRY_USERNAME: &str = "KILN_REGISTRY_USERNAME";
/// `KILN_REGISTRY_PASSWORD` (see [`DOCUMENTED`]).
pub const KILN_REGISTRY_PASSWORD: &str = "KILN_REGISTRY_PASSWORD";
/// `KILN_REGISTRY_TOKEN` (see [`DOCUMENTED`]).
pub const KILN_REGISTRY_TOKEN: &str = "KILN_REGISTRY_TOKEN";
/// `KILN_REGISTRY_HOST` (see [`DOCUMENTED`]).
pub const KILN_REGISTRY_HOST: &str = "KILN_REGISTRY_HOST";
/// `KILN_REGISTRY_CA_FILE` (see [`DOCUMENTED`]).
pub const KILN_REGISTRY_CA_FILE: &str = "KILN_REGISTRY_CA_FILE";
/// `KILN_ALLOW_FOREIGN_URLS` (see [`DOCUMENTED`]).
pub const KILN_ALLOW_FOREIGN_URLS: &str = "KILN_ALLOW_FOREIGN_URLS";
/// `SOURCE_DATE_EPOCH` (see [`DOCUMENTED`]).
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// `KILN_KEY_PASSWORD` (see [`DOCUMENTED`]).
pub const KILN_KEY_PASSWORD: &str = "KILN_KEY_PASSWORD";
/// `DOCKER_CONFIG` (see [`DOCUMENTED`]).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// `PATH` (see [`DOCUMENTED`]).
pub const PATH: &str = "PATH";
/// `CC` (see [`DOCUMENTED`]).
pub const CC: &str = "CC";
/// `WASI_SDK_PATH` (see [`DOCUMENTED`]).
pub const WASI_SDK_PATH: &str = "WASI_SDK_PATH";
/// `KILN_C_TOOLCHAIN` (see [`DOCUMENTED`]).
pub const KILN_C_TOOLCHAIN: &str = "KILN_C_TOOLCHAIN";
/// `WASI_SYSROOT` (see [`DOCUMENTED`]).
pub const WASI_SYSROOT: &str = "WASI_SYSROOT";
/// `GO` (see [`DOCUMENTED`]).
pub const GO: &str = "GO";
/// `TINYGO` (see [`DOCUMENTED`]).
pub const TINYGO: &str = "TINYGO";
/// `CI` (see [`DOCUMENTED`]).
pub const CI: &str = "CI";
/// `TERM` (see [`DOCUMENTED`]).
pub const TERM: &str = "TERM";
/// `CARGO` (see [`DOCUMENTED`]).
pub const CARGO: &str = "CARGO";
/// The sandbox `kiln test` hands its runner (JSON).
pub const KILN_TEST_SANDBOX: &str = "KILN_TEST_SANDBOX";
/// `RUSTC` (see [`DOCUMENTED`]).
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

/// `KILN_C_TOOLCHAIN`, if set and not empty.
pub fn c_toolchain() -> Option<String> {
    non_empty(KILN_C_TOOLCHAIN)
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

/// The sandbox `kiln test` resolved, for its runner.
pub fn test_sandbox() -> Option<String> {
    non_empty(KILN_TEST_SANDBOX)
}

/// The cargo to run.
pub fn cargo() -> OsString {
    std::env::var_os(CARGO).unwrap_or_else(|| "cargo".into())
}

/// cargo's home directory: `CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".cargo")))
}

/// Whether `CARGO_PROFILE_<PROFILE>_<KEY>` is set: the user's own cargo profile setting
/// (`profile` and `key` as in Cargo.toml, `release` and `opt-level`).
pub fn cargo_profile_setting_is_set(profile: &str, key: &str) -> bool {
    let var = format!(
        "CARGO_PROFILE_{}_{}",
        profile.to_ascii_uppercase().replace('-', "_"),
        key.to_ascii_uppercase().replace('-', "_")
    );
    std::env::var_os(var).is_some()
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

/// `KILN_KEY_PASSWORD` when set, even to the empty string (an empty passphrase, as cosign
/// reads `COSIGN_PASSWORD`).
pub fn key_password() -> Option<String> {
    std::env::var(KILN_KEY_PASSWORD).ok()
}

#[cfg(test)]
mod tests {
    /// Every variable the code names is in the one documented list.
    #[test]
    fn every_variable_is_documented() {
        let source = include_str!("env_vars.rs");
        let documented: Vec<&str> = super::DOCUMENTED
            .iter()
            .flat_map(|v| v.names.split(", "))
            .map(|name| name.split('=').next().unwrap_or(name))
            .collect();
        for line in source.lines() {
            if let Some(rest) = line.strip_prefix("pub const ")
                && let Some((name, _)) = rest.split_once(": &str")
            {
                assert!(documented.contains(&name), "`{name}` is not in DOCUMENTED");
            }
        }
    }
}
