//! Settings resolved before any work, as uv's `Settings::resolve` does: every flag, Kiln.toml
//! value and environment variable a command depends on is merged here, once — references
//! parsed, tags chosen, paths made absolute, the project found — and `ops` takes one settings
//! value. `kiln <command> --show-settings` prints what was resolved and stops.
//!
//! Precedence, the same for every command: a flag beats Kiln.toml, which beats the
//! environment, which beats kiln's defaults. (Kiln.toml's `[run]` grants are added to the
//! command line's; its limits are replaced by the command line's.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_componentize::OptLevel;
use kiln_registry_client::Reference;
use kiln_runtime::RunConfig;
use serde::Serialize;

use crate::errors::hinted;
use crate::manifest::{self, Language, Project};
use crate::ops::bundle::BundleSource;
use crate::ops::registry::RegistryArgs;
use crate::ops::sign::VerifyArgs;

/// What settings read from the process's environment, captured once.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// The current directory, against which relative paths are made absolute.
    pub cwd: PathBuf,
    /// `SOURCE_DATE_EPOCH`, if set and not empty.
    pub source_date_epoch: Option<String>,
}

impl Environment {
    /// The environment of this process.
    ///
    /// # Errors
    ///
    /// The current directory cannot be read.
    pub fn capture() -> anyhow::Result<Environment> {
        Ok(Environment {
            cwd: std::env::current_dir().context("cannot read the current directory")?,
            source_date_epoch: crate::env_vars::non_empty(crate::env_vars::SOURCE_DATE_EPOCH),
        })
    }
}

pub use crate::driver::Profile;

/// What kiln does to the driver's output, from the profile, Kiln.toml's `[release]` and
/// `--no-optimize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages {
    /// wasm-opt's level; `None`: no optimization.
    pub optimize: Option<OptLevel>,
    /// What is stripped.
    pub strip: manifest::Strip,
    /// The export pre-initialization calls (`[release] preinit`); `None`: none.
    pub preinit: Option<String>,
}

impl Stages {
    fn resolve(project: &Project, profile: Profile, no_optimize: bool) -> Stages {
        match profile {
            Profile::Debug => Stages {
                optimize: None,
                strip: manifest::Strip::None,
                preinit: None,
            },
            Profile::Release => {
                let release = &project.manifest.release;
                let level = match release.optimize.unwrap_or(manifest::OptLevel::Size) {
                    manifest::OptLevel::Speed(0) => None,
                    manifest::OptLevel::Speed(n) => Some(OptLevel::Speed(n)),
                    manifest::OptLevel::Size => Some(OptLevel::Size),
                    manifest::OptLevel::SizeAggressive => Some(OptLevel::SizeAggressive),
                };
                Stages {
                    optimize: level.filter(|_| !no_optimize),
                    strip: release.strip.unwrap_or(manifest::Strip::DebugInfo),
                    preinit: release
                        .preinit
                        .as_ref()
                        .and_then(|p| p.init_func())
                        .map(str::to_string),
                }
            }
        }
    }
}

impl Serialize for Stages {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("Stages", 3)?;
        let optimize = self.optimize.map(|level| match level {
            OptLevel::Speed(n) => n.to_string(),
            OptLevel::Size => "s".to_string(),
            OptLevel::SizeAggressive => "z".to_string(),
        });
        out.serialize_field("optimize", &optimize)?;
        out.serialize_field("strip", &format!("{:?}", self.strip).to_lowercase())?;
        match &self.preinit {
            Some(init_func) => out.serialize_field("preinit", init_func)?,
            None => out.skip_field("preinit")?,
        }
        out.end()
    }
}

/// `kiln build`, and the build behind `run`, `serve` and `publish` in a project.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSettings {
    /// The project found (from `--manifest-path` or the current directory upwards).
    #[serde(serialize_with = "project_summary")]
    pub project: Project,
    /// Debug or release.
    pub profile: Profile,
    /// Strip and optimize.
    pub stages: Stages,
    /// Kiln.toml's `[[bundle]]` entries (made absolute), then `--bundle`'s.
    pub bundles: Vec<BundleSource>,
    /// The runner to package an executable with (`--exe` or `[package] exe`), found before
    /// any build work so that a missing `KILN_RUNNER` fails first.
    pub exe_runner: Option<crate::ops::exe::Runner>,
    /// How registry WIT dependencies resolve (`--locked`, `--offline`).
    pub wit: crate::ops::wit_deps::Mode,
    /// `--no-optimize`, passed on to the projects `[dependencies]` builds.
    pub no_optimize: bool,
}

fn project_summary<S: serde::Serializer>(project: &Project, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut out = s.serialize_struct("Project", 3)?;
    out.serialize_field("root", &project.root)?;
    out.serialize_field("manifest", &project.manifest_path)?;
    out.serialize_field("language", &project.language.to_string())?;
    out.end()
}

impl BuildSettings {
    /// `kiln build`'s settings.
    ///
    /// # Errors
    ///
    /// No project, a manifest error, a malformed `--bundle`, a missing runner for `--exe`.
    pub fn resolve(
        args: &crate::commands::build::Args,
        env: &Environment,
    ) -> anyhow::Result<BuildSettings> {
        let bundles = args
            .bundle
            .iter()
            .map(|b| BundleSource::parse_flag(b, &env.cwd))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let project = Project::find(&env.cwd, args.manifest_path.as_deref())?;
        let exe = args.exe || project.manifest.package.exe;
        let mut settings = BuildSettings::for_project(
            project,
            Profile::from_release_flag(args.release),
            args.no_optimize,
            bundles,
        );
        if exe {
            settings.exe_runner = Some(crate::ops::exe::find_runner()?);
        }
        settings.wit.locked = args.locked;
        settings.wit.offline = args.offline;
        Ok(settings)
    }

    /// `kiln build`'s settings for each project it builds: one, or at a cargo virtual
    /// workspace's root every member that is a component (binaries and `cdylib`s), in
    /// cargo's order; `-p NAME` keeps one.
    ///
    /// # Errors
    ///
    /// As [`BuildSettings::resolve`]; a `-p` naming no member; a workspace without
    /// component members.
    pub fn resolve_all(
        args: &crate::commands::build::Args,
        env: &Environment,
    ) -> anyhow::Result<Vec<BuildSettings>> {
        let project = Project::find(&env.cwd, args.manifest_path.as_deref())?;
        let Some(members) = workspace_members(&project)? else {
            if let Some(wanted) = &args.package {
                let name = package_name(&project);
                if name.as_deref() != Some(wanted.as_str()) {
                    anyhow::bail!(
                        "`-p {wanted}`: the project at `{}` is not a cargo workspace and its package is {}",
                        project.root.display(),
                        name.map_or("unnamed".to_string(), |n| format!("`{n}`"))
                    );
                }
            }
            return Ok(vec![BuildSettings::resolve(args, env)?]);
        };
        let chosen: Vec<&(String, PathBuf, bool)> = match &args.package {
            Some(wanted) => {
                let Some(member) = members.iter().find(|(name, _, _)| name == wanted) else {
                    let names: Vec<&str> = members.iter().map(|(n, _, _)| n.as_str()).collect();
                    return Err(hinted(
                        format!("`-p {wanted}`: the workspace has no member named `{wanted}`"),
                        format!("its members: {}", names.join(", ")),
                    ));
                };
                vec![member]
            }
            None => members
                .iter()
                .filter(|(_, _, component)| *component)
                .collect(),
        };
        if chosen.is_empty() {
            return Err(hinted(
                format!(
                    "the workspace at `{}` has no member that is a component",
                    project.root.display()
                ),
                "a member is a component when it has a binary or a `cdylib` library",
            ));
        }
        let mut all = Vec::new();
        for (_, dir, _) in chosen {
            // A member's own Kiln.toml, beside its Cargo.toml, applies to it.
            let kiln_toml = dir.join(manifest::KILN_TOML);
            let manifest_path = if kiln_toml.is_file() {
                kiln_toml
            } else {
                dir.join(manifest::CARGO_TOML)
            };
            let member = crate::commands::build::Args {
                manifest_path: Some(manifest_path),
                package: None,
                bundle: args.bundle.clone(),
                ..*args
            };
            all.push(BuildSettings::resolve(&member, env)?);
        }
        Ok(all)
    }

    /// The settings to build `project` with: Kiln.toml's stages and bundles, then `extra`.
    pub fn for_project(
        project: Project,
        profile: Profile,
        no_optimize: bool,
        extra_bundles: Vec<BundleSource>,
    ) -> BuildSettings {
        let stages = Stages::resolve(&project, profile, no_optimize);
        let bundles = project
            .manifest
            .bundle
            .iter()
            .map(|b| BundleSource {
                source: project.root.join(b.source.get_ref()),
                mount: b.mount.get_ref().clone(),
                external: b.external,
            })
            .chain(extra_bundles)
            .collect();
        BuildSettings {
            project,
            profile,
            stages,
            bundles,
            exe_runner: None,
            wit: Default::default(),
            no_optimize,
        }
    }
}

/// What `kiln run` or `kiln serve` runs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum RunTarget {
    /// A component file (absolute).
    File {
        /// The file.
        path: PathBuf,
    },
    /// A registry reference, pulled (through the cache, verified) before running.
    Reference {
        /// The reference, parsed.
        #[serde(serialize_with = "display")]
        reference: Reference,
        /// `--verify` keys (absolute); kiln's policy applies when empty.
        keys: Vec<PathBuf>,
    },
    /// A project, built first (when stale).
    Project {
        /// Its build.
        build: Box<BuildSettings>,
    },
}

fn display<T: std::fmt::Display, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// `kiln run`'s settings (and the part of `kiln serve`'s they share).
#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    /// What runs.
    pub target: RunTarget,
    /// The grants and limits of the command line alone (checked before any build work).
    pub flags: RunConfig,
    /// Kiln.toml's `[run]` (in a project) with the command line's grants added and its
    /// limits over it: what the guest gets.
    pub config: RunConfig,
    /// Arguments for the guest after `argv[0]`.
    pub args: Vec<String>,
    /// The directory relative `--dir` grants are taken from.
    pub cwd: PathBuf,
    /// `--verify` as given, for the pull of a reference.
    #[serde(skip)]
    pub verify: VerifyArgs,
}

/// What `kiln run` and `kiln serve` were pointed at: a PATH or reference, `--manifest-path`,
/// `-p`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunPlace<'a> {
    /// The positional argument: a component file, a project directory or manifest, or a
    /// registry reference.
    pub path: Option<&'a Path>,
    /// `--manifest-path`.
    pub manifest_path: Option<&'a Path>,
    /// `-p NAME`: a workspace member.
    pub package: Option<&'a str>,
}

impl RunSettings {
    /// Resolves what to run: a `.wasm` file, a project directory or manifest, a registry
    /// reference, or the project around the current directory; merges the project's `[run]`
    /// with the command line's.
    ///
    /// # Errors
    ///
    /// A path that exists as nothing runnable and does not read as a reference; a malformed
    /// reference; manifest errors.
    pub fn resolve(
        place: RunPlace<'_>,
        release: bool,
        flags: RunConfig,
        args: Vec<String>,
        verify: VerifyArgs,
        env: &Environment,
    ) -> anyhow::Result<RunSettings> {
        let RunPlace {
            path,
            manifest_path,
            package,
        } = place;
        let profile = Profile::from_release_flag(release);
        let project = match (path, manifest_path) {
            (Some(path), _) => {
                let full = env.cwd.join(path);
                let is_manifest = matches!(
                    full.file_name().and_then(|n| n.to_str()),
                    Some(manifest::KILN_TOML | manifest::CARGO_TOML)
                );
                if full.is_dir() {
                    Ok(Project::at(full)?)
                } else if is_manifest && full.is_file() {
                    Ok(Project::find(&env.cwd, Some(path))?)
                } else if full.is_file() {
                    Err(full)
                } else if let Some(text) = path.to_str().filter(|p| looks_like_reference(p)) {
                    let reference: Reference = text.parse()?;
                    let keys = verify.keys.iter().map(|k| env.cwd.join(k)).collect();
                    return Ok(RunSettings {
                        target: RunTarget::Reference { reference, keys },
                        config: flags.clone(),
                        flags,
                        args,
                        cwd: env.cwd.clone(),
                        verify,
                    });
                } else {
                    anyhow::bail!("`{}` does not exist", path.display());
                }
            }
            (None, manifest_path) => Ok(Project::find(&env.cwd, manifest_path)?),
        };
        let project = match (project, package) {
            (Ok(project), Some(wanted)) => Ok(member(&project, wanted)?),
            (Err(file), Some(_)) => anyhow::bail!(
                "`-p` picks a workspace member, but `{}` is a component file",
                file.display()
            ),
            (project, None) => project,
        };
        let (target, mut config) = match project {
            Ok(project) => {
                let config = project.manifest.run.clone();
                let build = BuildSettings::for_project(project, profile, false, Vec::new());
                (
                    RunTarget::Project {
                        build: Box::new(build),
                    },
                    config,
                )
            }
            Err(path) => (RunTarget::File { path }, RunConfig::default()),
        };
        config.merge(flags.clone());
        Ok(RunSettings {
            target,
            flags,
            config,
            args,
            cwd: env.cwd.clone(),
            verify,
        })
    }
}

/// The members of the Kiln.toml workspace (in dependency order) or cargo virtual workspace
/// `project` is the root of (name, directory, whether it is a component: it has a binary or
/// a `cdylib`), or `None` when `project` is not a workspace root (a package, a cargo
/// workspace root that is itself a package, or not Rust).
fn workspace_members(project: &Project) -> anyhow::Result<Option<Vec<(String, PathBuf, bool)>>> {
    use cargo_metadata::TargetKind;
    if let Some(workspace) = &project.manifest.workspace {
        // A Kiln.toml workspace: every member is a component, in dependency order.
        let projects = crate::workspace::members(&project.root, workspace)?
            .into_iter()
            .map(Project::at)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ordered = crate::workspace::dependency_order(projects)?;
        return Ok(Some(
            ordered
                .into_iter()
                .map(|p| (crate::workspace::member_name(&p), p.root, true))
                .collect(),
        ));
    }
    let cargo_toml = project.cargo_toml();
    if project.language != Language::Rust || !cargo_toml.is_file() {
        return Ok(None);
    }
    let text = fs_err::read_to_string(&cargo_toml)?;
    let Ok(table) = text.parse::<toml::Table>() else {
        // cargo's own error says what is wrong when the build reads it.
        return Ok(None);
    };
    if table.contains_key("package") || !table.contains_key("workspace") {
        return Ok(None);
    }
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(crate::env_vars::cargo())
        .manifest_path(&cargo_toml)
        .no_deps()
        .exec()
        .with_context(|| {
            format!(
                "failed to read `{}` with `cargo metadata`",
                cargo_toml.display()
            )
        })?;
    let members = metadata
        .workspace_packages()
        .into_iter()
        .map(|p| {
            let component = p
                .targets
                .iter()
                .any(|t| t.kind.contains(&TargetKind::Bin) || t.kind.contains(&TargetKind::CDyLib));
            let dir = p
                .manifest_path
                .parent()
                .map(|d| d.as_std_path().to_path_buf())
                .unwrap_or_default();
            (p.name.to_string(), dir, component)
        })
        .collect();
    Ok(Some(members))
}

/// The member of the workspace rooted at `project` named `wanted` (`-p`), or `project` itself
/// when it is a single project of that name.
///
/// # Errors
///
/// No member of that name (listing the members); a single project of another name.
fn member(project: &Project, wanted: &str) -> anyhow::Result<Project> {
    let Some(members) = workspace_members(project)? else {
        let name = package_name(project);
        if name.as_deref() == Some(wanted) {
            return Ok(project.clone());
        }
        anyhow::bail!(
            "`-p {wanted}`: the project at `{}` is not a workspace and its package is {}",
            project.root.display(),
            name.map_or("unnamed".to_string(), |n| format!("`{n}`"))
        );
    };
    match members.iter().find(|(name, _, _)| name == wanted) {
        Some((_, dir, _)) => Project::at(dir.clone()),
        None => {
            let names: Vec<&str> = members.iter().map(|(n, _, _)| n.as_str()).collect();
            Err(hinted(
                format!("`-p {wanted}`: the workspace has no member named `{wanted}`"),
                format!("its members: {}", names.join(", ")),
            ))
        }
    }
}

/// The package name of a single project (Kiln.toml's name, else Cargo.toml's).
fn package_name(project: &Project) -> Option<String> {
    if let Some(name) = project.manifest.name() {
        return Some(name.to_string());
    }
    let text = std::fs::read_to_string(project.cargo_toml()).ok()?;
    let table = text.parse::<toml::Table>().ok()?;
    Some(table.get("package")?.get("name")?.as_str()?.to_string())
}

/// Whether a path that does not exist reads as a registry reference: a first component
/// that is a host (has a `.` or `:`, or is `localhost`), and a tag or digest.
pub fn looks_like_reference(text: &str) -> bool {
    let Some((first, rest)) = text.split_once('/') else {
        return false;
    };
    let host = first.contains('.') || first.contains(':') || first == "localhost";
    let last = rest.rsplit('/').next().unwrap_or(rest);
    host && (last.contains(':') || text.contains('@'))
}

/// Whether a reference as written names its tag (or a digest), as
/// `Reference::parse_with_default_tag` reads it.
fn names_tag(text: &str) -> bool {
    let last = text.rsplit('/').next().unwrap_or(text);
    text.contains('@') || !text.contains('/') || last.contains(':')
}

/// `kiln serve`'s settings.
#[derive(Debug, Clone, Serialize)]
pub struct ServeSettings {
    /// What is served, with which grants and limits (`args` unused).
    pub run: RunSettings,
    /// The address to bind.
    pub addr: std::net::SocketAddr,
    /// The largest request body accepted, in bytes.
    pub max_request_body: u64,
    /// The most connections open at once.
    pub max_connections: usize,
    /// How long a client has to send a request head.
    #[serde(serialize_with = "duration")]
    pub header_timeout: std::time::Duration,
    /// The most requests one WASI 0.3 instance serves before it is retired.
    pub max_instance_reuse: usize,
    /// The most requests one WASI 0.3 instance serves at once.
    pub max_instance_concurrency: usize,
}

fn rfc3339<S: serde::Serializer>(
    time: &chrono::DateTime<chrono::Utc>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(&time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn duration<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// What `kiln publish` pushes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PublishSource {
    /// A component file (`--wasm`, absolute).
    File {
        /// The file.
        path: PathBuf,
    },
    /// The project's release build.
    Project {
        /// Its build.
        build: Box<BuildSettings>,
    },
    /// A WIT package (`--wit`, absolute), encoded.
    Wit {
        /// The directory or `.wit` file.
        path: PathBuf,
        /// `namespace:name`.
        name: String,
        /// Its version, if it declares one.
        version: Option<String>,
        /// The encoding pushed.
        #[serde(skip)]
        bytes: Vec<u8>,
    },
}

/// `kiln publish`'s settings.
#[derive(Debug, Clone, Serialize)]
pub struct PublishSettings {
    /// What is pushed.
    pub source: PublishSource,
    /// Where: the reference (the command line's, else `[publish] reference`) with its tag
    /// chosen (`--tag`, else the reference's, else the package version, else `latest`).
    #[serde(serialize_with = "display")]
    pub reference: Reference,
    /// Annotations from Kiln.toml's `[publish] annotations` and then `--annotation` (those
    /// derived from the component's metadata come first, when it is built).
    pub annotations: BTreeMap<String, String>,
    /// `created`: from `SOURCE_DATE_EPOCH`, else the epoch.
    #[serde(serialize_with = "rfc3339")]
    pub created: chrono::DateTime<chrono::Utc>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// The signing key (`--sign`, else `[publish] sign`), absolute.
    pub sign: Option<PathBuf>,
    /// Credentials and `--insecure`.
    #[serde(skip)]
    pub registry: RegistryArgs,
}

impl PublishSettings {
    /// `kiln publish`'s settings.
    ///
    /// # Errors
    ///
    /// A malformed reference or tag (before anything else), no reference anywhere, a digest
    /// reference, a bad `SOURCE_DATE_EPOCH`, manifest errors.
    pub fn resolve(
        args: crate::commands::publish::Args,
        env: &Environment,
    ) -> anyhow::Result<PublishSettings> {
        // Bad input is refused before the project is even looked for.
        if let Some(reference) = &args.reference {
            Reference::parse_with_default_tag(reference, "latest")?;
        }
        if let Some(tag) = &args.tag {
            Reference::validate_tag(tag)?;
        }
        let created =
            kiln_registry_client::created_from_source_date_epoch(env.source_date_epoch.as_deref())
                .map_err(anyhow::Error::msg)?;
        let mut annotations = BTreeMap::new();
        let mut sign = args.sign.as_ref().map(|key| env.cwd.join(key));
        let (source, written, version) = match (&args.wasm, &args.wit) {
            (None, Some(wit)) => {
                let written = args.reference.clone().ok_or_else(|| {
                    hinted(
                        "no reference to publish to",
                        "give one: `kiln publish REGISTRY/NAMESPACE/NAME --wit DIR`",
                    )
                })?;
                let path = env.cwd.join(wit);
                let encoded = kiln_componentize::encode_wit_package(&path).with_context(|| {
                    format!("cannot read the WIT package in `{}`", path.display())
                })?;
                let version = encoded.version.clone();
                (
                    PublishSource::Wit {
                        path,
                        name: encoded.name,
                        version: encoded.version,
                        bytes: encoded.bytes,
                    },
                    written,
                    version,
                )
            }
            (Some(wasm), _) => {
                let written = args.reference.clone().ok_or_else(|| {
                    hinted(
                        "no reference to publish to",
                        "give one: `kiln publish REGISTRY/REPOSITORY:TAG --wasm FILE`",
                    )
                })?;
                let path = env.cwd.join(wasm);
                (PublishSource::File { path }, written, None)
            }
            (None, None) => {
                let project = Project::find(&env.cwd, args.manifest_path.as_deref())?;
                let publish = &project.manifest.publish;
                let written = match &args.reference {
                    Some(reference) => reference.clone(),
                    None => publish
                        .reference
                        .as_ref()
                        .map(|r| r.get_ref().clone())
                        .ok_or_else(|| {
                            hinted(
                                "no reference to publish to",
                                "give one (`kiln publish REGISTRY/REPOSITORY[:TAG]`) or set `[publish] reference` in Kiln.toml",
                            )
                        })?,
                };
                annotations.extend(publish.annotations.clone());
                if sign.is_none() {
                    sign = publish.sign.as_ref().map(|key| project.root.join(key));
                }
                // The tag needs the version only when nothing else names one.
                let tagged = args.tag.is_some() || names_tag(&written);
                let version = if tagged {
                    None
                } else {
                    package_version(&project)
                };
                let build =
                    BuildSettings::for_project(project, Profile::Release, false, Vec::new());
                (
                    PublishSource::Project {
                        build: Box::new(build),
                    },
                    written,
                    version,
                )
            }
        };
        annotations.extend(args.annotations.iter().cloned());
        let tag = match (&args.tag, &version) {
            (Some(tag), _) => tag.clone(),
            (None, Some(version)) => version.clone(),
            (None, None) => String::from("latest"),
        };
        let mut reference = Reference::parse_with_default_tag(&written, &tag)?;
        if let Some(tag) = &args.tag {
            reference = reference.with_tag(tag)?;
        }
        if reference.tag().is_none() {
            anyhow::bail!("`{reference}` pins a digest; publish to a tag");
        }
        Ok(PublishSettings {
            source,
            reference,
            annotations,
            created,
            dry_run: args.dry_run,
            sign,
            registry: args.registry,
        })
    }
}

/// The package version a publish without a tag is tagged with: Kiln.toml's, else (Rust)
/// Cargo.toml's as cargo reads it (workspace inheritance included).
fn package_version(project: &Project) -> Option<String> {
    if let Some(version) = &project.manifest.package.version {
        return Some(version.clone());
    }
    if project.language != Language::Rust {
        return None;
    }
    let cargo_toml = project.cargo_toml();
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(crate::env_vars::cargo())
        .manifest_path(&cargo_toml)
        .no_deps()
        .exec()
        .ok()?;
    let cargo_toml = std::fs::canonicalize(&cargo_toml).unwrap_or(cargo_toml);
    metadata
        .packages
        .iter()
        .find(|p| {
            std::fs::canonicalize(&p.manifest_path)
                .unwrap_or_else(|_| p.manifest_path.clone().into())
                == cargo_toml
        })
        .map(|p| p.version.to_string())
}

/// `kiln pull`'s settings.
#[derive(Debug, Clone, Serialize)]
pub struct PullSettings {
    /// The reference, parsed.
    #[serde(serialize_with = "display")]
    pub reference: Reference,
    /// Where the component is written (absolute): `-o`, else `<repository name>.wasm` here.
    pub output: PathBuf,
    /// `--force`.
    pub force: bool,
    /// `--verify` keys, absolute (kiln's policy applies when empty).
    pub keys: Vec<PathBuf>,
    /// `--verify` as given.
    #[serde(skip)]
    pub verify: VerifyArgs,
    /// Credentials and `--insecure`.
    #[serde(skip)]
    pub registry: RegistryArgs,
}

impl PullSettings {
    /// `kiln pull`'s settings.
    ///
    /// # Errors
    ///
    /// A malformed reference (before any network or file access).
    pub fn resolve(
        args: crate::commands::pull::Args,
        env: &Environment,
    ) -> anyhow::Result<PullSettings> {
        let reference: Reference = args.reference.parse()?;
        let output = env.cwd.join(
            args.output
                .unwrap_or_else(|| PathBuf::from(format!("{}.wasm", reference.name()))),
        );
        let keys = args.verify.keys.iter().map(|k| env.cwd.join(k)).collect();
        Ok(PullSettings {
            reference,
            output,
            force: args.force,
            keys,
            verify: args.verify,
            registry: args.registry,
        })
    }
}

/// What `--show-settings` prints: `settings`, resolved for `command`.
pub fn show(
    shell: &crate::shell::Shell,
    command: &str,
    settings: &impl Serialize,
    env: &Environment,
) -> anyhow::Result<()> {
    shell.emit(crate::messages::Settings {
        command: command.to_string(),
        environment: serde_json::to_value(env)?,
        settings: serde_json::to_value(settings)?,
    });
    Ok(())
}
