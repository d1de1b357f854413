//! `kiln serve`: build when stale (inside a project) or take a `.wasm` file, then serve it as
//! a `wasi:http/proxy` component until Ctrl-C.

use anyhow::Context;
use kiln_runtime::serve::{ServeEvent, ServeOptions as RuntimeServeOptions};

use crate::errors::hinted;
use crate::ops::run::{Prepared, prepare};
use crate::settings::ServeSettings;
use crate::shell::Shell;

/// Serves until Ctrl-C; with `watch`, rebuilds on every change to its files and swaps each
/// good build into the running server.
///
/// # Errors
///
/// Build errors; a file that is not an HTTP component; an address that cannot be bound.
pub fn serve(
    shell: &Shell,
    opts: &ServeSettings,
    watch: Option<&crate::ops::watch::WatchSet>,
) -> anyhow::Result<()> {
    let Prepared {
        runtime,
        loaded,
        shown,
        config,
        program_name,
    } = prepare(
        shell,
        &opts.run,
        "`kiln serve` serves components that export `wasi:http/incoming-handler`",
        true,
    )?;
    let capabilities = crate::ops::run::capabilities(&config, &opts.run, program_name)?;
    let options = RuntimeServeOptions {
        capabilities,
        limits: config.limits(),
        max_request_body: opts.max_request_body,
        max_connections: opts.max_connections,
        header_read_timeout: opts.header_timeout,
        max_instance_reuse: opts.max_instance_reuse,
        max_instance_concurrency: opts.max_instance_concurrency,
        // Answered requests are shown with -v and in JSON; otherwise only failures are.
        report_requests: shell.emits_json()
            || shell.verbosity() >= crate::shell::Verbosity::Verbose,
        ..RuntimeServeOptions::default()
    };

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let (server, mut received, shutdown) = tokio.block_on(async {
        let (events, received) = tokio::sync::mpsc::unbounded_channel();
        let server = match runtime
            .bind_http(&loaded, opts.addr, options, events)
            .await
        {
            Ok(server) => server,
            Err(kiln_runtime::Error::NotAnHttpComponent { exports }) => {
                let hint = if exports.iter().any(|e| e.starts_with("wasi:cli/run")) {
                    format!("it is a command: run it with `kiln run {shown}`")
                } else {
                    "an HTTP component exports `wasi:http/incoming-handler` (the `wasi:http/proxy` \
                     world); `kiln new --template rust-http` makes one"
                        .to_string()
                };
                return Err(hinted(
                    format!("`{shown}` is not an HTTP component: it does not export `wasi:http/incoming-handler`"),
                    hint,
                ));
            }
            Err(error) => return Err(error).with_context(|| format!("failed to serve `{shown}`")),
        };
        // SIGINT (Ctrl-C) and SIGTERM both drain gracefully; from before the address is
        // shown they are ours, not the signal watcher's (which would exit at once).
        let shutdown = shutdown_signal()?;
        anyhow::Ok((server, received, shutdown))
    })?;
    crate::signals::delegate();
    let addr = server
        .local_addr()
        .context("cannot read the bound address")?;
    shell.emit(crate::messages::Listening {
        url: format!("http://{addr}"),
        shown: shown.to_string(),
    });

    let reloader = server.reloader();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watching = match watch {
            Some(set) => {
                let changes = crate::ops::watch::Changes::watch(shell, set)?;
                let (stop, reloader) = (&stop, &reloader);
                let thread = std::thread::Builder::new()
                    .name("kiln-watch".into())
                    .spawn_scoped(scope, move || {
                        watch_and_reload(shell, opts, &changes, reloader, stop);
                    })
                    .context("failed to start watching files")?;
                shell.status("Watching", "for changes (Ctrl-C stops)");
                Some(thread)
            }
            None => None,
        };
        // Events are shown as they come; once serving ends, what is queued is shown and the
        // rest (from connections cut off after the drain timeout) is dropped.
        let summary = tokio.block_on(async {
            let serving = server.serve(shutdown);
            tokio::pin!(serving);
            loop {
                tokio::select! {
                    summary = &mut serving => break summary,
                    Some(event) = received.recv() => report(shell, event),
                }
            }
        });
        while let Ok(event) = received.try_recv() {
            report(shell, event);
        }
        shell.emit(crate::messages::Stopped {
            requests: summary.requests,
            drained: summary.drained,
        });
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = watching
            && !thread.is_finished()
        {
            // It notices the stop within a poll, unless a rebuild is running: that one is
            // ended as a signal would end it (toolchains stopped, temporary files removed).
            std::thread::sleep(WATCH_POLL * 2);
            if !thread.is_finished() {
                crate::signals::exit_now(0);
            }
        }
        anyhow::Ok(())
    })
}

/// How often the watching thread checks whether serving has stopped.
const WATCH_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// `kiln serve --watch`'s thread: on each change, rebuild (in this process, with the server
/// still up) and swap the result in. A failed build, or a component that is no longer an
/// HTTP component, is reported and the last good one keeps serving.
fn watch_and_reload(
    shell: &Shell,
    opts: &ServeSettings,
    changes: &crate::ops::watch::Changes<'_>,
    reloader: &kiln_runtime::serve::Reloader,
    stop: &std::sync::atomic::AtomicBool,
) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let changed = match changes.next(WATCH_POLL) {
            Ok(Some(changed)) => changed,
            Ok(None) => continue,
            Err(error) => {
                shell.warn(format_args!("{error:#}; no longer watching for changes"));
                return;
            }
        };
        shell.status(
            "Changed",
            crate::fsutil::display_relative(&changed).to_string(),
        );
        match reload(shell, opts, reloader) {
            Ok(shown) => shell.status("Replaced", format_args!("now serving the new {shown}")),
            Err(error) => {
                shell.error(&error);
                shell.warn("still serving the last good build");
            }
        }
    }
}

/// Builds (when stale) and loads the component again, and swaps it into the server.
fn reload(
    shell: &Shell,
    opts: &ServeSettings,
    reloader: &kiln_runtime::serve::Reloader,
) -> anyhow::Result<String> {
    let runnable = crate::ops::run::locate(shell, &opts.run)?;
    let shown = runnable
        .shown
        .clone()
        .unwrap_or_else(|| crate::fsutil::display_relative(&runnable.path));
    let loaded = reloader
        .runtime()
        .load_file(&runnable.path)
        .with_context(|| format!("failed to load `{shown}`"))?;
    reloader
        .replace(&loaded)
        .with_context(|| format!("cannot serve `{shown}`"))?;
    Ok(shown)
}

/// Shows one server event: guest failures always, each request with `-v`.
fn report(shell: &Shell, event: ServeEvent) {
    use crate::messages::{AcceptError, ConnectionError, Draining, Request};
    match event {
        ServeEvent::Request {
            method,
            path,
            status,
            duration,
            error,
        } => shell.emit(Request {
            method,
            path,
            status,
            duration_ms: Some(duration.as_secs_f64() * 1000.0),
            error: error.as_ref().map(ToString::to_string),
        }),
        ServeEvent::GuestFailed {
            method,
            path,
            error,
        } => shell.emit(Request {
            method,
            path,
            status: 500,
            duration_ms: None,
            error: Some(error.to_string()),
        }),
        ServeEvent::BodyTooLarge {
            method,
            path,
            length,
        } => shell.emit(Request {
            method,
            path,
            status: 413,
            duration_ms: None,
            error: Some(format!(
                "a body of {length} bytes is over --max-request-body"
            )),
        }),
        ServeEvent::Connection { peer, message } => shell.emit(ConnectionError {
            peer: peer.to_string(),
            error: message,
        }),
        ServeEvent::AcceptFailed { message, retry_in } => shell.emit(AcceptError {
            error: message,
            retry_in_ms: retry_in.as_secs_f64() * 1000.0,
        }),
        ServeEvent::InstanceRetired { requests, error } => {
            shell.emit(crate::messages::InstanceRetired {
                requests: requests as u64,
                error: error.as_ref().map(ToString::to_string),
            })
        }
        ServeEvent::Draining => shell.emit(Draining {}),
    }
}

/// Resolves on the first SIGINT or SIGTERM. The handlers are registered before this returns.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
