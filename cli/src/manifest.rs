//! `Kiln.toml`, and finding the project a command works on.
//!
//! The format is documented in docs/manifest.md. Every table rejects unknown keys, and every
//! error points at `file:line:col` and names the key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// The file name of kiln's manifest.
pub const KILN_TOML: &str = "Kiln.toml";
/// The Rust target kiln builds for by default.
pub const RUST_TARGET: &str = "wasm32-wasip2";

/// The targets `[build] target` may name: [`RUST_TARGET`], and `wasm32-wasip3` (WASI 0.3
/// natively; in rustup from Rust 1.100).
pub const RUST_TARGETS: [&str; 2] = [RUST_TARGET, "wasm32-wasip3"];

/// The file name of a Cargo manifest.
pub const CARGO_TOML: &str = "Cargo.toml";

/// The guest language, `[package] language`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Rust, built with cargo for `wasm32-wasip2`.
    Rust,
    /// Go, with TinyGo or the standard Go toolchain.
    Go,
    /// TinyGo.
    Tinygo,
    /// C and C++, with wasi-sdk, clang or zig (`"c++"` and `"cpp"` are accepted as well).
    #[serde(alias = "c++", alias = "cpp")]
    C,
    /// A custom `[build] command`.
    Custom,
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "rust",
            Language::Go => "go",
            Language::Tinygo => "tinygo",
            Language::C => "c",
            Language::Custom => "custom",
        })
    }
}

/// `[release] optimize`: a wasm-opt level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptLevel {
    /// `"0"` … `"3"`: optimize for speed at that level.
    Speed(u8),
    /// `"s"`: optimize for size.
    Size,
    /// `"z"`: optimize aggressively for size.
    SizeAggressive,
}

impl<'de> Deserialize<'de> for OptLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        const EXPECTED: &str = r#"one of "0", "1", "2", "3", "s" or "z""#;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = OptLevel;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OptLevel, E> {
                match v {
                    "0" | "1" | "2" | "3" => Ok(OptLevel::Speed(v.as_bytes()[0] - b'0')),
                    "s" => Ok(OptLevel::Size),
                    "z" => Ok(OptLevel::SizeAggressive),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &EXPECTED)),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<OptLevel, E> {
                match v {
                    0..=3 => Ok(OptLevel::Speed(v as u8)),
                    _ => Err(E::invalid_value(
                        serde::de::Unexpected::Signed(v),
                        &EXPECTED,
                    )),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `[release] strip`: what release builds strip, in cargo's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strip {
    /// `false` or `"none"`: keep everything.
    None,
    /// `true` or `"debuginfo"`: DWARF and source maps; function names are kept.
    DebugInfo,
    /// `"symbols"`: debug information and the name sections too.
    Symbols,
}

impl<'de> Deserialize<'de> for Strip {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        const EXPECTED: &str = r#"true, false, "none", "debuginfo" or "symbols""#;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Strip;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Strip, E> {
                Ok(if v { Strip::DebugInfo } else { Strip::None })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Strip, E> {
                match v {
                    "none" => Ok(Strip::None),
                    "debuginfo" => Ok(Strip::DebugInfo),
                    "symbols" => Ok(Strip::Symbols),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &EXPECTED)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A parsed `Kiln.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `[package]`.
    #[serde(default)]
    pub package: Package,
    /// `[build]`.
    #[serde(default)]
    pub build: Build,
    /// `[release]`.
    #[serde(default)]
    pub release: Release,
    /// `[run]`: capabilities and limits for `kiln run` in the project and for its
    /// single-file executable.
    #[serde(default)]
    pub run: kiln_runtime::RunConfig,
    /// `[publish]`: where `kiln publish` pushes by default.
    #[serde(default)]
    pub publish: Publish,
    /// `[[bundle]]`: directories bundled into the component, read-only.
    #[serde(default)]
    pub bundle: Vec<Bundle>,
    /// `[dependencies]`: components whose exports satisfy this component's imports, by a name
    /// of the user's choosing (used in messages and recorded in the composed component).
    #[serde(default)]
    pub dependencies: std::collections::BTreeMap<String, Spanned<Dependency>>,
    /// `[workspace]`: this Kiln.toml is a workspace root.
    pub workspace: Option<Workspace>,
    /// `[wit-dependencies]`: WIT packages the project's world uses, by package name
    /// (`"acme:text" = { path = "../wit" }`), laid out in `wit/deps/` before the build.
    #[serde(default, rename = "wit-dependencies")]
    pub wit_dependencies: std::collections::BTreeMap<String, Spanned<WitDependency>>,
}

/// One `[wit-dependencies]` entry: a WIT package from a path, or from a registry in the
/// wasm-pkg OCI layout (what `wkg publish` and `kiln publish --wit` write).
///
/// `"acme:math" = { path = "../wit" }`, `"acme:math" = "0.1"` (a semver requirement, the
/// registry from the wasm-pkg configuration), `"acme:math" = { version = "0.1", registry =
/// "ghcr.io" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitDependency {
    /// A directory of `.wit` files (one package), or a single `.wit` file, relative to the
    /// project.
    Path(String),
    /// A release from a registry.
    Registry {
        /// The version requirement, as cargo reads one (`0.1` is `^0.1`).
        version: String,
        /// The registry (`host[:port]`); without it, wkg's configuration decides.
        registry: Option<String>,
    },
}

impl<'de> Deserialize<'de> for WitDependency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        const EXPECTED: &str = "a version requirement, or a table with `path`, or with `version` and optionally `registry`";
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = WitDependency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WitDependency, E> {
                Ok(WitDependency::Registry {
                    version: v.to_string(),
                    registry: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<WitDependency, A::Error> {
                use serde::de::Error;
                let (mut path, mut version, mut registry) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    match key.as_str() {
                        "path" => path = Some(value),
                        "version" => version = Some(value),
                        "registry" => registry = Some(value),
                        other => {
                            return Err(A::Error::unknown_field(
                                other,
                                &["path", "version", "registry"],
                            ));
                        }
                    }
                }
                match (path, version) {
                    (Some(path), None) if registry.is_none() => Ok(WitDependency::Path(path)),
                    (None, Some(version)) => Ok(WitDependency::Registry { version, registry }),
                    (None, None) => Err(A::Error::custom(format!("expected {EXPECTED}"))),
                    _ => Err(A::Error::custom(
                        "a WIT dependency has a `path` or a `version` (with an optional `registry`), not both",
                    )),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `[workspace]`: the projects built together from the root.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    /// The member directories, relative to the root, as glob patterns (`components/*`);
    /// each holds a Kiln.toml or a Cargo.toml.
    pub members: Spanned<Vec<String>>,
    /// Directories the member globs match that are not members.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// One `[dependencies]` entry: a component that provides some of this one's imports.
///
/// Written as a table with one of `path` and `reference`, or as a string, which is a
/// reference: `stats = { path = "../stats" }`, `fmt = { path = "fmt.wasm" }`,
/// `words = "ghcr.io/acme/words:0.1.0"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependency {
    /// `path`, relative to the project: a directory holding a kiln project (built first, in
    /// the same profile) or a component file.
    Path(String),
    /// `reference`: an OCI reference, pulled through the cache and digest-verified.
    Reference(String),
}

impl<'de> Deserialize<'de> for Dependency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        const EXPECTED: &str = "an OCI reference, or a table with `path` (a project directory or a .wasm file) or `reference`";
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Dependency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dependency, E> {
                Ok(Dependency::Reference(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Dependency, A::Error> {
                use serde::de::Error;
                let mut found: Option<Dependency> = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let dependency = match key.as_str() {
                        "path" => Dependency::Path(value),
                        "reference" => Dependency::Reference(value),
                        other => {
                            return Err(A::Error::unknown_field(other, &["path", "reference"]));
                        }
                    };
                    if found.is_some() {
                        return Err(A::Error::custom(
                            "a dependency has one of `path` and `reference`, not both",
                        ));
                    }
                    found = Some(dependency);
                }
                found.ok_or_else(|| A::Error::custom(format!("expected {EXPECTED}")))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// One `[[bundle]]`: a directory of the project served to the guest at `mount`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// The directory, relative to the project root.
    pub source: Spanned<String>,
    /// Where the guest sees it: an absolute, normalized path like `/assets`.
    pub mount: Spanned<String>,
    /// `external = true`: `source` may lie outside the project root (an absolute path, `..`,
    /// or a symlink leading out). Off by default, so that a manifest cannot make
    /// `kiln publish` ship files from elsewhere on the machine without saying so.
    #[serde(default)]
    pub external: bool,
}

/// Whether the relative path `source` stays below the directory it is relative to, judged
/// by its components alone (`a/../b` stays, `../x` and `/etc` do not). Symlinks are checked
/// when the directory is walked.
pub fn stays_inside(source: &str) -> bool {
    let mut depth = 0usize;
    for component in Path::new(source).components() {
        match component {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            std::path::Component::RootDir | std::path::Component::Prefix(_) => return false,
        }
    }
    true
}

/// `[publish]`: defaults for `kiln publish`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// `REGISTRY/REPOSITORY[:TAG]`; without a tag, the package version is the tag.
    pub reference: Option<Spanned<String>>,
    /// Extra manifest annotations (`org.opencontainers.image.*` or your own keys).
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// A private key to sign what is published with (relative to the project), as
    /// `kiln publish --sign` does.
    pub sign: Option<std::path::PathBuf>,
}

/// `[package]`: what the component is. Every key is optional; a Rust package falls back to
/// its Cargo.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// The component's name: the output file is `<name>.wasm`.
    pub name: Option<Spanned<String>>,
    /// Its version (semver).
    pub version: Option<String>,
    /// The guest language; inferred from the files present when omitted.
    pub language: Option<Language>,
    /// A one-line description.
    pub description: Option<String>,
    /// An SPDX license expression.
    pub license: Option<Spanned<String>>,
    /// A URL to the source code (written into the component's `source` metadata).
    pub repository: Option<String>,
    /// Whether `kiln build` also writes a single-file native executable (as `--exe`).
    #[serde(default)]
    pub exe: bool,
}

/// `[build] toolchain`: which C/C++ toolchain builds the project (default: the first found,
/// in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CToolchain {
    /// A wasi-sdk (`WASI_SDK_PATH`): its clang and its sysroot.
    WasiSdk,
    /// clang on `PATH` (or `CC`) with a WASI sysroot (`WASI_SYSROOT`, or Debian's wasi-libc).
    Clang,
    /// `zig cc` (zig on `PATH`, or PyPI `ziglang`).
    Zig,
}

impl CToolchain {
    /// Every toolchain, in the order kiln tries them.
    pub const ALL: [CToolchain; 3] = [CToolchain::WasiSdk, CToolchain::Clang, CToolchain::Zig];

    /// The name as Kiln.toml and `KILN_C_TOOLCHAIN` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            CToolchain::WasiSdk => "wasi-sdk",
            CToolchain::Clang => "clang",
            CToolchain::Zig => "zig",
        }
    }

    /// The toolchain named `name`.
    pub fn parse(name: &str) -> Option<CToolchain> {
        CToolchain::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for CToolchain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[build]`: how the guest toolchain is driven (Rust and C keys; each driver reads its own).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Build {
    /// Cargo features to enable.
    #[serde(default)]
    pub features: Vec<String>,
    /// Whether the package's default features are on (default true).
    #[serde(default = "yes")]
    pub default_features: bool,
    /// Which binary target to build when the package has several.
    pub bin: Option<String>,
    /// Rust: the compilation target, `wasm32-wasip2` (the default; WASI 0.2 and, with the
    /// `wasip3` crate, 0.3 components) or `wasm32-wasip3` (rustup from Rust 1.100).
    pub target: Option<Spanned<String>>,
    /// C/C++: source globs relative to the project (default: `.c`, `.cc`, `.cpp` and `.cxx`
    /// files under `src/`).
    #[serde(default)]
    pub sources: Vec<String>,
    /// C: include directories relative to the project (`-I`).
    #[serde(default)]
    pub include: Vec<String>,
    /// C: preprocessor definitions, `NAME` or `NAME=VALUE` (`-D`).
    #[serde(default)]
    pub defines: Vec<String>,
    /// C: extra compiler flags.
    #[serde(default)]
    pub cflags: Vec<String>,
    /// C++: extra flags for C++ sources only, after `cflags` (e.g. `-std=c++20`).
    #[serde(default)]
    pub cxxflags: Vec<String>,
    /// C/C++: which toolchain builds the project (`"clang"`, `"wasi-sdk"` or `"zig"`); the
    /// `KILN_C_TOOLCHAIN` environment variable overrides it. Default: the first found.
    pub toolchain: Option<CToolchain>,
    /// C/C++: setjmp/longjmp through WebAssembly exception handling (the flags, libraries
    /// and objects each toolchain needs); an error where the toolchain has none.
    #[serde(default)]
    pub setjmp: bool,
    /// C: extra linker flags.
    #[serde(default)]
    pub ldflags: Vec<String>,
    /// C: libraries to link (`-l`), e.g. `wasi-emulated-signal`.
    #[serde(default)]
    pub libs: Vec<String>,
    /// A WIT file or directory whose world a library component exports (C: bindings are
    /// generated with wit-bindgen-c).
    pub world: Option<String>,
    /// Custom (`language = "custom"`): the build command, an argument list run in the
    /// project directory (`["sh", "build.sh"]`; no shell unless you name one).
    pub command: Option<Spanned<Vec<String>>>,
    /// Custom: the file the command writes, relative to the project: a core module (kiln
    /// componentizes it with the preview1 adapter) or a component (taken as it is).
    pub output: Option<Spanned<String>>,
    /// Custom: globs, relative to the project, of the files the command reads. When none of
    /// them changed (size and modification time), the command is not run again; without
    /// `inputs` it runs on every build.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Go: the main package to build, a path inside the project (`./cmd/tool`; default: the
    /// project directory). The module's go.mod is found upwards from the project, as `go`
    /// finds it.
    pub package: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}

impl Default for Build {
    fn default() -> Self {
        Build {
            features: Vec::new(),
            default_features: true,
            bin: None,
            target: None,
            package: None,
            command: None,
            output: None,
            inputs: Vec::new(),
            sources: Vec::new(),
            include: Vec::new(),
            defines: Vec::new(),
            cflags: Vec::new(),
            cxxflags: Vec::new(),
            toolchain: None,
            setjmp: false,
            ldflags: Vec::new(),
            libs: Vec::new(),
            world: None,
        }
    }
}

/// `[release]`: settings of the release profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// wasm-opt level for release builds (default `"s"`).
    pub optimize: Option<OptLevel>,
    /// What release builds strip (default: debug info, names kept).
    pub strip: Option<Strip>,
    /// Pre-initialization: the export to call at build time (`true` names
    /// [`kiln_runtime::DEFAULT_INIT_FUNC`]); `None` when off.
    #[serde(default)]
    pub preinit: Option<Preinit>,
}

/// `[release] preinit`: `true` (the export `wizer-initialize`), `false`, or the name of the
/// component export to call, e.g. `"my:pkg/init.setup"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preinit(pub Option<String>);

impl Preinit {
    /// The export to call, if pre-initialization is on.
    pub fn init_func(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de> Deserialize<'de> for Preinit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        const EXPECTED: &str = "true, false, or the name of an exported function";
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Preinit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Preinit, E> {
                Ok(Preinit(
                    v.then(|| kiln_runtime::DEFAULT_INIT_FUNC.to_string()),
                ))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Preinit, E> {
                // A WIT item name: `name`, `iface.name` or `ns:pkg/iface.name[@version]`;
                // no WAVE calls with arguments, no whitespace or control characters.
                let fine = !v.is_empty()
                    && v.len() <= 256
                    && v.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '/' | '.' | '@' | '+')
                    });
                if fine {
                    Ok(Preinit(Some(v.to_string())))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &EXPECTED))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A manifest error, located in its file.
#[derive(Debug)]
pub struct ManifestError {
    /// The manifest file.
    pub path: PathBuf,
    /// 1-based line and column of the offending key or value, when known.
    pub location: Option<(usize, usize)>,
    /// The dotted key the error concerns (`release.optimize`), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(key) = &self.key {
            write!(f, " (at key `{key}`)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // A span from the TOML parser is on a character boundary; should one ever not be, round
    // down rather than panic.
    let offset = (0..=offset.min(text.len()))
        .rev()
        .find(|&o| text.is_char_boundary(o))
        .unwrap_or(0);
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

impl Manifest {
    /// Parses the text of a Kiln.toml read from `path` (used in errors only).
    ///
    /// # Errors
    ///
    /// A [`ManifestError`] for TOML syntax errors, unknown keys, wrong types and invalid
    /// values, with the location and key.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let error =
            |span: Option<Range<usize>>, key: Option<String>, message: String| ManifestError {
                path: path.to_path_buf(),
                // An error without a span (serde's recursion limit on deeply nested
                // dotted keys) is about the file as a whole: it points at its start, so that
                // every refusal reads `Kiln.toml:LINE:COL`.
                location: Some(line_col(text, span.map_or(0, |s| s.start))),
                key,
                message,
            };
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|e| error(e.span(), None, e.message().trim().to_string()))?;
        let manifest: Manifest = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            // A `Spanned` value shows up in serde's path as a private field.
            let key = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "");
            let inner = e.into_inner();
            let key = (key != ".").then_some(key);
            error(inner.span(), key, inner.message().trim().to_string())
        })?;
        if let Some(name) = &manifest.package.name
            && let Err(why) = validate_name(name.get_ref())
        {
            return Err(error(Some(name.span()), Some("package.name".into()), why));
        }
        if let Some(target) = &manifest.build.target
            && !RUST_TARGETS.contains(&target.get_ref().as_str())
        {
            let message = format!(
                "`{}` is not a target kiln builds Rust for: expected one of {}",
                target.get_ref(),
                RUST_TARGETS
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Err(error(
                Some(target.span()),
                Some("build.target".into()),
                message,
            ));
        }
        if let Some(command) = &manifest.build.command
            && command
                .get_ref()
                .first()
                .is_none_or(|program| program.is_empty())
        {
            return Err(error(
                Some(command.span()),
                Some("build.command".into()),
                "the command is empty: give the program and its arguments, such as `[\"sh\", \"build.sh\"]`".into(),
            ));
        }
        if let Some(output) = &manifest.build.output
            && let Err(why) = check_go_package(output.get_ref())
        {
            return Err(error(
                Some(output.span()),
                Some("build.output".into()),
                why.replace("package directory", "file"),
            ));
        }
        if manifest.package.language == Some(Language::Custom)
            && (manifest.build.command.is_none() || manifest.build.output.is_none())
        {
            return Err(error(
                None,
                Some("build".into()),
                "`language = \"custom\"` needs `[build] command` (an argument list) and `[build] output` (the file it writes)".into(),
            ));
        }
        if let Some(package) = &manifest.build.package
            && let Err(why) = check_go_package(package.get_ref())
        {
            return Err(error(
                Some(package.span()),
                Some("build.package".into()),
                why,
            ));
        }
        if let Some(license) = &manifest.package.license
            && let Err(why) = kiln_componentize::check_license(license.get_ref())
        {
            let message = format!(
                "`{}` is not an SPDX license expression: {why}",
                license.get_ref()
            );
            return Err(error(
                Some(license.span()),
                Some("package.license".into()),
                message,
            ));
        }
        if let Some(reference) = &manifest.publish.reference
            && let Err(e) =
                kiln_registry_client::Reference::parse_with_default_tag(reference.get_ref(), "0")
        {
            return Err(error(
                Some(reference.span()),
                Some("publish.reference".into()),
                e.to_string(),
            ));
        }
        for (name, dependency) in &manifest.dependencies {
            let key = Some(format!("dependencies.{name}"));
            let why = match dependency.get_ref() {
                Dependency::Path(path) if path.is_empty() => Some("the path is empty".to_string()),
                Dependency::Path(_) => None,
                Dependency::Reference(reference) => reference
                    .parse::<kiln_registry_client::Reference>()
                    .err()
                    .map(|e| e.to_string()),
            };
            if let Some(why) = why {
                return Err(error(Some(dependency.span()), key, why));
            }
        }
        for (name, dependency) in &manifest.wit_dependencies {
            let why = if name.split_once(':').is_none_or(|(ns, pkg)| {
                ns.is_empty() || pkg.is_empty() || pkg.contains(['/', '@', ':'])
            }) {
                Some(format!(
                    "`{name}` is not a WIT package name: expected `namespace:package`"
                ))
            } else {
                match dependency.get_ref() {
                    WitDependency::Path(path) if path.is_empty() => {
                        Some("the path is empty".to_string())
                    }
                    WitDependency::Path(_) => None,
                    WitDependency::Registry { version, .. } => semver::VersionReq::parse(version)
                        .err()
                        .map(|e| format!("`{version}` is not a version requirement: {e}")),
                }
            };
            if let Some(why) = why {
                return Err(error(
                    Some(dependency.span()),
                    Some(format!("wit-dependencies.{name}")),
                    why,
                ));
            }
        }
        if let Some(workspace) = &manifest.workspace {
            for pattern in workspace.members.get_ref() {
                let why = if !stays_inside(pattern) || pattern.is_empty() {
                    Some(format!(
                        "member `{pattern}` is not a directory inside the workspace: give a relative path or glob such as `components/*`"
                    ))
                } else {
                    glob::Pattern::new(pattern)
                        .err()
                        .map(|e| format!("member `{pattern}` is not a glob pattern: {e}"))
                };
                if let Some(why) = why {
                    return Err(error(
                        Some(workspace.members.span()),
                        Some("workspace.members".into()),
                        why,
                    ));
                }
            }
        }
        let mut mounts = kiln_vfs_archive::ArchiveBuilder::new();
        for (i, bundle) in manifest.bundle.iter().enumerate() {
            let mount = bundle.mount.get_ref();
            let key = Some(format!("bundle[{i}].mount"));
            if let Some(other) = manifest.bundle[..i]
                .iter()
                .find(|o| o.mount.get_ref() == mount)
            {
                let message = format!(
                    "two bundles at mount `{mount}`: `{}` and `{}`",
                    other.source.get_ref(),
                    bundle.source.get_ref()
                );
                return Err(error(Some(bundle.mount.span()), key, message));
            }
            if let Err(e) = mounts.mount(mount) {
                return Err(error(Some(bundle.mount.span()), key, e.to_string()));
            }
            if !bundle.external && !stays_inside(bundle.source.get_ref()) {
                let message = format!(
                    "bundle source `{}` is outside the project: what is bundled is shipped by \
                     `kiln publish` (set `external = true` in this `[[bundle]]` to allow it)",
                    bundle.source.get_ref()
                );
                return Err(error(
                    Some(bundle.source.span()),
                    Some(format!("bundle[{i}].source")),
                    message,
                ));
            }
        }
        Ok(manifest)
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> anyhow::Result<Manifest> {
        let text = fs_err::read_to_string(path)?;
        Ok(Manifest::parse(&text, path)?)
    }

    /// The package name, if the manifest sets one.
    pub fn name(&self) -> Option<&str> {
        self.package.name.as_ref().map(|n| n.get_ref().as_str())
    }
}

/// Words that cannot be component names: Rust keywords (a Cargo package name becomes a crate
/// name) and WIT keywords (the name becomes a WIT identifier).
const RESERVED: &[&str] = &[
    // Rust (strict and reserved) keywords, and crate names cargo refuses.
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "core",
    "std",
    "alloc",
    "proc-macro",
    "proc_macro",
    "test",
    // WIT keywords.
    "bool",
    "borrow",
    "char",
    "constructor",
    "export",
    "f32",
    "f64",
    "flags",
    "func",
    "future",
    "import",
    "include",
    "interface",
    "list",
    "option",
    "own",
    "package",
    "record",
    "resource",
    "result",
    "s16",
    "s32",
    "s64",
    "s8",
    "stream",
    "string",
    "tuple",
    "u16",
    "u32",
    "u64",
    "u8",
    "variant",
    "with",
    "world",
];

/// Checks that `name` works as a Cargo package name and, with `_` read as `-`, as a WIT
/// identifier: lowercase ASCII words of `[a-z][a-z0-9]*` joined by single `-` or `_`, not a
/// Rust or WIT keyword, at most 64 characters.
/// A `[build] package`: a relative path (`./cmd/tool`, `cmd/tool`) that stays inside the
/// project, as `go build` takes a package directory.
fn check_go_package(package: &str) -> Result<(), String> {
    let path = Path::new(package);
    let escapes = path.components().any(|c| {
        matches!(
            c,
            std::path::Component::ParentDir
                | std::path::Component::RootDir
                | std::path::Component::Prefix(_)
        )
    });
    if package.is_empty() || escapes {
        return Err(format!(
            "`{package}` is not a package directory inside the project: give a relative path such as `./cmd/tool`"
        ));
    }
    Ok(())
}

pub fn validate_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid component name `{name}`: {why}"));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
    {
        return bad(&format!(
            "`{c}` is not allowed; use lowercase ASCII letters, digits, `-` and `_` (a Cargo package name that is also a WIT identifier)"
        ));
    }
    for word in name.split(['-', '_']) {
        match word.chars().next() {
            None => return bad("separators `-`/`_` must sit between words"),
            Some('0'..='9') => {
                return bad(
                    "each word must start with a letter (WIT identifiers cannot start with a digit)",
                );
            }
            Some(_) => {}
        }
    }
    if RESERVED.contains(&name) {
        return bad("it is a Rust or WIT keyword");
    }
    Ok(())
}

/// The WIT spelling of a valid component name (`hello_world` → `hello-world`).
pub fn wit_name(name: &str) -> String {
    name.replace('_', "-")
}

/// The Rust crate spelling of a valid component name (`hello-world` → `hello_world`).
pub fn crate_name(name: &str) -> String {
    name.replace('-', "_")
}

/// A project found on disk: its root directory and the manifests in it.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory holding the manifest(s).
    pub root: PathBuf,
    /// The parsed Kiln.toml, if there is one.
    pub manifest: Manifest,
    /// Where the Kiln.toml is, if there is one.
    pub manifest_path: Option<PathBuf>,
    /// The guest language: `[package] language`, or inferred from the files present. (A
    /// Kiln.toml workspace root without a package of its own has none: see
    /// [`Project::is_virtual_workspace`].)
    pub language: Language,
    /// The root of the Kiln.toml `[workspace]` this project is a member of, if any: its
    /// artifacts go to the workspace's `target/kiln/`.
    pub workspace_root: Option<PathBuf>,
}

impl Project {
    /// The Cargo.toml beside the Kiln.toml (or alone).
    pub fn cargo_toml(&self) -> PathBuf {
        self.root.join(CARGO_TOML)
    }

    /// Finds the project: from `manifest_path` (a Kiln.toml or Cargo.toml) when given,
    /// otherwise the nearest directory from `cwd` upwards holding a Kiln.toml or Cargo.toml.
    pub fn find(cwd: &Path, manifest_path: Option<&Path>) -> anyhow::Result<Project> {
        let root = match manifest_path {
            Some(path) => {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name != KILN_TOML && name != CARGO_TOML {
                    anyhow::bail!(
                        "the manifest path `{}` must point to a `{KILN_TOML}` or `{CARGO_TOML}`",
                        path.display()
                    );
                }
                if !path.is_file() {
                    anyhow::bail!("manifest path `{}` does not exist", path.display());
                }
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                cwd.join(parent)
            }
            None => cwd
                .ancestors()
                .find(|dir| dir.join(KILN_TOML).is_file() || dir.join(CARGO_TOML).is_file())
                .map(Path::to_path_buf)
                .ok_or_else(|| {
                    crate::errors::hinted(
                        format!(
                            "could not find `{KILN_TOML}` or `{CARGO_TOML}` in `{}` or any parent directory",
                            cwd.display()
                        ),
                        "create a project with `kiln new <path>`, or pass a `.wasm` file",
                    )
                })?,
        };
        Project::at(root)
    }

    /// The project rooted at `root`.
    pub fn at(root: PathBuf) -> anyhow::Result<Project> {
        let kiln_toml = root.join(KILN_TOML);
        let (manifest, manifest_path) = if kiln_toml.is_file() {
            (Manifest::load(&kiln_toml)?, Some(kiln_toml))
        } else {
            (Manifest::default(), None)
        };
        let language = match manifest.package.language {
            Some(language) => language,
            None if root.join(CARGO_TOML).is_file() => Language::Rust,
            // Never built: `Driver::for_project` refuses a virtual workspace root.
            None if manifest.workspace.is_some() => Language::Custom,
            None => anyhow::bail!(
                "cannot tell the language of the project in `{}`: set `[package] language` in {KILN_TOML}",
                root.display()
            ),
        };
        let workspace_root = crate::workspace::enclosing(&root)?;
        Ok(Project {
            root,
            manifest,
            manifest_path,
            language,
            workspace_root,
        })
    }

    /// Whether this is a Kiln.toml `[workspace]` root with no component of its own (no
    /// `[package] language`, no Cargo.toml): it builds its members only.
    pub fn is_virtual_workspace(&self) -> bool {
        self.manifest.workspace.is_some()
            && self.manifest.package.language.is_none()
            && !self.cargo_toml().is_file()
    }
}

#[cfg(test)]
mod hostile;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(text, Path::new("Kiln.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_manifest() {
        let m = parse(
            r#"
[package]
name = "hello"
version = "0.1.0"
language = "rust"
description = "Says hello"
license = "MIT"
repository = "https://example.com/hello"

[build]
features = ["fast"]
default-features = false

[release]
optimize = "z"
strip = false
"#,
        )
        .unwrap();
        assert_eq!(m.name(), Some("hello"));
        assert_eq!(m.package.language, Some(Language::Rust));
        assert_eq!(
            m.package.license.as_ref().map(|l| l.get_ref().as_str()),
            Some("MIT")
        );
        assert_eq!(
            m.package.repository.as_deref(),
            Some("https://example.com/hello")
        );
        assert_eq!(m.build.features, ["fast"]);
        assert!(!m.build.default_features);
        assert_eq!(m.release.optimize, Some(OptLevel::SizeAggressive));
        assert_eq!(m.release.strip, Some(Strip::None));
        assert_eq!(
            parse("[release]\nstrip = \"symbols\"")
                .unwrap()
                .release
                .strip,
            Some(Strip::Symbols)
        );
        assert_eq!(
            parse("[release]\nstrip = true").unwrap().release.strip,
            Some(Strip::DebugInfo)
        );
        assert!(parse("").unwrap().build.default_features);
    }

    #[test]
    fn errors_name_file_line_col_and_key() {
        assert_eq!(
            parse("[package]\nname = \"a\"\n\n[release]\noptimise = \"s\"\n").unwrap_err(),
            "Kiln.toml:5:1: unknown field `optimise`, expected one of `optimize`, `strip`, `preinit` (at key `release.optimise`)"
        );
        assert_eq!(
            parse("[release]\nstrip = \"yes\"\n").unwrap_err(),
            "Kiln.toml:2:9: invalid value: string \"yes\", expected true, false, \"none\", \"debuginfo\" or \"symbols\" (at key `release.strip`)"
        );
        assert_eq!(
            parse("[release]\noptimize = \"fast\"\n").unwrap_err(),
            "Kiln.toml:2:12: invalid value: string \"fast\", expected one of \"0\", \"1\", \"2\", \"3\", \"s\" or \"z\" (at key `release.optimize`)"
        );
        assert_eq!(
            parse("[package]\nlanguage = \"cobol\"\n").unwrap_err(),
            "Kiln.toml:2:12: unknown variant `cobol`, expected one of `rust`, `go`, `tinygo`, `c`, `c++`, `cpp`, `custom` (at key `package.language`)"
        );
        assert_eq!(
            parse("[build]\ntoolchain = \"gcc\"\n").unwrap_err(),
            "Kiln.toml:2:13: unknown variant `gcc`, expected one of `wasi-sdk`, `clang`, `zig` (at key `build.toolchain`)"
        );
        assert_eq!(
            parse("[build]\nsetjmp = \"yes\"\n").unwrap_err(),
            "Kiln.toml:2:10: invalid type: string \"yes\", expected a boolean (at key `build.setjmp`)"
        );
        let m =
            parse("[package]\nlanguage = \"c++\"\n[build]\ntoolchain = \"zig\"\nsetjmp = true\n")
                .unwrap();
        assert_eq!(m.package.language, Some(Language::C));
        assert_eq!(m.build.toolchain, Some(CToolchain::Zig));
        assert!(m.build.setjmp);
        assert_eq!(
            parse("[package]\nname = \"Hello\"\n").unwrap_err(),
            "Kiln.toml:2:8: invalid component name `Hello`: `H` is not allowed; use lowercase ASCII letters, digits, `-` and `_` (a Cargo package name that is also a WIT identifier) (at key `package.name`)"
        );
        assert_eq!(
            parse("[package\nname = 1")
                .unwrap_err()
                .split(':')
                .take(3)
                .collect::<Vec<_>>(),
            ["Kiln.toml", "1", "9"]
        );
        assert!(
            parse("[bundles]\n")
                .unwrap_err()
                .starts_with("Kiln.toml:1:2: unknown field `bundles`")
        );
        // Sources outside the project need `external = true`.
        for source in ["../shared", "/etc", "a/../../b"] {
            let text = format!("[[bundle]]\nsource = \"{source}\"\nmount = \"/a\"\n");
            let err = parse(&text).unwrap_err().to_string();
            assert!(
                err.starts_with("Kiln.toml:2:10: bundle source") && err.contains("external = true"),
                "{err}"
            );
            let allowed = format!("{text}external = true\n");
            assert!(parse(&allowed).unwrap().bundle[0].external);
        }
        assert!(stays_inside("a/../b") && stays_inside("./assets") && stays_inside("."));
        // `[bundle]` is an array of tables.
        let err = parse("[bundle]\nsource = \"a\"\nmount = \"/a\"\n").unwrap_err();
        assert!(err.starts_with("Kiln.toml:1:1: invalid type"), "{err}");
        assert_eq!(
            parse("[[bundle]]\nsource = \"a\"\nmount = \"/a\"\n[[bundle]]\nsource = \"b\"\nmount = \"/a/b\"\n")
                .unwrap_err(),
            "Kiln.toml:6:9: mounts `/a` and `/a/b` overlap (at key `bundle[1].mount`)"
        );
    }

    #[test]
    fn names() {
        for ok in ["hello", "hello-world", "hello_world", "a1", "md2html"] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "Hello", "1abc", "a--b", "a-", "-a", "a-1b", "fn", "world", "std", "héllo", "a.b",
            "a b",
        ] {
            assert!(validate_name(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(wit_name("hello_world"), "hello-world");
        assert_eq!(crate_name("hello-world"), "hello_world");
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
    }
}
