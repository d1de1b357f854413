//! `--watch` for `kiln build`, `kiln run` and `kiln serve`: watch the project's files (and the
//! bundled directories), and on a change rebuild and re-run.
//!
//! For `build` and `run`, the watching kiln is a supervisor: it runs the same command without `--watch` as a child
//! process (in its own process group, recorded for signal forwarding, so Ctrl-C stops the
//! child and then the supervisor), and starts it again after each change. Events are
//! debounced ([`DEBOUNCE`]); paths under `target/`, dot-directories such as `.git/`, and what
//! the project's `.gitignore` ignores do not count.
//!
//! - `build`: each change runs `kiln build` again.
//! - `run`: a change stops the running guest (SIGTERM to its kiln) and runs it again, rebuilt.
//!
//! `serve` is not supervised: `kiln serve --watch` watches in its own process
//! ([`Changes`], from a thread beside the server), rebuilds in-process with the server still
//! up, and swaps the new component into the running server
//! ([`kiln_runtime::serve::Reloader`]): the listener and open connections stay, and a failed
//! build (or a component that no longer serves HTTP) keeps the last good one serving, with
//! the errors printed.

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

/// What to watch: directories (recursively) and the `.gitignore` of the project root.
pub struct WatchSet {
    /// The project root, or a component file's directory.
    pub root: PathBuf,
    /// More directories: bundled ones outside the root.
    pub extra: Vec<PathBuf>,
    /// A component file watched alone (a `.wasm` being run or served), if it is one.
    pub file: Option<PathBuf>,
}

impl WatchSet {
    /// What `kiln build --watch` watches.
    pub fn for_build(settings: &BuildSettings) -> WatchSet {
        WatchSet {
            root: settings.project.root.clone(),
            extra: settings.bundles.iter().map(|b| b.source.clone()).collect(),
            file: None,
        }
    }

    /// What `kiln run --watch` and `kiln serve --watch` watch.
    ///
    /// # Errors
    ///
    /// A registry reference: nothing local to watch.
    pub fn for_run(settings: &RunSettings) -> anyhow::Result<WatchSet> {
        match &settings.target {
            RunTarget::Project { build } => Ok(WatchSet::for_build(build)),
            RunTarget::File { path } => Ok(WatchSet {
                root: path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| settings.cwd.clone()),
                extra: Vec::new(),
                file: Some(path.clone()),
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

/// Changes to a [`WatchSet`]'s files, as they come.
pub struct Changes<'a> {
    set: &'a WatchSet,
    shell: &'a Shell,
    ignored: Vec<glob::Pattern>,
    events: mpsc::Receiver<notify::Result<notify::Event>>,
    // Kept alive: dropping it stops the watching.
    _watcher: notify::RecommendedWatcher,
}

impl<'a> Changes<'a> {
    /// Starts watching `set`'s directories.
    ///
    /// # Errors
    ///
    /// The operating system's watcher cannot start or cannot watch a directory.
    pub fn watch(shell: &'a Shell, set: &'a WatchSet) -> anyhow::Result<Changes<'a>> {
        let (tx, events) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .context("failed to start watching files")?;
        for dir in std::iter::once(&set.root).chain(&set.extra) {
            watcher
                .watch(dir, notify::RecursiveMode::Recursive)
                .with_context(|| format!("failed to watch `{}`", dir.display()))?;
        }
        Ok(Changes {
            set,
            shell,
            ignored: gitignore(&set.root),
            events,
            _watcher: watcher,
        })
    }

    /// Waits up to `timeout` for a change that counts; once one comes, waits until the files
    /// have been quiet for [`DEBOUNCE`] and returns the first changed path.
    ///
    /// # Errors
    ///
    /// The watcher stopped.
    pub fn next(&self, timeout: Duration) -> anyhow::Result<Option<PathBuf>> {
        let changed = match self.events.recv_timeout(timeout) {
            // Reads (kiln's own build opens the sources) are not changes.
            Ok(Ok(event)) if event.kind.is_access() => None,
            Ok(Ok(event)) => event
                .paths
                .iter()
                .find(|p| self.set.counts(p, &self.ignored))
                .cloned(),
            Ok(Err(error)) => {
                self.shell.warn(format_args!("watching files: {error}"));
                None
            }
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the file watcher stopped"),
        };
        if changed.is_some() {
            // Debounce: wait until the files have been quiet for a while.
            while self.events.recv_timeout(DEBOUNCE).is_ok() {}
        }
        Ok(changed)
    }
}

/// Runs the command under watch until a signal stops kiln.
///
/// # Errors
///
/// The watcher cannot start, or kiln cannot start itself.
pub fn watch(shell: &Shell, set: &WatchSet) -> anyhow::Result<i32> {
    let kiln = std::env::current_exe().context("cannot find kiln's own executable")?;
    let args = child_args();
    let changes = Changes::watch(shell, set)?;
    let start = || {
        let mut cmd = Command::new(&kiln);
        cmd.args(&args);
        end_with_parent(&mut cmd);
        crate::signals::spawn(&mut cmd).context("failed to start kiln")
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
            if let Some(path) = changes.next(Duration::from_millis(100))? {
                break path;
            }
        };
        crate::signals::exit_if_signalled();
        shell.status(
            "Changed",
            crate::fsutil::display_relative(&changed).to_string(),
        );
        if let Some(running) = child.take() {
            stop(running);
        }
        child = Some(start()?);
    }
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
