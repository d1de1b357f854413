//! Serving `wasi:http/proxy@0.2` components and `wasi:http/service@0.3` services (WASI 0.3:
//! an async `handler.handle`, bodies as component-model streams) over HTTP/1.1 with
//! `wasmtime-wasi-http` and hyper.
//!
//! The component is pre-instantiated once ([`ProxyPre`]). A WASI 0.2 component gets a fresh
//! store and instance for every request, with the capabilities and [`Limits`] of the server
//! applied per request. A WASI 0.3 service may serve several requests from one instance,
//! concurrently, as `wasmtime serve` does: up to [`ServeOptions::max_instance_reuse`] requests
//! per instance, [`ServeOptions::max_instance_concurrency`] at once (128 and 16 by default;
//! `max_instance_reuse = 1` gives every request a fresh instance). Its instances are driven
//! by wasmtime-wasi-http's [`ProxyHandler`], the machinery `wasmtime serve` uses: one worker
//! task per live instance runs the store's event loop, takes requests from a shared queue
//! while it has room, and retires its instance after the last one it may take, after an idle
//! second, or when it traps (the requests in flight on it get 500s; later ones get a fresh
//! instance). The timeout stays per request; memory, tables, handles and fuel are per instance
//! (see [`ServeOptions::max_instance_reuse`]).
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::mpsc::UnboundedSender;
use wasmtime::Store;
use wasmtime::component::Linker;
use wasmtime_wasi_http::handler::{
    ExpirationError, HandlerState, Instance, InstantiationError, ProxyHandler, ShouldAccept,
    TrapOrPanicError, WorkerExpiration, WorkerState, WorkerStatus,
};
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

/// The default for [`ServeOptions::max_instance_reuse`]: 128 requests per WASI 0.3 instance,
/// as `wasmtime serve`.
pub const DEFAULT_MAX_INSTANCE_REUSE: usize = 128;

/// The largest [`ServeOptions::max_instance_reuse`] accepted.
pub const MAX_INSTANCE_REUSE: usize = 1_000_000;

/// The default for [`ServeOptions::max_instance_concurrency`]: 16 requests at once in one
/// WASI 0.3 instance, as `wasmtime serve`.
pub const DEFAULT_MAX_INSTANCE_CONCURRENCY: usize = 16;

/// The largest [`ServeOptions::max_instance_concurrency`] accepted (as many as connections).
pub const MAX_INSTANCE_CONCURRENCY: usize = MAX_CONNECTIONS;

/// How long an idle WASI 0.3 instance is kept for the next request (`wasmtime serve`'s
/// default `--idle-instance-timeout`).
const IDLE_INSTANCE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long past its timeout the host gives up on a WASI 0.3 request by itself: the instance's
/// own expiration comes first (and retires an instance whose request spins), so a client's next
/// request does not land on an instance about to be dropped.
const REQUEST_TIMEOUT_GRACE: Duration = Duration::from_millis(250);

/// How long a request whose instance failed waits for the instance's error to be named.
const FAILURE_REPORT_WAIT: Duration = Duration::from_secs(5);

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

/// Parses a per-instance request count (`--max-instance-reuse`): a whole number from 1 to
/// [`MAX_INSTANCE_REUSE`].
///
/// # Errors
///
/// A message naming the input and the range.
pub fn parse_instance_reuse(s: &str) -> Result<usize, String> {
    parse_count(s, MAX_INSTANCE_REUSE)
}

/// Parses a per-instance concurrency (`--max-instance-concurrency`): a whole number from 1
/// to [`MAX_INSTANCE_CONCURRENCY`].
///
/// # Errors
///
/// A message naming the input and the range.
pub fn parse_instance_concurrency(s: &str) -> Result<usize, String> {
    parse_count(s, MAX_INSTANCE_CONCURRENCY)
}

fn parse_count(s: &str, max: usize) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is out of range: expected a whole number from 1 to {max}"
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
    /// Limits for each request of a WASI 0.2 component (whose every request has an instance
    /// of its own), from instantiation to the end of the response body. For a WASI 0.3
    /// service, `timeout` is still per request (from its arrival to the end of its response
    /// body); `max_memory`, `max_table_elements` and `max_handles` bound each instance, so
    /// the requests sharing one share them; and `fuel` is given to each instance when it is
    /// created and again for each request after its first (a request that uses up what is
    /// left stops its instance). With `max_instance_reuse = 1` all of them are per request.
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
    /// How many requests one instance of a WASI 0.3 service serves before it is retired (1
    /// to [`MAX_INSTANCE_REUSE`]; 1 is a fresh instance per request, as for WASI 0.2). A
    /// WASI 0.2 component always gets one instance per request.
    pub max_instance_reuse: usize,
    /// How many requests one instance of a WASI 0.3 service serves at once (1 to
    /// [`MAX_INSTANCE_CONCURRENCY`]). Ignored for WASI 0.2.
    pub max_instance_concurrency: usize,
    /// Send a [`ServeEvent::Request`] for every answered request; when false, only for those
    /// whose guest failed after answering. Each event wakes whoever receives them, which a
    /// caller that shows nothing (no `-v`, no JSON) need not pay for at every request.
    pub report_requests: bool,
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
            max_instance_reuse: DEFAULT_MAX_INSTANCE_REUSE,
            max_instance_concurrency: DEFAULT_MAX_INSTANCE_CONCURRENCY,
            report_requests: true,
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
    /// An instance of a WASI 0.3 service was retired: it had served its last request, sat
    /// idle, or failed (`error`; the requests in flight on it got 500s).
    InstanceRetired {
        /// Requests it took.
        requests: usize,
        /// Why it failed, if it did.
        error: Option<Error>,
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
    /// `wasi:http/service@0.3`: `async handler.handle(request) -> result<response>`, through
    /// instances that may each serve several requests.
    P3(ProxyHandler<P3Instances>),
}

/// A bound HTTP server for one component; [`HttpServer::serve`] runs it.
pub struct HttpServer {
    listener: tokio::net::TcpListener,
    handler: Arc<Handler>,
}

struct Handler {
    runtime: Arc<Runtime>,
    /// WASI 0.2 and 0.3 with HTTP, kept to pre-instantiate a replacement component.
    linker: Linker<HostState>,
    /// The component being served; [`Reloader::replace`] swaps it, and each request takes
    /// the one current when it arrives.
    pre: std::sync::RwLock<Arc<Pre>>,
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
        let mut linker = Linker::<HostState>::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| wasmtime_wasi::p3::add_to_linker(&mut linker))
            .and_then(|()| wasmtime_wasi_http::p3::add_to_linker(&mut linker))
            .map_err(|e| Error::Instantiate(e.into()))?;
        // Check the grants once, up front, rather than failing every request.
        self.new_store(&options.capabilities, &options.limits)?;
        let runtime = Arc::new(self);
        let pre = prepare_http(&runtime, &linker, loaded, &options, &events)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(HttpServer {
            listener,
            handler: Arc::new(Handler {
                runtime,
                linker,
                pre: std::sync::RwLock::new(Arc::new(pre)),
                options,
                events,
                requests: Default::default(),
            }),
        })
    }
}

/// Pre-instantiates `loaded` for the HTTP world it exports: `wasi:http/proxy@0.2` or
/// `wasi:http/service@0.3`.
fn prepare_http(
    runtime: &Arc<Runtime>,
    linker: &Linker<HostState>,
    loaded: &LoadedComponent,
    options: &ServeOptions,
    events: &UnboundedSender<ServeEvent>,
) -> Result<Pre, Error> {
    let exports = loaded.exports(runtime);
    let p2 = exports
        .iter()
        .any(|e| e.starts_with("wasi:http/incoming-handler@0.2."));
    let p3 = exports
        .iter()
        .any(|e| e.starts_with("wasi:http/handler@0.3."));
    if !p2 && !p3 {
        return Err(Error::NotAnHttpComponent { exports });
    }
    linker
        .instantiate_pre(&loaded.component)
        .and_then(|pre| {
            if p2 {
                ProxyPre::new(pre).map(Pre::P2)
            } else {
                let pre = wasmtime_wasi_http::p3::bindings::ServicePre::new(pre)?;
                Ok(Pre::P3(ProxyHandler::new(P3Instances {
                    runtime: runtime.clone(),
                    pre: wasmtime_wasi_http::handler::ProxyPre::P3(pre),
                    capabilities: options.capabilities.clone(),
                    limits: options.limits,
                    reuse: options.max_instance_reuse.clamp(1, MAX_INSTANCE_REUSE),
                    concurrency: options
                        .max_instance_concurrency
                        .clamp(1, MAX_INSTANCE_CONCURRENCY),
                    events: events.clone(),
                })))
            }
        })
        .map_err(|e| Error::Instantiate(e.into()))
}

/// Replaces the component a running [`HttpServer`] serves, without closing its listener or
/// its connections (`kiln serve --watch`). Requests that arrived before a replacement finish
/// on the component they started on; each later one gets the new component. Cheap to clone;
/// `Send` and `Sync`.
#[derive(Clone)]
pub struct Reloader {
    handler: Arc<Handler>,
}

impl Reloader {
    /// The runtime the server runs on: load the replacement with it
    /// ([`Runtime::load_file`]), so its compiled code fits the server's engine.
    pub fn runtime(&self) -> &Runtime {
        &self.handler.runtime
    }

    /// Serves `loaded` from the next request on. A WASI 0.2 component may replace a 0.3
    /// one and the other way round; a 0.3 service's live instances are retired once their
    /// requests in flight finish.
    ///
    /// # Errors
    ///
    /// [`Error::NotAnHttpComponent`] or [`Error::Instantiate`], as for
    /// [`Runtime::bind_http`]; the component being served is then kept.
    pub fn replace(&self, loaded: &LoadedComponent) -> Result<(), Error> {
        let handler = &self.handler;
        let pre = prepare_http(
            &handler.runtime,
            &handler.linker,
            loaded,
            &handler.options,
            &handler.events,
        )?;
        *handler.pre.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pre);
        Ok(())
    }
}

impl HttpServer {
    /// A handle that replaces the component this server serves, while it serves.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            handler: self.handler.clone(),
        }
    }

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
        // Method and URI are cheap to clone (shared bytes); the strings an event carries are
        // made only when one is sent.
        let report = Report {
            events: self.events.clone(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            start,
            all: self.options.report_requests,
        };
        let max = self.options.max_request_body;
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(length) = declared.filter(|&n| n > max) {
            let _ = self.events.send(ServeEvent::BodyTooLarge {
                method: report.method.to_string(),
                path: report.path(),
                length,
            });
            return plain(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body of {length} bytes is over the limit of {max} bytes\n"),
            );
        }

        match self
            .clone()
            .run_guest(req, max, start, report.clone())
            .await
        {
            Ok(response) => response,
            Err(error) => {
                let _ = self.events.send(ServeEvent::GuestFailed {
                    method: report.method.to_string(),
                    path: report.path(),
                    error,
                });
                plain(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    INTERNAL_ERROR_BODY.to_string(),
                )
            }
        }
    }

    /// Runs the guest for one request. Returns its response head, or why no response came;
    /// `report` learns what the guest's work came to once the body has been sent.
    async fn run_guest(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
        max_body: u64,
        start: Instant,
        report: Report,
    ) -> Result<hyper::Response<HyperOutgoingBody>, Error> {
        let req = req.map(|body| {
            Limited::new(body, max_body as usize).map_err(move |e| {
                match e.downcast::<hyper::Error>() {
                    Ok(e) => wasmtime_wasi_http::Error::Hyper(*e),
                    Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max_body)),
                }
            })
        });
        let current = self.pre.read().unwrap_or_else(|e| e.into_inner()).clone();
        let pre = match &*current {
            Pre::P2(pre) => pre.clone(),
            Pre::P3(instances) => {
                let req = req.map(BodyExt::boxed_unsync);
                return run_p3_request(instances, req, start, report).await;
            }
        };
        drop(current);
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
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let view = &mut store.data_mut().http();
        let incoming = view
            .new_incoming_request(Scheme::Http, req)
            .map_err(|e| Error::Instantiate(e.into()))?;
        let out = view
            .new_response_outparam(sender)
            .map_err(|e| Error::Instantiate(e.into()))?;

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
        let (response, task) = response_head(head, task).await?;
        let status = response.status().as_u16();
        tokio::spawn(async move {
            let error = task.await.ok().and_then(Result::err);
            report.finish(status, error);
        });
        Ok(response)
    }
}

/// Reports how a request ended ([`ServeEvent::Request`]): always with
/// [`ServeOptions::report_requests`], else only when the guest failed after answering.
#[derive(Clone)]
struct Report {
    events: UnboundedSender<ServeEvent>,
    method: http::Method,
    uri: http::Uri,
    start: Instant,
    all: bool,
}

impl Report {
    fn path(&self) -> String {
        self.uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "/".into())
    }

    /// The guest's work for the request is over: `error` when it failed after answering.
    fn finish(self, status: u16, error: Option<Error>) {
        if self.all || error.is_some() {
            let _ = self.events.send(ServeEvent::Request {
                method: self.method.to_string(),
                path: self.path(),
                status,
                duration: self.start.elapsed(),
                error,
            });
        }
    }
}

/// Serves one request from a WASI 0.3 service's instances (a live one with room, or a new
/// one). The request is bounded by the timeout from its arrival (`start`) to the end of its
/// response body: the worker's own expiration inside the instance, a tokio timeout around
/// waiting for the head (a moment later, so a request stuck in a queue, an instantiation or a
/// guest that never answers is let go), and a deadline on the body.
async fn run_p3_request(
    instances: &ProxyHandler<P3Instances>,
    req: hyper::Request<WasiBody>,
    start: Instant,
    report: Report,
) -> Result<hyper::Response<HyperOutgoingBody>, Error> {
    let state = instances.state();
    let deadline = state
        .limits
        .timeout
        .and_then(|limit| start.checked_add(limit))
        .map(tokio::time::Instant::from_std);
    let slot = Arc::new(RequestSlot {
        deadline,
        worker: std::sync::OnceLock::new(),
    });
    let handled = instances.handle(slot.clone(), req);
    let handled = match (deadline, state.limits.timeout) {
        (Some(deadline), Some(limit)) => {
            tokio::time::timeout_at(deadline + REQUEST_TIMEOUT_GRACE, handled)
                .await
                .map_err(|_| Error::Timeout { limit })?
        }
        _ => handled.await,
    };
    let response = match handled {
        Ok(response) => response,
        Err(error) => return Err(state.request_error(&error, &slot).await),
    };
    let status = response.status().as_u16();
    let response = response.map(|body| {
        Tracked {
            inner: body,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            limit: state.limits.timeout,
            // Reported when the body ends, from where it ends: no task waits for it.
            done: Some(Box::new(move |error| report.finish(status, error))),
        }
        .boxed_unsync()
    });
    Ok(response)
}

/// A WASI 0.3 service's instances: how [`ProxyHandler`] makes one, and the bounds on each.
struct P3Instances {
    runtime: Arc<Runtime>,
    pre: wasmtime_wasi_http::handler::ProxyPre<HostState>,
    capabilities: Capabilities,
    limits: Limits,
    reuse: usize,
    concurrency: usize,
    events: UnboundedSender<ServeEvent>,
}

/// What one request carries into the instance that takes it: its deadline, and (set when
/// an instance takes it) that instance's shared state, to learn why it failed.
struct RequestSlot {
    deadline: Option<tokio::time::Instant>,
    worker: std::sync::OnceLock<Arc<WorkerShared>>,
}

/// What an instance's worker shares with its requests and its expiration.
struct WorkerShared {
    /// Set when the expiration stopped the instance because a request ran past its timeout
    /// (the worker's own error then says only "guest timed out").
    timed_out: AtomicBool,
    /// Why the instance failed, once it has (`None` while it lives or when it ended well).
    failure: tokio::sync::watch::Sender<Option<Arc<Error>>>,
}

impl P3Instances {
    /// Names why `request` got no response: the instance's own error when it failed (a trap
    /// or limit, classified with its store), the timeout, or what the guest answered.
    async fn request_error(&self, error: &wasmtime::Error, slot: &RequestSlot) -> Error {
        if error.downcast_ref::<ExpirationError>().is_some()
            && let Some(limit) = self.limits.timeout
        {
            return Error::Timeout { limit };
        }
        if let Some(failed) = error.downcast_ref::<InstantiationError<Arc<RequestSlot>>>() {
            return match failed.error.downcast_ref::<Error>() {
                Some(error) => copy_error(error),
                None => Error::Instantiate(format!("{:#}", failed.error).into()),
            };
        }
        if let Some(code) =
            error.downcast_ref::<wasmtime_wasi_http::p3::bindings::http::types::ErrorCode>()
        {
            return Error::Trap {
                trap: format!("the guest answered with an error: {code:?}"),
                backtrace: String::new(),
            };
        }
        // A trap, or the worker ended (`TrapOrPanicError`): the instance is failing, and its
        // worker names why once it has the store.
        if let Some(worker) = slot.worker.get() {
            let mut failure = worker.failure.subscribe();
            let named =
                tokio::time::timeout(FAILURE_REPORT_WAIT, failure.wait_for(Option::is_some))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .and_then(|failure| failure.as_deref().map(copy_error));
            if let Some(error) = named {
                return error;
            }
        }
        if error.downcast_ref::<TrapOrPanicError>().is_some() {
            return Error::Trap {
                trap: "the instance serving the request failed".into(),
                backtrace: String::new(),
            };
        }
        Error::Trap {
            trap: format!("{:#}", error.root_cause()),
            backtrace: String::new(),
        }
    }
}

impl HandlerState for P3Instances {
    type StoreData = HostState;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<HostState, Expiration, Worker>> {
        let limits = self.limits;
        let mut store = self
            .runtime
            .new_store(&self.capabilities, &limits)
            .map_err(wasmtime::Error::new)?;
        if limits.timeout.is_some() {
            // Wasm code yields to the event loop at every epoch tick, so the worker can end
            // an instance whose request spins past its timeout (what `wasmtime serve` does).
            store.epoch_deadline_async_yield_and_update(1);
            store.set_epoch_deadline(1);
        }
        let proxy =
            match crate::with_timeout(limits.timeout, self.pre.instantiate_async(&mut store)).await
            {
                Ok(Ok(proxy)) => proxy,
                Ok(Err(e)) => {
                    let error = self.runtime.guest_error(&e, &limits, store.data());
                    return Err(wasmtime::Error::new(error));
                }
                Err(timeout) => return Err(wasmtime::Error::new(timeout)),
            };
        let shared = Arc::new(WorkerShared {
            timed_out: AtomicBool::new(false),
            failure: tokio::sync::watch::Sender::new(None),
        });
        Ok(Instance {
            store,
            proxy,
            view: <HostState as WasiHttpView>::http,
            expiration: Expiration {
                busy: limits.timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::MAX / 4)),
                shared: shared.clone(),
            },
            state: Worker {
                reuse: self.reuse,
                concurrency: self.concurrency,
                limits,
                taken: AtomicUsize::new(0),
                shared,
                runtime: self.runtime.clone(),
                events: self.events.clone(),
            },
        })
    }
}

/// When an instance's worker gives up on it: idle for [`IDLE_INSTANCE_TIMEOUT`], or busy
/// (requests waiting for a head, or the guest's work after them) past the timeout. Polled
/// outside the store's event loop, so it holds even while wasm code spins (it yields at each
/// epoch tick).
struct Expiration {
    busy: Option<Duration>,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    shared: Arc<WorkerShared>,
}

impl WorkerExpiration for Expiration {
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> std::task::Poll<()> {
        let me = self.get_mut();
        let timeout = match status {
            WorkerStatus::Idle => Some(IDLE_INSTANCE_TIMEOUT),
            WorkerStatus::Requests | WorkerStatus::PostReturn => me.busy,
        };
        let Some(deadline) = timeout.and_then(|t| start.checked_add(t)) else {
            return std::task::Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if me.sleep.deadline() != deadline {
            me.sleep.as_mut().reset(deadline);
        }
        let poll = me.sleep.as_mut().poll(cx);
        if poll.is_ready() && status != WorkerStatus::Idle {
            me.shared.timed_out.store(true, Ordering::Relaxed);
        }
        poll
    }
}

/// One live instance's bounds and bookkeeping.
struct Worker {
    reuse: usize,
    concurrency: usize,
    limits: Limits,
    /// Requests taken so far.
    taken: AtomicUsize,
    shared: Arc<WorkerShared>,
    runtime: Arc<Runtime>,
    events: UnboundedSender<ServeEvent>,
}

impl WorkerState for Worker {
    type StoreData = HostState;
    type RequestData = Arc<RequestSlot>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse {
            ShouldAccept::Never
        } else if concurrent >= self.concurrency {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: wasmtime::StoreContextMut<'_, HostState>,
        slot: Arc<RequestSlot>,
        _task: wasmtime::component::GuestTaskId,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        // The instance got its fuel when it was made, for its first request; each later one
        // brings as much again.
        if self.taken.fetch_add(1, Ordering::Relaxed) > 0
            && let Some(fuel) = self.limits.fuel
            && let Ok(left) = store.get_fuel()
        {
            let _ = store.set_fuel(left.saturating_add(fuel));
        }
        let _ = slot.worker.set(self.shared.clone());
        let deadline = slot.deadline;
        Box::pin(async move {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        })
    }

    fn drop(&self, store: Store<HostState>, result: wasmtime::Result<()>) {
        let error = result.err().map(|e| {
            match (
                self.shared.timed_out.load(Ordering::Relaxed),
                self.limits.timeout,
            ) {
                (true, Some(limit)) => Error::Timeout { limit },
                _ => self.runtime.guest_error(&e, &self.limits, store.data()),
            }
        });
        if let Some(error) = &error {
            self.shared
                .failure
                .send_replace(Some(Arc::new(copy_error(error))));
        }
        drop(store);
        let _ = self.events.send(ServeEvent::InstanceRetired {
            requests: self.taken.load(Ordering::Relaxed),
            error,
        });
    }
}

/// The same error again, for each request an instance's failure ended.
fn copy_error(error: &Error) -> Error {
    match error {
        Error::Timeout { limit } => Error::Timeout { limit: *limit },
        Error::MemoryLimit { limit, requested } => Error::MemoryLimit {
            limit: *limit,
            requested: *requested,
        },
        Error::TableLimit { limit, requested } => Error::TableLimit {
            limit: *limit,
            requested: *requested,
        },
        Error::FuelExhausted { fuel } => Error::FuelExhausted { fuel: *fuel },
        Error::StackExhausted { limit, backtrace } => Error::StackExhausted {
            limit: *limit,
            backtrace: backtrace.clone(),
        },
        Error::Trap { trap, backtrace } => Error::Trap {
            trap: trap.clone(),
            backtrace: backtrace.clone(),
        },
        // The source chain, once more as text: each request gets its own copy.
        Error::Instantiate(source) => {
            let mut text = source.to_string();
            let mut next = source.source();
            while let Some(cause) = next {
                text.push_str(&format!(": {cause}"));
                next = cause.source();
            }
            Error::Instantiate(text.into())
        }
        other => Error::Trap {
            trap: other.to_string(),
            backtrace: String::new(),
        },
    }
}

/// A WASI 0.3 response body as hyper sends it: cut off at the request's deadline (the
/// timeout covers the body, as for WASI 0.2), and reporting how it ended once it has.
struct Tracked<B> {
    inner: B,
    deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    limit: Option<Duration>,
    done: Option<Box<dyn FnOnce(Option<Error>) + Send>>,
}

impl<B> Tracked<B> {
    fn finish(&mut self, error: Option<Error>) {
        if let Some(done) = self.done.take() {
            done(error);
        }
    }
}

impl<B> hyper::body::Body for Tracked<B>
where
    B: hyper::body::Body<Data = Bytes, Error = wasmtime_wasi_http::Error> + Unpin,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        let me = &mut *self;
        if let (Some(deadline), Some(limit)) = (me.deadline.as_mut(), me.limit)
            && deadline.as_mut().poll(cx).is_ready()
        {
            me.finish(Some(Error::Timeout { limit }));
            return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::ConnectionWriteTimeout)));
        }
        let frame = std::pin::Pin::new(&mut me.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => me.finish(None),
            Poll::Ready(Some(Err(e))) => {
                let trap = format!("the response body failed: {e}");
                me.finish(Some(Error::Trap {
                    trap,
                    backtrace: String::new(),
                }));
            }
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        // Given up on by hyper (the client went away): not the guest's failure.
        self.finish(None);
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
