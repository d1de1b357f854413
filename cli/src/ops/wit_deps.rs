//! Kiln.toml's `[wit-dependencies]`: WIT packages from a path, laid out where the bindings
//! generators look — `wit/deps/<namespace>-<package>/` under the project, the layout
//! wit-bindgen, cargo and `wkg wit fetch` share, and what kiln's C and Go bindings read
//! through `[build] world` (a directory's `deps/`).
//!
//! Each package is checked to parse as WIT, and to be the package its key names, before
//! anything is written; a file is rewritten only when its contents change, so an unchanged
//! dependency leaves the project's sources (and cargo's fingerprints) alone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use wasm_pkg_client::{Client, Config, ContentDigest, PackageRef, Registry, RegistryMapping};
use wasm_pkg_core::lock::{LockedPackage, LockedPackageVersion};

use crate::errors::hinted;
use crate::manifest::{Project, WitDependency};
use crate::shell::Shell;

/// How registry WIT dependencies are resolved: `--locked`, `--offline`, `kiln update`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Mode {
    /// Fail when `wkg.lock` would change.
    pub locked: bool,
    /// Use only the lock file and the cache; no network.
    pub offline: bool,
    /// Ignore the lock file's versions and resolve again (`kiln update`).
    pub update: bool,
}

/// The lock file, beside Kiln.toml: wkg's name and format, so a project is shared with wkg.
pub const LOCK_FILE: &str = "wkg.lock";

/// The most bytes an encoded WIT package may have.
const MAX_PACKAGE_BYTES: usize = 16 * 1024 * 1024;

/// The directory under the project that WIT dependencies are laid out in.
pub const DEPS_DIR: &str = "wit/deps";

/// The most `.wit` files one dependency may hold, and their total size in bytes: a WIT
/// package is text that people write.
const MAX_FILES: usize = 1024;
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Lays out every `[wit-dependencies]` entry of `project` in `wit/deps/`.
///
/// # Errors
///
/// A path that is neither a `.wit` file nor a directory of them, WIT that does not parse, a
/// package other than the one named, a dependency over the bounds, I/O errors.
pub fn lay_out(shell: &Shell, project: &Project, mode: Mode) -> anyhow::Result<()> {
    for (name, dependency) in &project.manifest.wit_dependencies {
        let WitDependency::Path(path) = dependency.get_ref() else {
            continue;
        };
        let source = project.root.join(path);
        let files = wit_files(&source)
            .with_context(|| format!("WIT dependency `{name}` (`{}`)", source.display()))?;
        check_package(name, &source)
            .with_context(|| format!("WIT dependency `{name}` (`{}`)", source.display()))?;
        let dir = project
            .root
            .join(DEPS_DIR)
            .join(name.replace([':', '/', '@'], "-"));
        let mut changed = false;
        for file in &files {
            let Some(file_name) = file.file_name() else {
                continue;
            };
            changed |= write_if_changed(&dir.join(file_name), &fs_err::read(file)?)?;
        }
        if changed {
            shell.status(
                "Laid out",
                format_args!(
                    "WIT package `{name}` in `{}`",
                    crate::fsutil::display_relative(&dir)
                ),
            );
        }
    }
    let registry: Vec<(&String, &String, Option<&String>)> = project
        .manifest
        .wit_dependencies
        .iter()
        .filter_map(|(name, d)| match d.get_ref() {
            WitDependency::Registry { version, registry } => {
                Some((name, version, registry.as_ref()))
            }
            WitDependency::Path(_) => None,
        })
        .collect();
    // Without registry dependencies, an existing wkg.lock is wkg's business, not kiln's.
    if !registry.is_empty() {
        lay_out_registry(shell, project, &registry, mode)?;
    }
    Ok(())
}

/// Writes `contents` to `path` (creating its directory) unless it already holds them;
/// returns whether it wrote.
fn write_if_changed(path: &Path, contents: &[u8]) -> anyhow::Result<bool> {
    if std::fs::read(path).ok().as_deref() == Some(contents) {
        return Ok(false);
    }
    crate::fsutil::write_atomic(path, contents)?;
    Ok(true)
}

/// `wkg.lock`: `version = 1` and the locked packages (wasm-pkg-core's types).
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Lock {
    version: u64,
    #[serde(alias = "package", default, skip_serializing_if = "BTreeSet::is_empty")]
    packages: BTreeSet<LockedPackage>,
}

impl Lock {
    fn read(path: &Path) -> anyhow::Result<Option<Lock>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        };
        let lock: Lock = toml::from_str(&text)
            .with_context(|| format!("`{}` is not a wkg lock file", path.display()))?;
        if lock.version != 1 {
            anyhow::bail!(
                "`{}` has lock file version {}; kiln reads version 1",
                path.display(),
                lock.version
            );
        }
        Ok(Some(lock))
    }

    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = format!(
            "# This file is automatically generated.\n# It is not intended for manual editing.\n{}",
            toml::to_string_pretty(self)?
        );
        crate::fsutil::write_atomic(path, text.as_bytes())
    }

    /// The locked version and digest of `name` from `registry` for `requirement`.
    fn find(
        &self,
        name: &PackageRef,
        registry: &str,
        requirement: &semver::VersionReq,
    ) -> Option<&LockedPackageVersion> {
        self.packages
            .iter()
            .filter(|p| p.name == *name && p.registry.as_deref() == Some(registry))
            .flat_map(|p| &p.versions)
            .find(|v| v.requirement == *requirement)
    }
}

/// kiln's cache of encoded WIT packages, by digest: `<cache>/wit/sha256/<hex>`, checked
/// against its name on every read.
struct Cache {
    dir: PathBuf,
}

impl Cache {
    fn get(&self, digest: &ContentDigest) -> anyhow::Result<Option<Vec<u8>>> {
        let hex = digest_hex(digest);
        let path = self.dir.join(&hex);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        if hex::encode(sha2::Sha256::digest(&bytes)) != hex {
            // A damaged entry is dropped and fetched again.
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    fn put(&self, digest: &ContentDigest, bytes: &[u8]) -> anyhow::Result<()> {
        crate::fsutil::write_atomic(&self.dir.join(digest_hex(digest)), bytes)
    }
}

fn digest_hex(digest: &ContentDigest) -> String {
    let text = digest.to_string();
    text.strip_prefix("sha256:").unwrap_or(&text).to_string()
}

/// Whether `registry` (`host[:port]`) is on this machine: reached over plain HTTP, as kiln
/// reaches loopback registries.
fn is_loopback(registry: &str) -> bool {
    let host = registry
        .strip_prefix('[')
        .and_then(|r| r.split_once(']').map(|(h, _)| h))
        .unwrap_or_else(|| registry.rsplit_once(':').map_or(registry, |(h, _)| h));
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Resolves the registry dependencies (lock, cache, then the registry), updates `wkg.lock`
/// and lays every package (and the packages each uses) out in `wit/deps/`.
fn lay_out_registry(
    shell: &Shell,
    project: &Project,
    dependencies: &[(&String, &String, Option<&String>)],
    mode: Mode,
) -> anyhow::Result<()> {
    let lock_path = project.root.join(LOCK_FILE);
    let old = Lock::read(&lock_path)?.unwrap_or(Lock {
        version: 1,
        packages: BTreeSet::new(),
    });
    let cache = Cache {
        dir: crate::env_vars::cache_dir()
            .ok_or_else(|| anyhow::anyhow!("no cache directory: set KILN_CACHE_DIR"))?
            .join("wit")
            .join("sha256"),
    };
    let tokio = crate::ops::registry::tokio()?;
    // wkg's own configuration (namespace → registry), as wkg users have it.
    let base = tokio
        .block_on(Config::global_defaults())
        .context("cannot read wkg's configuration")?;
    let mut new = Lock {
        version: 1,
        packages: BTreeSet::new(),
    };
    let mut laid_out = Vec::new();
    for (name, requirement, registry) in dependencies {
        let package: PackageRef = name
            .parse()
            .with_context(|| format!("`{name}` is not a WIT package name"))?;
        let requirement: semver::VersionReq = requirement.parse()?;
        let registry = match registry {
            Some(registry) => registry.to_string(),
            None => base
                .resolve_registry(&package)
                .map(ToString::to_string)
                .ok_or_else(|| {
                    hinted(
                        format!("no registry is known for the WIT package `{name}`"),
                        "set `registry` in its `[wit-dependencies]` entry, or map its namespace in wkg's configuration (`wkg config`)",
                    )
                })?,
        };
        let locked = (!mode.update)
            .then(|| old.find(&package, &registry, &requirement))
            .flatten();
        let resolved = match locked {
            Some(locked) => match cache.get(&locked.digest)? {
                Some(bytes) => (locked.version.clone(), locked.digest.clone(), bytes),
                None if mode.offline => {
                    return Err(hinted(
                        format!(
                            "`{name}` {} (locked in {LOCK_FILE}) is not in the cache, and --offline was given",
                            locked.version
                        ),
                        "run once without --offline to fetch it",
                    ));
                }
                None => {
                    let client = client(&base, &package, &registry)?;
                    let (digest, bytes) = tokio
                        .block_on(fetch(&client, &package, &locked.version))
                        .with_context(|| {
                            format!("cannot fetch `{name}` {} from {registry}", locked.version)
                        })?;
                    if digest != locked.digest {
                        anyhow::bail!(
                            "`{name}` {} from {registry} has digest {digest}, but {LOCK_FILE} has {}: the release changed since it was locked",
                            locked.version,
                            locked.digest
                        );
                    }
                    cache.put(&digest, &bytes)?;
                    (locked.version.clone(), digest, bytes)
                }
            },
            None if mode.offline => {
                return Err(hinted(
                    format!(
                        "`{name}` {requirement} is not in {LOCK_FILE}, and --offline was given"
                    ),
                    "run once without --offline (or `kiln update`) to resolve it",
                ));
            }
            None => {
                let client = client(&base, &package, &registry)?;
                let (version, digest, bytes) = tokio
                    .block_on(fetch_newest(&client, &package, &requirement))
                    .with_context(|| {
                        format!("cannot resolve `{name}` {requirement} from {registry}")
                    })?;
                shell.status(
                    "Fetched",
                    format_args!("WIT package `{name}` {version} from {registry}"),
                );
                cache.put(&digest, &bytes)?;
                (version, digest, bytes)
            }
        };
        let (version, digest, bytes) = resolved;
        shell.verbose_status("Resolved", format_args!("`{name}` {version} ({digest})"));
        new.packages.insert(LockedPackage {
            name: package,
            registry: Some(registry),
            versions: vec![LockedPackageVersion {
                requirement,
                version,
                digest,
            }],
        });
        let packages = kiln_componentize::decode_wit_package(&bytes)
            .with_context(|| format!("`{name}` from the registry is not a WIT package"))?;
        laid_out.push((name.to_string(), packages));
    }
    if new != old {
        if mode.locked {
            return Err(hinted(
                format!("{LOCK_FILE} needs to be updated, but --locked was given"),
                "run `kiln update` (or build without --locked) and commit the lock file",
            ));
        }
        new.write(&lock_path)?;
        shell.status("Locked", format_args!("WIT dependencies in `{LOCK_FILE}`"));
    }
    // Each package (and those it uses) in wit/deps/<namespace>-<name>-<version>/, the
    // layout `wkg wit fetch` writes; a package two dependencies share is written once.
    let mut written = BTreeSet::new();
    for (name, packages) in laid_out {
        let mut changed = false;
        for package in packages {
            let dir_name = match &package.version {
                Some(version) => format!("{}-{version}", package.name.replace(':', "-")),
                None => package.name.replace(':', "-"),
            };
            if !written.insert(dir_name.clone()) {
                continue;
            }
            let path = project
                .root
                .join(DEPS_DIR)
                .join(dir_name)
                .join("package.wit");
            changed |= write_if_changed(&path, package.text.as_bytes())?;
        }
        if changed {
            shell.status(
                "Laid out",
                format_args!(
                    "WIT package `{name}` in `{}`",
                    crate::fsutil::display_relative(&project.root.join(DEPS_DIR))
                ),
            );
        }
    }
    Ok(())
}

/// A wasm-pkg client for `package` at `registry`: wkg's configuration, with `registry` for
/// the package and plain HTTP when it is on this machine. Credentials come from the Docker
/// configuration, as wkg's do (never from `KILN_REGISTRY_*`).
fn client(base: &Config, package: &PackageRef, registry: &str) -> anyhow::Result<Client> {
    use wasm_pkg_client::oci::OciRegistryConfig;
    use wasm_pkg_client::oci::client::{ClientConfig, ClientProtocol};
    let mut config = base.clone();
    let parsed: Registry = registry
        .parse()
        .with_context(|| format!("`{registry}` is not a registry (`host[:port]`)"))?;
    config
        .set_package_registry_override(package.clone(), RegistryMapping::Registry(parsed.clone()));
    if is_loopback(registry) {
        config
            .get_or_insert_registry_config_mut(&parsed)
            .set_backend_config(
                "oci",
                OciRegistryConfig {
                    client_config: ClientConfig {
                        protocol: ClientProtocol::Http,
                        ..Default::default()
                    },
                    credentials: None,
                },
            )?;
    }
    Ok(Client::new(config))
}

/// The newest release of `package` that `requirement` accepts: version, digest, content.
async fn fetch_newest(
    client: &Client,
    package: &PackageRef,
    requirement: &semver::VersionReq,
) -> anyhow::Result<(semver::Version, ContentDigest, Vec<u8>)> {
    let versions = client.list_all_versions(package).await?;
    let version = versions
        .into_iter()
        .filter(|v| !v.yanked && requirement.matches(&v.version))
        .map(|v| v.version)
        .max()
        .ok_or_else(|| anyhow::anyhow!("no release of `{package}` matches `{requirement}`"))?;
    let (digest, bytes) = fetch(client, package, &version).await?;
    Ok((version, digest, bytes))
}

/// Release `version` of `package`: its digest and content, read up to
/// [`MAX_PACKAGE_BYTES`] and checked against the digest.
async fn fetch(
    client: &Client,
    package: &PackageRef,
    version: &semver::Version,
) -> anyhow::Result<(ContentDigest, Vec<u8>)> {
    use futures_util::TryStreamExt;
    let release = client.get_release(package, version).await?;
    let mut stream = client.stream_content(package, &release).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.try_next().await? {
        if bytes.len().saturating_add(chunk.len()) > MAX_PACKAGE_BYTES {
            anyhow::bail!(
                "`{package}` {version} is larger than {} MiB",
                MAX_PACKAGE_BYTES / (1024 * 1024)
            );
        }
        bytes.extend_from_slice(&chunk);
    }
    // The client checks the digest as it streams; kiln checks it again on what it keeps.
    let computed = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    if computed != release.content_digest.to_string() {
        anyhow::bail!(
            "`{package}` {version}: the content's digest is {computed}, not {}",
            release.content_digest
        );
    }
    Ok((release.content_digest, bytes))
}

/// The `.wit` files of `source`: itself, or those directly in it, in name order.
fn wit_files(source: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let files: Vec<PathBuf> = if source.is_file() {
        vec![source.to_path_buf()]
    } else if source.is_dir() {
        let mut files = Vec::new();
        for entry in fs_err::read_dir(source)? {
            let path = entry?.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "wit") {
                files.push(path);
            }
        }
        files.sort();
        files
    } else {
        anyhow::bail!("the path does not exist");
    };
    if files.is_empty() {
        anyhow::bail!("there are no `.wit` files in it");
    }
    if files.len() > MAX_FILES {
        anyhow::bail!("it holds more than {MAX_FILES} `.wit` files");
    }
    let mut total = 0u64;
    for file in &files {
        total = total.saturating_add(fs_err::metadata(file)?.len());
    }
    if total > MAX_BYTES {
        anyhow::bail!("its `.wit` files exceed {} MiB", MAX_BYTES / (1024 * 1024));
    }
    Ok(files)
}

/// Checks that `source` parses as WIT and defines the package `name` (`namespace:package`,
/// any version).
fn check_package(name: &str, source: &Path) -> anyhow::Result<()> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_path(source)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let found = &resolve.packages[package].name;
    let found_name = format!("{}:{}", found.namespace, found.name);
    if found_name != name {
        anyhow::bail!("it defines the package `{found}`, not `{name}`");
    }
    Ok(())
}
