//! Test support: a scratch directory per test, the real `kiln` binary run inside it with an
//! isolated cache, and snapshots of what a user sees (exit code, stdout, stderr) with paths
//! and sizes filtered out.
//!
//! Bless changed snapshots with `INSTA_UPDATE=always cargo test`.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod registry;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory with its own kiln cache; removed when dropped.
pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("kiln-test")
                .tempdir()
                .expect("a temp dir"),
        }
    }

    /// The scratch root (canonical, so it matches what kiln prints).
    pub fn root(&self) -> PathBuf {
        fs_err::canonicalize(self.dir.path()).unwrap()
    }

    /// A path under the scratch root.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    /// The compiled-code cache kiln uses in this environment.
    pub fn cache_dir(&self) -> PathBuf {
        self.path(".kiln-cache")
    }

    /// `kiln ARGS` with the scratch root as the current directory.
    pub fn kiln(&self, args: &[&str]) -> Kiln {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.args(args)
            .current_dir(self.root())
            .env("KILN_CACHE_DIR", self.cache_dir())
            .env("KILN_CONFIG_DIR", self.path(".kiln-config"))
            .env("DOCKER_CONFIG", self.path(".docker"))
            .env_remove("KILN_REGISTRY_USERNAME")
            .env_remove("KILN_REGISTRY_PASSWORD")
            .env_remove("KILN_REGISTRY_TOKEN")
            .env_remove("KILN_REGISTRY_HOST")
            .env_remove("KILN_REGISTRY_CA_FILE")
            .env_remove("SOURCE_DATE_EPOCH")
            .env("NO_COLOR", "1")
            .env_remove("CI")
            .env_remove("RUST_BACKTRACE")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("KILN_C_TOOLCHAIN")
            // kiln leaves the Go environment to the user; the tests keep Go offline and on
            // the toolchain installed, as a user without network would.
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env_remove("GOFLAGS");
        Kiln { cmd, stdin: None }
    }

    /// Writes a file under the scratch root, creating parents.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(relative);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, contents).unwrap();
        path
    }

    /// Compiles `tests/fixtures/<name>.wat` into `<name>.wasm` under the scratch root.
    pub fn wat_fixture(&self, name: &str) -> PathBuf {
        let wat = repo().join("tests/fixtures").join(format!("{name}.wat"));
        let bytes = wat::parse_file(&wat).unwrap_or_else(|e| panic!("{}: {e}", wat.display()));
        self.write(&format!("{name}.wasm"), bytes)
    }

    /// Copies the project `tests/fixtures/<name>` into the scratch root (without `target/`).
    pub fn project_fixture(&self, name: &str) -> PathBuf {
        let to = self.path(name);
        copy_dir(&repo().join("tests/fixtures").join(name), &to);
        to
    }

    /// Copies `examples/<name>` into the scratch root (without `target/`).
    pub fn example(&self, name: &str) -> PathBuf {
        let to = self.path(name);
        copy_dir(&repo().join("examples").join(name), &to);
        to
    }

    /// The probe guest (`tests/fixtures/probe-guest`), built once per test run, copied to
    /// `probe.wasm` under the scratch root.
    pub fn probe(&self) -> PathBuf {
        static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        let built = BUILT.get_or_init(|| {
            let shared = Env::new();
            let project = shared.project_fixture("probe-guest");
            shared.kiln(&["build", "-q"]).cwd(&project).run().success();
            let wasm = project.join("target/kiln/debug/probe-guest.wasm");
            // Kept in cargo's scratch space for integration tests, written by rename so that
            // concurrent test runs never see half a file.
            let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let kept = keep.join("probe.wasm");
            let tmp = keep.join(format!("probe.wasm.{}", std::process::id()));
            fs_err::copy(&wasm, &tmp).unwrap();
            fs_err::rename(&tmp, &kept).unwrap();
            kept
        });
        let to = self.path("probe.wasm");
        fs_err::copy(built, &to).unwrap();
        to
    }

    /// A program other than kiln (e.g. a built executable), started in the scratch root with
    /// an empty environment except `PATH`, which holds no kiln.
    pub fn program(&self, program: &Path, args: &[&str]) -> Kiln {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.root())
            .env_clear()
            .env("PATH", "/nonexistent");
        Kiln { cmd, stdin: None }
    }

    /// `kiln new NAME [ARGS]` that must succeed; returns the project directory.
    pub fn new_project(&self, name: &str, extra: &[&str]) -> PathBuf {
        let mut args = vec!["new", name];
        args.extend_from_slice(extra);
        self.kiln(&args).run().success();
        self.path(name)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).unwrap();
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            fs_err::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// A running `kiln serve`, stopped (killed) when dropped.
pub struct Served {
    pub child: std::process::Child,
    /// The URL it printed, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Served {
    /// Sends SIGINT (Ctrl-C) and waits: the exit code and everything it wrote on stderr.
    #[cfg(unix)]
    pub fn interrupt(self) -> (i32, String) {
        self.stop("INT")
    }

    /// Sends `signal` (`INT`, `TERM`) and waits: the exit code and everything on stderr.
    #[cfg(unix)]
    pub fn stop(mut self, signal: &str) -> (i32, String) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([format!("-{signal}").as_str(), &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code().expect("exits normally");
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (code, stderr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that reports every status as a response, not an error.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into()
}

/// A `kiln` invocation being set up.
pub struct Kiln {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Kiln {
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// The command, for tests that wire its stdio themselves.
    pub fn command(self) -> Command {
        self.cmd
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Starts a long-running `kiln serve ...` and waits for the URL it prints on stdout.
    pub fn serve(mut self) -> Served {
        use std::io::{BufRead, Read};
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("kiln starts");
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            text
        });
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let status = child.wait().unwrap();
            panic!(
                "kiln serve exited ({status}) without a URL:\n{}",
                stderr.join().unwrap()
            );
        }
        Served {
            child,
            url: line.trim().to_string(),
            stderr: Some(stderr),
        }
    }

    /// Starts kiln without waiting (stdin null, stdout and stderr collected), for tests that
    /// signal it while it works.
    pub fn spawn(mut self) -> Running {
        use std::io::Read;
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("kiln starts");
        let mut out_pipe = child.stdout.take().unwrap();
        let mut err_pipe = child.stderr.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = out_pipe.read_to_end(&mut bytes);
            bytes
        });
        let stderr = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = err_pipe.read_to_end(&mut bytes);
            bytes
        });
        Running {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Runs and also returns the wall-clock time it took.
    pub fn run_timed(self) -> (Output, std::time::Duration) {
        let start = std::time::Instant::now();
        let out = self.run();
        (out, start.elapsed())
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn run(mut self) -> Output {
        self.cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("kiln starts");
        if let Some(bytes) = self.stdin.take() {
            child.stdin.take().unwrap().write_all(&bytes).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Output {
            code: out
                .status
                .code()
                .expect("kiln exits normally, never by a signal"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            stdout_bytes: out.stdout,
        }
    }
}

/// A kiln started by [`Kiln::spawn`]; killed if dropped unfinished.
pub struct Running {
    pub child: std::process::Child,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Running {
    /// Sends `signal` (a name `kill` knows: `INT`, `TERM`) to kiln's pid alone, as a CI
    /// runner or `kill` would, and waits for it to exit.
    #[cfg(unix)]
    pub fn signal(mut self, signal: &str) -> Output {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([format!("-{signal}").as_str(), &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        let stdout = self.stdout.take().unwrap().join().unwrap();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        Output {
            code: status
                .code()
                .expect("kiln exits normally, never by a signal"),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            stdout_bytes: stdout,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a user sees of one kiln run.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// stdout as it came, for binary output.
    pub stdout_bytes: Vec<u8>,
}

impl Output {
    /// Asserts exit code 0, showing the output otherwise.
    pub fn success(self) -> Self {
        self.code(0)
    }

    /// Asserts the exit code, showing the output otherwise.
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code, expected,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The stdout lines parsed as JSON objects.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"))
            })
            .collect()
    }

    /// The one JSON event with `"reason": reason`.
    pub fn json_event(&self, reason: &str) -> serde_json::Value {
        let mut found: Vec<_> = self
            .json_lines()
            .into_iter()
            .filter(|v| v["reason"] == reason)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one `{reason}` event in:\n{}",
            self.stdout
        );
        found.remove(0)
    }
}

/// Snapshots an output (exit code, stdout, stderr), with the scratch root shown as `[ROOT]`,
/// the repository as `[REPO]`, and sizes and durations masked.
#[track_caller]
pub fn assert_output_snapshot(name: &str, env: &Env, output: &Output) {
    let text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output.code, output.stdout, output.stderr
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(repo().join("tests/testsuite/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.add_filter(&regex_escape(&env.root().display().to_string()), "[ROOT]");
    settings.add_filter(&regex_escape(&repo().display().to_string()), "[REPO]");
    settings.add_filter(r"\(\d+(\.\d+)? (B|KiB|MiB|GiB)\)", "([SIZE])");
    settings.add_filter(r"in \d+(\.\d+)?s", "in [ELAPSED]s");
    settings.add_filter(
        r"(?m)^\s+(Compiling|Fresh|Running|Finished `|Blocking).*\n",
        "",
    );
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(fs_err::read(path).unwrap()))
}

/// Every file under `dir`, relative, sorted (empty when `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
