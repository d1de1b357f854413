//! Bundled files (`[[bundle]]` in Kiln.toml, `kiln build --bundle SRC:MOUNT`): walking the
//! source directories, refusing what cannot be bundled, and packing the archive the vfs
//! serves (format: the `kiln-vfs-archive` crate).
//!
//! The walk records names, sizes and modification times only, so that a fresh build can
//! tell from [`Bundle::stamp`] that nothing changed without reading a byte; contents are read
//! when the archive is packed.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// The vfs core module (built from `vfs/component` by `vfs/build.sh`), into which the archive
/// is embedded at build time.
pub const VFS_MODULE: &[u8] = include_bytes!("../../../vfs/kiln_vfs.wasm");

/// One `[[bundle]]` entry or `--bundle` flag, resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleSource {
    /// The host directory whose contents are bundled.
    pub source: PathBuf,
    /// Where the guest sees it: an absolute, normalized path like `/assets`.
    pub mount: String,
    /// Whether `source` may lie outside the project root (`external = true` in Kiln.toml;
    /// always for `--bundle`, which the user typed). Otherwise [`Bundle::collect`] refuses a
    /// source that resolves, through symlinks too, to a directory outside the root.
    pub external: bool,
}

impl BundleSource {
    /// Parses `--bundle SRC:MOUNT` (the last `:` separates them); `SRC` is relative to `cwd`.
    ///
    /// # Errors
    ///
    /// A value without `:`, or with an empty side.
    pub fn parse_flag(value: &str, cwd: &Path) -> anyhow::Result<BundleSource> {
        match value.rsplit_once(':') {
            Some((source, mount)) if !source.is_empty() && !mount.is_empty() => Ok(BundleSource {
                source: cwd.join(source),
                mount: mount.to_string(),
                external: true,
            }),
            _ => bail!("`--bundle {value}` is not `SRC:MOUNT` (for example `assets:/assets`)"),
        }
    }
}

/// What a bundled path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Directory,
    File,
}

/// One file or directory found in a bundle source.
#[derive(Debug, Clone)]
struct Entry {
    /// `/`-separated path inside the mount.
    relative: String,
    /// Where it is read from (symlinks inside the source already resolved).
    host: PathBuf,
    kind: Kind,
    size: u64,
    mtime_ns: u128,
}

/// The files of `mounts`, as (host path, guest path) pairs.
fn files_in<'a>(
    mounts: impl Iterator<Item = &'a Mount>,
) -> impl Iterator<Item = (&'a Path, String)> {
    mounts.flat_map(|m| {
        m.entries
            .iter()
            .filter(|e| e.kind == Kind::File)
            .map(move |e| {
                (
                    e.host.as_path(),
                    format!("{}/{}", m.path.trim_end_matches('/'), e.relative),
                )
            })
    })
}

/// The walked bundle sources, ready to be stamped or packed.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    mounts: Vec<Mount>,
}

/// One walked source.
#[derive(Debug, Clone)]
struct Mount {
    /// The guest path.
    path: String,
    entries: Vec<Entry>,
    /// The source's resolved directory when it lies outside the project (`external`).
    outside: Option<PathBuf>,
}

impl Bundle {
    /// Walks every source. Symlinks are followed when they stay inside their source. A source
    /// that is not `external` must resolve to a directory inside `project_root`.
    ///
    /// # Errors
    ///
    /// Naming the path: a source that is not a directory, a mount that is not an absolute
    /// normalized path, two bundles at one mount (or one inside another), a symlink leading
    /// out of its source, a special file (FIFO, socket, device), a name that is not UTF-8.
    pub fn collect(sources: &[BundleSource], project_root: &Path) -> anyhow::Result<Bundle> {
        let project_root = fs_err::canonicalize(project_root)?;
        let mut checker = kiln_vfs_archive::ArchiveBuilder::new();
        let mut mounts = Vec::new();
        for (i, bundle) in sources.iter().enumerate() {
            if let Some(other) = sources[..i].iter().find(|o| o.mount == bundle.mount) {
                bail!(
                    "two bundles at mount `{}`: `{}` and `{}`",
                    bundle.mount,
                    other.source.display(),
                    bundle.source.display()
                );
            }
            checker
                .mount(&bundle.mount)
                .with_context(|| format!("cannot bundle `{}`", bundle.source.display()))?;
            let root = fs_err::canonicalize(&bundle.source)
                .with_context(|| format!("cannot bundle `{}`", bundle.source.display()))?;
            if !root.is_dir() {
                bail!(
                    "cannot bundle `{}`: it is not a directory",
                    bundle.source.display()
                );
            }
            let outside = !root.starts_with(&project_root);
            if outside && !bundle.external {
                return Err(crate::errors::hinted(
                    format!(
                        "cannot bundle `{}`: it resolves to `{}`, outside the project",
                        bundle.source.display(),
                        root.display()
                    ),
                    "what is bundled is shipped by `kiln publish`; set `external = true` in this \
                     `[[bundle]]` to allow a source outside the project",
                ));
            }
            let mut entries = Vec::new();
            walk(
                &bundle.source,
                &root,
                &root,
                "",
                &mut vec![root.clone()],
                &mut entries,
            )?;
            mounts.push(Mount {
                path: bundle.mount.clone(),
                entries,
                outside: outside.then_some(root),
            });
        }
        Ok(Bundle { mounts })
    }

    /// Whether any files or directories are bundled at all (an empty mount still counts).
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The number of bundled files.
    pub fn file_count(&self) -> usize {
        self.entries().filter(|e| e.kind == Kind::File).count()
    }

    /// The total size of the bundled files, in bytes.
    pub fn total_size(&self) -> u64 {
        self.entries()
            .fold(0u64, |sum, e| sum.saturating_add(e.size))
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.mounts.iter().flat_map(|m| &m.entries)
    }

    /// The files bundled from sources outside the project (`external = true`), as
    /// (host path, guest path) pairs, for `-v`.
    pub fn outside_files(&self) -> impl Iterator<Item = (&Path, String)> {
        files_in(self.mounts.iter().filter(|m| m.outside.is_some()))
    }

    /// Every bundled file, as (host path, guest path) pairs, mount by mount.
    pub fn files(&self) -> impl Iterator<Item = (&Path, String)> {
        files_in(self.mounts.iter())
    }

    /// A digest of every mount, path, kind, size and modification time: it changes when the
    /// bundle would, without reading any contents.
    pub fn stamp(&self) -> String {
        let mut hasher = Sha256::new();
        for Mount {
            path: mount,
            entries,
            ..
        } in &self.mounts
        {
            hasher.update(format!("mount {mount}\n"));
            for e in entries {
                hasher.update(format!(
                    "{:?} {} {} {}\n",
                    e.kind, e.relative, e.size, e.mtime_ns
                ));
            }
        }
        hex::encode(hasher.finalize())
    }

    /// Reads every file and packs the archive.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, or an archive past 4 GiB.
    pub fn archive(&self) -> anyhow::Result<Vec<u8>> {
        let mut builder = kiln_vfs_archive::ArchiveBuilder::new();
        for Mount {
            path: mount,
            entries,
            ..
        } in &self.mounts
        {
            builder.mount(mount)?;
            for e in entries {
                match e.kind {
                    Kind::Directory => builder.add_dir(mount, &e.relative)?,
                    Kind::File => builder.add_file(mount, &e.relative, fs_err::read(&e.host)?)?,
                }
            }
        }
        Ok(builder.build()?)
    }
}

/// Walks `dir` (reached as `shown` for messages), adding what it holds under `prefix`.
/// `stack` holds the canonical directories being walked, to refuse symlink loops.
fn walk(
    shown: &Path,
    root: &Path,
    dir: &Path,
    prefix: &str,
    stack: &mut Vec<PathBuf>,
    entries: &mut Vec<Entry>,
) -> anyhow::Result<()> {
    let mut children: Vec<_> = fs_err::read_dir(dir)?.collect::<Result<_, _>>()?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let name = child.file_name();
        let shown_child = shown.join(&name);
        let Some(name) = name.to_str() else {
            bail!(
                "cannot bundle `{}`: its name is not UTF-8",
                shown_child.display()
            );
        };
        let relative = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let mut host = child.path();
        let mut meta = fs_err::symlink_metadata(&host)?;
        if meta.file_type().is_symlink() {
            let target = std::fs::canonicalize(&host).with_context(|| {
                format!(
                    "cannot bundle `{}`: it is a symlink to a missing file",
                    shown_child.display()
                )
            })?;
            if !target.starts_with(root) {
                bail!(
                    "cannot bundle `{}`: it is a symlink leading out of `{}` (to `{}`)",
                    shown_child.display(),
                    shown.display(),
                    target.display()
                );
            }
            meta = fs_err::metadata(&target)?;
            host = target;
        }
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        if meta.is_dir() {
            let canonical = fs_err::canonicalize(&host)?;
            if stack.contains(&canonical) {
                bail!(
                    "cannot bundle `{}`: it is a symlink to a directory that contains it",
                    shown_child.display()
                );
            }
            entries.push(Entry {
                relative: relative.clone(),
                host: host.clone(),
                kind: Kind::Directory,
                size: 0,
                mtime_ns,
            });
            stack.push(canonical);
            walk(&shown_child, root, &host, &relative, stack, entries)?;
            stack.pop();
        } else if meta.is_file() {
            entries.push(Entry {
                relative,
                host,
                kind: Kind::File,
                size: meta.len(),
                mtime_ns,
            });
        } else {
            bail!(
                "cannot bundle `{}`: it is {}, not a regular file or directory",
                shown_child.display(),
                special_kind(&meta)
            );
        }
    }
    Ok(())
}

#[cfg(unix)]
fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let ty = meta.file_type();
    if ty.is_fifo() {
        "a FIFO"
    } else if ty.is_socket() {
        "a socket"
    } else if ty.is_block_device() || ty.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::Metadata) -> &'static str {
    "a special file"
}

/// Composes the vfs holding `bundle` in front of the component `guest`.
///
/// # Errors
///
/// Reading the files, and the errors of [`kiln_componentize::bundle()`] (a guest that uses
/// sockets or HTTP gets a hint).
pub fn compose(guest: &[u8], bundle: &Bundle) -> anyhow::Result<Vec<u8>> {
    let archive = bundle.archive()?;
    kiln_componentize::bundle(guest, VFS_MODULE, &archive).map_err(|e| match e {
        kiln_componentize::Error::Bundle(
            shares @ kiln_componentize::BundleError::SharesStreams { .. },
        ) => crate::errors::hinted(
            shares.to_string(),
            "a guest that uses sockets or HTTP cannot take bundled files yet; \
             grant the files at run time with `kiln run --dir HOST::GUEST` instead",
        ),
        other => other.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_flag() {
        let cwd = Path::new("/p");
        let b = BundleSource::parse_flag("assets:/assets", cwd).unwrap();
        assert_eq!(b.source, Path::new("/p/assets"));
        assert_eq!(b.mount, "/assets");
        let b = BundleSource::parse_flag("C:/x:/data", cwd).unwrap();
        assert_eq!(b.mount, "/data");
        assert!(BundleSource::parse_flag("assets", cwd).is_err());
        assert!(BundleSource::parse_flag(":/a", cwd).is_err());
    }
}
