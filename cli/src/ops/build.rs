//! `kiln build`: guest driver → strip → optimize → metadata → validate → atomic write to
//! `target/kiln/<profile>/<name>.wasm`.
//!
//! The output is fingerprinted: a small JSON file beside it records the driver's output
//! (size, modification time, SHA-256), the pipeline settings, and what kiln wrote (size,
//! modification time, SHA-256). When the settings match and both files are as recorded, the
//! build is fresh: nothing is hashed, run or written.

use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::Context;
use kiln_componentize::{OptimizeOptions, StripOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest;
use crate::messages::{self, StageKind};
use crate::ops::bundle::Bundle;
use crate::shell::Shell;

pub use crate::driver::{Artifact, Profile};
use crate::driver::{Driver, DriverOutput};
use crate::settings::{BuildSettings, Stages};

/// Core modules smaller than this (bytes) that wasm-opt would make larger are kept as they
/// were with a `-v` line, not a warning: the adapter's shims are a few hundred bytes.
const QUIET_KEPT_MODULE_SIZE: usize = 4096;

/// Identifies the processing, so a change of settings or of kiln rewrites the output.
fn pipeline_key(
    stages: &Stages,
    profile: Profile,
    metadata: &kiln_componentize::Metadata,
) -> String {
    format!(
        "kiln {} profile={} {stages:?} {metadata:?}",
        env!("CARGO_PKG_VERSION"),
        profile.dir_name()
    )
}

/// A file as the fingerprint remembers it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct FileStamp {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

impl FileStamp {
    fn stat(path: &Path) -> Option<(u64, u128)> {
        let meta = std::fs::metadata(path).ok()?;
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_nanos();
        Some((meta.len(), mtime))
    }

    fn of(path: &Path, bytes: &[u8]) -> anyhow::Result<FileStamp> {
        let (size, mtime_ns) =
            FileStamp::stat(path).with_context(|| format!("cannot stat `{}`", path.display()))?;
        Ok(FileStamp {
            size,
            mtime_ns,
            sha256: sha256_hex(bytes),
        })
    }

    /// Whether the file still has the recorded size and modification time.
    fn unchanged(&self, path: &Path) -> bool {
        FileStamp::stat(path) == Some((self.size, self.mtime_ns))
    }
}

/// `target/kiln/<profile>/.fingerprint/<name>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Fingerprint {
    pipeline: String,
    input: FileStamp,
    output: FileStamp,
}

/// The SHA-256 of `bytes`, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs `kiln build` for each of `all` (one project, or a workspace's members in dependency
/// order): the build, then the executable when asked for; each dependency is built once.
/// Members that do not depend on each other are built two at a time (the toolchains
/// parallelize inside a build too, so more threads than that only contend).
///
/// # Errors
///
/// Toolchain errors and compile errors, and a driver output that is not a valid component,
/// for the first member that fails (those already started finish). On any error no output
/// file is written or changed.
pub fn build_all(shell: &Shell, all: &[BuildSettings]) -> anyhow::Result<()> {
    use crate::ops::compose::{Stack, canonical};
    let roots: Vec<std::path::PathBuf> = all.iter().map(|s| canonical(&s.project.root)).collect();
    // Which earlier members each member's `[dependencies]` paths lead to.
    let needs: Vec<Vec<usize>> = all
        .iter()
        .map(|s| {
            s.project
                .manifest
                .dependencies
                .values()
                .filter_map(|d| match d.get_ref() {
                    manifest::Dependency::Path(path) => {
                        let target = canonical(&s.project.root.join(path));
                        roots.iter().position(|r| *r == target)
                    }
                    manifest::Dependency::Reference(_) => None,
                })
                .collect()
        })
        .collect();
    let shared = std::sync::Mutex::new(Stack::default());
    let mut done = vec![false; all.len()];
    while let Some(first) = done.iter().position(|d| !d) {
        // The next members whose dependencies are all built, at most two.
        let ready: Vec<usize> = (first..all.len())
            .filter(|&i| !done[i] && needs[i].iter().all(|&d| done[d]))
            .take(2)
            .collect();
        let ready = if ready.is_empty() { vec![first] } else { ready };
        let results: Vec<anyhow::Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ready
                .iter()
                .map(|&i| {
                    let shared = &shared;
                    scope.spawn(move || {
                        let mut stack = shared.lock().map(|s| s.clone()).unwrap_or_default();
                        let built = build_in(shell, &all[i], &mut stack);
                        if let Ok(mut s) = shared.lock() {
                            s.merge(stack);
                        }
                        built.map(|_| ())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a build thread panicked")))
                })
                .collect()
        });
        for (&i, result) in ready.iter().zip(results) {
            result?;
            done[i] = true;
        }
    }
    Ok(())
}

fn build_in(
    shell: &Shell,
    settings: &BuildSettings,
    stack: &mut crate::ops::compose::Stack,
) -> anyhow::Result<Artifact> {
    let artifact = build_project_in(shell, settings, stack)?;
    if let Some(runner) = &settings.exe_runner {
        crate::ops::exe::package(
            shell,
            &settings.project,
            &artifact,
            runner,
            settings.profile,
        )?;
    }
    shell.emit(messages::BuildFinished { success: true });
    Ok(artifact)
}

/// Builds a project as `settings` say, bundling their directories.
///
/// # Errors
///
/// As [`build_all`].
pub fn build_project(shell: &Shell, settings: &BuildSettings) -> anyhow::Result<Artifact> {
    build_project_in(shell, settings, &mut Default::default())
}

/// As [`build_project`], with the projects whose build asked for this one (as a
/// `[dependencies]` entry) on `stack`, outermost first.
///
/// # Errors
///
/// As [`build_all`]; a dependency cycle.
pub fn build_project_in(
    shell: &Shell,
    settings: &BuildSettings,
    stack: &mut crate::ops::compose::Stack,
) -> anyhow::Result<Artifact> {
    if let Some(artifact) = stack.built(&settings.project.root, settings.profile) {
        return Ok(artifact);
    }
    let artifact = build_project_once(shell, settings, stack)?;
    stack.record(&settings.project.root, settings.profile, &artifact);
    Ok(artifact)
}

fn build_project_once(
    shell: &Shell,
    settings: &BuildSettings,
    stack: &mut crate::ops::compose::Stack,
) -> anyhow::Result<Artifact> {
    let project = &settings.project;
    stack.enter(&project.root);
    let dependencies = crate::ops::compose::resolve(shell, settings, stack);
    stack.leave();
    let dependencies = dependencies?;
    crate::ops::wit_deps::lay_out(shell, project, settings.wit)?;
    let profile = settings.profile;
    let DriverOutput {
        wasm: driver_output,
        target_dir,
        name,
        metadata,
    } = {
        crate::toolchain::take_adapter();
        Driver::for_project(project)?.build(shell, project, profile)?
    };
    let adapter = crate::toolchain::take_adapter();

    let stages = &settings.stages;
    let bundle = Bundle::collect(&settings.bundles, &project.root)?;
    for (host, guest) in bundle.outside_files() {
        shell.verbose_status(
            "Bundling",
            format_args!(
                "`{}` as `{guest}` (from outside the project)",
                host.display()
            ),
        );
    }
    let mut pipeline = pipeline_key(stages, profile, &metadata);
    if !bundle.is_empty() {
        pipeline.push_str(&format!(
            " bundle={} vfs={}",
            bundle.stamp(),
            sha256_hex(crate::ops::bundle::VFS_MODULE)
        ));
    }
    for dependency in &dependencies {
        pipeline.push_str(&format!(
            " dependency={}@{}",
            dependency.name, dependency.digest
        ));
    }
    // A Kiln.toml workspace's members write to the workspace's target directory.
    let target_dir = match &project.workspace_root {
        Some(root) => root.join("target"),
        None => target_dir,
    };
    let out_dir = target_dir.join("kiln").join(profile.dir_name());
    let out_path = out_dir.join(format!("{name}.wasm"));
    let fingerprint_path = out_dir.join(".fingerprint").join(format!("{name}.json"));

    let recorded: Option<Fingerprint> = std::fs::read(&fingerprint_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if let Some(fp) = &recorded
        && fp.pipeline == pipeline
        && fp.input.unchanged(&driver_output)
        && fp.output.unchanged(&out_path)
    {
        let artifact = Artifact {
            name,
            metadata,
            path: out_path,
            size: fp.output.size,
            sha256: fp.output.sha256.clone(),
            fresh: true,
        };
        keep_sbom(settings, &artifact, None, &bundle, &dependencies, adapter)?;
        report(shell, &artifact, profile);
        return Ok(artifact);
    }

    let bytes = fs_err::read(&driver_output)?;
    let input = FileStamp::of(&driver_output, &bytes)?;
    // The driver rewrote an identical file (cargo does after `touch`): still fresh, as long as
    // the output is the one kiln wrote.
    let (stamp, written) = if let Some(fp) = &recorded
        && fp.pipeline == pipeline
        && fp.input.sha256 == input.sha256
        && let Ok(on_disk) = std::fs::read(&out_path)
        && sha256_hex(&on_disk) == fp.output.sha256
    {
        (FileStamp::of(&out_path, &on_disk)?, None)
    } else {
        kiln_componentize::validate_component(&bytes).with_context(|| {
            format!(
                "the build output `{}` is not a valid component",
                driver_output.display()
            )
        })?;
        let output = run_stages(
            shell,
            &name,
            bytes,
            stages,
            &bundle,
            &dependencies,
            &metadata,
        )?;
        crate::fsutil::write_atomic(&out_path, &output)?;
        (FileStamp::of(&out_path, &output)?, Some(output))
    };
    write_fingerprint(&fingerprint_path, pipeline, input, stamp.clone())?;
    let artifact = Artifact {
        name,
        metadata,
        path: out_path,
        size: stamp.size,
        sha256: stamp.sha256,
        fresh: written.is_none(),
    };
    keep_sbom(
        settings,
        &artifact,
        written.as_deref(),
        &bundle,
        &dependencies,
        adapter,
    )?;
    report(shell, &artifact, profile);
    Ok(artifact)
}

/// Writes a release build's SBOM beside its component (see [`crate::ops::sbom`]) when the
/// component was just `written`, or when the SBOM is missing.
fn keep_sbom(
    settings: &BuildSettings,
    artifact: &Artifact,
    written: Option<&[u8]>,
    bundle: &Bundle,
    dependencies: &[crate::ops::compose::Resolved],
    adapter: Option<kiln_componentize::Adapter>,
) -> anyhow::Result<()> {
    if settings.profile != Profile::Release {
        return Ok(());
    }
    let path = artifact
        .path
        .with_file_name(crate::ops::sbom::file_name(&artifact.name));
    let read;
    let component = match written {
        Some(bytes) => bytes,
        None if path.is_file() => return Ok(()),
        None => {
            read = fs_err::read(&artifact.path)?;
            &read[..]
        }
    };
    let epoch = crate::env_vars::non_empty(crate::env_vars::SOURCE_DATE_EPOCH);
    let document = crate::ops::sbom::generate(&crate::ops::sbom::Inputs {
        project: &settings.project,
        name: &artifact.name,
        version: artifact.metadata.version.as_deref(),
        component,
        bundled: bundle.files().collect(),
        composed: dependencies,
        adapter,
        source_date_epoch: epoch.as_deref(),
    })
    .context("cannot write the SBOM")?;
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    crate::fsutil::write_atomic(&path, text.as_bytes())
}

fn write_fingerprint(
    path: &Path,
    pipeline: String,
    input: FileStamp,
    output: FileStamp,
) -> anyhow::Result<()> {
    let fingerprint = Fingerprint {
        pipeline,
        input,
        output,
    };
    crate::fsutil::write_atomic(path, serde_json::to_string_pretty(&fingerprint)?.as_bytes())
}

/// Strip, optimize, write metadata, validate; each stage reported with the size it left.
fn run_stages(
    shell: &Shell,
    name: &str,
    mut bytes: Vec<u8>,
    stages: &Stages,
    bundle: &Bundle,
    dependencies: &[crate::ops::compose::Resolved],
    metadata: &kiln_componentize::Metadata,
) -> anyhow::Result<Vec<u8>> {
    let stage = |stage: StageKind, before: usize, after: usize, files: Option<(u64, u64)>| {
        shell.emit(messages::Stage {
            file: format!("{name}.wasm"),
            stage,
            before: before as u64,
            after: after as u64,
            files: files.map(|(count, _)| count),
            bytes: files.map(|(_, bytes)| bytes),
        })
    };
    let keep_names = stages.strip != manifest::Strip::Symbols;
    if stages.strip != manifest::Strip::None {
        let before = bytes.len();
        bytes = kiln_componentize::strip(&bytes, &StripOptions { keep_names })
            .context("failed to strip debug information")?;
        stage(StageKind::Strip, before, bytes.len(), None);
    }
    // Before optimize: wasm-opt then works on the snapshot (the state as data, the start-up
    // code that made it now dead unless something else calls it).
    if let Some(init_func) = &stages.preinit {
        let before = bytes.len();
        bytes = crate::ops::preinit::preinitialize(name, &bytes, init_func)?;
        stage(StageKind::Preinit, before, bytes.len(), None);
    }
    if let Some(level) = stages.optimize {
        let before = bytes.len();
        // wasm-opt keeps debug information (the names section, and DWARF unless stripped
        // above) so that traps keep readable backtraces; stripping first means binaryen
        // never has to carry DWARF through its passes in a default release build.
        let options = OptimizeOptions {
            level,
            debug_info: keep_names,
        };
        let optimized = kiln_componentize::optimize(&bytes, &options)
            .context("failed to optimize the component")?;
        for module in &optimized.modules {
            if let Some(why) = &module.kept {
                // The preview1 adapter's shim modules (a few hundred bytes of indirect calls)
                // come out of wasm-opt larger on every release build: expected, so only `-v`
                // shows them. A module that matters is worth a warning.
                if module.before < QUIET_KEPT_MODULE_SIZE {
                    shell.verbose_status(
                        "Kept",
                        format_args!(
                            "{name}: {} ({} B) as it was: {why}",
                            module.path, module.before
                        ),
                    );
                } else {
                    shell.warn(format_args!(
                        "{name}: kept {} ({} B) as it was: {why}",
                        module.path, module.before
                    ));
                }
            }
        }
        bytes = optimized.bytes;
        stage(StageKind::Optimize, before, bytes.len(), None);
    }
    let mut composed_from = Vec::new();
    if !dependencies.is_empty() {
        let before = bytes.len();
        (bytes, composed_from) = crate::ops::compose::compose(shell, &bytes, dependencies)
            .context("failed to compose the component with its dependencies")?;
        stage(StageKind::Compose, before, bytes.len(), None);
    }
    if !bundle.is_empty() {
        let before = bytes.len();
        bytes = crate::ops::bundle::compose(&bytes, bundle).context("failed to bundle files")?;
        let files = (bundle.file_count() as u64, bundle.total_size());
        stage(StageKind::Bundle, before, bytes.len(), Some(files));
    }
    bytes = kiln_componentize::add_metadata(&bytes, metadata)
        .context("failed to write the component's metadata")?;
    if !composed_from.is_empty() {
        bytes = kiln_componentize::record_composition(&bytes, &composed_from)
            .context("failed to record what the component was composed from")?;
    }
    kiln_componentize::validate_component(&bytes)
        .context("the processed component does not validate")?;
    Ok(bytes)
}

fn report(shell: &Shell, artifact: &Artifact, profile: Profile) {
    // The world is part of the artifact record: a library component's exports are how a
    // user checks that it exports the world they wrote. People are not shown it, so a
    // (no-op) human build does not read the component back.
    let world = shell
        .emits_json()
        .then(|| std::fs::read(&artifact.path).ok())
        .flatten()
        .and_then(|bytes| kiln_componentize::describe(&bytes).ok())
        .unwrap_or_default();
    let m = &artifact.metadata;
    shell.emit(messages::Artifact {
        name: artifact.name.clone(),
        package_version: m.version.clone(),
        description: m.description.clone(),
        license: m.license.clone(),
        source: m.source.clone(),
        profile: profile.dir_name().to_string(),
        path: artifact.path.clone(),
        size: artifact.size,
        sha256: artifact.sha256.clone(),
        fresh: artifact.fresh,
        kind: "component".to_string(),
        imports: world.imports,
        exports: world.exports,
    });
}
