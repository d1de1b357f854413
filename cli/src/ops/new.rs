//! `kiln new` and `kiln templates`: scaffold a project from an embedded template.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::errors::hinted;
use crate::shell::Shell;
use crate::templates::{self, PlannedFile};

/// Resolved `kiln new` settings.
#[derive(Debug, Clone)]
pub struct NewOptions {
    /// The directory to create (or fill, with `force`).
    pub path: PathBuf,
    /// The template id.
    pub template: String,
    /// The component name; the directory's name when `None`.
    pub name: Option<String>,
    /// Write into a non-empty directory, overwriting the files the template creates.
    pub force: bool,
}

/// Scaffolds a project. Everything is rendered and checked before the first file is written.
///
/// # Errors
///
/// An unknown template, an invalid name, a non-empty destination without `force`, or a
/// destination path that leads through a symbolic link.
pub fn new(shell: &Shell, opts: &NewOptions) -> anyhow::Result<()> {
    let all = templates::all()?;
    let Some(template) = all.iter().find(|t| t.id == opts.template) else {
        let ids: Vec<_> = all.iter().map(|t| t.id).collect();
        return Err(hinted(
            format!("unknown template `{}`", opts.template),
            format!(
                "available templates: {} (see `kiln templates`)",
                ids.join(", ")
            ),
        ));
    };
    let name = match &opts.name {
        Some(name) => name.clone(),
        None => default_name(&opts.path)?,
    };
    if let Err(why) = crate::manifest::validate_name(&name) {
        let hint = if opts.name.is_some() {
            "choose another `--name`".to_string()
        } else {
            format!(
                "the name comes from the directory; pass `--name <name>` to create `{}` under another name",
                opts.path.display()
            )
        };
        return Err(hinted(why, hint));
    }

    let plan = template.render(&templates::RenderContext::new(&name))?;
    check_destination(&opts.path, &plan, opts.force)?;
    for file in &plan {
        crate::fsutil::write_atomic(&opts.path.join(&file.path), &file.contents)?;
    }
    shell.emit(crate::messages::ProjectCreated {
        template: template.id.to_string(),
        language: template.language.to_string(),
        name,
        path: opts.path.clone(),
    });
    Ok(())
}

/// The component name implied by the destination's last component.
fn default_name(path: &Path) -> anyhow::Result<String> {
    let absolute =
        std::path::absolute(path).with_context(|| format!("invalid path `{}`", path.display()))?;
    let normalized: PathBuf = absolute.components().collect();
    let name = normalized
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| {
            format!(
                "cannot take a component name from `{}`; pass `--name`",
                path.display()
            )
        })?;
    Ok(name.to_string())
}

/// Refuses a destination that is a file, a non-empty directory (without `force`), or one
/// where writing a planned file would follow a symbolic link.
fn check_destination(root: &Path, plan: &[PlannedFile], force: bool) -> anyhow::Result<()> {
    match fs_err::symlink_metadata(root) {
        Err(_) => return Ok(()), // created on write
        Ok(meta) if meta.file_type().is_symlink() && !root.is_dir() => {
            bail!(
                "destination `{}` is a symbolic link to something that is not a directory",
                root.display()
            )
        }
        Ok(_) if !root.is_dir() => bail!(
            "destination `{}` exists and is not a directory",
            root.display()
        ),
        Ok(_) => {}
    }
    let non_empty = fs_err::read_dir(root)?.next().is_some();
    if non_empty && !force {
        return Err(hinted(
            format!("destination `{}` is not empty", root.display()),
            "pass `--force` to write into it anyway (files the template creates are overwritten; others are kept)",
        ));
    }
    for file in plan {
        let mut at = root.to_path_buf();
        for component in file.path.components() {
            at.push(component);
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => bail!(
                    "refusing to write `{}`: `{}` is a symbolic link, and template files never follow links",
                    file.path.display(),
                    at.display()
                ),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    Ok(())
}

/// `kiln templates`: one row per template.
pub fn list(shell: &Shell) -> anyhow::Result<()> {
    let all = templates::all()?;
    let width = all.iter().map(|t| t.id.len()).max().unwrap_or(0);
    for t in &all {
        shell.emit(crate::messages::Template {
            id: t.id.to_string(),
            language: t.language.to_string(),
            description: t.description.to_string(),
            width,
        });
    }
    Ok(())
}
