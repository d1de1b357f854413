//! The one place kiln's output goes through.
//!
//! - Status lines (`   Compiling …`, `    Finished …`), warnings and errors go to **stderr**,
//!   with a right-aligned bold verb as cargo prints them.
//! - Results (paths, digests) and `--message-format json` events go to **stdout**.
//! - A progress bar (indicatif) is drawn only when stderr is a terminal, `CI` is unset,
//!   `TERM` is not `dumb` and kiln is neither quiet nor verbose. Every other write to stderr
//!   suspends the bar, so lines never tear through it.
//! - Text kiln did not write itself — names and metadata from components, registry error
//!   bodies, paths from archives and manifests — can carry terminal escape sequences. Every
//!   message, result and error line is passed through [`escape_controls`] before it is
//!   written; only a child toolchain's own diagnostics ([`Shell::forward_stderr`]) are passed
//!   through as they were printed, and a guest's stdout and stderr never come through here.

#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::env_vars;
use crate::messages::{ErrorReport, Human, Message, Status, Warning, to_json_line};
use kiln_runtime::text::escape_controls;

/// How chatty kiln is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors and warnings only.
    Quiet,
    /// Status lines.
    Normal,
    /// `-v`: status lines plus detail (commands run, cache hits).
    Verbose,
}

/// `--message-format`, a global flag: how [`Shell::emit`] renders messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MessageFormat {
    /// Status lines and warnings for people on stderr, results on stdout.
    #[default]
    Human,
    /// One JSON object per line on stdout for every message (docs/json.md); stderr keeps
    /// only the final error and a toolchain's own output.
    Json,
}

/// Writes one line to stdout (`colored`: through anstream, which strips colors where they
/// are not wanted). A closed stdout (`kiln inspect … | head`) ends kiln quietly with exit
/// status 0, as if the reader had read everything; any other write error (a full disk)
/// ends it with status 1 and the error on stderr. Either way running toolchains are stopped
/// and temporary files removed.
fn write_stdout(line: &str, colored: bool) {
    let written = if colored {
        let mut out = anstream::stdout().lock();
        writeln!(out, "{line}").and_then(|()| out.flush())
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").and_then(|()| out.flush())
    };
    if let Err(error) = written {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            crate::signals::exit_now(0);
        }
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "{ERROR}error{ERROR:#}: cannot write to stdout: {error}"
        );
        crate::signals::exit_now(1);
    }
}

const STATUS: Style = AnsiColor::Green.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const HINT: Style = AnsiColor::Cyan.on_default().bold();

/// kiln's output sink. Shared by reference across threads (cargo's stderr forwarder writes
/// through it while the main thread reads cargo's JSON).
pub struct Shell {
    verbosity: Verbosity,
    format: MessageFormat,
    progress_allowed: bool,
    bar: Mutex<Option<ProgressBar>>,
}

/// Whether a progress bar may be drawn: a terminal, not CI, not a dumb terminal, and
/// neither quiet nor verbose (verbose output would scroll it away).
pub fn progress_allowed(
    stderr_is_tty: bool,
    ci: bool,
    term_dumb: bool,
    verbosity: Verbosity,
) -> bool {
    stderr_is_tty && !ci && !term_dumb && verbosity == Verbosity::Normal
}

impl Shell {
    /// A shell for the given verbosity and format, detecting the terminal and `CI` from the
    /// environment. JSON output never draws a progress bar.
    pub fn new(verbosity: Verbosity, format: MessageFormat) -> Self {
        let progress_allowed = format == MessageFormat::Human
            && progress_allowed(
                std::io::stderr().is_terminal(),
                env_vars::is_ci(),
                env_vars::term_is_dumb(),
                verbosity,
            );
        Shell {
            verbosity,
            format,
            progress_allowed,
            bar: Mutex::new(None),
        }
    }

    /// The configured verbosity.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Whether messages are serialized (`--message-format json`): fields that cost work to
    /// fill and that people are not shown can be left empty otherwise.
    pub fn emits_json(&self) -> bool {
        self.format == MessageFormat::Json
    }

    /// Whether a progress bar would be drawn.
    pub fn progress_enabled(&self) -> bool {
        self.progress_allowed
    }

    /// Whether stderr should get ANSI colors (used to ask child processes for color).
    pub fn stderr_supports_color(&self) -> bool {
        anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
    }

    /// Writes to stderr with the progress bar (if any) suspended.
    fn with_stderr(&self, f: impl FnOnce(&mut dyn Write)) {
        let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        let write = || {
            let mut stderr = anstream::stderr().lock();
            f(&mut stderr);
            let _ = stderr.flush();
        };
        match bar.as_ref() {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Reports `message`: as the lines [`Message::human`] gives, or as one JSON line on
    /// stdout with `--message-format json`.
    pub fn emit(&self, message: impl Into<Message>) {
        let message = message.into();
        match self.format {
            MessageFormat::Json => {
                if message.json_visible(self.verbosity) {
                    write_stdout(&to_json_line(&message), false);
                }
            }
            MessageFormat::Human => {
                for line in message.human() {
                    self.draw(line);
                }
            }
        }
    }

    fn draw(&self, line: Human) {
        match line {
            Human::Status(verb, text) => {
                if self.verbosity >= Verbosity::Normal {
                    let text = escape_controls(&text);
                    self.with_stderr(|w| {
                        let _ = writeln!(w, "{STATUS}{verb:>12}{STATUS:#} {text}");
                    });
                }
            }
            Human::Detail(verb, text) => {
                if self.verbosity >= Verbosity::Verbose {
                    self.draw(Human::Status(verb, text));
                }
            }
            Human::Warning(text) => {
                let text = escape_controls(&text);
                self.with_stderr(|w| {
                    let _ = writeln!(w, "{WARN}warning{WARN:#}: {text}");
                });
            }
            Human::Result(text) => {
                let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
                let write = || write_stdout(&escape_controls(&text), true);
                match bar.as_ref() {
                    Some(bar) => bar.suspend(write),
                    None => write(),
                }
            }
            Human::Forward { text, always } => {
                if always || self.verbosity >= Verbosity::Normal {
                    self.forward_stderr_always(&text);
                }
            }
        }
    }

    /// A status line: `{verb:>12} {message}`, unless quiet.
    pub fn status(&self, verb: &str, message: impl Display) {
        self.emit(Status {
            verb: verb.to_string(),
            message: message.to_string(),
            detail: false,
        });
    }

    /// A status line shown only with `-v`.
    pub fn verbose_status(&self, verb: &str, message: impl Display) {
        // Nothing is formatted when nobody sees the line.
        if self.verbosity >= Verbosity::Verbose {
            self.emit(Status {
                verb: verb.to_string(),
                message: message.to_string(),
                detail: true,
            });
        }
    }

    /// `warning: …`, shown even when quiet.
    pub fn warn(&self, message: impl Display) {
        self.emit(Warning {
            message: message.to_string(),
        });
    }

    /// Renders an error with its chain of causes and any hints on stderr (with
    /// `--message-format json`, also as an `error` message on stdout):
    ///
    /// ```text
    /// error: first line
    ///
    /// Caused by:
    ///   cause
    ///
    /// hint: what to do
    /// ```
    pub fn error(&self, error: &anyhow::Error) {
        let rendered = crate::errors::Rendered::from(error);
        if self.format == MessageFormat::Json {
            let report = ErrorReport {
                message: rendered.message.clone(),
                causes: rendered.causes.clone(),
                detail: rendered.detail.clone(),
                hints: rendered.hints.clone(),
            };
            write_stdout(&to_json_line(&report.into()), false);
        }
        self.with_stderr(|w| {
            let _ = writeln!(
                w,
                "{ERROR}error{ERROR:#}: {}",
                escape_controls(&rendered.message)
            );
            if !rendered.causes.is_empty() {
                let _ = writeln!(w, "\nCaused by:");
                for cause in &rendered.causes {
                    for line in cause.lines() {
                        let _ = writeln!(w, "  {}", escape_controls(line));
                    }
                }
            }
            if let Some(detail) = &rendered.detail {
                let _ = writeln!(w, "{}", escape_controls(detail));
            }
            for hint in &rendered.hints {
                let _ = writeln!(w, "\n{HINT}hint{HINT:#}: {}", escape_controls(hint));
            }
        });
    }

    /// Passes a line (or several) from a child process through to stderr verbatim, unless
    /// quiet. ANSI colors are stripped when stderr does not support them.
    pub fn forward_stderr(&self, text: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.forward_stderr_always(text);
        }
    }

    /// Like [`Shell::forward_stderr`], but shown even when quiet (compiler errors).
    pub fn forward_stderr_always(&self, text: &str) {
        self.with_stderr(|w| {
            let _ = w.write_all(text.as_bytes());
            if !text.ends_with('\n') {
                let _ = w.write_all(b"\n");
            }
        });
    }

    /// Starts a progress bar of `total` units, if bars are allowed. Replaces any current bar.
    pub fn progress_start(&self, total: u64, label: &str) {
        self.start_bar(total, label, "{pos}/{len}: {wide_msg}", "");
    }

    /// Starts a byte-counting progress bar of `total` bytes (a transfer), if bars are allowed.
    pub fn progress_start_bytes(&self, total: u64, label: &str, message: &str) {
        self.start_bar(
            total,
            label,
            "{binary_bytes}/{binary_total_bytes}: {wide_msg}",
            message,
        );
    }

    /// A bar `{label} [=====>   ] {counts}`, replacing any current one.
    fn start_bar(&self, total: u64, label: &str, counts: &str, message: &str) {
        if !self.progress_allowed {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{prefix:>12.cyan.bold}} [{{bar:27}}] {counts}"
            ))
            .expect("a valid progress template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.set_message(message.to_string());
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    /// Advances the bar by `delta` units.
    pub fn progress_inc(&self, delta: u64) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.inc(delta);
        }
    }

    /// Moves the bar to `position` of its total, with `message` beside it.
    pub fn progress_set(&self, position: u64, message: &str) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            // The total is an estimate from the dependency graph; never show it as done early.
            let capped = position.min(bar.length().unwrap_or(position).saturating_sub(1));
            bar.set_position(capped);
            bar.set_message(escape_controls(message).into_owned());
        }
    }

    /// Removes the bar.
    pub fn progress_finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// Formats a byte count the way kiln reports sizes: `812 B`, `98.1 KiB`, `1.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_only_on_an_interactive_normal_terminal() {
        assert!(progress_allowed(true, false, false, Verbosity::Normal));
        assert!(
            !progress_allowed(false, false, false, Verbosity::Normal),
            "not a tty"
        );
        assert!(
            !progress_allowed(true, true, false, Verbosity::Normal),
            "CI is set"
        );
        assert!(
            !progress_allowed(true, false, true, Verbosity::Normal),
            "TERM=dumb"
        );
        assert!(
            !progress_allowed(true, false, false, Verbosity::Quiet),
            "-q"
        );
        assert!(
            !progress_allowed(true, false, false, Verbosity::Verbose),
            "-v"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(100_454), "98.1 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 + 1), "5.0 MiB");
    }
}
