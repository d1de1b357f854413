//! Everything kiln reports, as typed messages.
//!
//! Each [`Message`] is one event. [`crate::shell::Shell::emit`] renders it for people (a
//! status line on stderr, a result on stdout, a warning) or, with `--message-format json`, as
//! one JSON object per line on stdout: `{"reason": "<kind>", "version": 1, …}`. The `reason`
//! names the message, as cargo's `--message-format json` does; `version` is
//! [`MESSAGE_VERSION`], raised when a field is removed or changes meaning (adding fields or
//! reasons does not raise it: consumers ignore what they do not know).
//!
//! docs/json.md is generated from these types (their JSON schema, with these doc comments):
//! `KILN_BLESS=1 cargo test --test testsuite json_reference` rewrites it, and the same test
//! fails when it drifts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use crate::shell::human_size;

/// The `version` field of every JSON message.
pub const MESSAGE_VERSION: u32 = 1;

/// One thing kiln reports. Serialized with a `reason` tag naming the variant (kebab-case).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Message {
    /// A progress line (`   Compiling hello v0.1.0`). Detail lines (shown with `-v`) are
    /// emitted only with `-v`; `-q` drops all status lines.
    Status(Status),
    /// Something worth knowing that did not stop kiln (shown even with `-q`).
    Warning(Warning),
    /// The error kiln stops with (exit status 1, or the guest's trap status), with its causes
    /// and hints. The last message of a failed command.
    Error(ErrorReport),
    /// A diagnostic from the guest's compiler (rustc through cargo).
    CompilerMessage(CompilerMessage),
    /// One compilation unit (a crate's target) cargo finished, fresh or rebuilt.
    UnitFinished(UnitFinished),
    /// A pass over the component (strip, optimize, bundle) with the sizes before and after.
    Stage(Stage),
    /// The component a build wrote (or found fresh).
    Artifact(Artifact),
    /// The native executable `kiln build --exe` wrote.
    Executable(Executable),
    /// The end of `kiln build`.
    BuildFinished(BuildFinished),
    /// A project `kiln new` created.
    ProjectCreated(ProjectCreated),
    /// One template, from `kiln templates`.
    Template(Template),
    /// One check of `kiln doctor`: a toolchain or part kiln needs.
    Toolchain(Toolchain),
    /// What `kiln inspect` found in a file.
    Inspect(Box<Inspect>),
    /// A component's world as WIT text (`kiln inspect --wit`).
    Wit(Wit),
    /// A component's SBOM (`kiln inspect --sbom`).
    Sbom(Sbom),
    /// One blob moved to or from a registry (or found already there / in the cache).
    Blob(Blob),
    /// An artifact `kiln publish` pushed (or packaged, with `--dry-run`).
    Publish(Publish),
    /// A component `kiln pull` wrote.
    Pull(Pull),
    /// Credentials `kiln login` saved.
    Login(Login),
    /// `kiln logout`.
    Logout(Logout),
    /// What `--show-settings` prints: the settings a command resolved.
    Settings(Settings),
    /// `kiln serve` is accepting connections.
    Listening(Listening),
    /// One HTTP request `kiln serve` answered.
    Request(Request),
    /// A connection `kiln serve` dropped before or while answering it.
    ConnectionError(ConnectionError),
    /// `kiln serve` could not accept a connection and backs off.
    AcceptError(AcceptError),
    /// `kiln serve` retired an instance of a WASI 0.3 service: it had served its last request,
    /// sat idle, or failed.
    InstanceRetired(InstanceRetired),
    /// `kiln serve` got SIGINT/SIGTERM and finishes the requests in flight.
    Draining(Draining),
    /// `kiln serve` stopped.
    Stopped(Stopped),
    /// What an export of a library component returned (`kiln run --invoke`).
    Invoked(Invoked),
    /// One test binary `kiln test` ran on the embedded Wasmtime (its own output, libtest's or
    /// Go's, goes to stderr with `--message-format json`).
    TestBinary(TestBinary),
    /// The end of `kiln test`.
    TestFinished(TestFinished),
}

/// A progress line.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Status {
    /// The verb, as shown right-aligned: `Compiling`, `Finished`, `Pulled`…
    pub verb: String,
    /// The rest of the line.
    pub message: String,
    /// Whether this is a detail line, shown only with `-v`.
    pub detail: bool,
}

/// A warning.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Warning {
    /// The warning, one line.
    pub message: String,
}

/// The error kiln stopped with.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorReport {
    /// The outermost message (`failed to build hello`).
    pub message: String,
    /// Each underlying cause, outermost first (the `Caused by:` lines).
    pub causes: Vec<String>,
    /// Extra detail, such as a guest's wasm backtrace.
    pub detail: Option<String>,
    /// Suggestions of what to do (the `hint:` lines).
    pub hints: Vec<String>,
}

/// A compiler diagnostic.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CompilerMessage {
    /// cargo's package id of the crate the diagnostic is for.
    pub package: String,
    /// `error`, `warning`, `note`, `help`, `failure-note` or `error: internal compiler error`.
    pub level: String,
    /// The diagnostic's one-line message.
    pub message: String,
    /// The diagnostic as rustc renders it, without ANSI colors.
    pub rendered: String,
    /// The diagnostic as people see it (with ANSI colors when stderr has them).
    #[serde(skip)]
    #[schemars(skip)]
    pub colored: String,
}

/// A compilation unit cargo finished.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UnitFinished {
    /// cargo's package id.
    pub package: String,
    /// The target's name (the crate name for a library).
    pub target: String,
    /// Whether cargo found it up to date.
    pub fresh: bool,
    /// How many units have finished so far in this build, this one included.
    pub built: u64,
}

/// A pass over the component.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Stage {
    /// The component's file name (`hello.wasm`).
    #[serde(skip)]
    #[schemars(skip)]
    pub file: String,
    /// `strip`, `optimize` or `bundle`.
    pub stage: StageKind,
    /// The component's size before the pass, in bytes.
    pub before: u64,
    /// Its size after, in bytes.
    pub after: u64,
    /// For `bundle`: how many files were bundled.
    pub files: Option<u64>,
    /// For `bundle`: their total size in bytes.
    pub bytes: Option<u64>,
}

/// The passes kiln runs over a component, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StageKind {
    /// Debug information (and with `strip = "symbols"` names) removed.
    Strip,
    /// Pre-initialized: the init export called at build time, its state snapshotted.
    Preinit,
    /// wasm-opt over each core module.
    Optimize,
    /// `[dependencies]` plugged into the component's imports.
    Compose,
    /// Bundled files composed in (the vfs component).
    Bundle,
}

/// The component a build produced.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Artifact {
    /// The component name.
    pub name: String,
    /// The package version (Kiln.toml, else Cargo.toml), if any. (`version` is the message
    /// format's.)
    pub package_version: Option<String>,
    /// Its description, if any.
    pub description: Option<String>,
    /// Its SPDX license expression, if any.
    pub license: Option<String>,
    /// Its source repository URL, if any.
    pub source: Option<String>,
    /// `debug` or `release`.
    pub profile: String,
    /// The absolute path of the component.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The hex SHA-256 of its bytes.
    pub sha256: String,
    /// True when nothing changed and the file was left as it was.
    pub fresh: bool,
    /// Always `component`.
    pub kind: String,
    /// The world's imports (`wasi:cli/environment@0.2.6`, …).
    pub imports: Vec<String>,
    /// The world's exports.
    pub exports: Vec<String>,
}

/// An executable from `kiln build --exe`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Executable {
    /// The component name.
    pub name: String,
    /// `debug` or `release`.
    pub profile: String,
    /// Always `executable`.
    pub kind: String,
    /// The absolute path of the executable.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The size of the native runner part, in bytes.
    pub runner_size: u64,
    /// True when the file already held this component and runner and was left as it was.
    pub fresh: bool,
    /// The path as shown to people (relative to the current directory).
    #[serde(skip)]
    #[schemars(skip)]
    pub shown: String,
}

/// The end of a build.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BuildFinished {
    /// Whether it succeeded (a failed build ends with an `error` message instead).
    pub success: bool,
}

/// A new project.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProjectCreated {
    /// The template it was made from (`rust-cli`, …).
    pub template: String,
    /// The guest language (`rust`, `c`, `go`).
    pub language: String,
    /// The component name.
    pub name: String,
    /// The project directory, as given.
    pub path: PathBuf,
}

/// A template.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Template {
    /// Its id, as `kiln new --template` takes it.
    pub id: String,
    /// The guest language (`rust`, `c`, `go`).
    pub language: String,
    /// One line on what it makes.
    pub description: String,
    /// Column width for the human table.
    #[serde(skip)]
    #[schemars(skip)]
    pub width: usize,
}

/// A `kiln doctor` check.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Toolchain {
    /// What is checked (`cargo`, `clang (C guests)`, …).
    pub name: String,
    /// Whether it is ready.
    pub ok: bool,
    /// Where it was found.
    pub path: Option<PathBuf>,
    /// Its version, or what is missing.
    pub detail: String,
    /// How to fix it, when it is not ready.
    pub fix: Option<String>,
}

/// What `kiln inspect` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Inspect {
    /// The file, as given.
    pub path: PathBuf,
    /// `component`, `core module` or `not wasm`.
    pub kind: String,
    /// Its size in bytes.
    pub size: u64,
    /// The WASI versions the component's world uses (`0.2`, `0.3`); null for core modules.
    pub wasi: Option<Vec<String>>,
    /// The world's imports; null for core modules.
    pub imports: Option<Vec<String>>,
    /// The world's exports; null for core modules.
    pub exports: Option<Vec<String>>,
    /// Every core module inside.
    pub modules: Vec<InspectModule>,
    /// Every custom section, at the component level and inside modules.
    pub custom_sections: Vec<InspectCustomSection>,
    /// The top-level metadata.
    pub metadata: InspectMetadata,
    /// The bundled files, depth first in name order; null when nothing is bundled.
    pub bundled_files: Option<Vec<BundledFile>>,
    /// The components it was composed from (Kiln.toml's `[dependencies]`, as recorded by
    /// `kiln build`); null when it was not composed by kiln.
    pub composed_from: Option<Vec<ComposedFrom>>,
}

/// A component another was composed from (the `kiln-composed-from` custom section).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ComposedFrom {
    /// The dependency's name in `[dependencies]`.
    pub name: String,
    /// `path:<as written in Kiln.toml>` or `oci:<reference>`.
    pub source: String,
    /// Its version, from its metadata.
    pub version: Option<String>,
    /// `sha256:<hex>` of its component bytes.
    pub digest: String,
    /// The OCI manifest digest it was pulled at (registry dependencies only).
    pub manifest_digest: Option<String>,
    /// The imports it provides.
    pub provides: Vec<String>,
}

impl From<kiln_componentize::ComposedFrom> for ComposedFrom {
    fn from(c: kiln_componentize::ComposedFrom) -> ComposedFrom {
        ComposedFrom {
            name: c.name,
            source: c.source,
            version: c.version,
            digest: c.digest,
            manifest_digest: c.manifest_digest,
            provides: c.provides,
        }
    }
}

/// A core module inside a component.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InspectModule {
    /// Where it sits: its index among the modules of each nesting level (`[0]`; `[1, 0]` for
    /// the first module of the second nested component).
    pub path: Vec<usize>,
    /// The path as people see it (`core module 1/0`).
    #[serde(skip)]
    #[schemars(skip)]
    pub shown: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A custom section.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InspectCustomSection {
    /// The section name (`.debug_info`, `producers`).
    pub name: String,
    /// Its payload size in bytes.
    pub size: u64,
    /// The path of the module holding it (as in `modules`); null for the component itself.
    pub module: Option<Vec<usize>>,
    /// Where it is as people see it (`core module 0`, `component`).
    #[serde(skip)]
    #[schemars(skip)]
    pub shown: String,
}

/// Component metadata (the `wasm-metadata` fields).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InspectMetadata {
    /// `name`.
    pub name: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `licenses`.
    pub license: Option<String>,
    /// `source`.
    pub source: Option<String>,
    /// The `producers` section's entries.
    pub producers: Vec<Producer>,
}

/// One `producers` entry.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Producer {
    /// `language`, `processed-by` or `sdk`.
    pub field: String,
    /// The tool or language.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// A bundled file or directory.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BundledFile {
    /// The guest's path (`/assets/site.css`).
    pub path: String,
    /// The size of a file in bytes; null for a directory.
    pub size: Option<u64>,
    /// `file` or `directory`.
    pub kind: String,
}

/// WIT text.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Wit {
    /// The file, as given.
    pub path: PathBuf,
    /// The WIT.
    pub wit: String,
}

/// A software bill of materials, CycloneDX 1.5 JSON (`kiln inspect --sbom`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Sbom {
    /// Where it was read: a file, or `REFERENCE` (the referrer of the component's manifest).
    pub source: String,
    /// The referrer manifest's digest, for one read from a registry.
    pub referrer: Option<String>,
    /// The document.
    pub document: serde_json::Value,
}

/// A blob transfer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Blob {
    /// `push` or `pull`.
    pub direction: String,
    /// `sha256:…`.
    pub digest: String,
    /// Whether bytes moved (false: already in the registry, or in the cache).
    pub transferred: bool,
}

/// A published artifact.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Publish {
    /// True for `--dry-run`: packaged, not pushed.
    pub dry_run: bool,
    /// `REGISTRY/REPOSITORY:TAG@sha256:…`.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// The component layer's digest (`sha256:` of the component's bytes).
    pub layer_digest: String,
    /// The component's size in bytes.
    pub size: u64,
    /// Bytes uploaded (0 for `--dry-run`, or when the registry had every blob).
    pub uploaded: u64,
    /// The manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A pulled component.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Pull {
    /// The reference as pulled.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// The component layer's digest.
    pub layer_digest: String,
    /// The component's size in bytes.
    pub size: u64,
    /// Bytes downloaded (0 when everything was in the cache).
    pub downloaded: u64,
    /// Where the component was written (absolute).
    pub path: PathBuf,
    /// The path as people see it.
    #[serde(skip)]
    #[schemars(skip)]
    pub shown: String,
    /// The manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// The imports the artifact's config lists, when it has them.
    pub imports: Option<Vec<String>>,
    /// The exports the artifact's config lists, when it has them.
    pub exports: Option<Vec<String>>,
}

/// Saved credentials.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Login {
    /// The registry (`ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The user name (never the password).
    pub username: String,
    /// The credentials file written.
    pub store: PathBuf,
}

/// Forgotten credentials.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Logout {
    /// The registry.
    pub registry: String,
    /// False when kiln had no login for it.
    pub removed: bool,
}

/// Resolved settings.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Settings {
    /// The command (`build`, `run`, `serve`, `publish`, `pull`).
    pub command: String,
    /// What was read from the environment (the current directory, `SOURCE_DATE_EPOCH`).
    pub environment: serde_json::Value,
    /// The settings: the project, profile, stages, bundles, grants and limits, references,
    /// paths (absolute), as the command will use them. Their shape follows the command.
    pub settings: serde_json::Value,
}

/// A server that accepts connections.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Listening {
    /// `http://ADDRESS:PORT`.
    pub url: String,
    /// What is served, as given.
    #[serde(skip)]
    #[schemars(skip)]
    pub shown: String,
}

/// An answered request.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Request {
    /// The HTTP method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The response status.
    pub status: u16,
    /// Time from the request's head to the response's end, in milliseconds; null when the
    /// guest failed before answering, or the body was refused.
    pub duration_ms: Option<f64>,
    /// What went wrong: the guest's failure (status 500, or after it answered) or the refused
    /// body (413).
    pub error: Option<String>,
}

/// A dropped connection.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConnectionError {
    /// The client's address.
    pub peer: String,
    /// What happened.
    pub error: String,
}

/// A failed `accept`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AcceptError {
    /// The error.
    pub error: String,
    /// How long kiln waits before accepting again, in milliseconds.
    pub retry_in_ms: f64,
}

/// A retired instance.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InstanceRetired {
    /// Requests it took.
    pub requests: u64,
    /// Why it failed (the requests in flight on it got 500s); null when it was simply done.
    pub error: Option<String>,
}

/// The start of a graceful shutdown.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Draining {}

/// A stopped server.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Stopped {
    /// Requests answered in all.
    pub requests: u64,
    /// False when requests still in flight after the drain timeout were cut off.
    pub drained: bool,
}

/// A call of a library component's export and what it returned.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Invoked {
    /// The function called, by its qualified name: `add`, or `acme:math/ops@1.0.0#add` for a
    /// function of an exported interface.
    pub function: String,
    /// Its signature in WIT's notation: `func(a: s32, b: s32) -> s32`.
    pub signature: String,
    /// The results in WAVE, as people see them: the value for one result, a tuple
    /// `(a, b)` for several, `()` for none.
    pub result: String,
    /// The results as JSON: the value for one result, an array for several, `null` for none.
    /// Records are objects; lists and tuples arrays; an `option` is `null` or its value; a
    /// `result` is `{"ok": …}` or `{"err": …}`; a variant `{"<case>": payload}`; an enum its
    /// case's name; flags an array of the names set.
    pub value: serde_json::Value,
}

/// A test binary and how it ended.
#[derive(Debug, Clone, Serialize, serde::Deserialize, JsonSchema)]
pub struct TestBinary {
    /// The test binary cargo or go built (absolute).
    pub binary: PathBuf,
    /// Its name, as its `argv[0]` (`mylib-1a2b3c4d5e6f7a8b`).
    pub name: String,
    /// Its exit status: 0 when every test passed; libtest exits with 101 when one failed, Go
    /// with 1; a trap or a limit has its own status (`kiln help run`).
    pub exit_code: i32,
    /// Whether it exited with 0.
    pub passed: bool,
    /// How many tests ran, each in an instance of its own (a libtest binary); `None` when
    /// the binary ran as one command (Go, a `harness = false` target, `--list`).
    pub tests: Option<usize>,
    /// The tests that failed, by name.
    pub failed: Vec<String>,
}

/// How `kiln test` ended.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TestFinished {
    /// `rust` or `go`.
    pub language: String,
    /// Whether cargo (or go) reported success: every test binary built and passed.
    pub success: bool,
    /// cargo's (or go's) exit status, which `kiln test` exits with.
    pub exit_code: i32,
}

macro_rules! message_from {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for Message {
            fn from(value: $ty) -> Message {
                Message::$variant(value.into())
            }
        })*
    };
}

message_from!(
    Status(Status),
    Warning(Warning),
    Error(ErrorReport),
    CompilerMessage(CompilerMessage),
    UnitFinished(UnitFinished),
    Stage(Stage),
    Artifact(Artifact),
    Executable(Executable),
    BuildFinished(BuildFinished),
    ProjectCreated(ProjectCreated),
    Template(Template),
    Toolchain(Toolchain),
    Inspect(Inspect),
    Wit(Wit),
    Sbom(Sbom),
    Blob(Blob),
    Publish(Publish),
    Pull(Pull),
    Login(Login),
    Logout(Logout),
    Settings(Settings),
    Listening(Listening),
    Request(Request),
    ConnectionError(ConnectionError),
    AcceptError(AcceptError),
    InstanceRetired(InstanceRetired),
    Draining(Draining),
    Stopped(Stopped),
    Invoked(Invoked),
    TestBinary(TestBinary),
    TestFinished(TestFinished),
);

/// A message as people see it: zero or more of these lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Human {
    /// `{verb:>12} {text}` on stderr, unless `-q`.
    Status(String, String),
    /// A status line shown only with `-v`.
    Detail(String, String),
    /// `warning: {text}` on stderr, even with `-q`.
    Warning(String),
    /// A line of results on stdout.
    Result(String),
    /// A tool's own output, passed to stderr as it printed it (`always`: even with `-q`).
    Forward { text: String, always: bool },
}

impl Message {
    /// Whether `--message-format json` shows the message at `verbosity`: status lines follow
    /// `-q`/`-v` as they do for people; every other message is data and always emitted.
    pub fn json_visible(&self, verbosity: crate::shell::Verbosity) -> bool {
        use crate::shell::Verbosity;
        match self {
            Message::Status(s) if s.detail => verbosity >= Verbosity::Verbose,
            Message::Status(_) => verbosity >= Verbosity::Normal,
            _ => true,
        }
    }

    /// The lines people see for this message. (The `error` message is drawn by
    /// [`crate::shell::Shell::error`] with its own layout.)
    pub fn human(&self) -> Vec<Human> {
        let status = |verb: &str, text: String| vec![Human::Status(verb.to_string(), text)];
        match self {
            Message::Status(s) if s.detail => {
                vec![Human::Detail(s.verb.clone(), s.message.clone())]
            }
            Message::Status(s) => vec![Human::Status(s.verb.clone(), s.message.clone())],
            Message::Warning(w) => vec![Human::Warning(w.message.clone())],
            Message::Error(_) => Vec::new(),
            Message::CompilerMessage(m) => vec![Human::Forward {
                text: m.colored.clone(),
                always: m.level == "error" || m.level.contains("internal compiler error"),
            }],
            Message::UnitFinished(_) | Message::BuildFinished(_) => Vec::new(),
            Message::Stage(s) => {
                let verb = match s.stage {
                    StageKind::Strip => "Stripping",
                    StageKind::Preinit => "Initializing",
                    StageKind::Optimize => "Optimizing",
                    StageKind::Compose => "Composing",
                    StageKind::Bundle => "Bundling",
                };
                let mut text = format!(
                    "{} {} → {}",
                    s.file,
                    human_size(s.before),
                    human_size(s.after)
                );
                if let (Some(files), Some(bytes)) = (s.files, s.bytes) {
                    text.push_str(&format!(
                        " ({files} file{}, {})",
                        if files == 1 { "" } else { "s" },
                        human_size(bytes)
                    ));
                }
                status(verb, text)
            }
            Message::Artifact(a) => status(
                "Finished",
                format!(
                    "{} {} ({})",
                    a.profile,
                    crate::fsutil::display_relative(&a.path),
                    human_size(a.size)
                ),
            ),
            Message::Executable(e) => status(
                "Packaged",
                format!(
                    "{} {} ({}: runner {} + component and compiled code)",
                    e.profile,
                    e.shown,
                    human_size(e.size),
                    human_size(e.runner_size)
                ),
            ),
            Message::ProjectCreated(p) => status(
                "Created",
                format!(
                    "{} component `{}` in `{}` from template `{}`",
                    p.language,
                    p.name,
                    p.path.display(),
                    p.template
                ),
            ),
            Message::Template(t) => vec![Human::Result(format!(
                "{:width$}  {:6}  {}",
                t.id,
                t.language,
                t.description,
                width = t.width
            ))],
            Message::Toolchain(check) => {
                let mark = if check.ok { "ok" } else { "missing" };
                let mut line = format!("{:<34} {mark:<8} {}", check.name, check.detail);
                if let Some(path) = &check.path {
                    line.push_str(&format!(" ({})", path.display()));
                }
                let mut lines = vec![Human::Result(line)];
                if let Some(fix) = &check.fix {
                    lines.push(Human::Result(format!("{:<34} {:<8} fix: {fix}", "", "")));
                }
                lines
            }
            Message::Inspect(info) => info.human(),
            Message::Wit(w) => vec![Human::Result(w.wit.trim_end().to_string())],
            Message::Sbom(sbom) => sbom.human(),
            Message::Blob(b) => {
                let what = match (b.transferred, b.direction.as_str()) {
                    (true, "push") => "uploaded",
                    (true, _) => "downloaded",
                    (false, "push") => "already in the registry",
                    (false, _) => "in the cache",
                };
                vec![Human::Detail(
                    "Blob".into(),
                    format!("{} {what}", short_digest(&b.digest)),
                )]
            }
            Message::Publish(p) => vec![Human::Result(p.reference.clone())],
            Message::Pull(p) => vec![Human::Result(p.shown.clone())],
            Message::Login(l) => status(
                "Logged in",
                format!(
                    "to {} as {} (saved in {})",
                    l.registry,
                    l.username,
                    l.store.display()
                ),
            ),
            Message::Logout(l) if l.removed => status("Logged out", format!("of {}", l.registry)),
            Message::Logout(l) => vec![Human::Warning(format!(
                "not logged in to {}; nothing to do",
                l.registry
            ))],
            Message::Settings(s) => {
                let text = serde_json::to_string_pretty(&serde_json::json!({
                    "command": s.command,
                    "environment": s.environment,
                    "settings": s.settings,
                }))
                .unwrap_or_default();
                vec![Human::Result(text)]
            }
            Message::Listening(l) => vec![
                Human::Status(
                    "Serving".into(),
                    format!("`{}` on {} (Ctrl-C to stop)", l.shown, l.url),
                ),
                Human::Result(l.url.clone()),
            ],
            Message::Request(r) => match (r.duration_ms, &r.error) {
                (Some(ms), error) => {
                    let mut lines = vec![Human::Detail(
                        "Request".into(),
                        format!("{} {} -> {} in {ms:.1} ms", r.method, r.path, r.status),
                    )];
                    if let Some(error) = error {
                        lines.push(Human::Warning(format!(
                            "{} {}: the guest failed after answering {}: {error}",
                            r.method, r.path, r.status
                        )));
                    }
                    lines
                }
                (None, error) => vec![Human::Warning(format!(
                    "{} {} -> {}: {}",
                    r.method,
                    r.path,
                    r.status,
                    error.as_deref().unwrap_or("no answer")
                ))],
            },
            Message::ConnectionError(c) => vec![Human::Detail(
                "Connection".into(),
                format!("{}: {}", c.peer, c.error),
            )],
            Message::AcceptError(a) => vec![Human::Warning(format!(
                "cannot accept a connection: {}; retrying in {} ms",
                a.error,
                a.retry_in_ms.round()
            ))],
            Message::InstanceRetired(i) => match &i.error {
                Some(error) => vec![Human::Warning(format!(
                    "an instance failed after {} request{}: {error}",
                    i.requests,
                    if i.requests == 1 { "" } else { "s" }
                ))],
                None => vec![Human::Detail(
                    "Retired".into(),
                    format!(
                        "an instance after {} request{}",
                        i.requests,
                        if i.requests == 1 { "" } else { "s" }
                    ),
                )],
            },
            Message::Draining(_) => {
                status("Draining", "requests in flight (Ctrl-C received)".into())
            }
            Message::Stopped(s) => {
                let mut lines = Vec::new();
                if !s.drained {
                    lines.push(Human::Warning(
                        "requests still in flight after 30 s were cut off".into(),
                    ));
                }
                let plural = if s.requests == 1 { "" } else { "s" };
                lines.push(Human::Status(
                    "Stopped".into(),
                    format!("after {} request{plural}", s.requests),
                ));
                lines
            }
            Message::Invoked(i) => vec![Human::Result(i.result.clone())],
            Message::TestBinary(t) => vec![Human::Detail(
                "Tested".into(),
                format!(
                    "{} ({})",
                    t.name,
                    if t.passed {
                        "passed".to_string()
                    } else {
                        format!("exit status {}", t.exit_code)
                    }
                ),
            )],
            // cargo and go have printed their own summary.
            Message::TestFinished(_) => Vec::new(),
        }
    }
}

impl Inspect {
    fn human(&self) -> Vec<Human> {
        let mut lines = Vec::new();
        let mut line = |text: String| lines.push(Human::Result(text));
        line(format!(
            "{}: {}, {}",
            self.path.display(),
            self.kind,
            human_size(self.size)
        ));
        if let (Some(imports), Some(exports)) = (&self.imports, &self.exports) {
            if let Some(versions) = self.wasi.as_ref().filter(|v| !v.is_empty()) {
                let shown: Vec<String> = versions.iter().map(|v| format!("WASI {v}")).collect();
                line(format!("targets: {}", shown.join(", ")));
            }
            line("world:".into());
            for import in imports {
                line(format!("  import {import}"));
            }
            for export in exports {
                line(format!("  export {export}"));
            }
        }
        line("core modules:".into());
        for module in &self.modules {
            line(format!(
                "  {:<24} {:>10}",
                module.shown,
                human_size(module.size)
            ));
        }
        if !self.custom_sections.is_empty() {
            line("custom sections:".into());
            for custom in &self.custom_sections {
                line(format!(
                    "  {:<24} {:<24} {:>10}",
                    custom.name,
                    custom.shown,
                    human_size(custom.size)
                ));
            }
        }
        let m = &self.metadata;
        let fields = [
            ("name", &m.name),
            ("version", &m.version),
            ("description", &m.description),
            ("license", &m.license),
            ("source", &m.source),
        ];
        if fields.iter().any(|(_, v)| v.is_some()) || !m.producers.is_empty() {
            line("metadata:".into());
            for (key, value) in fields {
                if let Some(value) = value {
                    line(format!("  {key}: {value}"));
                }
            }
            for p in &m.producers {
                line(format!("  {}: {} {}", p.field, p.name, p.version));
            }
        }
        if let Some(from) = &self.composed_from {
            line("composed from:".into());
            for c in from {
                let version = c
                    .version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                let source = c.source.strip_prefix("path:").unwrap_or(&c.source);
                let source = source.strip_prefix("oci:").unwrap_or(source);
                let at = c
                    .manifest_digest
                    .as_deref()
                    .map(|d| format!(" (manifest {d})"))
                    .unwrap_or_default();
                line(format!("  {}{version} from {source}{at}", c.name));
                line(format!("    digest {}", c.digest));
                for import in &c.provides {
                    line(format!("    provides {import}"));
                }
            }
        }
        if let Some(files) = &self.bundled_files {
            line("bundled files:".into());
            for file in files {
                match file.size {
                    Some(size) => line(format!("  {:<40} {:>10}", file.path, human_size(size))),
                    None => line(format!("  {}/", file.path)),
                }
            }
        }
        lines
    }
}

impl Sbom {
    fn human(&self) -> Vec<Human> {
        let d = &self.document;
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
        let subject = &d["metadata"]["component"];
        let mut lines = vec![Human::Result(format!(
            "{}: {} {}, {} {}",
            self.source,
            text(&d["bomFormat"]),
            text(&d["specVersion"]),
            text(&subject["name"]),
            text(&subject["version"])
        ))];
        for c in d["components"].as_array().into_iter().flatten() {
            let detail = match c["purl"].as_str() {
                Some(purl) => purl.to_string(),
                // By characters: a document read from a registry may hold anything.
                None => c["hashes"][0]["content"]
                    .as_str()
                    .map(|h| format!("sha256:{}", h.chars().take(12).collect::<String>()))
                    .unwrap_or_default(),
            };
            lines.push(Human::Result(format!(
                "  {:<12} {:<40} {:<12} {detail}",
                text(&c["type"]),
                text(&c["name"]),
                text(&c["version"])
            )));
        }
        lines
    }
}

/// `sha256:0123456789ab`: a digest shortened for people.
pub fn short_digest(digest: &str) -> &str {
    // By characters, not bytes: a digest that is shown before it is checked may hold any.
    digest
        .char_indices()
        .nth(19)
        .map_or(digest, |(end, _)| &digest[..end])
}

/// A message with the `version` field, as written on stdout.
#[derive(Serialize)]
pub struct Envelope<'a> {
    /// [`MESSAGE_VERSION`].
    pub version: u32,
    /// The message, flattened beside `version` (its `reason` first).
    #[serde(flatten)]
    pub message: &'a Message,
}

/// The JSON line for `message`.
pub fn to_json_line(message: &Message) -> String {
    serde_json::to_string(&Envelope {
        version: MESSAGE_VERSION,
        message,
    })
    .unwrap_or_else(|e| format!("{{\"reason\":\"error\",\"version\":{MESSAGE_VERSION},\"message\":\"cannot serialize a message: {e}\",\"causes\":[],\"detail\":null,\"hints\":[]}}"))
}

/// docs/json.md: every message with its fields, types and doc comments, generated from the
/// JSON schema of [`Message`] (`kiln json-reference`, hidden, prints it).
pub fn reference_markdown() -> String {
    use serde_json::Value;
    let schema = serde_json::to_value(schemars::schema_for!(Message)).unwrap_or_default();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = String::from(
        "# kiln's JSON messages\n\n\
         <!-- Generated from cli/src/messages.rs; do not edit. Regenerate: KILN_BLESS=1 cargo test --test testsuite json_reference -->\n\n\
         With `--message-format json` (a global flag, accepted by every command), kiln writes \
         one JSON object per line on stdout for everything it reports. Each has `reason`, \
         naming the message, and `version`, the format's version (now ",
    );
    out.push_str(&format!(
        "{MESSAGE_VERSION}). The version goes up when a field is removed or changes meaning; new \
         fields and new reasons are added without a new version, so ignore what you do not \
         know. Status lines follow `-q` and `-v` as they do for people; every other message is \
         always written. A failed command ends with an `error` message (and its exit status); \
         stderr then still carries the error for people, and a toolchain's own output is passed \
         through there as it printed it. `kiln run`'s guest writes to the same stdout.\n\n\
         | reason | what it is |\n|---|---|\n"
    ));
    let variants: Vec<Value> = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut sections = String::new();
    let mut nested = std::collections::BTreeSet::new();
    for variant in &variants {
        let reason = variant
            .pointer("/properties/reason/const")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let description = variant
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        let first = description
            .split("\n\n")
            .next()
            .unwrap_or("")
            .replace('\n', " ");
        out.push_str(&format!("| [`{reason}`](#{reason}) | {first} |\n"));
        let target = reference_target(variant).and_then(|name| defs.get(name).cloned());
        let body = target.unwrap_or_else(|| variant.clone());
        sections.push_str(&format!(
            "\n## {reason}\n\n{}\n\n| field | type | description |\n|---|---|---|\n\
             | `reason` | `\"{reason}\"` | |\n| `version` | integer | The format's version. |\n",
            description.replace('\n', " ")
        ));
        sections.push_str(&field_rows(&body, &mut nested));
    }
    out.push_str(&sections);
    let mut shown = std::collections::BTreeSet::new();
    if !nested.is_empty() {
        out.push_str("\n## Types used in fields\n");
    }
    while let Some(name) = nested.iter().find(|n| !shown.contains(*n)).cloned() {
        shown.insert(name.clone());
        let Some(def) = defs.get(&name) else { continue };
        let description = def
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace('\n', " ");
        out.push_str(&format!("\n### {name}\n\n{description}\n\n"));
        if def.get("properties").is_some() {
            out.push_str("| field | type | description |\n|---|---|---|\n");
            out.push_str(&field_rows(def, &mut nested));
        } else if let Some(values) = enum_values(def) {
            out.push_str("| value | description |\n|---|---|\n");
            for (value, doc) in values {
                out.push_str(&format!("| `\"{value}\"` | {doc} |\n"));
            }
        }
    }
    out
}

fn reference_target(schema: &serde_json::Value) -> Option<&str> {
    let reference = schema.get("$ref").or_else(|| {
        schema
            .get("allOf")?
            .as_array()?
            .iter()
            .find_map(|s| s.get("$ref"))
    })?;
    reference.as_str()?.strip_prefix("#/$defs/")
}

fn enum_values(schema: &serde_json::Value) -> Option<Vec<(String, String)>> {
    use serde_json::Value;
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(
            values
                .iter()
                .filter_map(|v| Some((v.as_str()?.to_string(), String::new())))
                .collect(),
        );
    }
    let variants = schema.get("oneOf")?.as_array()?;
    Some(
        variants
            .iter()
            .filter_map(|v| {
                let value = v.get("const").or_else(|| v.get("enum")?.get(0))?.as_str()?;
                let doc = v.get("description").and_then(Value::as_str).unwrap_or("");
                Some((value.to_string(), doc.replace('\n', " ")))
            })
            .collect(),
    )
}

fn field_rows(
    schema: &serde_json::Value,
    nested: &mut std::collections::BTreeSet<String>,
) -> String {
    use serde_json::Value;
    let mut rows = String::new();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return rows;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, property) in properties {
        if name == "reason" {
            continue;
        }
        let mut ty = type_name(property, nested);
        // Options are written as null; only fields serde skips are left out.
        if !required.contains(&name.as_str()) && !ty.contains("null") {
            ty.push_str(" (may be absent)");
        }
        let description = property
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace('\n', " ");
        rows.push_str(&format!("| `{name}` | {ty} | {description} |\n"));
    }
    rows
}

fn type_name(
    schema: &serde_json::Value,
    nested: &mut std::collections::BTreeSet<String>,
) -> String {
    use serde_json::Value;
    if let Some(name) = reference_target(schema) {
        nested.insert(name.to_string());
        return format!("[{name}](#{})", name.to_lowercase());
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let parts: Vec<String> = any.iter().map(|s| type_name(s, nested)).collect();
        return parts.join(" or ");
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let parts: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "array" => {
                let items = schema
                    .get("items")
                    .map(|i| type_name(i, nested))
                    .unwrap_or_else(|| "any".into());
                format!("array of {items}")
            }
            "object" => match schema.get("additionalProperties") {
                Some(values) if values.is_object() => {
                    format!("object of {}", type_name(values, nested))
                }
                _ => "object".into(),
            },
            other => other.to_string(),
        })
        .collect();
    if parts.is_empty() {
        "any".into()
    } else {
        parts.join(" or ")
    }
}
