use std::net::SocketAddr;
use std::path::PathBuf;

use crate::commands::run::GrantArgs;
use crate::settings::{Environment, RunSettings, ServeSettings};
use crate::shell::Shell;

/// Serve an HTTP component (`wasi:http/proxy`) on the embedded Wasmtime.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln serve                              # build the project here, serve it on 127.0.0.1:8080\n  \
kiln serve api.wasm --addr 127.0.0.1:0   # a component file, on a free port\n\n\
A WASI 0.2 component runs every request in a fresh instance, pre-instantiated once, with the \
grants and limits given here (and Kiln.toml's `[run]` inside a project) applied per request. A \
WASI 0.3 service (`wasi:http/service@0.3`) may serve several requests from one instance, as \
`wasmtime serve` does: up to --max-instance-reuse requests per instance (128), \
--max-instance-concurrency of them at once (16); `--max-instance-reuse 1` gives every request a \
fresh instance. Its --timeout stays per request; --max-memory, --max-table-elements, \
--max-handles and --fuel then bound each instance (fuel: as much again for each request after \
the first). A guest that traps or hits a limit before answering gets the client a 500 (every \
request in flight on that instance, for WASI 0.3), and the server keeps serving. \
A request body over --max-request-body gets a 413 before the guest runs. Outgoing HTTP requests \
from the guest need --inherit-network.\n\n\
A 500's body is generic; why the guest failed is logged on stderr. A client that does not send a \
complete request head within --header-timeout is disconnected (an idle keep-alive connection \
too). At most --max-connections connections are open at once: more wait in the listen backlog \
until one closes.\n\n\
The URL is printed on stdout once the server listens. Ctrl-C stops accepting connections, lets \
requests in flight finish (up to 30 s), and exits 0."
)]
pub struct Args {
    /// An HTTP component (.wasm), a project directory or manifest, or a registry reference
    /// (REGISTRY/REPOSITORY:TAG or @sha256:DIGEST) [default: the project here].
    pub path: Option<PathBuf>,

    /// The address to listen on; loopback unless told otherwise (port 0 picks a free port).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// The largest request body accepted (e.g. `1MiB`).
    #[arg(long, value_name = "SIZE", value_parser = kiln_runtime::parse_size, default_value = "10MiB")]
    pub max_request_body: usize,

    /// The most connections open at once (1 to 100000); more wait to be accepted.
    #[arg(long, value_name = "N", value_parser = kiln_runtime::serve::parse_max_connections, default_value = "1000")]
    pub max_connections: usize,

    /// Close a connection that has not sent a complete request head in this long (e.g. `5s`;
    /// at most 30 days).
    #[arg(long, value_name = "DURATION", value_parser = kiln_runtime::parse_duration, default_value = "10s")]
    pub header_timeout: std::time::Duration,

    /// The most requests one instance of a WASI 0.3 service serves before it is retired (1
    /// to 1000000; 1 is a fresh instance per request). WASI 0.2 components always get one
    /// instance per request.
    #[arg(long, value_name = "N", alias = "max-instance-reuse-count", value_parser = kiln_runtime::serve::parse_instance_reuse, default_value = "128")]
    pub max_instance_reuse: usize,

    /// The most requests one instance of a WASI 0.3 service serves at once (1 to 100000).
    #[arg(long, value_name = "N", alias = "max-instance-concurrent-reuse-count", value_parser = kiln_runtime::serve::parse_instance_concurrency, default_value = "16")]
    pub max_instance_concurrency: usize,

    #[command(flatten)]
    pub grants: GrantArgs,

    /// Build with the release profile before serving.
    #[arg(short, long)]
    pub release: bool,

    /// Path to the project's Kiln.toml or Cargo.toml.
    #[arg(long, value_name = "PATH", conflicts_with = "path")]
    pub manifest_path: Option<PathBuf>,

    /// In a workspace (Kiln.toml `[workspace]` or a cargo workspace), serve this member (by
    /// package name).
    #[arg(short, long, value_name = "NAME")]
    pub package: Option<String>,

    #[command(flatten)]
    pub verify: crate::ops::sign::VerifyArgs,

    /// Watch the project's files (and bundled directories): on every change rebuild with the
    /// server still up and swap the new component in, keeping the listener and open
    /// connections (a failed build keeps the last good one serving), until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
}

pub fn exec(shell: &Shell, args: Args, show_settings: bool) -> anyhow::Result<i32> {
    let env = Environment::capture()?;
    let watch = args.watch;
    let run = RunSettings::resolve(
        crate::settings::RunPlace {
            path: args.path.as_deref(),
            manifest_path: args.manifest_path.as_deref(),
            package: args.package.as_deref(),
        },
        args.release,
        args.grants.into_config(),
        Vec::new(),
        args.verify,
        &env,
    )?;
    let settings = ServeSettings {
        run,
        addr: args.addr,
        max_request_body: args.max_request_body as u64,
        max_connections: args.max_connections,
        header_timeout: args.header_timeout,
        max_instance_reuse: args.max_instance_reuse,
        max_instance_concurrency: args.max_instance_concurrency,
    };
    if show_settings {
        crate::settings::show(shell, "serve", &settings, &env)?;
        return Ok(0);
    }
    let watch = if watch {
        Some(crate::ops::watch::WatchSet::for_run(&settings.run)?)
    } else {
        None
    };
    crate::ops::serve::serve(shell, &settings, watch.as_ref())?;
    Ok(0)
}
