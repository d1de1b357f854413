//! Kiln.toml's `[wit-dependencies]`: WIT packages from a path, laid out where the bindings
//! generators look — `wit/deps/<namespace>-<package>/` under the project, the layout
//! wit-bindgen, cargo and `wkg wit fetch` share, and what kiln's C and Go bindings read
//! through `[build] world` (a directory's `deps/`).
//!
//! Each package is checked to parse as WIT, and to be the package its key names, before
//! anything is written; a file is rewritten only when its contents change, so an unchanged
//! dependency leaves the project's sources (and cargo's fingerprints) alone.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::manifest::Project;
use crate::shell::Shell;

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
pub fn lay_out(shell: &Shell, project: &Project) -> anyhow::Result<()> {
    for (name, dependency) in &project.manifest.wit_dependencies {
        let source = project.root.join(&dependency.get_ref().path);
        let files = wit_files(&source)
            .with_context(|| format!("WIT dependency `{name}` (`{}`)", source.display()))?;
        check_package(name, &source)
            .with_context(|| format!("WIT dependency `{name}` (`{}`)", source.display()))?;
        let dir = project
            .root
            .join(DEPS_DIR)
            .join(name.replace([':', '/', '@'], "-"));
        let mut changed = false;
        fs_err::create_dir_all(&dir)?;
        for file in &files {
            let Some(file_name) = file.file_name() else {
                continue;
            };
            let contents = fs_err::read(file)?;
            let target = dir.join(file_name);
            if std::fs::read(&target).ok().as_deref() != Some(&contents[..]) {
                crate::fsutil::write_atomic(&target, &contents)?;
                changed = true;
            }
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
    Ok(())
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
