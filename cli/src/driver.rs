//! The driver seam: every guest language kiln builds is a [`Driver`]. A driver says how to
//! probe its toolchain (what `kiln doctor` prints, with the fix), and builds a project's
//! profile into a component (or a core module it componentizes) with the metadata kiln
//! writes. `ops/build.rs` only orders the pipeline around it (strip, optimize, bundle,
//! metadata, fingerprint); the drivers live in `toolchain/` and import nothing from `ops`.
//! The types the build shares — [`Profile`], [`Artifact`], [`DriverOutput`], [`Check`] —
//! live here, below both.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::manifest::{Language, Project};
use crate::shell::Shell;

/// A build profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Unoptimized, with debug info (`cargo build`); kiln neither optimizes nor strips.
    Debug,
    /// Optimized (`cargo build --release`); kiln optimizes for size and strips by default.
    Release,
}

impl Profile {
    /// The profile a `--release` flag asks for.
    pub fn from_release_flag(release: bool) -> Profile {
        if release {
            Profile::Release
        } else {
            Profile::Debug
        }
    }

    /// The directory name under `target/kiln/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// One line of `kiln doctor`'s report.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is checked, e.g. `rust` or `rust target wasm32-wasip2`.
    pub name: String,
    /// Where it was found.
    pub path: Option<PathBuf>,
    /// Its version, or other detail.
    pub detail: String,
    /// Whether it is usable.
    pub ok: bool,
    /// How to install or fix it, when not ok.
    pub fix: Option<String>,
}

/// The component a build produced.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The component name.
    pub name: String,
    /// The metadata written into it.
    pub metadata: kiln_componentize::Metadata,
    /// Where the component is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// True when nothing changed and the file was left as it was.
    pub fresh: bool,
}

/// What a driver hands the pipeline.
#[derive(Debug, Clone)]
pub struct DriverOutput {
    /// The component the driver wrote (its own, or the componentized core module).
    pub wasm: PathBuf,
    /// The target directory kiln writes `kiln/<profile>/` under.
    pub target_dir: PathBuf,
    /// The component name.
    pub name: String,
    /// The metadata to write into the component.
    pub metadata: kiln_componentize::Metadata,
}

/// A guest language kiln drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// cargo, for `wasm32-wasip2` (or `wasm32-wasip3`).
    Rust,
    /// clang (or zig, or a wasi-sdk) with wasi-libc, then the preview1 adapter.
    C,
    /// The standard Go toolchain for `wasip1`, then the preview1 adapter.
    Go,
    /// TinyGo for `wasip2`.
    TinyGo,
    /// `[build] command`: a toolchain kiln does not drive (`language = "custom"`).
    Custom,
}

impl Driver {
    /// Every driver, in `kiln doctor`'s order. (Go's probe covers TinyGo too.)
    pub const ALL: [Driver; 3] = [Driver::Rust, Driver::C, Driver::Go];

    /// The driver for `project`'s language: `language = "go"` takes TinyGo when it is
    /// installed, as `go` projects that also build with `tinygo` expect.
    ///
    /// # Errors
    ///
    /// A language kiln does not drive yet.
    pub fn for_project(project: &Project) -> anyhow::Result<Driver> {
        if project.is_virtual_workspace() {
            return Err(crate::errors::hinted(
                format!(
                    "`{}` is a workspace root, not a component",
                    project.root.display()
                ),
                "choose a member with `-p NAME`, or run `kiln build` there to build them all",
            ));
        }
        match project.language {
            Language::Rust => Ok(Driver::Rust),
            Language::C => Ok(Driver::C),
            Language::Tinygo => Ok(Driver::TinyGo),
            Language::Go if crate::toolchain::go::find_tinygo().is_some() => Ok(Driver::TinyGo),
            Language::Go => Ok(Driver::Go),
            Language::Custom => Ok(Driver::Custom),
        }
    }

    /// What `kiln doctor` reports for this driver's toolchain.
    pub fn probe(self) -> Vec<Check> {
        match self {
            Driver::Rust => crate::toolchain::rust::probe(),
            Driver::C => crate::toolchain::c::probe(),
            Driver::Go | Driver::TinyGo => crate::toolchain::go::probe(),
            // Nothing to probe: the project names its own toolchain.
            Driver::Custom => Vec::new(),
        }
    }

    /// Builds `project`'s `profile` into a component.
    ///
    /// # Errors
    ///
    /// A missing toolchain (with how to get it), a compile error (after the compiler's own
    /// messages), a module the adapter cannot turn into a component.
    pub fn build(
        self,
        shell: &Shell,
        project: &Project,
        profile: Profile,
    ) -> anyhow::Result<DriverOutput> {
        let package = &project.manifest.package;
        let for_size = compiles_for_size(project, profile);
        let (wasm, target_dir, name, metadata) = match self {
            Driver::Rust => {
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
                    for_size,
                )?;
                let name = project
                    .manifest
                    .name()
                    .map(str::to_string)
                    .unwrap_or(built.package.name.clone());
                // Kiln.toml wins; Cargo.toml fills the gaps.
                let metadata = kiln_componentize::Metadata {
                    name: Some(name.clone()),
                    version: package.version.clone().or(Some(built.package.version)),
                    description: package.description.clone().or(built.package.description),
                    license: package
                        .license
                        .as_ref()
                        .map(|l| l.get_ref().clone())
                        .or(built.package.license),
                    source: package.repository.clone().or(built.package.repository),
                    processed_by: vec![("kiln".to_string(), env!("CARGO_PKG_VERSION").to_string())],
                };
                (built.wasm, built.target_dir, name, metadata)
            }
            Driver::Go | Driver::TinyGo => {
                let name = manifest_or_directory_name(project);
                let package = project
                    .manifest
                    .build
                    .package
                    .as_ref()
                    .map(|p| p.get_ref().as_str());
                // `go` prefers TinyGo when it is installed, as `tinygo` requires it.
                let tinygo = self == Driver::TinyGo;
                let wasm = if tinygo {
                    crate::toolchain::go::build_tinygo(
                        shell,
                        &project.root,
                        &name,
                        package,
                        profile,
                    )?
                } else {
                    crate::toolchain::go::build(
                        shell,
                        &project.root,
                        &name,
                        project.manifest.build.world.as_deref(),
                        package,
                        profile,
                    )?
                };
                let metadata = manifest_metadata(project, &name);
                (wasm, project.root.join("target"), name, metadata)
            }
            Driver::C | Driver::Custom => {
                let name = manifest_or_directory_name(project);
                let build = &project.manifest.build;
                let wasm = match self {
                    Driver::Custom => crate::toolchain::custom::build(
                        shell,
                        &project.root,
                        &name,
                        build,
                        profile,
                    )?,
                    _ => crate::toolchain::c::build(
                        shell,
                        &project.root,
                        &name,
                        build,
                        profile,
                        for_size,
                    )?,
                };
                let metadata = manifest_metadata(project, &name);
                (wasm, project.root.join("target"), name, metadata)
            }
        };
        Ok(DriverOutput {
            wasm,
            target_dir,
            name,
            metadata,
        })
    }
}

/// Whether the compiler itself optimizes for size: a release build whose `[release]
/// optimize` is `"z"`, the smallest output. (wasm-opt's `-Oz` alone cannot undo what
/// rustc's or clang's speed optimizations, inlining above all, spent in size.)
fn compiles_for_size(project: &Project, profile: Profile) -> bool {
    profile == Profile::Release
        && project.manifest.release.optimize == Some(crate::manifest::OptLevel::SizeAggressive)
}

/// A driver's working directory for `name`: `<root>/target/kiln/<profile>/<language>/<name>`,
/// created.
///
/// # Errors
///
/// The directory cannot be created.
pub fn work_dir(
    root: &Path,
    profile: Profile,
    language: &str,
    name: &str,
) -> anyhow::Result<PathBuf> {
    let dir = root
        .join("target")
        .join("kiln")
        .join(profile.dir_name())
        .join(language)
        .join(name);
    fs_err::create_dir_all(&dir)?;
    Ok(dir)
}

/// The component name for drivers without a package manifest of their own (C, Go): Kiln.toml's
/// name, else the project directory's.
fn manifest_or_directory_name(project: &Project) -> String {
    project
        .manifest
        .name()
        .map(str::to_string)
        .or_else(|| {
            project
                .root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "main".to_string())
}

/// The metadata Kiln.toml alone gives (C, Go); Rust fills gaps from Cargo.toml.
fn manifest_metadata(project: &Project, name: &str) -> kiln_componentize::Metadata {
    let package = &project.manifest.package;
    kiln_componentize::Metadata {
        name: Some(name.to_string()),
        version: package.version.clone(),
        description: package.description.clone(),
        license: package.license.as_ref().map(|l| l.get_ref().clone()),
        source: package.repository.clone(),
        processed_by: vec![("kiln".to_string(), env!("CARGO_PKG_VERSION").to_string())],
    }
}

#[cfg(test)]
mod tests {
    /// The drivers sit below `ops`: nothing under `toolchain/` (nor this seam) reaches up.
    #[test]
    fn drivers_do_not_import_ops() {
        for (file, source) in [
            ("driver.rs", include_str!("driver.rs")),
            ("toolchain/mod.rs", include_str!("toolchain/mod.rs")),
            ("toolchain/rust.rs", include_str!("toolchain/rust.rs")),
            ("toolchain/c.rs", include_str!("toolchain/c.rs")),
            ("toolchain/go.rs", include_str!("toolchain/go.rs")),
            ("toolchain/custom.rs", include_str!("toolchain/custom.rs")),
        ] {
            let needle = ["crate", "::ops"].concat();
            assert!(!source.contains(&needle), "{file} imports from ops");
        }
    }

    #[test]
    fn every_language_has_a_probe() {
        let names: Vec<String> = super::Driver::ALL
            .iter()
            .flat_map(|d| d.probe())
            .map(|c| c.name)
            .collect();
        for name in ["rust", "c", "go", "tinygo"] {
            assert!(names.iter().any(|n| n == name), "{names:?}");
        }
    }
}
