//! Serving `wasi:http/proxy@0.2` components and `wasi:http/service@0.3` services (WASI 0.3:
//! an async `handler.handle`, bodies as component-model streams) over HTTP/1.1 with
//! `wasmtime-wasi-http` and hyper.
//!
//! The component is pre-instantiated once ([`ProxyPre`]); every request gets a fresh store
//! and instance, with the capabilities and [`Limits`] of the server applied per request.
//! Request and response bodies stream. A guest that traps or hits a limit before it sends a
//! response head gets `500 Internal Server Error`; the server keeps serving. A request whose
//! `Content-Length` is over [`ServeOptions::max_request_body`] gets `413 Content Too Large`
//! before the guest runs, and a streamed body is cut off at the same limit.
//!
//! The server holds up under hostile clients: a connection that does not send a complete
//! request head within [`ServeOptions::header_read_timeout`] is closed (an idle keep-alive
//! connection too); at most [`ServeOptions::max_connections`] connections are open at once,
//! and further ones wait in the listen backlog until one closes; an accept error (say, out
//! of file descriptors) is retried after a back-off of 10 ms doubling to 1 s, never in a
//! busy loop. A 500 carries a generic body: what went wrong inside is kiln's business,
//! reported as a [`ServeEvent::GuestFailed`], not the client's.
//!
//! The server reports what happens as [`ServeEvent`]s on a channel; it never prints.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::mpsc::UnboundedSender;
use wasmtime::Store;
use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks, WasiHttpView};

use crate::{Capabilities, Error, HostState, Limits, LoadedComponent, NO_DEADLINE, Runtime};

/// How often the server advances the engine's epoch; timeouts are rounded up to it.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The default for [`ServeOptions::max_request_body`]: 10 MiB.
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 10 * 1024 * 1024;

/// The default for [`ServeOptions::drain_timeout`]: 30 seconds.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The default for [`ServeOptions::max_connections`]: 1000, as many as the pooling
/// allocator has instance slots.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;

/// The largest [`ServeOptions::max_connections`] accepted.
pub const MAX_CONNECTIONS: usize = 100_000;

/// The default for [`ServeOptions::header_read_timeout`]: 10 seconds.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The body of every 500 kiln sends; the reason goes to [`ServeEvent::GuestFailed`].
pub const INTERNAL_ERROR_BODY: &str = "500 Internal Server Error\n";

/// The first wait after an accept error; it doubles up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest wait after repeated accept errors.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Parses a connection cap: a whole number from 1 to [`MAX_CONNECTIONS`].
///
/// # Errors
///
/// A message naming the input and the range.
pub fn parse_max_connections(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CONNECTIONS).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is out of range: expected a whole number from 1 to {MAX_CONNECTIONS}"
        )),
    }
}

/// How a [`Runtime::bind_http`] server treats requests.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// What each request's instance is granted. `inherit_network` also allows outgoing
    /// HTTP requests (`wasi:http/outgoing-handler`); without it they fail with
    /// `HTTP-request-denied`. `args` are ignored.
    pub capabilities: Capabilities,
    /// Limits for each request, from instantiation to the end of the response body.
    pub limits: Limits,
    /// The largest request body accepted, in bytes.
    pub max_request_body: u64,
    /// How long a shutdown waits for requests in flight before closing them.
    pub drain_timeout: Duration,
    /// The most connections open at once (1 to [`MAX_CONNECTIONS`]; values outside are
    /// clamped); more wait to be accepted.
    pub max_connections: usize,
    /// How long a client has to send a complete request head (and how long a keep-alive
    /// connection may sit idle) before the connection is closed.
    pub header_read_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            capabilities: Capabilities::default(),
            limits: Limits::default(),
            max_request_body: DEFAULT_MAX_REQUEST_BODY,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// Something the server did, for the caller to show.
#[derive(Debug)]
pub enum ServeEvent {
    /// A request was answered by the guest (its body may still have failed midway, see
    /// `error`).
    Request {
        /// The HTTP method.
        method: String,
        /// The path and query.
        path: String,
        /// The status sent.
        status: u16,
        /// From the request's arrival to the end of the guest's work.
        duration: Duration,
        /// Why the guest failed after sending its response head, if it did.
        error: Option<Error>,
    },
    /// The guest failed before sending a response head; the client got a 500 with a generic
    /// body ([`INTERNAL_ERROR_BODY`]), and `error` says why.
    GuestFailed {
        /// The HTTP method.
        method: String,
        /// The path and query.
        path: String,
        /// What happened.
        error: Error,
    },
    /// A request body was over the limit; the client got a 413 and the guest never ran.
    BodyTooLarge {
        /// The HTTP method.
        method: String,
        /// The path and query.
        path: String,
        /// The declared `Content-Length`.
        length: u64,
    },
    /// A connection failed at the HTTP level (for example a malformed request).
    Connection {
        /// The client's address.
        peer: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// Accepting a connection failed (for example, out of file descriptors); the server
    /// waits `retry_in` before accepting again.
    AcceptFailed {
        /// The operating system's error.
        message: String,
        /// The back-off before the next attempt.
        retry_in: Duration,
    },
    /// Shutdown began: no new connections; requests in flight are being finished.
    Draining,
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeSummary {
    /// Requests handled (any status).
    pub requests: u64,
    /// Whether every request in flight finished within the drain timeout.
    pub drained: bool,
}

/// Outgoing HTTP requests from the guest: allowed only when the network was granted.
pub(crate) struct NetworkHooks {
    pub(crate) allow_outgoing: bool,
}

impl WasiHttpHooks for NetworkHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
                )>,
            > + Send,
    > {
        if self.allow_outgoing {
            wasmtime_wasi_http::default_hooks().send_request(request, options, fut)
        } else {
            Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
        }
    }
}

/// The component, pre-instantiated for its HTTP world.
enum Pre {
    /// `wasi:http/proxy@0.2`: `incoming-handler.handle(request, response-outparam)`.
    P2(ProxyPre<HostState>),
    /// `wasi:http/service@0.3`: `async handler.handle(request) -> result<response>`.
    P3(wasmtime_wasi_http::p3::bindings::ServicePre<HostState>),
}

/// A bound HTTP server for one component; [`HttpServer::serve`] runs it.
pub struct HttpServer {
    listener: tokio::net::TcpListener,
    handler: Arc<Handler>,
}

struct Handler {
    runtime: Runtime,
    pre: Pre,
    options: ServeOptions,
    events: UnboundedSender<ServeEvent>,
    requests: std::sync::atomic::AtomicU64,
}

impl Runtime {
    /// Binds `addr` and prepares to serve `loaded`, a `wasi:http/proxy` component.
    /// Consumes the runtime so requests on any thread can use it.
    ///
    /// # Errors
    ///
    /// [`Error::NotAnHttpComponent`] when it does not export `wasi:http/incoming-handler`,
    /// [`Error::Instantiate`] when its imports cannot be satisfied, [`Error::Bind`] when the
    /// address cannot be bound.
    pub async fn bind_http(
        self,
        loaded: &LoadedComponent,
        addr: SocketAddr,
        options: ServeOptions,
        events: UnboundedSender<ServeEvent>,
    ) -> Result<HttpServer, Error> {
        let exports = loaded.exports(&self);
        let p2 = exports
            .iter()
            .any(|e| e.starts_with("wasi:http/incoming-handler@0.2."));
        let p3 = exports
            .iter()
            .any(|e| e.starts_with("wasi:http/handler@0.3."));
        if !p2 && !p3 {
            return Err(Error::NotAnHttpComponent { exports });
        }
        let mut linker = Linker::<HostState>::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| wasmtime_wasi::p3::add_to_linker(&mut linker))
            .and_then(|()| wasmtime_wasi_http::p3::add_to_linker(&mut linker))
            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&loaded.component)
            .and_then(|pre| {
                if p2 {
                    ProxyPre::new(pre).map(Pre::P2)
                } else {
                    wasmtime_wasi_http::p3::bindings::ServicePre::new(pre).map(Pre::P3)
                }
            })
            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        // Check the grants once, up front, rather than failing every request.
        self.new_store(&options.capabilities, &options.limits)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(HttpServer {
            listener,
            handler: Arc::new(Handler {
                runtime: self,
                pre,
                options,
                events,
                requests: Default::default(),
            }),
        })
    }
}

impl HttpServer {
    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    ///
    /// The socket's error, if it cannot say.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting connections and waits up to
    /// [`ServeOptions::drain_timeout`] for requests in flight.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> ServeSummary {
        let HttpServer { listener, handler } = self;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        if handler.options.limits.timeout.is_some() {
            let engine = handler.runtime.engine.clone();
            let stop = stop_ticker.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            });
        }
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let slots = Arc::new(tokio::sync::Semaphore::new(
            handler.options.max_connections.clamp(1, MAX_CONNECTIONS),
        ));
        let mut backoff = ACCEPT_BACKOFF_MIN;
        tokio::pin!(shutdown);
        loop {
            // A slot first: at the cap, further connections wait in the listen backlog.
            let slot = tokio::select! {
                () = &mut shutdown => break,
                slot = slots.clone().acquire_owned() => slot,
            };
            // The semaphore is never closed; treat it as a shutdown if it were.
            let Ok(slot) = slot else { break };
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    accepted
                }
                Err(e) => {
                    let _ = handler.events.send(ServeEvent::AcceptFailed {
                        message: e.to_string(),
                        retry_in: backoff,
                    });
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    continue;
                }
            };
            let events = handler.events.clone();
            let for_service = handler.clone();
            let service = hyper::service::service_fn(move |req| {
                let handler = for_service.clone();
                async move { Ok::<_, Infallible>(handler.handle(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(handler.options.header_read_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    let _ = events.send(ServeEvent::Connection {
                        peer,
                        message: e.to_string(),
                    });
                }
                drop(slot);
            });
        }
        drop(listener);
        let _ = handler.events.send(ServeEvent::Draining);
        let drained = tokio::time::timeout(handler.options.drain_timeout, graceful.shutdown())
            .await
            .is_ok();
        stop_ticker.store(true, Ordering::Relaxed);
        ServeSummary {
            requests: handler.requests.load(Ordering::Relaxed),
            drained,
        }
    }
}

/// A plain-text response kiln itself sends (413, 500).
fn plain(status: http::StatusCode, text: String) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(text))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl Handler {
    async fn handle(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
    ) -> hyper::Response<HyperOutgoingBody> {
        let start = Instant::now();
        self.requests.fetch_add(1, Ordering::Relaxed);
        let method = req.method().to_string();
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "/".into());
        let max = self.options.max_request_body;
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(length) = declared.filter(|&n| n > max) {
            let _ = self.events.send(ServeEvent::BodyTooLarge {
                method,
                path,
                length,
            });
            return plain(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body of {length} bytes is over the limit of {max} bytes\n"),
            );
        }

        match self.clone().run_guest(req, max).await {
            Ok((response, done)) => {
                let status = response.status().as_u16();
                let events = self.events.clone();
                tokio::spawn(async move {
                    let error = done.await.ok().and_then(Result::err);
                    let _ = events.send(ServeEvent::Request {
                        method,
                        path,
                        status,
                        duration: start.elapsed(),
                        error,
                    });
                });
                response
            }
            Err(error) => {
                let _ = self.events.send(ServeEvent::GuestFailed {
                    method,
                    path,
                    error,
                });
                plain(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    INTERNAL_ERROR_BODY.to_string(),
                )
            }
        }
    }

    /// Runs the guest for one request. Returns its response head and a task that finishes
    /// with the guest (its body may still be streaming), or why no response came.
    async fn run_guest(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
        max_body: u64,
    ) -> Result<
        (
            hyper::Response<HyperOutgoingBody>,
            tokio::task::JoinHandle<Result<(), Error>>,
        ),
        Error,
    > {
        let runtime = &self.runtime;
        let limits = self.options.limits;
        let mut store: Store<HostState> = runtime.new_store(&self.options.capabilities, &limits)?;
        if let Some(timeout) = limits.timeout {
            let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
            store.set_epoch_deadline(
                u64::try_from(ticks)
                    .unwrap_or(u64::MAX)
                    .clamp(1, NO_DEADLINE),
            );
        }
        let req = req.map(|body| {
            Limited::new(body, max_body as usize).map_err(move |e| {
                match e.downcast::<hyper::Error>() {
                    Ok(e) => wasmtime_wasi_http::Error::Hyper(*e),
                    Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max_body)),
                }
            })
        });
        let pre = match &self.pre {
            Pre::P2(pre) => pre.clone(),
            Pre::P3(pre) => return self.clone().run_p3_guest(pre.clone(), store, req).await,
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let view = &mut store.data_mut().http();
        let incoming = view
            .new_incoming_request(Scheme::Http, req)
            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
        let out = view
            .new_response_outparam(sender)
            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;

        let this = self.clone();
        let task = tokio::spawn(async move {
            let runtime = &this.runtime;
            let work = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, out)
                    .await
            };
            let result = crate::with_timeout(limits.timeout, work).await?;
            result.map_err(|e| runtime.guest_error(&e, &limits, store.data()))
        });

        let head = receiver
            .await
            .map(|r| r.map_err(|code| format!("{code:?}")));
        response_head(head, task).await
    }

    /// Runs a WASI 0.3 guest for one request in a fresh instance: `handle` is called inside
    /// the store's event loop, which keeps running while the response body streams (the
    /// guest may still be writing it after `handle` returned) until hyper is done with it.
    async fn run_p3_guest(
        self: Arc<Self>,
        pre: wasmtime_wasi_http::p3::bindings::ServicePre<HostState>,
        mut store: Store<HostState>,
        req: hyper::Request<
            impl hyper::body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Send + 'static,
        >,
    ) -> Result<
        (
            hyper::Response<HyperOutgoingBody>,
            tokio::task::JoinHandle<Result<(), Error>>,
        ),
        Error,
    > {
        let limits = self.options.limits;
        // The request's own processing result is not needed: the guest's answer says it.
        let (request, _request_io) =
            wasmtime_wasi_http::p3::Request::from_http(&mut store.data_mut().hooks, req);
        let (head_tx, head_rx) = tokio::sync::oneshot::channel::<Result<_, String>>();
        let this = self.clone();
        let task = tokio::spawn(async move {
            let runtime = &this.runtime;
            let work = async {
                let service = pre.instantiate_async(&mut store).await?;
                store
                    .run_concurrent(async move |accessor| {
                        match service.handle(accessor, request).await? {
                            Ok(response) => {
                                let response = accessor
                                    .with(|store| response.into_http(store, async { Ok(()) }))?;
                                let (sent_tx, sent_rx) = tokio::sync::oneshot::channel::<()>();
                                let response = response.map(|body| {
                                    UntilDropped {
                                        inner: body,
                                        _sent: sent_tx,
                                    }
                                    .boxed_unsync()
                                });
                                if head_tx.send(Ok(response)).is_ok() {
                                    // Until hyper has sent the body (or given up on it).
                                    let _ = sent_rx.await;
                                }
                            }
                            Err(code) => {
                                let _ = head_tx.send(Err(format!("{code:?}")));
                            }
                        }
                        wasmtime::Result::<()>::Ok(())
                    })
                    .await?
            };
            let result = crate::with_timeout(limits.timeout, work).await?;
            result.map_err(|e| runtime.guest_error(&e, &limits, store.data()))
        });
        response_head(head_rx.await, task).await
    }
}

/// A response body that resolves a channel when hyper drops it (sent, or given up on), so
/// a WASI 0.3 guest's store keeps running exactly as long as its body streams.
struct UntilDropped<B> {
    inner: B,
    _sent: tokio::sync::oneshot::Sender<()>,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for UntilDropped<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// What the guest's response head came to: the response and the task still running the
/// guest (its body may be streaming), or why no response came — the guest's error code, a
/// return without a response, or the task's own failure.
async fn response_head(
    head: Result<
        Result<hyper::Response<HyperOutgoingBody>, String>,
        tokio::sync::oneshot::error::RecvError,
    >,
    task: tokio::task::JoinHandle<Result<(), Error>>,
) -> Result<
    (
        hyper::Response<HyperOutgoingBody>,
        tokio::task::JoinHandle<Result<(), Error>>,
    ),
    Error,
> {
    match head {
        Ok(Ok(response)) => Ok((response, task)),
        Ok(Err(code)) => {
            let _ = task.await;
            Err(Error::Trap {
                trap: format!("the guest answered with an error: {code}"),
                backtrace: String::new(),
            })
        }
        // The guest ended without setting a response.
        Err(_) => match task.await {
            Ok(Ok(())) => Err(Error::Trap {
                trap: "the guest returned without sending a response".into(),
                backtrace: String::new(),
            }),
            Ok(Err(error)) => Err(error),
            Err(join) => Err(Error::Trap {
                trap: format!("the request task failed: {join}"),
                backtrace: String::new(),
            }),
        },
    }
}
