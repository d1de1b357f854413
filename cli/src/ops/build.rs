//! `kiln build`: guest driver → validate → atomic write to `target/kiln/<profile>/<name>.wasm`.
//!
//! The output is fingerprinted: a small JSON file beside it records the SHA-256 of the
//! driver's output, the pipeline settings, and the SHA-256 of what kiln wrote. When all three
//! still match, the build is fresh and nothing is written.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::manifest::{Language, Project};
use crate::shell::{MessageFormat, Shell, human_size};

/// A build profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Unoptimized, with debug info (`cargo build`).
    Debug,
    /// Optimized (`cargo build --release`).
    Release,
}

impl Profile {
    /// The directory name under `target/kiln/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// Resolved `kiln build` settings.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Debug or release.
    pub profile: Profile,
    /// `--manifest-path`, if given.
    pub manifest_path: Option<PathBuf>,
    /// Where to look for the project when no manifest path is given.
    pub cwd: PathBuf,
    /// Human or JSON output.
    pub format: MessageFormat,
}

/// The component a build produced.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The component name.
    pub name: String,
    /// Its version (`[package] version`, else the Cargo package version).
    pub version: Option<String>,
    /// `[package] description`.
    pub description: Option<String>,
    /// `[package] license`.
    pub license: Option<String>,
    /// Where the component is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// True when nothing changed and the file was left as it was.
    pub fresh: bool,
}

/// `target/kiln/<profile>/.fingerprint/<name>.json`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Fingerprint {
    input_sha256: String,
    pipeline: String,
    output_sha256: String,
}

/// What identifies kiln's processing of the driver's output: the kiln version and the
/// stages applied. A change here forces the output to be rewritten.
fn pipeline_key(profile: Profile) -> String {
    format!(
        "kiln {} validate profile={}",
        env!("CARGO_PKG_VERSION"),
        profile.dir_name()
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs the build of the project found from `opts`.
///
/// # Errors
///
/// Manifest errors, toolchain errors and compile errors, and a driver output that is not a
/// valid component. On any error no output file is written or changed.
pub fn build(shell: &Shell, opts: &BuildOptions) -> anyhow::Result<Artifact> {
    let project = Project::find(&opts.cwd, opts.manifest_path.as_deref())?;
    build_project(shell, &project, opts.profile, opts.format)
}

/// Builds an already-located project.
pub fn build_project(
    shell: &Shell,
    project: &Project,
    profile: Profile,
    format: MessageFormat,
) -> anyhow::Result<Artifact> {
    if profile == Profile::Release
        && (project.manifest.release.optimize.is_some() || project.manifest.release.strip.is_some())
    {
        shell.warn("`[release] optimize` and `strip` are accepted but not applied yet: this kiln does not optimize components");
    }
    let package = &project.manifest.package;
    let (driver_output, target_dir, name, version) = match project.language {
        Language::Rust => {
            let cargo_toml = project.cargo_toml();
            if !cargo_toml.is_file() {
                anyhow::bail!(
                    "`{}` says `language = \"rust\"` but there is no Cargo.toml beside it",
                    project
                        .manifest_path
                        .as_deref()
                        .unwrap_or(&project.root)
                        .display()
                );
            }
            let built = crate::toolchain::rust::build(
                shell,
                &cargo_toml,
                &project.manifest.build,
                profile,
                format,
            )?;
            let name = project
                .manifest
                .name()
                .map(str::to_string)
                .unwrap_or(built.package_name);
            let version = package.version.clone().unwrap_or(built.package_version);
            (built.wasm, built.target_dir, name, Some(version))
        }
        other => {
            return Err(crate::errors::hinted(
                format!(
                    "kiln {} cannot build `{other}` guests yet; only Rust is supported",
                    env!("CARGO_PKG_VERSION")
                ),
                "C, Go and TinyGo drivers are planned; a Rust project needs only its Cargo.toml",
            ));
        }
    };

    let bytes = fs_err::read(&driver_output)?;
    kiln_componentize::validate_component(&bytes).with_context(|| {
        format!(
            "the build output `{}` is not a valid component",
            driver_output.display()
        )
    })?;

    let out_dir = target_dir.join("kiln").join(profile.dir_name());
    let out_path = out_dir.join(format!("{name}.wasm"));
    let fingerprint_path = out_dir.join(".fingerprint").join(format!("{name}.json"));
    let input_sha256 = sha256_hex(&bytes);
    let pipeline = pipeline_key(profile);

    let fresh = is_fresh(&fingerprint_path, &out_path, &input_sha256, &pipeline);
    let is_fresh = fresh.is_some();
    let (size, sha256) = match fresh {
        Some(output_sha256) => (fs_err::metadata(&out_path)?.len(), output_sha256),
        None => {
            // Later stages (optimize, bundle, metadata) will transform `bytes` here.
            let output = bytes;
            let output_sha256 = sha256_hex(&output);
            crate::fsutil::write_atomic(&out_path, &output)?;
            let fingerprint = Fingerprint {
                input_sha256,
                pipeline,
                output_sha256: output_sha256.clone(),
            };
            crate::fsutil::write_atomic(
                &fingerprint_path,
                serde_json::to_string_pretty(&fingerprint)?.as_bytes(),
            )?;
            (output.len() as u64, output_sha256)
        }
    };
    let artifact = Artifact {
        name,
        version,
        description: package.description.clone(),
        license: package.license.clone(),
        path: out_path,
        size,
        sha256,
        fresh: is_fresh,
    };
    report(shell, &artifact, profile, format);
    Ok(artifact)
}

/// The recorded output digest when the fingerprint matches and the output on disk is what
/// kiln wrote; `None` when the output must be (re)written.
fn is_fresh(
    fingerprint_path: &Path,
    out_path: &Path,
    input_sha256: &str,
    pipeline: &str,
) -> Option<String> {
    let recorded: Fingerprint =
        serde_json::from_slice(&std::fs::read(fingerprint_path).ok()?).ok()?;
    if recorded.input_sha256 != input_sha256 || recorded.pipeline != pipeline {
        return None;
    }
    let on_disk = std::fs::read(out_path).ok()?;
    (sha256_hex(&on_disk) == recorded.output_sha256).then_some(recorded.output_sha256)
}

fn report(shell: &Shell, artifact: &Artifact, profile: Profile, format: MessageFormat) {
    let relative = crate::fsutil::display_relative(&artifact.path);
    match format {
        MessageFormat::Human => shell.status(
            "Finished",
            format_args!(
                "{} {} ({})",
                profile.dir_name(),
                relative,
                human_size(artifact.size)
            ),
        ),
        MessageFormat::Json => {
            // The world is part of the artifact record: a library component's exports are
            // how a user checks that it exports the world they wrote.
            let world = std::fs::read(&artifact.path)
                .ok()
                .and_then(|bytes| kiln_componentize::describe(&bytes).ok())
                .unwrap_or_default();
            shell.json(&json!({
                "reason": "artifact",
                "name": artifact.name,
                "version": artifact.version,
                "description": artifact.description,
                "license": artifact.license,
                "profile": profile.dir_name(),
                "path": artifact.path,
                "size": artifact.size,
                "sha256": artifact.sha256,
                "fresh": artifact.fresh,
                "kind": "component",
                "imports": world.imports,
                "exports": world.exports,
            }));
            shell.json(&json!({ "reason": "build-finished", "success": true }));
        }
    }
}
