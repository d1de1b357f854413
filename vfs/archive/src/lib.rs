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

fn check_name(name: &str) -> Result<(), ArchiveError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(ArchiveError::BadName(name.to_string()));
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
        let normalized = path.len() > 1
            && path.starts_with('/')
            && !path.ends_with('/')
            && path[1..].split('/').all(|c| check_name(c).is_ok());
        if !normalized {
            return Err(ArchiveError::BadMount(path.to_string()));
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

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

impl<'a> Archive<'a> {
    /// Checks `bytes` (every offset, size, name and child range) and wraps them.
    ///
    /// # Errors
    ///
    /// [`ArchiveError::Malformed`] saying what is wrong.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ArchiveError> {
        use ArchiveError::Malformed;
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
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
        let archive = Self {
            bytes,
            node_count,
            mount_count,
            names_offset,
        };
        let names = &bytes[names_offset..names_offset + names_len];
        let name_ok = |offset: usize, len: usize| {
            offset
                .checked_add(len)
                .is_some_and(|end| end <= names.len())
                && std::str::from_utf8(&names[offset..offset + len]).is_ok()
        };
        for i in 0..node_count {
            let [name_offset, name_len, kind, parent, a, b] = archive.raw_node(i);
            if !name_ok(name_offset, name_len) || parent >= node_count {
                return Err(Malformed("a node's name or parent is out of range"));
            }
            let in_range = match kind {
                0 => a.checked_add(b).is_some_and(|end| end <= node_count) && (b == 0 || a > i),
                1 => a >= data_offset && a.checked_add(b).is_some_and(|end| end <= total),
                _ => false,
            };
            if !in_range {
                return Err(Malformed("a node's children or contents are out of range"));
            }
        }
        for m in 0..mount_count {
            let base = mounts_offset + m * MOUNT_LEN;
            let (offset, len, node) = (
                read_u32(bytes, base) as usize,
                read_u32(bytes, base + 4) as usize,
                read_u32(bytes, base + 8) as usize,
            );
            if !name_ok(offset, len) || node >= node_count || archive.raw_node(node)[2] != 0 {
                return Err(Malformed("a mount is out of range"));
            }
        }
        Ok(archive)
    }

    fn raw_node(&self, i: usize) -> [usize; 6] {
        let base = HEADER_LEN + i * NODE_LEN;
        std::array::from_fn(|f| read_u32(self.bytes, base + 4 * f) as usize)
    }

    fn name_str(&self, offset: usize, len: usize) -> &'a str {
        let start = self.names_offset + offset;
        std::str::from_utf8(&self.bytes[start..start + len]).expect("checked by parse")
    }

    /// The mounts: `(path, directory)`, sorted by path.
    pub fn mounts(&self) -> impl Iterator<Item = (&'a str, Node)> + '_ {
        let mounts_offset = HEADER_LEN + self.node_count * NODE_LEN;
        (0..self.mount_count).map(move |m| {
            let base = mounts_offset + m * MOUNT_LEN;
            let path = self.name_str(
                read_u32(self.bytes, base) as usize,
                read_u32(self.bytes, base + 4) as usize,
            );
            (path, Node(read_u32(self.bytes, base + 8)))
        })
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
        let range = if kind == 0 { a..a + b } else { 0..0 };
        range.map(|i| Node(i as u32))
    }

    /// A file's contents (empty for a directory), borrowed from the archive.
    pub fn contents(&self, node: Node) -> &'a [u8] {
        let [_, _, kind, _, a, b] = self.raw_node(node.0 as usize);
        if kind == 1 {
            &self.bytes[a..a + b]
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
        let (mut lo, mut hi) = (a, a + b);
        while lo < hi {
            let mid = (lo + hi) / 2;
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
