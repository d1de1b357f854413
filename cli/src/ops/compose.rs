//! Kiln.toml's `[dependencies]`: the components whose exports satisfy a project's imports.
//! Each is resolved before the project's own pipeline runs — a sibling project is built
//! first (same profile), a `.wasm` file is read and validated, an OCI reference is pulled
//! through the cache (digest-verified, and signature-verified where kiln's policy says) —
//! and [`kiln_componentize::plug`] joins them after the importer is optimized.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_componentize::{ComposedFrom, Plug};
use kiln_registry_client::Reference;

use crate::errors::hinted;
use crate::manifest::{Dependency, Project};
use crate::ops::registry::RegistryArgs;
use crate::ops::sign::VerifyArgs;
use crate::settings::BuildSettings;
use crate::shell::Shell;

/// A dependency, resolved to the component that will be plugged in.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Its key in `[dependencies]`.
    pub name: String,
    /// `path:<as written>` or `oci:<reference>`.
    pub source: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of [`Self::bytes`].
    pub digest: String,
    /// The OCI manifest digest, for a pulled dependency.
    pub manifest_digest: Option<String>,
    /// The version in the component's metadata.
    pub version: Option<String>,
}

/// The projects of one kiln command's builds: those being built, outermost first (a project
/// already on it is a cycle), and those built (each sibling project is built once per
/// command, however many depend on it).
#[derive(Debug, Default, Clone)]
pub struct Stack {
    visiting: Vec<PathBuf>,
    built: std::collections::HashMap<(PathBuf, crate::driver::Profile), crate::driver::Artifact>,
}

impl Stack {
    /// Marks the project at `root` as being built.
    pub fn enter(&mut self, root: &Path) {
        self.visiting.push(canonical(root));
    }

    /// Marks the innermost project as no longer being built.
    pub fn leave(&mut self) {
        self.visiting.pop();
    }

    /// The artifact of the project at `root` if this command built it in `profile` already.
    pub fn built(
        &self,
        root: &Path,
        profile: crate::driver::Profile,
    ) -> Option<crate::driver::Artifact> {
        self.built.get(&(canonical(root), profile)).cloned()
    }

    /// Takes what `other` built (another thread's builds).
    pub fn merge(&mut self, other: Stack) {
        self.built.extend(other.built);
    }

    /// Records the artifact of a project built in `profile`.
    pub fn record(
        &mut self,
        root: &Path,
        profile: crate::driver::Profile,
        artifact: &crate::driver::Artifact,
    ) {
        self.built
            .insert((canonical(root), profile), artifact.clone());
    }
}

/// Resolves every `[dependencies]` entry of the project `settings` builds, building sibling
/// projects first (recursively, through [`crate::ops::build::build_project_in`]).
///
/// # Errors
///
/// A path that is neither a project nor a component file, a component that does not
/// validate, a dependency cycle (naming every project on it), and every build or pull error
/// of a dependency, with the dependency's name as context.
pub fn resolve(
    shell: &Shell,
    settings: &BuildSettings,
    stack: &mut Stack,
) -> anyhow::Result<Vec<Resolved>> {
    let project = &settings.project;
    let mut resolved = Vec::with_capacity(project.manifest.dependencies.len());
    for (name, dependency) in &project.manifest.dependencies {
        let one = resolve_one(shell, settings, name, dependency.get_ref(), stack)
            .with_context(|| format!("cannot resolve dependency `{name}`"))?;
        resolved.push(one);
    }
    Ok(resolved)
}

fn resolve_one(
    shell: &Shell,
    settings: &BuildSettings,
    name: &str,
    dependency: &Dependency,
    stack: &mut Stack,
) -> anyhow::Result<Resolved> {
    let root = &settings.project.root;
    let (source, bytes, manifest_digest) = match dependency {
        Dependency::Path(path) => {
            let full = root.join(path);
            let bytes = if full.is_dir() {
                build_sibling(shell, settings, &full, stack)?
            } else if full.is_file() {
                fs_err::read(&full)?
            } else {
                return Err(hinted(
                    format!("`{}` does not exist", full.display()),
                    "`path` names a kiln project's directory or a component (`.wasm`) file, relative to the project",
                ));
            };
            (format!("path:{path}"), bytes, None)
        }
        Dependency::Reference(text) => {
            let reference: Reference = text.parse()?;
            let (pulled, _) = crate::ops::sign::fetch(
                shell,
                &reference,
                &RegistryArgs {
                    dependency: true,
                    ..RegistryArgs::default()
                },
                &VerifyArgs::default(),
            )?;
            (
                format!("oci:{reference}"),
                pulled.bytes.to_vec(),
                Some(pulled.digest),
            )
        }
    };
    kiln_componentize::validate_component(&bytes)
        .with_context(|| format!("`{name}` is not a valid component"))?;
    let version = kiln_componentize::inspect(&bytes)
        .ok()
        .and_then(|i| i.metadata.version);
    Ok(Resolved {
        name: name.to_string(),
        source,
        digest: format!("sha256:{}", crate::ops::build::sha256_hex(&bytes)),
        bytes,
        manifest_digest,
        version,
    })
}

/// Builds the kiln project at `dir` in the profile of `settings` and returns its component.
fn build_sibling(
    shell: &Shell,
    settings: &BuildSettings,
    dir: &Path,
    stack: &mut Stack,
) -> anyhow::Result<Vec<u8>> {
    let key = canonical(dir);
    if let Some(at) = stack.visiting.iter().position(|p| *p == key) {
        let cycle: Vec<String> = stack.visiting[at..]
            .iter()
            .chain(std::iter::once(&key))
            .map(|p| format!("`{}`", p.display()))
            .collect();
        anyhow::bail!("dependency cycle: {}", cycle.join(" -> "));
    }
    let project = Project::at(key)?;
    let mut sibling =
        BuildSettings::for_project(project, settings.profile, settings.no_optimize, Vec::new());
    // `--locked`/`--offline` hold for the whole build.
    sibling.wit = settings.wit;
    let artifact = crate::ops::build::build_project_in(shell, &sibling, stack)?;
    Ok(fs_err::read(&artifact.path)?)
}

/// `path` made canonical when it can be, so two spellings of one project compare equal.
pub fn canonical(path: &Path) -> PathBuf {
    fs_err::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Plugs `dependencies` into `component`, reporting what each provides (`-v`) and what stays
/// a host import; returns the composed component with its record of what it was made from.
///
/// # Errors
///
/// The composition errors of [`kiln_componentize::plug`]: mismatched types, two providers
/// for one import, a dependency that provides nothing.
pub fn compose(
    shell: &Shell,
    component: &[u8],
    dependencies: &[Resolved],
) -> anyhow::Result<(Vec<u8>, Vec<ComposedFrom>)> {
    let plugs: Vec<Plug<'_>> = dependencies
        .iter()
        .map(|d| Plug {
            name: &d.name,
            bytes: &d.bytes,
        })
        .collect();
    let composed = kiln_componentize::plug(component, &plugs)?;
    for (import, dependency) in &composed.plugged {
        shell.verbose_status("Plugged", format_args!("{import} from `{dependency}`"));
    }
    for import in &composed.host_imports {
        shell.verbose_status("Host import", import);
    }
    let from = dependencies
        .iter()
        .map(|d| ComposedFrom {
            name: d.name.clone(),
            source: d.source.clone(),
            version: d.version.clone(),
            digest: d.digest.clone(),
            manifest_digest: d.manifest_digest.clone(),
            provides: composed
                .plugged
                .iter()
                .filter(|(_, by)| *by == d.name)
                .map(|(import, _)| import.clone())
                .collect(),
        })
        .collect();
    Ok((composed.bytes, from))
}
