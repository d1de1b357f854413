//! What SIGINT and SIGTERM do to kiln and to what it started.
//!
//! Every toolchain process kiln starts (cargo, clang, go, tinygo — and through them rustc and
//! build scripts) is spawned through [`spawn`] or [`output`], in a process group of its own,
//! and recorded here while it runs. The temporary files kiln writes ([`TempFile`]) are
//! recorded too. When kiln receives SIGINT or SIGTERM — from a terminal's Ctrl-C, or sent to
//! kiln's pid alone by a CI runner or `kill` — a watcher thread:
//!
//! 1. forwards the signal to every recorded process group (so a build script sleeping in a
//!    grandchild stops too), waits up to [`CHILD_GRACE`] for the groups to be gone, and
//!    sends SIGKILL to what is left;
//! 2. removes the recorded temporary files;
//! 3. exits with 128 + the signal number: 130 for SIGINT, 143 for SIGTERM (as a shell
//!    reports a process killed by it).
//!
//! Nothing of a half-finished build is left behind that the next build would trip on: kiln's
//! own outputs are only ever renamed into place whole ([`crate::fsutil::write_atomic`]), and
//! cargo, clang and Go each discard their partial outputs when signalled.
//!
//! `kiln serve` handles both signals itself (a graceful drain, exit 0): it calls
//! [`delegate`] once its server is up, after which the watcher only records the signal.
//! A guest run by `kiln run` is in-process, so it stops with kiln.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// How long signalled toolchain processes get to exit before they are killed.
pub const CHILD_GRACE: Duration = Duration::from_secs(3);

/// Process groups of running children (each child leads its own group).
static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Temporary files to remove when a signal ends kiln.
static TEMP_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// The signal being handled, 0 before any.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// Set once the caller handles signals itself (`kiln serve`).
static DELEGATED: AtomicBool = AtomicBool::new(false);

fn lock<T>(m: &'static Mutex<T>) -> std::sync::MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts watching for SIGINT and SIGTERM. Call once, first thing in `main`: the handlers are
/// registered before this returns, so no child can be started unwatched.
pub fn install() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            // Without the watcher the default actions apply: kiln still stops.
            return;
        };
        let _ = std::thread::Builder::new()
            .name("kiln-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    if DELEGATED.load(Ordering::SeqCst) {
                        continue;
                    }
                    stop(signal);
                }
            });
    }
}

/// When a signal is being handled, waits for the watcher to end kiln (with 128 + the signal)
/// instead of returning: the command's own failure — a toolchain that died of the forwarded
/// signal — is a consequence, not news. Returns at once otherwise.
pub fn exit_if_signalled() {
    let signal = RECEIVED.load(Ordering::SeqCst);
    if signal == 0 {
        return;
    }
    // The watcher exits once the children are gone; this bound only guards against it dying.
    std::thread::sleep(CHILD_GRACE + Duration::from_secs(2));
    std::process::exit(128 + signal);
}

/// Hands SIGINT and SIGTERM to the caller from now on (it installed its own handling, as
/// `kiln serve` does with tokio). Running children and temporary files are no longer cleaned
/// up by the watcher.
pub fn delegate() {
    DELEGATED.store(true, Ordering::SeqCst);
}

/// Forwards `signal` to the children, removes temporary files, and exits with 128 + `signal`.
#[cfg(unix)]
fn stop(signal: i32) -> ! {
    RECEIVED.store(signal, Ordering::SeqCst);
    end(signal, 128 + signal)
}

/// Ends kiln now with exit status `code`, as a signal would: running children get SIGTERM
/// (SIGKILL after the grace period) and temporary files are removed. For a closed stdout.
pub fn exit_now(code: i32) -> ! {
    #[cfg(unix)]
    end(libc::SIGTERM, code);
    #[cfg(not(unix))]
    std::process::exit(code);
}

#[cfg(unix)]
fn end(signal: i32, code: i32) -> ! {
    let groups: Vec<u32> = lock(&GROUPS).clone();
    for &group in &groups {
        kill_group(group, signal);
    }
    let deadline = Instant::now() + CHILD_GRACE;
    let mut alive = groups;
    while !alive.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        alive.retain(|&group| group_exists(group));
    }
    for &group in &alive {
        kill_group(group, libc::SIGKILL);
    }
    for path in lock(&TEMP_FILES).iter() {
        let _ = std::fs::remove_file(path);
    }
    std::process::exit(code);
}

#[cfg(unix)]
fn kill_group(group: u32, signal: i32) {
    let Ok(pgid) = libc::pid_t::try_from(group) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

#[cfg(unix)]
fn group_exists(group: u32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(group) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the group exists.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// A running child in its own process group, recorded for signal forwarding until it is
/// waited for or dropped.
pub struct TrackedChild {
    child: Option<Child>,
    id: u32,
}

impl TrackedChild {
    /// The child itself (to take its pipes).
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("present until consumed")
    }

    /// Waits for the child to exit.
    ///
    /// # Errors
    ///
    /// As [`Child::wait`].
    pub fn wait(mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child().wait()
    }

    /// Waits for the child and collects its output, as [`Child::wait_with_output`].
    ///
    /// # Errors
    ///
    /// As [`Child::wait_with_output`].
    pub fn wait_with_output(mut self) -> std::io::Result<Output> {
        let child = self.child.take().expect("present until consumed");
        child.wait_with_output()
    }
}

impl Drop for TrackedChild {
    fn drop(&mut self) {
        let mut groups = lock(&GROUPS);
        if let Some(i) = groups.iter().position(|&g| g == self.id) {
            groups.swap_remove(i);
        }
    }
}

/// Spawns `cmd` in a new process group and records it (see the module docs).
///
/// # Errors
///
/// As [`Command::spawn`].
pub fn spawn(cmd: &mut Command) -> std::io::Result<TrackedChild> {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(cmd, 0);
    // Record under the lock the watcher reads, so a signal between spawn and record cannot
    // miss the child.
    let mut groups = lock(&GROUPS);
    let child = cmd.spawn()?;
    let id = child.id();
    groups.push(id);
    Ok(TrackedChild {
        child: Some(child),
        id,
    })
}

/// Runs `cmd` to completion as [`Command::output`] does (stdin null, stdout and stderr
/// captured), in its own recorded process group.
///
/// # Errors
///
/// As [`Command::output`].
pub fn output(cmd: &mut Command) -> std::io::Result<Output> {
    use std::process::Stdio;
    // Not the terminal: a child in a background process group that reads it would stop.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn(cmd)?.wait_with_output()
}

/// A temporary file's path, removed if a signal ends kiln while this guard lives.
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Records `path` until the guard is dropped.
    pub fn record(path: &Path) -> TempFile {
        lock(&TEMP_FILES).push(path.to_path_buf());
        TempFile {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let mut files = lock(&TEMP_FILES);
        if let Some(i) = files.iter().position(|p| *p == self.path) {
            files.swap_remove(i);
        }
    }
}
