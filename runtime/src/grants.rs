//! What a run is granted and how it is bounded, as written by people: `--dir HOST[::GUEST][:ro]`,
//! `--env NAME[=VALUE]`, durations such as `1s` and sizes such as `64MiB`. Kiln.toml's `[run]`
//! table, `kiln run`'s flags and a single-file executable's embedded settings all use these
//! forms, so they parse here, once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Capabilities, DEFAULT_MAX_HANDLES, DEFAULT_MAX_TABLE_ELEMENTS, Limits, Preopen};

/// The longest time limit accepted (`--timeout`, `[run] timeout`): 30 days.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The smallest wasm stack accepted (`--max-wasm-stack`): 16 KiB.
pub const MIN_WASM_STACK: usize = 16 * 1024;
/// The largest wasm stack accepted (`--max-wasm-stack`): 1 GiB. The guest's fiber stack is
/// this plus room for host calls, reserved (not committed) per run.
pub const MAX_WASM_STACK: usize = 1 << 30;
/// The largest table-element limit accepted (`--max-table-elements`): 2^32 - 1, the most a
/// 32-bit table can index.
pub const MAX_TABLE_ELEMENTS: usize = u32::MAX as usize;
/// The largest handle limit accepted (`--max-handles`): 2^28, the component model's largest
/// handle index.
pub const MAX_HANDLES: usize = 1 << 28;

/// Whether `--inherit-env` (and a single-file executable's `KILN_INHERIT_ENV`) passes the
/// host variable `name` to the guest: every variable but kiln's own `KILN_*` (ASCII case
/// ignored), which hold registry credentials (`KILN_REGISTRY_TOKEN`, `KILN_REGISTRY_PASSWORD`)
/// and kiln's settings. An explicit `--env NAME` grant still passes one.
pub fn is_inheritable(name: &str) -> bool {
    !name
        .get(..5)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("KILN_"))
}

/// A directory grant, `HOST[::GUEST][:ro]`: the host directory `HOST` (relative to the
/// current directory of the run) appears at `GUEST` in the guest (the host path as written
/// when omitted), read-write unless `:ro` ends the grant (`:rw` is accepted too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DirGrant {
    /// The host directory, as written.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
    /// True for `:ro`: the guest may read but not create, write, rename or delete.
    pub read_only: bool,
}

impl std::str::FromStr for DirGrant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (rest, read_only) = if let Some(rest) = s.strip_suffix(":ro") {
            (rest, true)
        } else if let Some(rest) = s.strip_suffix(":rw") {
            (rest, false)
        } else {
            (s, false)
        };
        let (host, guest) = match rest.split_once("::") {
            Some((host, guest)) => (host, guest),
            None => (rest, rest),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!(
                "expected HOST, HOST::GUEST or HOST::GUEST:ro, got `{s}`"
            ));
        }
        Ok(DirGrant {
            host: PathBuf::from(host),
            guest: guest.to_string(),
            read_only,
        })
    }
}

impl std::fmt::Display for DirGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self.host.display().to_string();
        if host == self.guest {
            f.write_str(&host)?;
        } else {
            write!(f, "{host}::{}", self.guest)?;
        }
        if self.read_only {
            f.write_str(":ro")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for DirGrant {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<DirGrant> for String {
    fn from(grant: DirGrant) -> String {
        grant.to_string()
    }
}

/// An environment variable grant, `NAME=VALUE`, or `NAME` alone to pass the host's value
/// through (nothing is granted when the host does not have it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvGrant {
    /// The variable name.
    pub name: String,
    /// The value; `None` passes the host's through.
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

impl std::fmt::Display for EnvGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if let Some(value) = &self.value {
            write!(f, "={value}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for EnvGrant {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<EnvGrant> for String {
    fn from(grant: EnvGrant) -> String {
        grant.to_string()
    }
}

/// Parses a duration such as `1s`, `500ms`, `2m` or `1h 30m` (the `humantime` format).
///
/// # Errors
///
/// A message naming the input when it is not a duration, is zero, or is longer than
/// [`MAX_TIMEOUT`] (30 days).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration such as `10s` or `500ms`: {e}"))?;
    if d.is_zero() {
        return Err(format!("`{s}` is zero; leave the limit out for no limit"));
    }
    if d > MAX_TIMEOUT {
        return Err(format!("`{s}` is longer than the 30 days kiln accepts"));
    }
    Ok(d)
}

/// Parses a wasm stack size ([`parse_size`]) and checks it is within [`MIN_WASM_STACK`]
/// (16 KiB) and [`MAX_WASM_STACK`] (1 GiB).
///
/// # Errors
///
/// A message naming the input and the range when it is not a size or out of range.
pub fn parse_wasm_stack(s: &str) -> Result<usize, String> {
    let size = parse_size(s)?;
    check_wasm_stack(size).map_err(|range| format!("`{s}` is out of range: {range}"))?;
    Ok(size)
}

/// Checks a wasm stack size against the accepted range; the message states the range.
pub(crate) fn check_wasm_stack(size: usize) -> Result<(), String> {
    if (MIN_WASM_STACK..=MAX_WASM_STACK).contains(&size) {
        Ok(())
    } else {
        Err(format!(
            "the wasm stack must be between {} and {}",
            format_size(MIN_WASM_STACK),
            format_size(MAX_WASM_STACK)
        ))
    }
}

/// Parses a table-element limit: a whole number from 1 to [`MAX_TABLE_ELEMENTS`].
///
/// # Errors
///
/// A message naming the input and the range.
pub fn parse_table_elements(s: &str) -> Result<usize, String> {
    parse_count(s, MAX_TABLE_ELEMENTS)
}

/// Parses a resource-handle limit: a whole number from 1 to [`MAX_HANDLES`].
///
/// # Errors
///
/// A message naming the input and the range.
pub fn parse_handles(s: &str) -> Result<usize, String> {
    parse_count(s, MAX_HANDLES)
}

/// A whole number from 1 to `max`.
fn parse_count(s: &str, max: usize) -> Result<usize, String> {
    let out_of_range = || format!("`{s}` is out of range: expected a whole number from 1 to {max}");
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))
        .and_then(|n| if n == 0 { Err(out_of_range()) } else { Ok(n) })?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(out_of_range)
}

/// The largest size [`parse_size`] accepts: 256 TiB (2^48 bytes).
pub const MAX_SIZE: u64 = 1 << 48;

/// Parses a size in bytes such as `64MiB`, `1 GiB`, `512KiB` or `1048576` (binary units are
/// powers of 1024; `MB` and `GB` are powers of 1000, as `bytesize` reads them).
///
/// # Errors
///
/// A message naming the input when it is not a size, is zero, or does not fit in `usize`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = s
        .trim()
        .parse()
        .map_err(|e| format!("`{s}` is not a size such as `64MiB` or `1GiB`: {e}"))?;
    if size.as_u64() == 0 {
        return Err(format!("`{s}` is zero; leave the limit out for no limit"));
    }
    // bytesize saturates what does not fit in a u64; anything past 256 TiB (a 64-bit CPU's
    // address space) is a typo, not a limit.
    if size.as_u64() > MAX_SIZE {
        return Err(format!("`{s}` is out of range: a size is at most 256TiB"));
    }
    usize::try_from(size.as_u64()).map_err(|_| format!("`{s}` is too large for this machine"))
}

/// Renders a size the way [`parse_size`] reads it back (`64MiB`, or bytes when not whole).
pub fn format_size(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["GiB", "MiB", "KiB", "B"];
    for (i, unit) in UNITS.iter().enumerate() {
        let scale = 1usize << (10 * (3 - i));
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    format!("{bytes}B")
}

/// Everything a run is granted and bounded by, before it meets a host: the `[run]` table of
/// Kiln.toml, the flags of `kiln run`, and what a single-file executable carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RunConfig {
    /// Directories to grant.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Environment variables to grant, after `inherit_env`; later grants win.
    #[serde(default)]
    pub env: Vec<EnvGrant>,
    /// Grant every host environment variable.
    #[serde(default)]
    pub inherit_env: bool,
    /// Grant the host's network: TCP and UDP sockets and name lookups.
    #[serde(default)]
    pub inherit_network: bool,
    /// Wall-clock limit (`humantime` form, e.g. `10s`).
    #[serde(default, with = "duration_opt")]
    pub timeout: Option<Duration>,
    /// Linear-memory limit in bytes (written as a size, e.g. `64MiB`).
    #[serde(default, with = "size_opt")]
    pub max_memory: Option<usize>,
    /// Fuel limit (units, roughly wasm instructions).
    pub fuel: Option<u64>,
    /// Wasm stack limit in bytes (written as a size, 16KiB to 1GiB); the engine default
    /// ([`crate::DEFAULT_MAX_WASM_STACK`]) when `None`.
    #[serde(
        default,
        serialize_with = "size_opt::serialize",
        deserialize_with = "size_opt::deserialize_stack"
    )]
    pub max_wasm_stack: Option<usize>,
    /// Table elements, all tables together; [`DEFAULT_MAX_TABLE_ELEMENTS`] when `None`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "count_opt::table_elements"
    )]
    pub max_table_elements: Option<usize>,
    /// Live component resource handles; [`DEFAULT_MAX_HANDLES`] when `None`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "count_opt::handles"
    )]
    pub max_handles: Option<usize>,
}

impl RunConfig {
    /// The limits for [`crate::Runtime::run_command`].
    pub fn limits(&self) -> Limits {
        Limits {
            timeout: self.timeout,
            max_memory: self.max_memory,
            fuel: self.fuel,
            max_table_elements: self
                .max_table_elements
                .unwrap_or(DEFAULT_MAX_TABLE_ELEMENTS),
            max_handles: self.max_handles.unwrap_or(DEFAULT_MAX_HANDLES),
        }
    }

    /// Adds `other` on top of `self`: grants accumulate, limits and switches set in `other`
    /// win.
    pub fn merge(&mut self, other: RunConfig) {
        self.dirs.extend(other.dirs);
        self.env.extend(other.env);
        self.inherit_env |= other.inherit_env;
        self.inherit_network |= other.inherit_network;
        self.timeout = other.timeout.or(self.timeout);
        self.max_memory = other.max_memory.or(self.max_memory);
        self.fuel = other.fuel.or(self.fuel);
        self.max_wasm_stack = other.max_wasm_stack.or(self.max_wasm_stack);
        self.max_table_elements = other.max_table_elements.or(self.max_table_elements);
        self.max_handles = other.max_handles.or(self.max_handles);
    }

    /// Resolves the grants against a host: directories relative to `cwd` (each must exist
    /// and be a directory), `NAME`-only variables through `host_var`, `inherit_env` through
    /// `host_vars`, less kiln's own variables ([`is_inheritable`]). `args` become `argv` as given (include the program name first).
    ///
    /// # Errors
    ///
    /// A message naming the grant when a directory does not exist or is not a directory.
    pub fn capabilities(
        &self,
        cwd: &Path,
        args: Vec<String>,
        host_var: impl Fn(&str) -> Option<String>,
        host_vars: impl FnOnce() -> Vec<(String, String)>,
    ) -> Result<Capabilities, GrantError> {
        let mut caps = Capabilities {
            args,
            inherit_network: self.inherit_network,
            ..Capabilities::default()
        };
        if self.inherit_env {
            caps.env = host_vars()
                .into_iter()
                .filter(|(name, _)| is_inheritable(name))
                .collect();
        }
        for grant in &self.env {
            let value = match &grant.value {
                Some(value) => value.clone(),
                None => match host_var(&grant.name) {
                    Some(value) => value,
                    None => continue,
                },
            };
            caps.env.retain(|(k, _)| k != &grant.name);
            caps.env.push((grant.name.clone(), value));
        }
        for grant in &self.dirs {
            let host = cwd.join(&grant.host);
            match std::fs::metadata(&host) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(GrantError::NotADirectory {
                        grant: grant.to_string(),
                        host: grant.host.clone(),
                    });
                }
                Err(source) => {
                    return Err(GrantError::Missing {
                        grant: grant.to_string(),
                        host,
                        source,
                    });
                }
            }
            caps.preopens.push(Preopen {
                host,
                guest: grant.guest.clone(),
                read_only: grant.read_only,
            });
        }
        Ok(caps)
    }
}

/// Why a grant cannot be given, from [`RunConfig::capabilities`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// A `--dir` grant names something that is not a directory.
    #[error("cannot grant `--dir {grant}`: `{}` is not a directory", host.display())]
    NotADirectory {
        /// The grant as written (`HOST[::GUEST][:ro]`).
        grant: String,
        /// The host path.
        host: PathBuf,
    },
    /// A `--dir` grant names a directory that cannot be found.
    #[error("cannot grant `--dir {grant}`: the directory `{}` does not exist", host.display())]
    Missing {
        /// The grant as written.
        grant: String,
        /// The host path, resolved against the working directory.
        host: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
}

mod duration_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| super::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod size_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(n: &Option<usize>, s: S) -> Result<S::Ok, S::Error> {
        match n {
            Some(n) => s.serialize_str(&super::format_size(*n)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        parse_with(d, super::parse_size)
    }

    /// A wasm stack size, range-checked.
    pub fn deserialize_stack<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        parse_with(d, super::parse_wasm_stack)
    }

    fn parse_with<'de, D: Deserializer<'de>>(
        d: D,
        parse: fn(&str) -> Result<usize, String>,
    ) -> Result<Option<usize>, D::Error> {
        match Option::<Size>::deserialize(d)? {
            None => Ok(None),
            Some(Size::Bytes(n)) => parse(&n.to_string())
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(Size::Text(t)) => parse(&t).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

mod count_opt {
    use serde::{Deserialize, Deserializer};

    pub fn table_elements<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        parse_with(d, super::parse_table_elements)
    }

    pub fn handles<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        parse_with(d, super::parse_handles)
    }

    fn parse_with<'de, D: Deserializer<'de>>(
        d: D,
        parse: fn(&str) -> Result<usize, String>,
    ) -> Result<Option<usize>, D::Error> {
        match Option::<u64>::deserialize(d)? {
            None => Ok(None),
            Some(n) => parse(&n.to_string())
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_grants() {
        let g: DirGrant = "data::/data:ro".parse().unwrap();
        assert_eq!(
            g,
            DirGrant {
                host: "data".into(),
                guest: "/data".into(),
                read_only: true
            }
        );
        assert_eq!(g.to_string(), "data::/data:ro");
        let g: DirGrant = "data".parse().unwrap();
        assert_eq!((g.guest.as_str(), g.read_only), ("data", false));
        let g: DirGrant = "a::b:rw".parse().unwrap();
        assert_eq!((g.guest.as_str(), g.read_only), ("b", false));
        assert!("::/x".parse::<DirGrant>().is_err());
        assert!(":ro".parse::<DirGrant>().is_err());
    }

    #[test]
    fn env_grants() {
        let g: EnvGrant = "A=b=c".parse().unwrap();
        assert_eq!((g.name.as_str(), g.value.as_deref()), ("A", Some("b=c")));
        let g: EnvGrant = "A".parse().unwrap();
        assert_eq!(g.value, None);
        assert!("=x".parse::<EnvGrant>().is_err());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1 GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("0").is_err());
        // Saturated by bytesize, then refused rather than taken as "16 EiB".
        let huge = parse_size("99999999999999999999TiB").unwrap_err();
        assert!(huge.contains("at most 256TiB"), "{huge}");
        assert_eq!(parse_size("256TiB").unwrap(), 1 << 48);
        assert!(parse_size("lots").is_err());
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn limits_out_of_range_are_refused_with_the_range() {
        assert_eq!(parse_wasm_stack("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_wasm_stack("1GiB").unwrap(), MAX_WASM_STACK);
        assert_eq!(parse_wasm_stack("16KiB").unwrap(), MIN_WASM_STACK);
        for bad in ["1TiB", "15KiB", "4096"] {
            let err = parse_wasm_stack(bad).unwrap_err();
            assert_eq!(
                err,
                format!("`{bad}` is out of range: the wasm stack must be between 16KiB and 1GiB")
            );
        }
        assert_eq!(parse_table_elements("5").unwrap(), 5);
        assert_eq!(
            parse_table_elements("4294967295").unwrap(),
            MAX_TABLE_ELEMENTS
        );
        assert!(parse_table_elements("4294967296").is_err());
        assert!(parse_table_elements("0").is_err());
        assert!(parse_table_elements("-1").is_err());
        assert!(parse_table_elements("99999999999999999999999").is_err());
        assert_eq!(parse_handles("268435456").unwrap(), MAX_HANDLES);
        assert!(parse_handles("268435457").is_err());
        assert_eq!(parse_duration("30days").unwrap(), MAX_TIMEOUT);
        assert!(parse_duration("31days").unwrap_err().contains("30 days"));
        assert!(parse_duration("1000000000years").is_err());

        // Kiln.toml's `[run]` (here as JSON) goes through the same checks.
        let err = serde_json::from_str::<RunConfig>(r#"{"max-wasm-stack": "1TiB"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("between 16KiB and 1GiB"), "{err}");
        let err = serde_json::from_str::<RunConfig>(r#"{"max-table-elements": 0}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("from 1 to 4294967295"), "{err}");
        let config: RunConfig =
            serde_json::from_str(r#"{"max-table-elements": 10, "max-handles": 20}"#).unwrap();
        let limits = config.limits();
        assert_eq!((limits.max_table_elements, limits.max_handles), (10, 20));
        let defaults = RunConfig::default().limits();
        assert_eq!(
            (defaults.max_table_elements, defaults.max_handles),
            (DEFAULT_MAX_TABLE_ELEMENTS, DEFAULT_MAX_HANDLES)
        );
    }

    #[test]
    fn inherit_env_leaves_kiln_variables_out() {
        assert!(!is_inheritable("KILN_REGISTRY_TOKEN"));
        assert!(!is_inheritable("kiln_registry_password"));
        assert!(!is_inheritable("KILN_"));
        assert!(is_inheritable("KILN"));
        assert!(is_inheritable("PATH"));
        assert!(is_inheritable("MY_KILN_TOKEN"));
        assert!(is_inheritable("é"));
        let config = RunConfig {
            inherit_env: true,
            env: vec!["KILN_REGISTRY_USERNAME".parse().unwrap()],
            ..RunConfig::default()
        };
        let host = || {
            vec![
                ("HOME".to_string(), "/h".to_string()),
                ("KILN_REGISTRY_TOKEN".to_string(), "secret".to_string()),
            ]
        };
        let caps = config
            .capabilities(Path::new("."), vec![], |_| Some("me".into()), host)
            .unwrap();
        assert_eq!(
            caps.env,
            [
                ("HOME".into(), "/h".into()),
                ("KILN_REGISTRY_USERNAME".into(), "me".into())
            ]
        );
    }

    #[test]
    fn run_config_round_trips_and_merges() {
        let mut base = RunConfig {
            dirs: vec!["data::/data:ro".parse().unwrap()],
            timeout: Some(Duration::from_secs(5)),
            max_memory: Some(64 << 20),
            ..RunConfig::default()
        };
        let json = serde_json::to_string(&base).unwrap();
        assert_eq!(serde_json::from_str::<RunConfig>(&json).unwrap(), base);
        base.merge(RunConfig {
            dirs: vec!["out".parse().unwrap()],
            timeout: Some(Duration::from_secs(1)),
            ..RunConfig::default()
        });
        assert_eq!(base.dirs.len(), 2);
        assert_eq!(base.timeout, Some(Duration::from_secs(1)));
        assert_eq!(base.max_memory, Some(64 << 20));
    }

    #[test]
    fn capabilities_resolve_against_the_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let config = RunConfig {
            dirs: vec!["data::/d:ro".parse().unwrap()],
            env: vec![
                "SET=1".parse().unwrap(),
                "PASSED".parse().unwrap(),
                "MISSING".parse().unwrap(),
            ],
            ..RunConfig::default()
        };
        let host = |name: &str| (name == "PASSED").then(|| "yes".to_string());
        let caps = config
            .capabilities(dir.path(), vec!["prog".into()], host, Vec::new)
            .unwrap();
        assert_eq!(
            caps.env,
            [("SET".into(), "1".into()), ("PASSED".into(), "yes".into())]
        );
        assert!(caps.preopens[0].read_only);
        assert!(!caps.inherit_network);
        let missing = RunConfig {
            dirs: vec!["nope".parse().unwrap()],
            ..RunConfig::default()
        };
        let err = missing
            .capabilities(dir.path(), vec![], host, Vec::new)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`--dir nope`"), "{err}");
    }
}
