//! The archive of bundled files (`[[bundle]]` in Kiln.toml): the index and contents that kiln
//! writes into a data segment of the vfs component, and that the vfs serves from linear memory
//! without copying.
//!
//! [`ArchiveBuilder`] writes it; [`Archive`] reads it, checking every offset once, up front, so
//! a reader never indexes out of bounds afterwards.
//!
//! # Format (version 1)
//!
//! All integers are little-endian `u32`; offsets are from the start of the archive, so the
//! archive may sit anywhere in memory. Names are UTF-8 path components (no `/`, not `.` or
//! `..`, not empty).
//!
//! ```text
//! header   (40 bytes)  magic "KILNVFS\0", version = 1, node_count, mount_count,
//!                      names_offset, names_len, data_offset, total_len, reserved = 0
//! nodes    (node_count × 24 bytes)  name_offset, name_len (into names), kind (0 directory,
//!                      1 file), parent, a, b
//!                      directory: a = index of its first child, b = number of children;
//!                      file:      a = offset of its contents, b = size in bytes
//! mounts   (mount_count × 12 bytes)  path_offset, path_len (into names), node (a directory)
//! names    (names_len bytes)
//! data     file contents, each starting on a 16-byte boundary
//! ```
//!
//! Every mount has its own directory node (the first `mount_count` nodes, in mount order).
//! Nodes are numbered breadth-first, so a directory's children are contiguous and sorted by
//! name (byte order): a lookup is a binary search per path component. A mount's directory is
//! its own parent, which is how `..` stays at the root.
//!
//! # What [`Archive::parse`] proves
//!
//! An archive comes from a component, which may come from anyone, so the reader trusts none
//! of it. Besides every offset and size, `parse` checks that the nodes form a forest of
//! trees, one per mount: each mount's directory is its own parent; every other node's parent
//! is a directory with a smaller index whose child range holds it, and every node in a
//! directory's child range names that directory as its parent (so child ranges are disjoint,
//! and following parents always ends at a mount: there are no cycles). Names are valid and
//! strictly sorted within a directory, mounts are normalized, sorted and do not nest, and no
//! path is longer than [`MAX_PATH_LEN`] bytes. A walk over a parsed archive therefore visits
//! each node once, and a path built on the way is bounded; `parse` itself is linear in the
//! archive's size.

#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;

/// The first 8 bytes of an archive.
pub const MAGIC: &[u8; 8] = b"KILNVFS\0";
/// The format version this crate reads and writes.
pub const VERSION: u32 = 1;
const HEADER_LEN: usize = 40;
const NODE_LEN: usize = 24;
const MOUNT_LEN: usize = 12;
const DATA_ALIGN: usize = 16;
/// The longest path an archive may hold, in bytes: a mount's path and the names below it,
/// joined by `/` (`/assets/css/site.css`). Linux's `PATH_MAX`.
pub const MAX_PATH_LEN: usize = 4096;

/// Why an archive could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveError {
    /// A mount path is not absolute and normalized (`/assets`, `/data/images`).
    BadMount(String),
    /// Two bundles at one mount, or one mount inside another.
    MountConflict(String, String),
    /// A path component that cannot be a file name.
    BadName(String),
    /// A path added twice, or a file where a directory is needed.
    Conflict(String),
    /// A path longer than [`MAX_PATH_LEN`] bytes.
    PathTooLong(String),
    /// The archive would pass 4 GiB (the format's offsets are 32-bit, like wasm32 memory).
    TooLarge,
    /// Not an archive, or a damaged one.
    Malformed(&'static str),
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMount(m) => write!(
                f,
                "mount `{m}` is not an absolute, normalized path like `/assets`"
            ),
            Self::MountConflict(a, b) => write!(f, "mounts `{a}` and `{b}` overlap"),
            Self::BadName(n) => write!(f, "`{n}` cannot be a file name"),
            Self::Conflict(p) => write!(f, "`{p}` is added twice, or both a file and a directory"),
            Self::PathTooLong(p) => write!(
                f,
                "`{p}` is longer than {MAX_PATH_LEN} bytes, the longest path a bundle may hold"
            ),
            Self::TooLarge => f.write_str("the bundled files exceed 4 GiB"),
            Self::Malformed(why) => write!(f, "not a valid bundle archive: {why}"),
        }
    }
}

impl std::error::Error for ArchiveError {}

#[derive(Debug, Default)]
struct DirEntry {
    children: BTreeMap<String, Entry>,
}

#[derive(Debug)]
enum Entry {
    Dir(DirEntry),
    File(Vec<u8>),
}

/// Collects mounts, directories and files, then writes the archive.
#[derive(Debug, Default)]
pub struct ArchiveBuilder {
    mounts: BTreeMap<String, DirEntry>,
}

fn is_valid_name(name: &str) -> bool {
    // Byte loops rather than `str` patterns: the vfs guest parses archives too, and this
    // keeps its code small.
    !(name.is_empty() || name == "." || name == ".." || name.bytes().any(|b| b == b'/' || b == 0))
}

fn check_name(name: &str) -> Result<(), ArchiveError> {
    if !is_valid_name(name) {
        return Err(ArchiveError::BadName(name.to_string()));
    }
    Ok(())
}

/// `/assets`, `/data/images`: absolute, no empty, `.` or `..` components, not `/` itself.
fn is_normalized_mount(path: &str) -> bool {
    path.len() > 1
        && path.starts_with('/')
        && path.as_bytes()[1..]
            .split(|b| *b == b'/')
            .all(|c| std::str::from_utf8(c).is_ok_and(is_valid_name))
}

/// Refuses `mount/relative` when it would be longer than [`MAX_PATH_LEN`].
fn check_path_len(mount: &str, parts: &[&str]) -> Result<(), ArchiveError> {
    let len = parts
        .iter()
        .fold(mount.len(), |n, p| n.saturating_add(p.len() + 1));
    if len > MAX_PATH_LEN {
        return Err(ArchiveError::PathTooLong(format!(
            "{mount}/{}",
            parts.join("/")
        )));
    }
    Ok(())
}

impl ArchiveBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an empty mount at `path` (e.g. `/assets`).
    ///
    /// # Errors
    ///
    /// [`ArchiveError::BadMount`] for a relative or unnormalized path or `/`;
    /// [`ArchiveError::MountConflict`] when it equals, contains or lies inside another mount.
    pub fn mount(&mut self, path: &str) -> Result<(), ArchiveError> {
        if !is_normalized_mount(path) {
            return Err(ArchiveError::BadMount(path.to_string()));
        }
        if path.len() > MAX_PATH_LEN {
            return Err(ArchiveError::PathTooLong(path.to_string()));
        }
        for other in self.mounts.keys() {
            let inside = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
            if inside(path, other) || inside(other, path) {
                return Err(ArchiveError::MountConflict(other.clone(), path.to_string()));
            }
        }
        self.mounts.insert(path.to_string(), DirEntry::default());
        Ok(())
    }

    fn dir_at(&mut self, mount: &str, parents: &[&str]) -> Result<&mut DirEntry, ArchiveError> {
        let mut dir = self
            .mounts
            .get_mut(mount)
            .ok_or_else(|| ArchiveError::BadMount(mount.to_string()))?;
        for (i, name) in parents.iter().enumerate() {
            check_name(name)?;
            let entry = dir
                .children
                .entry((*name).to_string())
                .or_insert_with(|| Entry::Dir(DirEntry::default()));
            dir = match entry {
                Entry::Dir(d) => d,
                Entry::File(_) => {
                    return Err(ArchiveError::Conflict(format!(
                        "{mount}/{}",
                        parents[..=i].join("/")
                    )));
                }
            };
        }
        Ok(dir)
    }

    /// Adds a directory at `relative` (`/`-separated, inside `mount`), with its parents.
    ///
    /// # Errors
    ///
    /// An unknown mount, a bad name, or a file already at that path.
    pub fn add_dir(&mut self, mount: &str, relative: &str) -> Result<(), ArchiveError> {
        let parts: Vec<&str> = relative.split('/').filter(|p| !p.is_empty()).collect();
        check_path_len(mount, &parts)?;
        self.dir_at(mount, &parts).map(|_| ())
    }

    /// Adds a file at `relative` (`/`-separated, inside `mount`), creating its parents.
    ///
    /// # Errors
    ///
    /// An unknown mount, a bad name, or anything already at that path.
    pub fn add_file(
        &mut self,
        mount: &str,
        relative: &str,
        contents: Vec<u8>,
    ) -> Result<(), ArchiveError> {
        let parts: Vec<&str> = relative.split('/').filter(|p| !p.is_empty()).collect();
        let Some((name, parents)) = parts.split_last() else {
            return Err(ArchiveError::BadName(relative.to_string()));
        };
        check_path_len(mount, &parts)?;
        check_name(name)?;
        let dir = self.dir_at(mount, parents)?;
        if dir.children.contains_key(*name) {
            return Err(ArchiveError::Conflict(format!("{mount}/{relative}")));
        }
        dir.children
            .insert((*name).to_string(), Entry::File(contents));
        Ok(())
    }

    /// Writes the archive.
    ///
    /// # Errors
    ///
    /// [`ArchiveError::TooLarge`] past 4 GiB.
    pub fn build(&self) -> Result<Vec<u8>, ArchiveError> {
        // Breadth-first, so each directory's children get contiguous indices.
        let mut nodes: Vec<(String, u32, usize, Option<&Entry>)> = Vec::new();
        let mut dirs: Vec<(usize, &DirEntry)> = Vec::new();
        for (mount, dir) in &self.mounts {
            let index = nodes.len();
            nodes.push((mount.clone(), 0, index, None));
            dirs.push((index, dir));
        }
        let mut first_child = vec![(0usize, 0usize); nodes.len()];
        let mut queue: std::collections::VecDeque<(usize, &DirEntry)> = dirs.into();
        while let Some((index, dir)) = queue.pop_front() {
            let start = nodes.len();
            for (name, entry) in &dir.children {
                let kind = match entry {
                    Entry::Dir(_) => 0,
                    Entry::File(_) => 1,
                };
                nodes.push((name.clone(), kind, index, Some(entry)));
                first_child.push((0, 0));
            }
            first_child[index] = (start, dir.children.len());
            for (offset, entry) in dir.children.values().enumerate() {
                if let Entry::Dir(child) = entry {
                    queue.push_back((start + offset, child));
                }
            }
        }

        let mut names = Vec::new();
        let mut name_at = |text: &str| {
            let offset = names.len();
            names.extend_from_slice(text.as_bytes());
            (offset, text.len())
        };
        let node_names: Vec<(usize, usize)> = nodes
            .iter()
            .map(|(name, kind, _, entry)| {
                // A mount's directory node is named by its last component.
                if entry.is_none() && *kind == 0 {
                    name_at(name.rsplit('/').next().unwrap_or(name))
                } else {
                    name_at(name)
                }
            })
            .collect();
        let mount_paths: Vec<(usize, usize)> = self.mounts.keys().map(|m| name_at(m)).collect();

        let nodes_offset = HEADER_LEN;
        let mounts_offset = nodes_offset + nodes.len() * NODE_LEN;
        let names_offset = mounts_offset + self.mounts.len() * MOUNT_LEN;
        let data_offset = (names_offset + names.len()).next_multiple_of(DATA_ALIGN);
        let mut data = Vec::new();
        let mut file_at = vec![(0usize, 0usize); nodes.len()];
        for (i, (_, _, _, entry)) in nodes.iter().enumerate() {
            if let Some(Entry::File(contents)) = entry {
                let start = data.len().next_multiple_of(DATA_ALIGN);
                data.resize(start, 0);
                data.extend_from_slice(contents);
                file_at[i] = (data_offset + start, contents.len());
            }
        }
        let total = data_offset + data.len();
        if u32::try_from(total).is_err() {
            return Err(ArchiveError::TooLarge);
        }
        let u = |n: usize| (n as u32).to_le_bytes();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(MAGIC);
        for field in [
            VERSION as usize,
            nodes.len(),
            self.mounts.len(),
            names_offset,
            names.len(),
            data_offset,
            total,
            0,
        ] {
            out.extend_from_slice(&u(field));
        }
        for (i, (_, kind, parent, _)) in nodes.iter().enumerate() {
            let (name_offset, name_len) = node_names[i];
            let (a, b) = if *kind == 0 {
                first_child[i]
            } else {
                file_at[i]
            };
            for field in [name_offset, name_len, *kind as usize, *parent, a, b] {
                out.extend_from_slice(&u(field));
            }
        }
        for (i, (path_offset, path_len)) in mount_paths.iter().enumerate() {
            for field in [*path_offset, *path_len, i] {
                out.extend_from_slice(&u(field));
            }
        }
        out.extend_from_slice(&names);
        out.resize(data_offset, 0);
        out.extend_from_slice(&data);
        Ok(out)
    }
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory.
    Directory,
    /// A regular file.
    File,
}

/// One file or directory in an [`Archive`]. Only an archive hands them out, so a node is
/// always in range for the archive it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Node(u32);

impl Node {
    /// Its index in the archive's node table (stable: usable as an inode number).
    pub fn index(self) -> u32 {
        self.0
    }
}

/// A validated, borrowed archive.
#[derive(Debug, Clone, Copy)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    node_count: usize,
    mount_count: usize,
    names_offset: usize,
}

/// The little-endian `u32` at `at`; 0 past the end (`parse` checks every range it reads, so a
/// parsed archive never gets there, but a reader must not panic should a check be missing).
fn read_u32(bytes: &[u8], at: usize) -> u32 {
    at.checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

impl<'a> Archive<'a> {
    /// Checks `bytes` (every offset, size, name and child range, and that the nodes form one
    /// tree per mount; see the [crate docs](crate)) and wraps them. Linear in `bytes.len()`.
    ///
    /// # Errors
    ///
    /// [`ArchiveError::Malformed`] saying what is wrong.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ArchiveError> {
        use ArchiveError::Malformed;
        if bytes.len() < HEADER_LEN || bytes.get(..8) != Some(MAGIC.as_slice()) {
            return Err(Malformed("no KILNVFS header"));
        }
        let field = |i: usize| read_u32(bytes, 8 + 4 * i) as usize;
        if field(0) != VERSION as usize {
            return Err(Malformed("unknown version"));
        }
        let (node_count, mount_count, names_offset, names_len, data_offset, total) =
            (field(1), field(2), field(3), field(4), field(5), field(6));
        let mounts_offset = node_count
            .checked_mul(NODE_LEN)
            .and_then(|n| n.checked_add(HEADER_LEN))
            .ok_or(Malformed("node count overflows"))?;
        let expected_names = mount_count
            .checked_mul(MOUNT_LEN)
            .and_then(|n| n.checked_add(mounts_offset));
        if expected_names != Some(names_offset)
            || names_offset
                .checked_add(names_len)
                .is_none_or(|end| end > data_offset)
            || data_offset > total
            || total != bytes.len()
        {
            return Err(Malformed("section offsets do not fit"));
        }
        if mount_count > node_count {
            return Err(Malformed("more mounts than nodes"));
        }
        let archive = Self {
            bytes,
            node_count,
            mount_count,
            names_offset,
        };
        let names = bytes
            .get(names_offset..names_offset + names_len)
            .ok_or(Malformed("section offsets do not fit"))?;
        let name_at = |offset: usize, len: usize| {
            offset
                .checked_add(len)
                .and_then(|end| names.get(offset..end))
                .and_then(|name| std::str::from_utf8(name).ok())
        };
        // The length of each node's path (`/mount/a/b`), filled in index order: a node's
        // parent always comes first.
        let mut path_len = vec![0usize; node_count];
        for (m, slot) in path_len.iter_mut().enumerate().take(mount_count) {
            let base = mounts_offset + m * MOUNT_LEN;
            let (offset, len, node) = (
                read_u32(bytes, base) as usize,
                read_u32(bytes, base + 4) as usize,
                read_u32(bytes, base + 8) as usize,
            );
            let path = name_at(offset, len).ok_or(Malformed("a mount is out of range"))?;
            // Mount m's directory is node m, in mount order.
            if node != m {
                return Err(Malformed("a mount is out of range"));
            }
            if !is_normalized_mount(path) || path.len() > MAX_PATH_LEN {
                return Err(Malformed("a mount path is not normalized"));
            }
            if m > 0 && archive.mount(m - 1).0 >= path {
                return Err(Malformed("mounts are not sorted"));
            }
            // An outer mount sorts before the mounts inside it (a prefix sorts first), so
            // each of this path's parents is looked up among the mounts already checked.
            let slashes = path.bytes().enumerate().filter(|(_, b)| *b == b'/').skip(1);
            let nested = slashes.map(|(at, _)| at).any(|at| {
                let parent = &path[..at];
                let (mut lo, mut hi) = (0, m);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match archive.mount(mid).0.cmp(parent) {
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                        std::cmp::Ordering::Equal => return true,
                    }
                }
                false
            });
            if nested {
                return Err(Malformed("one mount lies inside another"));
            }
            *slot = path.len();
        }
        for i in 0..node_count {
            let [name_offset, name_len, kind, parent, a, b] = archive.raw_node(i);
            let name = name_at(name_offset, name_len)
                .ok_or(Malformed("a node's name or parent is out of range"))?;
            if !is_valid_name(name) {
                return Err(Malformed("a node's name is not a file name"));
            }
            if i < mount_count {
                if kind != 0 || parent != i {
                    return Err(Malformed("a mount's node is not its own parent directory"));
                }
            } else {
                // The parent comes first and is a directory whose children include this node.
                if parent >= i {
                    return Err(Malformed("a node's name or parent is out of range"));
                }
                let [_, _, parent_kind, _, first, count] = archive.raw_node(parent);
                if parent_kind != 0 || i < first || i - first >= count {
                    return Err(Malformed("a node is not among its parent's children"));
                }
                path_len[i] = path_len[parent] + 1 + name_len;
                if path_len[i] > MAX_PATH_LEN {
                    return Err(Malformed("a path is longer than the limit"));
                }
            }
            match kind {
                0 => {
                    let end = a
                        .checked_add(b)
                        .filter(|end| *end <= node_count)
                        .ok_or(Malformed("a node's children or contents are out of range"))?;
                    if b > 0 && (a <= i || a < mount_count) {
                        return Err(Malformed("a node's children or contents are out of range"));
                    }
                    // Every child names this directory as its parent: child ranges are
                    // disjoint, and each node is checked once over all directories that pass.
                    let mut previous: Option<&str> = None;
                    for child in a..end {
                        let [offset, len, _, child_parent, ..] = archive.raw_node(child);
                        if child_parent != i {
                            return Err(Malformed("directories share children"));
                        }
                        let child_name = name_at(offset, len)
                            .ok_or(Malformed("a node's name or parent is out of range"))?;
                        if previous.is_some_and(|p| p.as_bytes() >= child_name.as_bytes()) {
                            return Err(Malformed("a directory's entries are not sorted"));
                        }
                        previous = Some(child_name);
                    }
                }
                1 => {
                    if a < data_offset || a.checked_add(b).is_none_or(|end| end > total) {
                        return Err(Malformed("a node's children or contents are out of range"));
                    }
                }
                _ => return Err(Malformed("a node's kind is unknown")),
            }
        }
        Ok(archive)
    }

    fn raw_node(&self, i: usize) -> [usize; 6] {
        let base = i.saturating_mul(NODE_LEN).saturating_add(HEADER_LEN);
        std::array::from_fn(|f| read_u32(self.bytes, base.saturating_add(4 * f)) as usize)
    }

    fn name_str(&self, offset: usize, len: usize) -> &'a str {
        let start = self.names_offset.saturating_add(offset);
        start
            .checked_add(len)
            .and_then(|end| self.bytes.get(start..end))
            .and_then(|name| std::str::from_utf8(name).ok())
            .unwrap_or("")
    }

    /// The number of nodes (files and directories, mounts' directories included).
    pub fn node_count(&self) -> usize {
        self.node_count
    }

    /// The mounts: `(path, directory)`, sorted by path.
    pub fn mounts(&self) -> impl Iterator<Item = (&'a str, Node)> + '_ {
        (0..self.mount_count).map(move |m| self.mount(m))
    }

    /// Mount `m` (in range: the callers iterate below `mount_count`).
    fn mount(&self, m: usize) -> (&'a str, Node) {
        let base = HEADER_LEN + self.node_count * NODE_LEN + m * MOUNT_LEN;
        let path = self.name_str(
            read_u32(self.bytes, base) as usize,
            read_u32(self.bytes, base + 4) as usize,
        );
        (path, Node(read_u32(self.bytes, base + 8)))
    }

    /// A node's name (a mount's directory is named by its last component).
    pub fn name(&self, node: Node) -> &'a str {
        let [offset, len, ..] = self.raw_node(node.0 as usize);
        self.name_str(offset, len)
    }

    /// A node's kind.
    pub fn kind(&self, node: Node) -> NodeKind {
        if self.raw_node(node.0 as usize)[2] == 0 {
            NodeKind::Directory
        } else {
            NodeKind::File
        }
    }

    /// A node's parent; a mount's directory is its own parent, so `..` stays at the root.
    pub fn parent(&self, node: Node) -> Node {
        Node(self.raw_node(node.0 as usize)[3] as u32)
    }

    /// A directory's children in name order (empty for a file).
    pub fn children(&self, node: Node) -> impl Iterator<Item = Node> + use<'_> {
        let [_, _, kind, _, a, b] = self.raw_node(node.0 as usize);
        let range = if kind == 0 {
            a..a.saturating_add(b).min(self.node_count)
        } else {
            0..0
        };
        range.map(|i| Node(i as u32))
    }

    /// A file's contents (empty for a directory), borrowed from the archive.
    pub fn contents(&self, node: Node) -> &'a [u8] {
        let [_, _, kind, _, a, b] = self.raw_node(node.0 as usize);
        if kind == 1 {
            a.checked_add(b)
                .and_then(|end| self.bytes.get(a..end))
                .unwrap_or(&[])
        } else {
            &[]
        }
    }

    /// The child of `dir` named `name` (binary search), if any.
    pub fn child(&self, dir: Node, name: &str) -> Option<Node> {
        let [_, _, kind, _, a, b] = self.raw_node(dir.0 as usize);
        if kind != 0 {
            return None;
        }
        let (mut lo, mut hi) = (a, a.saturating_add(b).min(self.node_count));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name(Node(mid as u32)).as_bytes().cmp(name.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(Node(mid as u32)),
            }
        }
        None
    }

    /// Resolves `path` (`/`-separated) from `dir`: `.` stays, `..` goes to the parent and
    /// never above a mount's directory.
    pub fn resolve(&self, dir: Node, path: &str) -> Option<Node> {
        let mut node = dir;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            node = if part == ".." {
                self.parent(node)
            } else {
                self.child(node, part)?
            };
        }
        Some(node)
    }

    /// Every mount, directory and file with its full path (`/assets`, `/assets/css`,
    /// `/assets/css/site.css`), depth first in name order. Iterative, with one stack frame
    /// per directory level: [`parse`](Self::parse) bounds the depth (by [`MAX_PATH_LEN`])
    /// and proves that each node is visited once.
    pub fn walk(&self) -> Walk<'_, 'a> {
        Walk {
            archive: self,
            next_mount: 0,
            stack: Vec::new(),
            path: String::new(),
        }
    }
}

/// The iterator [`Archive::walk`] returns: `(path, node)` pairs.
#[derive(Debug)]
pub struct Walk<'w, 'a> {
    archive: &'w Archive<'a>,
    next_mount: usize,
    /// One frame per directory being listed: (next child, end of its children, the length of
    /// the directory's own path).
    stack: Vec<(usize, usize, usize)>,
    path: String,
}

impl Iterator for Walk<'_, '_> {
    type Item = (String, Node);

    fn next(&mut self) -> Option<(String, Node)> {
        let archive = self.archive;
        let descend = |stack: &mut Vec<(usize, usize, usize)>, node: Node, path_len: usize| {
            let [_, _, kind, _, a, b] = archive.raw_node(node.0 as usize);
            if kind == 0 && b > 0 {
                stack.push((a, a.saturating_add(b).min(archive.node_count), path_len));
            }
        };
        while let Some(frame) = self.stack.last_mut() {
            let (next, end, dir_len) = *frame;
            if next >= end {
                self.stack.pop();
                continue;
            }
            frame.0 = next + 1;
            let child = Node(next as u32);
            self.path.truncate(dir_len);
            self.path.push('/');
            self.path.push_str(archive.name(child));
            descend(&mut self.stack, child, self.path.len());
            return Some((self.path.clone(), child));
        }
        if self.next_mount >= archive.mount_count {
            return None;
        }
        let (path, node) = archive.mount(self.next_mount);
        self.next_mount += 1;
        self.path.clear();
        self.path.push_str(path);
        descend(&mut self.stack, node, self.path.len());
        Some((self.path.clone(), node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = ArchiveBuilder::new();
        b.mount("/assets").unwrap();
        b.mount("/data/more").unwrap();
        b.add_file("/assets", "index.html", b"<h1>hi</h1>".to_vec())
            .unwrap();
        b.add_file("/assets", "css/site.css", b"body{}".to_vec())
            .unwrap();
        b.add_file("/assets", "css/a.css", vec![0, 255, 1, 254])
            .unwrap();
        b.add_dir("/assets", "empty").unwrap();
        b.add_file("/data/more", "x", Vec::new()).unwrap();
        b.build().unwrap()
    }

    #[test]
    fn round_trip_lookup_and_listing() {
        let bytes = sample();
        let a = Archive::parse(&bytes).unwrap();
        let mounts: Vec<_> = a.mounts().map(|(p, _)| p).collect();
        assert_eq!(mounts, ["/assets", "/data/more"]);
        let (_, root) = a.mounts().next().unwrap();
        assert_eq!(a.name(root), "assets");
        let names: Vec<_> = a.children(root).map(|n| a.name(n)).collect();
        assert_eq!(names, ["css", "empty", "index.html"]);
        let css = a.resolve(root, "css/a.css").unwrap();
        assert_eq!(a.kind(css), NodeKind::File);
        assert_eq!(a.contents(css), [0, 255, 1, 254]);
        assert_eq!(
            a.contents(a.resolve(root, "./css/../index.html").unwrap()),
            b"<h1>hi</h1>"
        );
        // `..` at the root stays at the root.
        assert_eq!(
            a.resolve(root, "../../index.html"),
            a.resolve(root, "index.html")
        );
        assert_eq!(a.resolve(root, "missing"), None);
        assert_eq!(a.resolve(root, "index.html/x"), None);
        let empty = a.resolve(root, "empty").unwrap();
        assert_eq!(
            (a.kind(empty), a.children(empty).count()),
            (NodeKind::Directory, 0)
        );
        // Contents are 16-byte aligned inside the archive.
        let offset = a.contents(css).as_ptr() as usize - bytes.as_ptr() as usize;
        assert_eq!(offset % 16, 0);
    }

    #[test]
    fn refuses_bad_input() {
        let mut b = ArchiveBuilder::new();
        for bad in ["assets", "/", "/a/", "/a/../b", "/a//b", "/./a"] {
            assert!(
                matches!(b.mount(bad), Err(ArchiveError::BadMount(_))),
                "{bad}"
            );
        }
        b.mount("/a").unwrap();
        assert!(matches!(
            b.mount("/a"),
            Err(ArchiveError::MountConflict(..))
        ));
        assert!(matches!(
            b.mount("/a/b"),
            Err(ArchiveError::MountConflict(..))
        ));
        b.mount("/ab").unwrap();
        b.add_file("/a", "f", vec![1]).unwrap();
        assert!(matches!(
            b.add_file("/a", "f", vec![2]),
            Err(ArchiveError::Conflict(_))
        ));
        assert!(matches!(
            b.add_file("/a", "f/g", vec![2]),
            Err(ArchiveError::Conflict(_))
        ));
        assert!(matches!(
            b.add_file("/a", "../x", vec![]),
            Err(ArchiveError::BadName(_))
        ));
        assert!(matches!(
            b.add_file("/nope", "x", vec![]),
            Err(ArchiveError::BadMount(_))
        ));
    }

    #[test]
    fn damaged_archives_are_refused() {
        let bytes = sample();
        assert!(Archive::parse(&bytes[..bytes.len() - 1]).is_err());
        assert!(Archive::parse(b"not an archive at all, not at all").is_err());
        // Every single-byte change in the index is caught or harmless; none panics.
        let index_len = read_u32(&bytes, 8 + 4 * 5) as usize;
        for i in 8..index_len {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x80;
            if let Ok(a) = Archive::parse(&damaged) {
                for (_, root) in a.mounts() {
                    let _ = a.resolve(root, "css/a.css").map(|n| a.contents(n).len());
                    for child in a.children(root) {
                        let _ = (a.name(child), a.contents(child).len());
                    }
                }
            }
        }
    }

    /// An archive written field by field: `nodes` are (name, kind, parent, a, b), where a
    /// file's `a` is an offset into its contents (added after the names); `mounts` are paths
    /// of nodes 0, 1, ….
    fn raw(nodes: &[(&str, u32, u32, u32, u32)], mounts: &[&str]) -> Vec<u8> {
        let mut names = Vec::new();
        let mut node_names = Vec::new();
        for (name, ..) in nodes {
            node_names.push((names.len(), name.len()));
            names.extend_from_slice(name.as_bytes());
        }
        let mut mount_names = Vec::new();
        for path in mounts {
            mount_names.push((names.len(), path.len()));
            names.extend_from_slice(path.as_bytes());
        }
        let names_offset = HEADER_LEN + nodes.len() * NODE_LEN + mounts.len() * MOUNT_LEN;
        let data_offset = names_offset + names.len();
        let total = data_offset + 16;
        let mut out = MAGIC.to_vec();
        let u = |out: &mut Vec<u8>, n: usize| out.extend_from_slice(&(n as u32).to_le_bytes());
        for field in [
            1,
            nodes.len(),
            mounts.len(),
            names_offset,
            names.len(),
            data_offset,
            total,
            0,
        ] {
            u(&mut out, field);
        }
        for (i, (_, kind, parent, a, b)) in nodes.iter().enumerate() {
            let a = if *kind == 1 {
                data_offset + *a as usize
            } else {
                *a as usize
            };
            for field in [
                node_names[i].0,
                node_names[i].1,
                *kind as usize,
                *parent as usize,
                a,
                *b as usize,
            ] {
                u(&mut out, field);
            }
        }
        for (i, (offset, len)) in mount_names.iter().enumerate() {
            for field in [*offset, *len, i] {
                u(&mut out, field);
            }
        }
        out.extend_from_slice(&names);
        out.resize(total, 7);
        out
    }

    fn malformed(bytes: &[u8]) -> &'static str {
        match Archive::parse(bytes) {
            Err(ArchiveError::Malformed(why)) => why,
            other => panic!("expected a malformed archive, got {other:?}"),
        }
    }

    #[test]
    fn raw_archives_parse_like_built_ones() {
        // The helper itself: a well-formed tree passes.
        let ok = raw(
            &[
                ("m", 0, 0, 1, 2),
                ("a", 0, 0, 3, 1),
                ("b", 1, 0, 0, 4),
                ("c", 1, 1, 4, 2),
            ],
            &["/m"],
        );
        let a = Archive::parse(&ok).unwrap();
        let paths: Vec<_> = a.walk().map(|(p, _)| p).collect();
        assert_eq!(paths, ["/m", "/m/a", "/m/a/c", "/m/b"]);
    }

    #[test]
    fn directories_sharing_children_are_refused() {
        // Each level's two directories both claim the next level's two: 2^depth paths from a
        // few hundred bytes, if it were accepted.
        let depth = 20u32;
        let mut nodes = vec![("m", 0, 0, 1, 2)];
        for level in 0..depth {
            let first = 1 + 2 * level;
            let parent = if level == 0 { 0 } else { first - 2 };
            let (a, b) = if level + 1 < depth {
                (first + 2, 2)
            } else {
                (0, 0)
            };
            nodes.push(("x", 0, parent, a, b));
            nodes.push(("y", 0, parent, a, b));
        }
        assert_eq!(
            malformed(&raw(&nodes, &["/m"])),
            "directories share children"
        );
        // Overlapping ranges of two siblings.
        let overlap = raw(
            &[
                ("m", 0, 0, 1, 2),
                ("a", 0, 0, 3, 2),
                ("b", 0, 0, 3, 1),
                ("c", 1, 1, 0, 0),
                ("d", 1, 1, 0, 0),
            ],
            &["/m"],
        );
        assert_eq!(malformed(&overlap), "directories share children");
    }

    #[test]
    fn cycles_and_strays_are_refused() {
        // A directory that lists itself, or an ancestor, as its child.
        let own = raw(&[("m", 0, 0, 1, 1), ("a", 0, 0, 1, 1)], &["/m"]);
        assert_eq!(
            malformed(&own),
            "a node's children or contents are out of range"
        );
        let up = raw(&[("m", 0, 0, 1, 1), ("a", 0, 0, 0, 1)], &["/m"]);
        assert_eq!(
            malformed(&up),
            "a node's children or contents are out of range"
        );
        // A parent that comes later, or that does not list the node.
        let later = raw(
            &[("m", 0, 0, 1, 1), ("a", 0, 2, 0, 0), ("b", 0, 0, 0, 0)],
            &["/m"],
        );
        assert_eq!(malformed(&later), "directories share children");
        let after = raw(
            &[
                ("m", 0, 0, 1, 1),
                ("a", 0, 0, 2, 1),
                ("b", 0, 3, 0, 0),
                ("c", 1, 2, 0, 0),
            ],
            &["/m"],
        );
        assert_eq!(malformed(&after), "directories share children");
        let stray = raw(
            &[("m", 0, 0, 1, 1), ("a", 1, 0, 0, 0), ("b", 1, 0, 0, 0)],
            &["/m"],
        );
        assert_eq!(
            malformed(&stray),
            "a node is not among its parent's children"
        );
        // A file as a parent; a mount that is not its own parent.
        let file_parent = raw(
            &[("m", 0, 0, 1, 1), ("f", 1, 0, 0, 0), ("g", 1, 1, 0, 0)],
            &["/m"],
        );
        assert_eq!(
            malformed(&file_parent),
            "a node is not among its parent's children"
        );
        let mount = raw(&[("m", 0, 1, 0, 0), ("n", 0, 1, 0, 0)], &["/m", "/n"]);
        assert_eq!(
            malformed(&mount),
            "a mount's node is not its own parent directory"
        );
    }

    #[test]
    fn names_and_mounts_are_checked() {
        let unsorted = raw(
            &[("m", 0, 0, 1, 2), ("b", 1, 0, 0, 0), ("a", 1, 0, 0, 0)],
            &["/m"],
        );
        assert_eq!(malformed(&unsorted), "a directory's entries are not sorted");
        let twice = raw(
            &[("m", 0, 0, 1, 2), ("a", 1, 0, 0, 0), ("a", 1, 0, 0, 0)],
            &["/m"],
        );
        assert_eq!(malformed(&twice), "a directory's entries are not sorted");
        for name in ["", ".", "..", "a/b"] {
            let bad = raw(&[("m", 0, 0, 1, 1), (name, 1, 0, 0, 0)], &["/m"]);
            assert_eq!(
                malformed(&bad),
                "a node's name is not a file name",
                "{name:?}"
            );
        }
        let nested = raw(&[("a", 0, 0, 0, 0), ("b", 0, 1, 0, 0)], &["/a", "/a/b"]);
        assert_eq!(malformed(&nested), "one mount lies inside another");
        let unsorted = raw(&[("b", 0, 0, 0, 0), ("a", 0, 1, 0, 0)], &["/b", "/a"]);
        assert_eq!(malformed(&unsorted), "mounts are not sorted");
        let relative = raw(&[("a", 0, 0, 0, 0)], &["a"]);
        assert_eq!(malformed(&relative), "a mount path is not normalized");
    }

    #[test]
    fn paths_are_bounded() {
        // A chain of directories one byte deeper each time: refused past MAX_PATH_LEN.
        let depth = MAX_PATH_LEN / 2 + 1;
        let mut nodes = vec![("m", 0u32, 0u32, 1u32, 1u32)];
        for i in 1..=depth as u32 {
            let (a, b) = if (i as usize) < depth {
                (i + 1, 1)
            } else {
                (0, 0)
            };
            nodes.push(("d", 0, i - 1, a, b));
        }
        assert_eq!(
            malformed(&raw(&nodes, &["/m"])),
            "a path is longer than the limit"
        );
        let mut b = ArchiveBuilder::new();
        b.mount("/m").unwrap();
        let long = vec!["d"; depth].join("/");
        assert!(matches!(
            b.add_dir("/m", &long),
            Err(ArchiveError::PathTooLong(_))
        ));
        assert!(matches!(
            b.add_file("/m", &long, vec![]),
            Err(ArchiveError::PathTooLong(_))
        ));
        // Below the limit, a deep chain is walked without recursion.
        let ok = vec!["d"; MAX_PATH_LEN / 2 - 2].join("/");
        b.add_file("/m", &ok, b"deep".to_vec()).unwrap();
        let bytes = b.build().unwrap();
        let a = Archive::parse(&bytes).unwrap();
        let (path, node) = a.walk().last().unwrap();
        assert_eq!(
            (path.len(), a.contents(node)),
            (2 + ok.len() + 1, b"deep".as_slice())
        );
    }

    #[test]
    fn walk_lists_every_path_once() {
        let bytes = sample();
        let a = Archive::parse(&bytes).unwrap();
        let paths: Vec<_> = a.walk().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "/assets",
                "/assets/css",
                "/assets/css/a.css",
                "/assets/css/site.css",
                "/assets/empty",
                "/assets/index.html",
                "/data/more",
                "/data/more/x"
            ]
        );
    }

    #[test]
    fn many_files() {
        let mut b = ArchiveBuilder::new();
        b.mount("/m").unwrap();
        for i in 0..10_000 {
            b.add_file(
                "/m",
                &format!("d{}/f{i:05}", i % 10),
                i.to_string().into_bytes(),
            )
            .unwrap();
        }
        let bytes = b.build().unwrap();
        let a = Archive::parse(&bytes).unwrap();
        let (_, root) = a.mounts().next().unwrap();
        assert_eq!(a.children(root).count(), 10);
        let f = a.resolve(root, "d7/f01237").unwrap();
        assert_eq!(a.contents(f), b"1237");
    }
}
