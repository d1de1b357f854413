//! Who we are to a registry. The chain, first match wins:
//!
//! 1. credentials given on the command line (`-u USER --password-stdin`);
//! 2. `KILN_REGISTRY_USERNAME` + `KILN_REGISTRY_PASSWORD`, or `KILN_REGISTRY_TOKEN`
//!    (a bearer token), for the one registry they are scoped to: the one `KILN_REGISTRY_HOST`
//!    names (`host[:port]`), or when it is unset the registry the command was pointed at
//!    ([`Inputs::command_target`]), never one reached for something else (a dependency);
//! 3. kiln's own store, written by `kiln login` ([`CredentialStore`]);
//! 4. the Docker configuration (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`:
//!    `auths`, `credsStore`, `credHelpers`), read by `docker_credential`;
//! 5. anonymous access.
//!
//! Secrets stay inside [`Credential`]: its `Debug` and `Display` show only where it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use oci_client::secrets::RegistryAuth;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Where a [`Credential`] came from; its `Display` is how errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `-u`/`--password-stdin`.
    CommandLine,
    /// `KILN_REGISTRY_USERNAME`/`KILN_REGISTRY_PASSWORD`.
    EnvironmentPassword,
    /// `KILN_REGISTRY_TOKEN`.
    EnvironmentToken,
    /// kiln's credential store at this path.
    KilnStore(PathBuf),
    /// The Docker configuration.
    DockerConfig,
    /// No credentials.
    Anonymous,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CommandLine => f.write_str("the credentials given on the command line"),
            Self::EnvironmentPassword => f.write_str(
                "the credentials from KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD",
            ),
            Self::EnvironmentToken => f.write_str("the token from KILN_REGISTRY_TOKEN"),
            Self::KilnStore(path) => write!(
                f,
                "the credentials saved by `kiln login` (in {})",
                path.display()
            ),
            Self::DockerConfig => f.write_str("the credentials from the Docker configuration"),
            Self::Anonymous => f.write_str("anonymous access"),
        }
    }
}

/// A resolved credential: a secret and its source. The secret is never formatted.
#[derive(Clone)]
pub struct Credential {
    auth: RegistryAuth,
    /// Where it came from.
    pub source: CredentialSource,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.auth {
            RegistryAuth::Anonymous => "anonymous",
            RegistryAuth::Basic(..) => "basic",
            RegistryAuth::Bearer(_) => "bearer",
        };
        f.debug_struct("Credential")
            .field("kind", &kind)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// No credentials.
    pub fn anonymous() -> Self {
        Self {
            auth: RegistryAuth::Anonymous,
            source: CredentialSource::Anonymous,
        }
    }

    /// A username and password (HTTP basic, or exchanged for a bearer token when the
    /// registry's challenge asks for one).
    pub fn basic(username: String, password: String, source: CredentialSource) -> Self {
        Self {
            auth: RegistryAuth::Basic(username, password),
            source,
        }
    }

    /// A bearer token, sent as is.
    pub fn bearer(token: String, source: CredentialSource) -> Self {
        Self {
            auth: RegistryAuth::Bearer(token),
            source,
        }
    }

    /// Whether this is anonymous access.
    pub fn is_anonymous(&self) -> bool {
        matches!(self.auth, RegistryAuth::Anonymous)
    }

    pub(crate) fn auth(&self) -> &RegistryAuth {
        &self.auth
    }
}

/// What the CLI gathered for [`resolve`]: flags and environment, read by the caller.
#[derive(Default)]
pub struct Inputs {
    /// `-u USER` with the password read from stdin.
    pub command_line: Option<(String, String)>,
    /// `KILN_REGISTRY_USERNAME`.
    pub env_username: Option<String>,
    /// `KILN_REGISTRY_PASSWORD`.
    pub env_password: Option<String>,
    /// `KILN_REGISTRY_TOKEN`.
    pub env_token: Option<String>,
    /// `KILN_REGISTRY_HOST`: the registry (`host[:port]`) the environment's credentials
    /// belong to.
    pub env_host: Option<String>,
    /// Whether the registry being resolved is the one the command was pointed at (a
    /// reference on its command line or `[publish] reference`), rather than one reached for
    /// a dependency. Without `KILN_REGISTRY_HOST`, the environment's and the command line's
    /// credentials go only to that registry.
    pub command_target: bool,
    /// kiln's store, if it has a location.
    pub store: Option<CredentialStore>,
    /// The Docker configuration file (`$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`); skipped when `None` or absent.
    pub docker_config: Option<PathBuf>,
}

/// Resolves the credential for `registry` (`host[:port]`) along the chain in the module docs.
///
/// # Errors
///
/// [`Error::Credentials`] when only one of `KILN_REGISTRY_USERNAME` and
/// `KILN_REGISTRY_PASSWORD` is set, when kiln's store cannot be read, or when the Docker
/// configuration names a credential helper that fails (its output is not repeated: it may
/// hold secrets).
pub fn resolve(registry: &str, inputs: &Inputs) -> Result<Credential, Error> {
    if inputs.command_target
        && let Some((user, pass)) = &inputs.command_line
    {
        return Ok(Credential::basic(
            user.clone(),
            pass.clone(),
            CredentialSource::CommandLine,
        ));
    }
    let environment_applies = match &inputs.env_host {
        Some(host) => same_registry(host, registry),
        None => inputs.command_target,
    };
    if environment_applies && let Some(credential) = from_environment(inputs)? {
        return Ok(credential);
    }
    if let Some(store) = &inputs.store
        && let Some(entry) = store.get(registry)?
    {
        return Ok(Credential::basic(
            entry.username,
            entry.password,
            CredentialSource::KilnStore(store.path().to_path_buf()),
        ));
    }
    from_docker_config(registry, inputs)
}

/// Whether `a` and `b` name one registry: equal ignoring ASCII case, with Docker Hub's
/// aliases (`docker.io`, `index.docker.io`, `registry-1.docker.io`) taken as one.
pub fn same_registry(a: &str, b: &str) -> bool {
    let canonical = |r: &str| {
        let r = r.trim().to_ascii_lowercase();
        match r.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            _ => r,
        }
    };
    canonical(a) == canonical(b)
}

/// The environment's credentials, if any are set.
fn from_environment(inputs: &Inputs) -> Result<Option<Credential>, Error> {
    match (&inputs.env_username, &inputs.env_password) {
        (Some(user), Some(pass)) => {
            return Ok(Some(Credential::basic(
                user.clone(),
                pass.clone(),
                CredentialSource::EnvironmentPassword,
            )));
        }
        (Some(_), None) => {
            return Err(Error::Credentials(
                "KILN_REGISTRY_USERNAME is set but KILN_REGISTRY_PASSWORD is not".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(Error::Credentials(
                "KILN_REGISTRY_PASSWORD is set but KILN_REGISTRY_USERNAME is not".into(),
            ));
        }
        (None, None) => {}
    }
    Ok(inputs
        .env_token
        .as_ref()
        .map(|token| Credential::bearer(token.clone(), CredentialSource::EnvironmentToken)))
}

/// The Docker configuration's credential for `registry`, or anonymous access.
fn from_docker_config(registry: &str, inputs: &Inputs) -> Result<Credential, Error> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    let Some(docker_config) = inputs.docker_config.as_ref().filter(|p| p.is_file()) else {
        return Ok(Credential::anonymous());
    };
    let file = fs_err::File::open(docker_config).map_err(|e| Error::Io {
        action: "cannot read",
        path: docker_config.clone(),
        source: e,
    })?;
    match docker_credential::get_credential_from_reader(std::io::BufReader::new(file), registry) {
        Ok(DockerCredential::UsernamePassword(user, pass)) => Ok(Credential::basic(
            user,
            pass,
            CredentialSource::DockerConfig,
        )),
        Ok(DockerCredential::IdentityToken(token)) => {
            Ok(Credential::bearer(token, CredentialSource::DockerConfig))
        }
        Err(E::ConfigNotFound | E::NoCredentialConfigured) => Ok(Credential::anonymous()),
        Err(E::HelperFailure { helper, .. }) => Err(Error::Credentials(format!(
            "the Docker credential helper `{helper}` failed for {registry}"
        ))),
        Err(other) => Err(Error::Credentials(format!(
            "cannot read the Docker credentials for {registry} from {}: {other}",
            docker_config.display()
        ))),
    }
}

/// One saved login.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredLogin {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

#[derive(Default, Serialize, Deserialize)]
struct StoreFile {
    #[serde(default)]
    registries: BTreeMap<String, StoredLogin>,
}

/// kiln's credential store: a JSON file (`{"registries": {"host:port": {"username": …,
/// "password": …}}}`) readable only by its owner (mode 0600 on Unix), written atomically.
/// The default location is `credentials.json` in kiln's configuration directory.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    /// The store at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<StoreFile, Error> {
        match fs_err::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Credentials(format!(
                    "kiln's credential store {} is not valid: {e}",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreFile::default()),
            Err(e) => Err(Error::Io {
                action: "cannot read",
                path: self.path.clone(),
                source: e,
            }),
        }
    }

    fn save(&self, file: &StoreFile) -> Result<(), Error> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs_err::create_dir_all(dir).map_err(|e| Error::Io {
            action: "cannot create",
            path: dir.to_path_buf(),
            source: e,
        })?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(Error::io("cannot create a file in", dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(Error::io("cannot set permissions on", tmp.path()))?;
        }
        let json = serde_json::to_vec_pretty(file).expect("the store serializes");
        std::io::Write::write_all(&mut tmp, &json)
            .map_err(Error::io("cannot write", tmp.path()))?;
        tmp.persist(&self.path).map_err(|e| Error::Io {
            action: "cannot write",
            path: self.path.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    /// The login saved for `registry`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Credentials`] when the file exists but cannot be read.
    pub fn get(&self, registry: &str) -> Result<Option<StoredLogin>, Error> {
        Ok(self.load()?.registries.remove(registry))
    }

    /// Saves a login for `registry`, replacing any other.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written.
    pub fn set(&self, registry: &str, login: StoredLogin) -> Result<(), Error> {
        let mut file = self.load()?;
        file.registries.insert(registry.to_string(), login);
        self.save(&file)
    }

    /// Forgets the login for `registry`; returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written.
    pub fn remove(&self, registry: &str) -> Result<bool, Error> {
        let mut file = self.load()?;
        let had = file.registries.remove(registry).is_some();
        if had {
            self.save(&file)?;
        }
        Ok(had)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_order_and_redaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join("kiln/credentials.json"));
        store
            .set(
                "r.example:5000",
                StoredLogin {
                    username: "saved".into(),
                    password: "s3cret-saved".into(),
                },
            )
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs_err::metadata(store.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut inputs = Inputs {
            store: Some(store.clone()),
            env_token: Some("tok".into()),
            command_target: true,
            ..Inputs::default()
        };
        assert_eq!(
            resolve("r.example:5000", &inputs).unwrap().source,
            CredentialSource::EnvironmentToken
        );
        inputs.env_token = None;
        let saved = resolve("r.example:5000", &inputs).unwrap();
        assert!(matches!(saved.source, CredentialSource::KilnStore(_)));
        assert!(!format!("{saved:?}").contains("s3cret"));
        inputs.env_username = Some("u".into());
        assert!(resolve("r.example:5000", &inputs).is_err());
        inputs.command_line = Some(("cli".into(), "s3cret-cli".into()));
        let cli = resolve("r.example:5000", &inputs).unwrap();
        assert_eq!(cli.source, CredentialSource::CommandLine);
        assert!(!format!("{cli:?} {}", cli.source).contains("s3cret"));
        assert!(store.remove("r.example:5000").unwrap());
        assert!(!store.remove("r.example:5000").unwrap());
    }

    #[test]
    fn environment_credentials_go_only_where_they_are_scoped() {
        let mut inputs = Inputs {
            env_token: Some("tok".into()),
            command_line: Some(("cli".into(), "pw".into())),
            ..Inputs::default()
        };
        // A registry reached for a dependency: neither the environment's nor the command
        // line's credentials.
        assert!(resolve("other.example", &inputs).unwrap().is_anonymous());
        // The command's own registry gets them.
        inputs.command_target = true;
        assert_eq!(
            resolve("r.example", &inputs).unwrap().source,
            CredentialSource::CommandLine
        );
        inputs.command_line = None;
        assert_eq!(
            resolve("r.example", &inputs).unwrap().source,
            CredentialSource::EnvironmentToken
        );
        // KILN_REGISTRY_HOST scopes the environment to one registry, target or not.
        inputs.env_host = Some("R.example".into());
        assert_eq!(
            resolve("r.example", &inputs).unwrap().source,
            CredentialSource::EnvironmentToken
        );
        assert!(resolve("other.example", &inputs).unwrap().is_anonymous());
        inputs.command_target = false;
        assert_eq!(
            resolve("r.example", &inputs).unwrap().source,
            CredentialSource::EnvironmentToken
        );
        inputs.env_host = Some("docker.io".into());
        assert!(same_registry("index.docker.io", "docker.io"));
        assert!(
            !resolve("registry-1.docker.io", &inputs)
                .unwrap()
                .is_anonymous()
        );
    }
}
