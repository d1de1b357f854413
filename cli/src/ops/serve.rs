//! `kiln serve`: build when stale (inside a project) or take a `.wasm` file, then serve it as
//! a `wasi:http/proxy` component until Ctrl-C.

use anyhow::Context;
use kiln_runtime::serve::{ServeEvent, ServeOptions as RuntimeServeOptions};

use crate::errors::hinted;
use crate::ops::run::{Prepared, prepare};
use crate::settings::ServeSettings;
use crate::shell::Shell;

/// Serves until Ctrl-C.
///
/// # Errors
///
/// Build errors; a file that is not an HTTP component; an address that cannot be bound.
pub fn serve(shell: &Shell, opts: &ServeSettings) -> anyhow::Result<()> {
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
        ..RuntimeServeOptions::default()
    };

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    tokio.block_on(async {
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
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
        // SIGINT (Ctrl-C) and SIGTERM both drain gracefully; from before the address is shown they are ours, not
        // the signal watcher's (which would exit at once).
        let shutdown = shutdown_signal()?;
        crate::signals::delegate();
        let addr = server.local_addr().context("cannot read the bound address")?;
        let url = format!("http://{addr}");
        shell.emit(crate::messages::Listening {
            url,
            shown: shown.to_string(),
        });

        let serving = server.serve(shutdown);
        tokio::pin!(serving);
        // Events are shown as they come; once serving ends, what is queued is shown and the
        // rest (from connections cut off after the drain timeout) is dropped.
        let summary = loop {
            tokio::select! {
                summary = &mut serving => break summary,
                Some(event) = received.recv() => report(shell, event),
            }
        };
        while let Ok(event) = received.try_recv() {
            report(shell, event);
        }
        shell.emit(crate::messages::Stopped {
            requests: summary.requests,
            drained: summary.drained,
        });
        Ok(())
    })
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
