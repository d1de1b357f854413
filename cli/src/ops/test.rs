//! `kiln test`: a project's tests, run inside the sandbox the component ships in.
//!
//! kiln does not build or filter tests itself: it runs the language's own test driver for
//! WebAssembly and makes itself that driver's runner, so cargo and go keep their filtering,
//! their output and their exit status.
//!
//! - Rust: `cargo test --target wasm32-wasip2 --config target.wasm32-wasip2.runner=[kiln,
//!   "test-runner"]`. Each test binary cargo builds is a component; cargo starts
//!   `kiln test-runner BINARY ARGS…` for it.
//! - Go: `go test -exec "kiln test-runner"` with `GOOS=wasip1 GOARCH=wasm`. Each test binary
//!   is a preview1 module, componentized with the command adapter before it runs.
//!
//! The runner gets the sandbox (Kiln.toml's `[run]` merged with the command line's grants and
//! limits, and the directory relative grants are taken from) in `KILN_TEST_SANDBOX`, and runs
//! the binary with [`kiln_runtime::Runtime::run_command`], as `kiln run` would.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use kiln_componentize::WasmKind;
use kiln_runtime::{CodeSource, RunConfig, Runtime, RuntimeConfig};
use serde::{Deserialize, Serialize};

use crate::errors::hinted;
use crate::manifest::{Language, Project};
use crate::messages::{TestBinary, TestFinished};
use crate::settings::{Environment, Profile};
use crate::shell::{Shell, Verbosity};

/// The Rust target tests are built for.
const RUST_TARGET: &str = "wasm32-wasip2";

/// `kiln test`'s settings.
#[derive(Debug, Clone)]
pub struct TestSettings {
    /// The project whose tests run.
    pub project: Project,
    /// Debug or release.
    pub profile: Profile,
    /// Kiln.toml's `[run]` with the command line's grants added and its limits over it.
    pub sandbox: Sandbox,
    /// The test-name filter.
    pub filter: Option<String>,
    /// Arguments for the test binaries.
    pub args: Vec<String>,
}

/// What each test binary is granted and bounded by, as the runner receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sandbox {
    /// Grants and limits.
    pub config: RunConfig,
    /// The directory relative `--dir` grants are taken from.
    pub cwd: PathBuf,
    /// With `--message-format json`: the file each runner appends its `test-binary` message
    /// to (one JSON object a line), which `kiln test` emits once the driver is done. (go test
    /// reads its binaries' stdout, so they cannot write messages there.)
    pub events: Option<PathBuf>,
}

impl TestSettings {
    /// Finds the project and merges its `[run]` with the command line's grants.
    ///
    /// # Errors
    ///
    /// No project; a manifest error; a grant that does not resolve (checked here, before any
    /// build work, so a typo fails fast).
    pub fn resolve(
        manifest_path: Option<&Path>,
        release: bool,
        flags: RunConfig,
        filter: Option<String>,
        args: Vec<String>,
        env: &Environment,
    ) -> anyhow::Result<TestSettings> {
        let project = Project::find(&env.cwd, manifest_path)?;
        let mut config = project.manifest.run.clone();
        config.merge(flags);
        let sandbox = Sandbox {
            config,
            cwd: env.cwd.clone(),
            events: None,
        };
        sandbox.capabilities(String::new(), Vec::new())?;
        Ok(TestSettings {
            project,
            profile: Profile::from_release_flag(release),
            sandbox,
            filter,
            args,
        })
    }
}

impl Sandbox {
    fn capabilities(
        &self,
        program: String,
        args: Vec<String>,
    ) -> anyhow::Result<kiln_runtime::Capabilities> {
        let mut argv = vec![program];
        argv.extend(args);
        self.config
            .capabilities(
                &self.cwd,
                argv,
                crate::env_vars::host_var,
                crate::env_vars::host_vars,
            )
            .map_err(anyhow::Error::from)
    }
}

/// Runs the project's tests; returns cargo's (or go's) exit status.
///
/// # Errors
///
/// A language kiln has no test driver for; a missing toolchain or target; the driver cannot
/// be started.
pub fn test(shell: &Shell, settings: &TestSettings) -> anyhow::Result<i32> {
    let kiln = std::env::current_exe().context("cannot find kiln's own executable")?;
    let events = if shell.emits_json() {
        Some(tempfile::NamedTempFile::new().context("failed to create the test events file")?)
    } else {
        None
    };
    let mut sandbox = settings.sandbox.clone();
    sandbox.events = events.as_ref().map(|file| file.path().to_path_buf());
    let sandbox = serde_json::to_string(&sandbox).context("failed to encode the sandbox")?;
    let (language, mut cmd) = match settings.project.language {
        Language::Rust => ("rust", cargo_test(shell, settings, &kiln)?),
        Language::Go => ("go", go_test(shell, settings, &kiln)?),
        other => {
            let language = match other {
                Language::C => "C",
                Language::Tinygo => "TinyGo",
                _ => "custom-command",
            };
            return Err(hinted(
                format!("`kiln test` does not run tests of {language} projects yet"),
                "Rust (cargo test) and Go (go test) projects are supported; for C, build a test \
                 command component and run it with `kiln run`",
            ));
        }
    };
    cmd.env(crate::env_vars::KILN_TEST_SANDBOX, sandbox);
    if shell.emits_json() {
        // stdout carries kiln's messages: the tests' output (and go's report) go to stderr.
        cmd.stdout(std::io::stderr());
    }
    shell.verbose_status("Running", format_args!("`{}`", display_command(&cmd)));
    let status = crate::signals::spawn(&mut cmd)
        .with_context(|| format!("cannot run `{}`", cmd.get_program().to_string_lossy()))?
        .wait()
        .context("failed to wait for the test driver")?;
    crate::signals::exit_if_signalled();
    if let Some(file) = &events {
        for line in fs_err::read_to_string(file.path())?.lines() {
            if let Ok(event) = serde_json::from_str::<TestBinary>(line) {
                shell.emit(event);
            }
        }
    }
    let exit_code = status.code().unwrap_or(1);
    shell.emit(TestFinished {
        language: language.to_string(),
        success: status.success(),
        exit_code,
    });
    Ok(exit_code)
}

/// `cargo test --target wasm32-wasip2` with kiln as the runner.
fn cargo_test(shell: &Shell, settings: &TestSettings, kiln: &Path) -> anyhow::Result<Command> {
    let project = &settings.project;
    crate::toolchain::rust::check_target(&project.root, RUST_TARGET)?;
    let mut runner = vec![kiln.display().to_string()];
    if shell.emits_json() {
        runner.extend(["--message-format".to_string(), "json".to_string()]);
    }
    runner.push("test-runner".to_string());
    let runner = toml::Value::Array(runner.into_iter().map(toml::Value::String).collect());
    let mut cmd = Command::new(crate::env_vars::cargo());
    cmd.arg("test")
        .arg("--target")
        .arg(RUST_TARGET)
        .arg("--manifest-path")
        .arg(project.cargo_toml())
        .arg("--config")
        .arg(format!("target.{RUST_TARGET}.runner={runner}"))
        .current_dir(&project.root);
    if settings.profile == Profile::Release {
        cmd.arg("--release");
    }
    // The features `kiln build` builds with.
    let build = &project.manifest.build;
    if !build.features.is_empty() {
        cmd.arg("--features").arg(build.features.join(","));
    }
    if !build.default_features {
        cmd.arg("--no-default-features");
    }
    match shell.verbosity() {
        Verbosity::Quiet => {
            cmd.arg("--quiet");
        }
        Verbosity::Verbose => {
            cmd.arg("--verbose");
        }
        Verbosity::Normal => {}
    }
    if let Some(filter) = &settings.filter {
        cmd.arg(filter);
    }
    if !settings.args.is_empty() {
        cmd.arg("--").args(&settings.args);
    }
    Ok(cmd)
}

/// `go test` for `wasip1` with kiln as `-exec`.
fn go_test(shell: &Shell, settings: &TestSettings, kiln: &Path) -> anyhow::Result<Command> {
    let go = crate::toolchain::go::find()?;
    let project = &settings.project;
    // go splits `-exec` as a shell would (cmd/internal/quoted): quote kiln's path.
    let mut exec = format!("'{}'", kiln.display().to_string().replace('\'', ""));
    if shell.emits_json() {
        exec.push_str(" --message-format json");
    }
    exec.push_str(" test-runner");
    let mut cmd = Command::new(&go.program);
    cmd.arg("test")
        .arg("-exec")
        .arg(exec)
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("GOTOOLCHAIN", "local")
        .current_dir(&project.root);
    if shell.verbosity() == Verbosity::Verbose {
        cmd.arg("-v");
    }
    if let Some(filter) = &settings.filter {
        cmd.arg("-run").arg(filter);
    }
    cmd.arg("./...");
    if !settings.args.is_empty() {
        cmd.arg("-args").args(&settings.args);
    }
    Ok(cmd)
}

fn display_command(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `kiln test-runner`: runs one test binary in the sandbox `kiln test` resolved; returns
/// its exit status.
///
/// # Errors
///
/// Started outside `kiln test`; the binary is not wasm; a trap or a limit (with its own
/// exit status).
pub fn run_test_binary(shell: &Shell, binary: &Path, args: Vec<String>) -> anyhow::Result<i32> {
    let sandbox: Sandbox = match crate::env_vars::test_sandbox() {
        Some(json) => serde_json::from_str(&json).context("the test sandbox is malformed")?,
        None => bail!("`kiln test-runner` is started by `kiln test`, for each test binary"),
    };
    let shown = crate::fsutil::display_relative(binary);
    let mut bytes = fs_err::read(binary)?;
    let is_component = kiln_componentize::detect(&bytes) == WasmKind::Component;
    match kiln_componentize::detect(&bytes) {
        WasmKind::Component => {}
        // Go's test binaries are preview1 commands.
        WasmKind::CoreModule => {
            bytes = kiln_componentize::componentize(&bytes, None)
                .with_context(|| format!("failed to turn `{shown}` into a component"))?
                .bytes;
        }
        WasmKind::NotWasm => bail!("`{shown}` is not a WebAssembly test binary"),
    }
    let config = &sandbox.config;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: crate::env_vars::cache_dir(),
        fuel: config.fuel.is_some(),
        max_wasm_stack: config.max_wasm_stack,
        pooling: false,
    })?;
    let loaded = runtime
        .load(&bytes)
        .with_context(|| format!("failed to load `{shown}`"))?;
    if let CodeSource::Compiled { duration, .. } = &loaded.source {
        shell.verbose_status(
            "Compiled",
            format_args!("{shown} in {:.2}s", duration.as_secs_f64()),
        );
    }
    let name = binary
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "test".to_string());
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let guest = Guest {
        runtime: &runtime,
        loaded: &loaded,
        sandbox: &sandbox,
        name: &name,
        tokio: &tokio,
    };
    // A Rust test binary is a component; its tests run one instance each (libtest aborts
    // on the first panic on wasm). Anything else runs once, as a command.
    let libtest = if is_component {
        libtest(&guest, &args)?
    } else {
        None
    };
    let (exit_code, tests, failed, outcome) = match libtest {
        Some(run) => (run.exit_code, Some(run.tests), run.failed, None),
        None => {
            let outcome = guest.run(args, None);
            let code = match &outcome {
                Ok(status) => status.code,
                Err(error) => error.exit_code().unwrap_or(1),
            };
            (code, None, Vec::new(), Some(outcome))
        }
    };
    let event = TestBinary {
        binary: binary.to_path_buf(),
        name,
        exit_code,
        passed: exit_code == 0,
        tests,
        failed,
    };
    match &sandbox.events {
        Some(path) => {
            use std::io::Write;
            let mut line = serde_json::to_string(&event)?;
            line.push('\n');
            fs_err::OpenOptions::new()
                .append(true)
                .open(path)?
                .write_all(line.as_bytes())?;
        }
        None => shell.emit(event),
    }
    match outcome {
        Some(Err(error)) => Err(error).with_context(|| format!("failed to run `{shown}`")),
        _ => Ok(exit_code),
    }
}

/// A loaded test binary and what it runs with.
struct Guest<'a> {
    runtime: &'a Runtime,
    loaded: &'a kiln_runtime::LoadedComponent,
    sandbox: &'a Sandbox,
    name: &'a str,
    tokio: &'a tokio::runtime::Runtime,
}

/// The most output one test may write when its output is collected (64 MiB).
const CAPTURE_LIMIT: usize = 64 << 20;

impl Guest<'_> {
    /// Runs a fresh instance with `args`, its output collected in `capture` when given.
    fn run(
        &self,
        args: Vec<String>,
        capture: Option<&kiln_runtime::OutputCapture>,
    ) -> Result<kiln_runtime::ExitStatus, kiln_runtime::Error> {
        let mut capabilities = self
            .sandbox
            .capabilities(self.name.to_string(), args)
            .map_err(|e| kiln_runtime::Error::Instantiate(format!("{e:#}").into()))?;
        capabilities.capture = capture.cloned();
        self.tokio.block_on(self.runtime.run_command(
            self.loaded,
            &capabilities,
            &self.sandbox.config.limits(),
        ))
    }

    /// Runs with `args`, collecting the output; `None` when it did not exit with 0.
    fn output_of(&self, args: Vec<String>) -> Option<String> {
        let capture = kiln_runtime::OutputCapture::new(CAPTURE_LIMIT);
        match self.run(args, Some(&capture)) {
            Ok(status) if status.code == 0 => {
                Some(String::from_utf8_lossy(&capture.contents()).into_owned())
            }
            _ => None,
        }
    }

    /// The tests `--list --format terse` names with `args`.
    fn list(&self, args: &[String]) -> Option<Vec<String>> {
        let mut all = vec!["--list".to_string(), "--format".into(), "terse".into()];
        all.extend_from_slice(args);
        let text = self.output_of(all)?;
        Some(
            text.lines()
                .filter_map(|line| line.strip_suffix(": test"))
                .map(str::to_string)
                .collect(),
        )
    }
}

/// What a libtest binary's tests did.
struct LibtestRun {
    exit_code: i32,
    tests: usize,
    failed: Vec<String>,
}

/// libtest's options that take a value, as `--name VALUE`.
const LIBTEST_VALUE_FLAGS: &[&str] = &["--skip", "--test-threads", "--color", "--shuffle-seed"];
/// Options after which the binary runs as it is (listing, help, other formats and outputs).
const LIBTEST_AS_IS: &[&str] = &[
    "--list",
    "-h",
    "--help",
    "--format",
    "-Z",
    "--logfile",
    "--bench",
];

/// Runs a libtest binary's tests one instance each and reports them as libtest does: each
/// test's line, the failures with their output, the summary; exit status 101 when one failed.
/// `None` when the binary should run as it is (it is not libtest's, or `args` ask for
/// something other than running tests).
fn libtest(guest: &Guest<'_>, args: &[String]) -> anyhow::Result<Option<LibtestRun>> {
    if args.iter().any(|a| {
        LIBTEST_AS_IS
            .iter()
            .any(|f| a == f || a.starts_with(&format!("{f}=")))
    }) {
        return Ok(None);
    }
    // The options to keep for each test, and whether ignored tests run.
    let mut options = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if LIBTEST_VALUE_FLAGS.contains(&arg.as_str()) {
            options.extend(args[i..(i + 2).min(args.len())].iter().cloned());
            i += 2;
            continue;
        }
        if arg.starts_with('-') {
            options.push(arg.clone());
        }
        i += 1;
    }
    let include_ignored = args
        .iter()
        .any(|a| a == "--ignored" || a == "--include-ignored");
    let Some(selected) = guest.list(args) else {
        return Ok(None);
    };
    let ignored = if include_ignored {
        Vec::new()
    } else {
        let mut only = args.to_vec();
        only.push("--ignored".into());
        guest.list(&only).unwrap_or_default()
    };
    let total = guest
        .list(&[])
        .map(|all| all.len())
        .unwrap_or(selected.len());

    let started = std::time::Instant::now();
    let mut out = TestOutput;
    out.line(&format!(
        "\nrunning {} test{}",
        selected.len(),
        if selected.len() == 1 { "" } else { "s" }
    ));
    let (mut passed, mut failures) = (0usize, Vec::<(String, String)>::new());
    let mut ignored_count = 0;
    for test in &selected {
        if ignored.contains(test) {
            ignored_count += 1;
            out.line(&format!("test {test} ... ignored"));
            continue;
        }
        let mut run_args = vec![
            test.clone(),
            "--exact".into(),
            "--nocapture".into(),
            "--include-ignored".into(),
        ];
        run_args.extend(
            options
                .iter()
                .filter(|o| !matches!(o.as_str(), "--exact" | "--ignored" | "--include-ignored"))
                .cloned(),
        );
        let capture = kiln_runtime::OutputCapture::new(CAPTURE_LIMIT);
        let outcome = guest.run(run_args, Some(&capture));
        let text = String::from_utf8_lossy(&capture.contents()).into_owned();
        let why = match outcome {
            Ok(status) if status.code == 0 => None,
            Ok(status) => Some(format!("exit status {}", status.code)),
            Err(error) => Some(error.to_string()),
        };
        // libtest on wasm skips `#[should_panic]` tests even when asked to run ignored ones
        // (the target aborts on panic, so it cannot catch one): they are ignored, as
        // `cargo test --target wasm32-wasip2` reports them, never a pass.
        let skipped = why.is_none()
            && text.lines().any(|l| {
                l.strip_prefix("test ")
                    .and_then(|rest| rest.strip_prefix(test.as_str()))
                    // `test NAME ... ignored`, or `test NAME - should panic ... ignored`.
                    .is_some_and(|rest| {
                        let rest = rest.strip_prefix(" - should panic").unwrap_or(rest);
                        rest.starts_with(" ... ignored")
                    })
            });
        match why {
            None if skipped => {
                ignored_count += 1;
                out.line(&format!(
                    "test {test} ... ignored, should_panic tests cannot run on wasm (it aborts on panic)"
                ));
            }
            None => {
                passed += 1;
                out.line(&format!("test {test} ... ok"));
            }
            Some(why) => {
                out.line(&format!("test {test} ... FAILED"));
                failures.push((test.clone(), test_output(&text, test, &why)));
            }
        }
    }
    if !failures.is_empty() {
        out.line("\nfailures:\n");
        for (test, text) in &failures {
            out.line(&format!("---- {test} stdout ----\n{text}"));
        }
        out.line("failures:");
        for (test, _) in &failures {
            out.line(&format!("    {test}"));
        }
    }
    out.line(&format!(
        "\ntest result: {}. {passed} passed; {} failed; {ignored_count} ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failures.is_empty() { "ok" } else { "FAILED" },
        failures.len(),
        total.saturating_sub(selected.len()),
        started.elapsed().as_secs_f64()
    ));
    Ok(Some(LibtestRun {
        exit_code: if failures.is_empty() { 0 } else { 101 },
        tests: selected.len() - ignored_count,
        failed: failures.into_iter().map(|(test, _)| test).collect(),
    }))
}

/// A failed test's output without libtest's own lines for the one-test run, then why it
/// ended.
fn test_output(text: &str, test: &str, why: &str) -> String {
    let prefix = format!("test {test} ... ");
    let mut lines = Vec::new();
    for line in text.lines() {
        if line == "running 1 test" || line.is_empty() && lines.is_empty() {
            continue;
        }
        lines.push(line.strip_prefix(&prefix).unwrap_or(line));
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!("({why})\n"));
    out
}

/// Where a libtest-style report goes: the runner's stdout, as the test binary's own output
/// would (`kiln test` points it at stderr when its stdout carries JSON messages).
struct TestOutput;

impl TestOutput {
    fn line(&mut self, text: &str) {
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
}
