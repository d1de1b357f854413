use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::commands::run::GrantArgs;
use crate::ops::build::Profile;
use crate::ops::run::RunOptions;
use crate::ops::serve::ServeOptions;
use crate::shell::{MessageFormat, Shell};

/// Serve an HTTP component (`wasi:http/proxy`) on the embedded Wasmtime.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln serve                              # build the project here, serve it on 127.0.0.1:8080\n  \
kiln serve api.wasm --addr 127.0.0.1:0   # a component file, on a free port\n\n\
Every request runs in a fresh instance of the component, pre-instantiated once, with the grants \
and limits given here (and Kiln.toml's `[run]` inside a project) applied per request. A guest that \
traps or hits a limit before answering gets the client a 500, and the server keeps serving. \
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

    #[command(flatten)]
    pub grants: GrantArgs,

    /// Build with the release profile before serving.
    #[arg(short, long)]
    pub release: bool,

    /// Path to the project's Kiln.toml or Cargo.toml.
    #[arg(long, value_name = "PATH", conflicts_with = "path")]
    pub manifest_path: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, value_name = "FMT", default_value = "human")]
    pub message_format: MessageFormat,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    let run = RunOptions {
        path: args.path,
        manifest_path: args.manifest_path,
        cwd: std::env::current_dir().context("cannot read the current directory")?,
        profile: Profile::from_release_flag(args.release),
        run: args.grants.into_config(),
        args: Vec::new(),
    };
    crate::ops::serve::serve(
        shell,
        &ServeOptions {
            run,
            addr: args.addr,
            max_request_body: args.max_request_body as u64,
            max_connections: args.max_connections,
            header_timeout: args.header_timeout,
            format: args.message_format,
        },
    )?;
    Ok(0)
}
