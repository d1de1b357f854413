//! Kiln.toml workspaces: a `[workspace]` table whose `members` globs name project
//! directories built together from the root, in dependency order (a member's
//! `[dependencies]` paths that lead to other members), with their artifacts in the root's
//! `target/kiln/`. Cargo virtual workspaces are read from cargo itself (settings.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::manifest::{self, Dependency, KILN_TOML, Manifest, Project, Workspace};

/// The member directories of the workspace rooted at `root`: every directory a `members`
/// glob matches that holds a Kiln.toml or a Cargo.toml, less `exclude`, sorted, each once.
///
/// # Errors
///
/// A glob that cannot be read (checked when the manifest is parsed, so only I/O errors).
pub fn members(root: &Path, workspace: &Workspace) -> anyhow::Result<Vec<PathBuf>> {
    let excluded: Vec<PathBuf> = workspace
        .exclude
        .iter()
        .map(|e| crate::ops::compose::canonical(&root.join(e)))
        .collect();
    let mut found = Vec::new();
    for pattern in workspace.members.get_ref() {
        // The root is taken literally, the member as a pattern.
        let full = format!(
            "{}/{pattern}",
            glob::Pattern::escape(&root.to_string_lossy())
        );
        let Ok(paths) = glob::glob(&full) else {
            anyhow::bail!("`{pattern}` in `[workspace] members` is not a glob pattern");
        };
        for path in paths.flatten() {
            let is_project =
                path.join(KILN_TOML).is_file() || path.join(manifest::CARGO_TOML).is_file();
            let canonical = crate::ops::compose::canonical(&path);
            if path.is_dir()
                && is_project
                && canonical != crate::ops::compose::canonical(root)
                && !excluded.contains(&canonical)
                && !found.contains(&canonical)
            {
                found.push(canonical);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The root of the Kiln.toml workspace `dir` is a member of: the nearest directory above it
/// whose Kiln.toml has a `[workspace]` listing it.
///
/// # Errors
///
/// That Kiln.toml does not parse.
pub fn enclosing(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let canonical = crate::ops::compose::canonical(dir);
    for ancestor in canonical.ancestors().skip(1) {
        let kiln_toml = ancestor.join(KILN_TOML);
        let Ok(text) = std::fs::read_to_string(&kiln_toml) else {
            continue;
        };
        if !text.contains("workspace") {
            continue;
        }
        let manifest = Manifest::parse(&text, &kiln_toml)?;
        if let Some(workspace) = &manifest.workspace {
            if members(ancestor, workspace)?.contains(&canonical) {
                return Ok(Some(ancestor.to_path_buf()));
            }
            return Ok(None);
        }
    }
    Ok(None)
}

/// A member's name: Kiln.toml's `[package] name`, else Cargo.toml's, else its directory's.
pub fn member_name(project: &Project) -> String {
    if let Some(name) = project.manifest.name() {
        return name.to_string();
    }
    let cargo_name = std::fs::read_to_string(project.cargo_toml())
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| Some(t.get("package")?.get("name")?.as_str()?.to_string()));
    cargo_name.unwrap_or_else(|| {
        project
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// `projects` ordered so that each comes after the members its `[dependencies]` paths lead
/// to (otherwise in the given order).
///
/// # Errors
///
/// A cycle among the members, naming them.
pub fn dependency_order(projects: Vec<Project>) -> anyhow::Result<Vec<Project>> {
    let index: BTreeMap<PathBuf, usize> = projects
        .iter()
        .enumerate()
        .map(|(i, p)| (crate::ops::compose::canonical(&p.root), i))
        .collect();
    let edges: Vec<Vec<usize>> = projects
        .iter()
        .map(|p| {
            p.manifest
                .dependencies
                .values()
                .filter_map(|d| match d.get_ref() {
                    Dependency::Path(path) => {
                        index.get(&crate::ops::compose::canonical(&p.root.join(path)))
                    }
                    Dependency::Reference(_) => None,
                })
                .copied()
                .collect()
        })
        .collect();
    // 0: not visited, 1: on the current path, 2: done.
    let mut state = vec![0u8; projects.len()];
    let mut order = Vec::with_capacity(projects.len());
    for start in 0..projects.len() {
        // An explicit stack: (node, next edge to follow).
        let mut stack = vec![(start, 0usize)];
        while let Some((node, edge)) = stack.pop() {
            if edge == 0 {
                if state[node] == 2 {
                    continue;
                }
                state[node] = 1;
            }
            if let Some(&next) = edges[node].get(edge) {
                stack.push((node, edge + 1));
                match state[next] {
                    0 => stack.push((next, 0)),
                    1 => {
                        let mut cycle: Vec<String> = stack
                            .iter()
                            .map(|(n, _)| member_name(&projects[*n]))
                            .skip_while(|name| *name != member_name(&projects[next]))
                            .collect();
                        cycle.push(member_name(&projects[next]));
                        anyhow::bail!(
                            "the workspace's members depend on each other in a cycle: {}",
                            cycle.join(" -> ")
                        );
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                order.push(node);
            }
        }
    }
    let mut slots: Vec<Option<Project>> = projects.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}
