//! `--watch` for `kiln build`, `kiln run` and `kiln serve`: watch the project's files (and the
//! bundled directories), and on a change rebuild and re-run.
//!
//! The watching kiln is a supervisor: it runs the same command without `--watch` as a child
//! process (in its own process group, recorded for signal forwarding, so Ctrl-C stops the
//! child and then the supervisor), and starts it again after each change. Events are
//! debounced ([`DEBOUNCE`]); paths under `target/`, dot-directories such as `.git/`, and what
//! the project's `.gitignore` ignores do not count.
//!
//! - `build`: each change runs `kiln build` again.
//! - `run`: a change stops the running guest (SIGTERM to its kiln) and runs it again, rebuilt.
//! - `serve`: a change builds first, with the server still up; only a successful build
//!   replaces it (the old server is stopped and the new one started on the same address), so a
//!   failed build keeps the last good one serving, with the compiler's errors printed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, bail};
use notify::Watcher;

use crate::settings::{BuildSettings, RunSettings, RunTarget};
use crate::shell::Shell;

/// How long the files must be quiet before a rebuild starts.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Which command is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// `kiln build`: rebuild.
    Build,
    /// `kiln run`: stop, rebuild, run.
    Run,
    /// `kiln serve`: build, then replace the server.
    Serve,
}

/// What to watch: directories (recursively) and the `.gitignore` of the project root.
pub struct WatchSet {
    /// The project root, or a component file's directory.
    pub root: PathBuf,
    /// More directories: bundled ones outside the root.
    pub extra: Vec<PathBuf>,
    /// A component file watched alone (a `.wasm` being run or served), if it is one.
    pub file: Option<PathBuf>,
    /// The project's manifest and profile, to build before replacing a server.
    pub build: Option<(PathBuf, bool)>,
    /// The address a watched server listens on.
    pub addr: Option<std::net::SocketAddr>,
}

impl WatchSet {
    /// What `kiln build --watch` watches.
    pub fn for_build(settings: &BuildSettings) -> WatchSet {
        WatchSet {
            root: settings.project.root.clone(),
            extra: settings.bundles.iter().map(|b| b.source.clone()).collect(),
            file: None,
            build: None,
            addr: None,
        }
    }

    /// What `kiln run --watch` and `kiln serve --watch` watch.
    ///
    /// # Errors
    ///
    /// A registry reference: nothing local to watch.
    pub fn for_run(settings: &RunSettings) -> anyhow::Result<WatchSet> {
        match &settings.target {
            RunTarget::Project { build } => {
                let mut set = WatchSet::for_build(build);
                let manifest = build
                    .project
                    .manifest_path
                    .clone()
                    .unwrap_or_else(|| build.project.cargo_toml());
                set.build = Some((manifest, build.profile == crate::settings::Profile::Release));
                Ok(set)
            }
            RunTarget::File { path } => Ok(WatchSet {
                root: path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| settings.cwd.clone()),
                extra: Vec::new(),
                file: Some(path.clone()),
                build: None,
                addr: None,
            }),
            RunTarget::Reference { reference, .. } => bail!(
                "`--watch` watches a project or a component file; `{reference}` is a registry reference"
            ),
        }
    }

    /// Whether a change at `path` counts.
    fn counts(&self, path: &Path, ignored: &[glob::Pattern]) -> bool {
        if let Some(file) = &self.file {
            return path == file;
        }
        for base in std::iter::once(&self.root).chain(&self.extra) {
            let Ok(relative) = path.strip_prefix(base) else {
                continue;
            };
            if base != &self.root {
                return true;
            }
            let hidden = relative.components().any(|c| {
                let c = c.as_os_str().to_string_lossy();
                c == "target" || c.starts_with('.')
            });
            if hidden {
                return false;
            }
            let text = relative.to_string_lossy();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            return !ignored
                .iter()
                .any(|p| p.matches(&text) || p.matches(&name) || text.starts_with(p.as_str()));
        }
        false
    }
}

/// The `.gitignore` at `root` as patterns (negations and comments left out).
fn gitignore(root: &Path) -> Vec<glob::Pattern> {
    let Ok(text) = fs_err::read_to_string(root.join(".gitignore")) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| glob::Pattern::new(l.trim_start_matches('/').trim_end_matches('/')).ok())
        .collect()
}

/// This kiln's arguments without `--watch` (before a `--`, which starts the guest's).
fn child_args() -> Vec<OsString> {
    let mut seen_dashes = false;
    std::env::args_os()
        .skip(1)
        .filter(|arg| {
            if arg == "--" {
                seen_dashes = true;
            }
            seen_dashes || arg != "--watch"
        })
        .collect()
}

/// Runs the command under watch until a signal stops kiln.
///
/// # Errors
///
/// The watcher cannot start, or kiln cannot start itself.
pub fn watch(shell: &Shell, what: Watched, set: &WatchSet) -> anyhow::Result<i32> {
    let kiln = std::env::current_exe().context("cannot find kiln's own executable")?;
    let mut args = child_args();
    if let Some(mut addr) = set.addr {
        // Every server the watch starts listens where the first did: a port of 0 is chosen
        // once, here.
        if addr.port() == 0 {
            addr = std::net::TcpListener::bind(addr)
                .and_then(|l| l.local_addr())
                .with_context(|| format!("cannot listen on {addr}"))?;
        }
        args = without_addr(args);
        args.push("--addr".into());
        args.push(addr.to_string().into());
    }
    let ignored = gitignore(&set.root);
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .context("failed to start watching files")?;
    for dir in std::iter::once(&set.root).chain(&set.extra) {
        watcher
            .watch(dir, notify::RecursiveMode::Recursive)
            .with_context(|| format!("failed to watch `{}`", dir.display()))?;
    }
    let start = || {
        let mut cmd = Command::new(&kiln);
        cmd.args(&args);
        end_with_parent(&mut cmd);
        if what == Watched::Serve {
            cmd.stdout(std::process::Stdio::piped());
        }
        let mut child = crate::signals::spawn(&mut cmd).context("failed to start kiln")?;
        // A server's stdout (its URL, JSON messages) is passed on by this kiln, so that a
        // reader who stopped reading (`| head -1`) does not end the next server.
        if let Some(mut out) = child.child().stdout.take() {
            std::thread::spawn(move || forward(&mut out));
        }
        anyhow::Ok(child)
    };
    let mut child = Some(start()?);
    loop {
        // Wait for a change that counts; note the child ending meanwhile.
        let changed = loop {
            if let Some(running) = &mut child
                && let Ok(Some(status)) = running.child().try_wait()
            {
                child = None;
                let verb = if status.success() {
                    "Finished"
                } else {
                    "Failed"
                };
                shell.status(verb, "watching for changes (Ctrl-C stops)");
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                // Reads (kiln's own build opens the sources) are not changes.
                Ok(Ok(event)) if event.kind.is_access() => {}
                Ok(Ok(event)) => {
                    if let Some(path) = event.paths.iter().find(|p| set.counts(p, &ignored)) {
                        break path.clone();
                    }
                }
                Ok(Err(error)) => shell.warn(format_args!("watching files: {error}")),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the file watcher stopped"),
            }
        };
        // Debounce: wait until the files have been quiet for a while.
        while rx.recv_timeout(DEBOUNCE).is_ok() {}
        crate::signals::exit_if_signalled();
        shell.status(
            "Changed",
            crate::fsutil::display_relative(&changed).to_string(),
        );
        if what == Watched::Serve
            && let Some((manifest, release)) = &set.build
        {
            // Build with the server still up; keep it when the build fails.
            let mut cmd = Command::new(&kiln);
            cmd.arg("build").arg("--manifest-path").arg(manifest);
            if *release {
                cmd.arg("--release");
            }
            let built = crate::signals::spawn(&mut cmd)
                .context("failed to start kiln build")?
                .wait()?;
            if !built.success() {
                shell.warn("the build failed; still serving the last good build");
                continue;
            }
        }
        if let Some(running) = child.take() {
            stop(running);
        }
        child = Some(start()?);
    }
}

/// Copies a child's stdout to ours until it ends; once ours is closed, the rest is dropped.
fn forward(from: &mut impl std::io::Read) {
    use std::io::Write;
    let mut buf = [0u8; 8192];
    let mut open = true;
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        if open {
            let mut out = std::io::stdout().lock();
            open = out.write_all(&buf[..n]).and_then(|()| out.flush()).is_ok();
        }
    }
}

/// `args` without `--addr VALUE` / `--addr=VALUE`.
fn without_addr(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut skip = false;
    for arg in args {
        if skip {
            skip = false;
        } else if arg == "--addr" {
            skip = true;
        } else if !arg.to_string_lossy().starts_with("--addr=") {
            out.push(arg);
        }
    }
    out
}

/// On Linux, a child kiln gets SIGTERM when the watching kiln dies, however it dies, so a
/// killed watch leaves no server behind.
fn end_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Stops a child kiln (SIGTERM to its process group, then SIGKILL after the grace period)
/// and waits for it.
fn stop(mut running: crate::signals::TrackedChild) {
    let id = running.child().id();
    #[cfg(unix)]
    {
        // SAFETY: signalling the child's own process group (it leads it).
        unsafe {
            libc::kill(-(id as libc::pid_t), libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + crate::signals::CHILD_GRACE;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = running.child().try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = id;
    let _ = running.child().kill();
    let _ = running.wait();
}
