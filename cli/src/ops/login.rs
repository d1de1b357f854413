//! `kiln login` and `kiln logout`: kiln's own credential store.

use std::io::Write;

use anyhow::Context;
use kiln_registry_client::credentials::StoredLogin;
use kiln_registry_client::{Credential, CredentialSource, Reference};

use crate::ops::registry;
use crate::shell::Shell;

/// Resolved `kiln login` settings.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// `HOST[:PORT]`.
    pub registry: String,
    /// `-u`.
    pub username: Option<String>,
    /// `--password-stdin`.
    pub password_stdin: bool,
    /// `--insecure`.
    pub insecure: bool,
}

/// Checks `registry` is `HOST[:PORT]` and nothing more.
fn check_registry(registry: &str) -> anyhow::Result<()> {
    if registry.contains('/') {
        anyhow::bail!("`{registry}` is not a registry: give HOST[:PORT], without a repository");
    }
    Reference::parse_with_default_tag(&format!("{registry}/x"), "latest")
        .map(|_| ())
        .map_err(|_| anyhow::anyhow!("`{registry}` is not a registry host (HOST[:PORT])"))
}

/// Verifies the credentials against the registry, then saves them.
///
/// # Errors
///
/// A malformed registry, no username or password (and no terminal to ask on), refused
/// credentials, an unwritable store.
pub fn login(shell: &Shell, opts: &LoginOptions) -> anyhow::Result<()> {
    check_registry(&opts.registry)?;
    let store = registry::credential_store()
        .context("cannot find kiln's configuration directory; set KILN_CONFIG_DIR")?;
    let username = match &opts.username {
        Some(user) => user.clone(),
        None if registry::stdin_is_terminal() && !opts.password_stdin => {
            eprint_prompt("Username: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_string()
        }
        None => anyhow::bail!("no user name: pass --username"),
    };
    if username.is_empty() {
        anyhow::bail!("the user name is empty");
    }
    let password = if opts.password_stdin {
        registry::read_password_stdin()?
    } else if registry::stdin_is_terminal() {
        rpassword::prompt_password("Password: ").context("cannot read the password")?
    } else {
        anyhow::bail!("no password: pipe it in with --password-stdin");
    };
    let credential = Credential::basic(
        username.clone(),
        password.clone(),
        CredentialSource::CommandLine,
    );
    let probe = Reference::parse_with_default_tag(
        &format!("{}/kiln-login-check", opts.registry),
        "latest",
    )?;
    let tokio = registry::tokio()?;
    tokio
        .block_on(async {
            let client = registry::client(&probe, credential, opts.insecure)?;
            let checked = client.check_login().await;
            registry::report_connection(shell, &client, probe.registry());
            checked.map_err(registry::explain)
        })
        .with_context(|| format!("cannot log in to {}", opts.registry))?;
    store.set(
        &opts.registry,
        StoredLogin {
            username: username.clone(),
            password,
        },
    )?;
    shell.emit(crate::messages::Login {
        registry: opts.registry.clone(),
        username,
        store: store.path().to_path_buf(),
    });
    Ok(())
}

/// Forgets the saved login for `registry`; not being logged in is a warning, not an error.
///
/// # Errors
///
/// A malformed registry, an unreadable or unwritable store.
pub fn logout(shell: &Shell, registry: &str) -> anyhow::Result<()> {
    check_registry(registry)?;
    let store = registry::credential_store()
        .context("cannot find kiln's configuration directory; set KILN_CONFIG_DIR")?;
    let removed = store.remove(registry)?;
    shell.emit(crate::messages::Logout {
        registry: registry.to_string(),
        removed,
    });
    Ok(())
}

#[allow(clippy::print_stderr)]
fn eprint_prompt(prompt: &str) {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{prompt}");
    let _ = stderr.flush();
}
