//! What `publish`, `pull`, `login` and `kiln run REFERENCE` share: credentials from the
//! command line and the environment, a connected client, and progress drawn by the shell.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use anyhow::Context;
use kiln_registry_client::credentials::{self, Inputs};
use kiln_registry_client::{
    BlobKind, Cache, ClientOptions, Credential, CredentialStore, Progress, Reference,
    RegistryClient, RetryPolicy,
};

use crate::env_vars;
use crate::shell::Shell;

/// Registry connection flags shared by the registry commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// Log in as USER, with the password from --password-stdin (`kiln login` also prompts
    /// for it on a terminal).
    #[arg(short, long, value_name = "USER")]
    pub username: Option<String>,

    /// Read the password (or token) from stdin, up to the first newline.
    #[arg(long)]
    pub password_stdin: bool,

    /// Allow plain HTTP to a registry that is not on this machine. Loopback registries
    /// (localhost, 127.0.0.0/8, ::1) get plain HTTP without it when they do not speak TLS.
    #[arg(long)]
    pub insecure: bool,

    /// Whether the registry is reached for a Kiln.toml `[dependencies]` entry rather than
    /// being the command's own target: then `KILN_REGISTRY_*` credentials (unless
    /// `KILN_REGISTRY_HOST` names it) and `-u` are not sent to it.
    #[arg(skip)]
    pub dependency: bool,
}

/// kiln's credential store, `credentials.json` in its configuration directory.
pub fn credential_store() -> Option<CredentialStore> {
    env_vars::config_dir().map(|dir| CredentialStore::new(dir.join("credentials.json")))
}

/// Reads a password from stdin: everything up to the first newline.
pub fn read_password_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the password from stdin")?;
    let password = text.lines().next().unwrap_or("").to_string();
    if password.is_empty() {
        anyhow::bail!("the password read from stdin is empty");
    }
    Ok(password)
}

/// Resolves the credential for `registry` along the chain (flags, environment, kiln's
/// store, Docker's configuration).
pub fn resolve_credential(registry: &str, args: &RegistryArgs) -> anyhow::Result<Credential> {
    let command_line = match (&args.username, args.password_stdin) {
        (Some(user), true) => Some((user.clone(), read_password_stdin()?)),
        (Some(_), false) => {
            anyhow::bail!("--username needs a password: pipe it in with --password-stdin")
        }
        (None, true) => anyhow::bail!("--password-stdin needs --username"),
        (None, false) => None,
    };
    let inputs = Inputs {
        command_line,
        env_username: env_vars::non_empty(env_vars::KILN_REGISTRY_USERNAME),
        env_password: env_vars::non_empty(env_vars::KILN_REGISTRY_PASSWORD),
        env_token: env_vars::non_empty(env_vars::KILN_REGISTRY_TOKEN),
        env_host: env_vars::non_empty(env_vars::KILN_REGISTRY_HOST),
        command_target: !args.dependency,
        store: credential_store(),
        docker_config: env_vars::docker_config(),
    };
    Ok(credentials::resolve(registry, &inputs)?)
}

/// Client options from the flags and the environment.
pub fn client_options(insecure: bool) -> anyhow::Result<ClientOptions> {
    let mut root_certificates = Vec::new();
    if let Some(path) = env_vars::registry_ca_file() {
        root_certificates.push(fs_err::read(&path).with_context(|| {
            format!(
                "cannot read {} `{}`",
                env_vars::KILN_REGISTRY_CA_FILE,
                path.display()
            )
        })?);
    }
    let cache_root = match env_vars::cache_dir() {
        Some(dir) => dir,
        // No platform cache directory: a private one in the temporary directory, or refuse.
        None => Cache::private_dir_in(&std::env::temp_dir()).map_err(explain)?,
    }
    .join("oci");
    Ok(ClientOptions {
        insecure,
        root_certificates,
        retry: RetryPolicy::default(),
        cache: Cache::new(cache_root),
        foreign_urls: env_vars::allow_foreign_urls(),
    })
}

/// A client for the registry of `reference` (it connects on first use).
pub fn client(
    reference: &Reference,
    credential: Credential,
    insecure: bool,
) -> anyhow::Result<RegistryClient> {
    Ok(RegistryClient::new(
        reference.registry(),
        credential,
        client_options(insecure)?,
    ))
}

/// With `-v`: how the registry was reached (after a request).
pub fn report_connection(shell: &Shell, client: &RegistryClient, registry: &str) {
    let over = match client.scheme() {
        Some(kiln_registry_client::Scheme::Https) => "over HTTPS",
        Some(kiln_registry_client::Scheme::Http) => "over plain HTTP",
        None => "not contacted",
    };
    shell.verbose_status(
        "Registry",
        format_args!("{registry} {over}, with {}", client.credential().source),
    );
}

/// A registry error for the user, with a hint where one helps.
pub fn explain(error: kiln_registry_client::Error) -> anyhow::Error {
    use kiln_registry_client::Error as E;
    let hint = match &error {
        E::Unauthorized { registry, .. } => Some(format!(
            "log in with `kiln login {registry} -u USER --password-stdin`, or set \
             KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD (or KILN_REGISTRY_TOKEN)"
        )),
        E::Certificate { .. } => Some(format!(
            "trust the registry's CA with {}=ca.pem",
            env_vars::KILN_REGISTRY_CA_FILE
        )),
        E::UnsafeCache { .. } => Some(format!(
            "set {} to a directory of your own",
            env_vars::KILN_CACHE_DIR
        )),
        E::ForeignUrl { .. } => Some(format!(
            "set {}=1 to let kiln fetch it from there (without credentials)",
            env_vars::KILN_ALLOW_FOREIGN_URLS
        )),
        _ => None,
    };
    match hint {
        Some(hint) => crate::errors::with_hint(error, hint),
        None => error.into(),
    }
}

/// A multi-threaded tokio runtime for one command.
pub fn tokio() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// Draws transfers with the shell: a byte bar for the layer on a terminal, a line per blob
/// with `-v`, and a warning per retry.
pub struct ShellProgress<'a> {
    /// Where output goes.
    pub shell: &'a Shell,
    /// The bar's label, e.g. "Pushing".
    pub verb: &'static str,
}

impl Progress for ShellProgress<'_> {
    fn blob_started(&self, kind: BlobKind, digest: &str, size: u64) {
        if kind == BlobKind::Layer {
            self.shell
                .progress_start_bytes(size, self.verb, short(digest));
        }
    }

    fn blob_advanced(&self, _digest: &str, bytes: u64) {
        self.shell.progress_inc(bytes);
    }

    fn blob_finished(&self, digest: &str, transferred: bool) {
        self.shell.progress_finish();
        self.shell.emit(crate::messages::Blob {
            direction: if self.verb == "Pushing" {
                "push"
            } else {
                "pull"
            }
            .to_string(),
            digest: digest.to_string(),
            transferred,
        });
    }

    fn retrying(&self, operation: &str, attempt: u32, delay: Duration, reason: &str) {
        self.shell.warn(format_args!(
            "{operation}: {reason}; attempt {} in {}",
            attempt + 1,
            humantime::format_duration(Duration::from_millis(delay.as_millis() as u64))
        ));
    }
}

pub use crate::messages::short_digest as short;

/// Whether stdin is a terminal (for prompts).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}
