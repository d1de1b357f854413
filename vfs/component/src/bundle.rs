//! The bundled tree: read-only files and directories served from the archive in linear
//! memory, and in-memory input streams over file contents.

use std::cell::{Cell, RefCell};

use kiln_vfs_archive::{Archive, Node, NodeKind};

use crate::bindings::exports::wasi::filesystem::types::{
    DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode, MetadataHashValue,
    OpenFlags,
};

/// The upper half of every bundled node's metadata hash ("kilnvfs" and a zero byte), so a
/// hash is never all zeros and is unlikely to equal a host file's.
const HASH_TAG: u64 = u64::from_be_bytes(*b"kilnvfs\0");

/// A file or directory of the bundle.
#[derive(Clone, Copy)]
pub struct BundleNode {
    /// The archive it belongs to.
    archive: &'static Archive<'static>,
    /// The node in that archive.
    node: Node,
}

impl BundleNode {
    /// Wraps a node of `archive`.
    pub fn new(archive: &'static Archive<'static>, node: Node) -> Self {
        Self { archive, node }
    }

    /// Whether it is a directory.
    fn is_dir(self) -> bool {
        self.archive.kind(self.node) == NodeKind::Directory
    }

    /// Whether both are the same node.
    pub fn is_same(self, other: Self) -> bool {
        core::ptr::eq(self.archive, other.archive) && self.node == other.node
    }

    /// Its type: a directory or a regular file.
    pub fn descriptor_type(self) -> DescriptorType {
        if self.is_dir() {
            DescriptorType::Directory
        } else {
            DescriptorType::RegularFile
        }
    }

    /// Its stat: one link, the file size (0 for a directory), no timestamps.
    pub fn stat(self) -> DescriptorStat {
        DescriptorStat {
            type_: self.descriptor_type(),
            link_count: 1,
            size: self.archive.contents(self.node).len() as u64,
            data_access_timestamp: None,
            data_modification_timestamp: None,
            status_change_timestamp: None,
        }
    }

    /// Its metadata hash: distinct per node, never zero.
    pub fn metadata_hash(self) -> MetadataHashValue {
        MetadataHashValue {
            lower: u64::from(self.node.index()) + 1,
            upper: HASH_TAG,
        }
    }

    /// The node at `path` relative to this directory.
    ///
    /// Like [`Archive::resolve`] (`.` stays, `..` never climbs above a mount's directory), but
    /// it tells a missing entry (`no-entry`) from a file used as a directory
    /// (`not-directory`), and refuses absolute paths (`not-permitted`) and empty ones
    /// (`no-entry`).
    pub fn lookup(self, path: &str) -> Result<Self, ErrorCode> {
        if path.starts_with('/') {
            return Err(ErrorCode::NotPermitted);
        }
        if path.is_empty() {
            return Err(ErrorCode::NoEntry);
        }
        if !self.is_dir() {
            return Err(ErrorCode::NotDirectory);
        }
        let mut node = self.node;
        for part in path.split('/') {
            if self.archive.kind(node) != NodeKind::Directory {
                // A file followed by anything, even `.`, `..` or a trailing `/`.
                return Err(ErrorCode::NotDirectory);
            }
            node = match part {
                "" | "." => node,
                ".." => self.archive.parent(node),
                name => self.archive.child(node, name).ok_or(ErrorCode::NoEntry)?,
            };
        }
        Ok(Self::new(self.archive, node))
    }

    /// `open-at`: looks `path` up, refusing anything that would write (`read-only`) and a file
    /// opened as a directory (`not-directory`).
    pub fn open(
        self,
        path: &str,
        open_flags: OpenFlags,
        flags: DescriptorFlags,
    ) -> Result<Self, ErrorCode> {
        let target = self.lookup(path);
        let writes = open_flags
            .intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::EXCLUSIVE)
            || flags.intersects(DescriptorFlags::WRITE | DescriptorFlags::MUTATE_DIRECTORY);
        if writes {
            // Creating a missing file is refused as a write too; other path errors stand.
            return Err(match target {
                Ok(_) | Err(ErrorCode::NoEntry) => ErrorCode::ReadOnly,
                Err(e) => e,
            });
        }
        let target = target?;
        if open_flags.contains(OpenFlags::DIRECTORY) && !target.is_dir() {
            return Err(ErrorCode::NotDirectory);
        }
        Ok(target)
    }

    /// A file's contents; `is-directory` for a directory.
    pub fn contents(self) -> Result<&'static [u8], ErrorCode> {
        if self.is_dir() {
            Err(ErrorCode::IsDirectory)
        } else {
            Ok(self.archive.contents(self.node))
        }
    }

    /// `read`: up to `length` bytes at `offset`, and whether the end of the file was reached.
    pub fn read(self, length: u64, offset: u64) -> Result<(Vec<u8>, bool), ErrorCode> {
        let contents = self.contents()?;
        let stream = MemoryStream::new(contents, offset);
        let bytes = stream.take(length).unwrap_or_default();
        Ok((bytes.to_vec(), stream.at_end()))
    }

    /// A stream over a file's contents from `offset`.
    pub fn read_via_stream(self, offset: u64) -> Result<MemoryStream, ErrorCode> {
        Ok(MemoryStream::new(self.contents()?, offset))
    }

    /// A directory's listing; `not-directory` for a file.
    pub fn read_directory(self) -> Result<DirectoryListing, ErrorCode> {
        if !self.is_dir() {
            return Err(ErrorCode::NotDirectory);
        }
        Ok(DirectoryListing {
            archive: self.archive,
            children: RefCell::new(Box::new(self.archive.children(self.node))),
        })
    }
}

/// A directory's entries, in archive order, without `.` and `..`.
pub struct DirectoryListing {
    /// The archive the directory belongs to.
    archive: &'static Archive<'static>,
    /// The children not returned yet.
    children: RefCell<Box<dyn Iterator<Item = Node>>>,
}

impl DirectoryListing {
    /// The next entry, or `None` after the last.
    pub fn next_entry(&self) -> Option<DirectoryEntry> {
        let child = self.children.borrow_mut().next()?;
        Some(DirectoryEntry {
            type_: BundleNode::new(self.archive, child).descriptor_type(),
            name: self.archive.name(child).to_string(),
        })
    }
}

/// An input stream over bytes in memory (a bundled file's contents).
pub struct MemoryStream {
    /// All the bytes.
    data: &'static [u8],
    /// How many were consumed.
    position: Cell<usize>,
}

impl MemoryStream {
    /// A stream over `data` starting at `offset` (at the end when past it).
    pub fn new(data: &'static [u8], offset: u64) -> Self {
        let position = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        Self {
            data,
            position: Cell::new(position),
        }
    }

    /// Whether every byte was consumed.
    pub fn at_end(&self) -> bool {
        self.position.get() >= self.data.len()
    }

    /// The next up to `len` bytes without consuming them; `None` at the end (the stream is
    /// closed).
    pub fn peek(&self, len: u64) -> Option<&'static [u8]> {
        let rest = self.data.get(self.position.get()..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        let n = usize::try_from(len).unwrap_or(usize::MAX).min(rest.len());
        rest.get(..n)
    }

    /// Consumes `n` bytes (at most up to the end).
    pub fn advance(&self, n: usize) {
        let position = self.position.get().saturating_add(n).min(self.data.len());
        self.position.set(position);
    }

    /// The next up to `len` bytes, consumed; `None` at the end.
    pub fn take(&self, len: u64) -> Option<&'static [u8]> {
        let bytes = self.peek(len)?;
        self.advance(bytes.len());
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_vfs_archive::ArchiveBuilder;

    /// A leaked sample archive and its first mount's directory.
    fn sample() -> BundleNode {
        let mut b = ArchiveBuilder::new();
        b.mount("/assets").unwrap();
        b.mount("/other").unwrap();
        b.add_file("/assets", "index.html", b"<h1>hi</h1>".to_vec())
            .unwrap();
        b.add_file("/assets", "css/site.css", b"body{}".to_vec())
            .unwrap();
        b.add_dir("/assets", "empty").unwrap();
        let bytes: &'static [u8] = Box::leak(b.build().unwrap().into_boxed_slice());
        let archive: &'static Archive<'static> =
            Box::leak(Box::new(Archive::parse(bytes).unwrap()));
        let (_, root) = archive.mounts().next().unwrap();
        BundleNode::new(archive, root)
    }

    #[test]
    fn lookup() {
        let root = sample();
        let index = root.lookup("index.html").unwrap();
        assert!(index.is_same(root.lookup("./css/../../index.html").unwrap()));
        assert!(root.lookup(".").unwrap().is_same(root));
        assert!(root.lookup("..").unwrap().is_same(root));
        assert!(
            root.lookup("css/")
                .unwrap()
                .is_same(root.lookup("css").unwrap())
        );
        let err = |p: &str| root.lookup(p).err();
        assert_eq!(err("/etc/passwd"), Some(ErrorCode::NotPermitted));
        assert_eq!(err("missing"), Some(ErrorCode::NoEntry));
        assert_eq!(err("css/missing"), Some(ErrorCode::NoEntry));
        assert_eq!(err(""), Some(ErrorCode::NoEntry));
        assert_eq!(err("index.html/x"), Some(ErrorCode::NotDirectory));
        assert_eq!(err("index.html/"), Some(ErrorCode::NotDirectory));
        assert_eq!(err("index.html/.."), Some(ErrorCode::NotDirectory));
        assert_eq!(index.lookup("x").err(), Some(ErrorCode::NotDirectory));
    }

    #[test]
    fn open_flags() {
        let root = sample();
        let read = DescriptorFlags::READ;
        assert!(root.open("css/site.css", OpenFlags::empty(), read).is_ok());
        assert!(root.open("css", OpenFlags::DIRECTORY, read).is_ok());
        let err = |p: &str, o: OpenFlags, f: DescriptorFlags| root.open(p, o, f).err();
        assert_eq!(
            err("index.html", OpenFlags::DIRECTORY, read),
            Some(ErrorCode::NotDirectory)
        );
        assert_eq!(
            err("index.html", OpenFlags::TRUNCATE, read),
            Some(ErrorCode::ReadOnly)
        );
        assert_eq!(
            err("new", OpenFlags::CREATE, DescriptorFlags::WRITE),
            Some(ErrorCode::ReadOnly)
        );
        assert_eq!(
            err("index.html/x", OpenFlags::CREATE, read),
            Some(ErrorCode::NotDirectory)
        );
        assert_eq!(
            err("/abs", OpenFlags::CREATE, read),
            Some(ErrorCode::NotPermitted)
        );
        assert_eq!(
            err("index.html", OpenFlags::empty(), DescriptorFlags::WRITE),
            Some(ErrorCode::ReadOnly)
        );
        assert_eq!(
            err(".", OpenFlags::DIRECTORY, DescriptorFlags::MUTATE_DIRECTORY),
            Some(ErrorCode::ReadOnly)
        );
    }

    #[test]
    fn reads_stats_and_listings() {
        let root = sample();
        let index = root.lookup("index.html").unwrap();
        assert_eq!(index.read(4, 0).unwrap(), (b"<h1>".to_vec(), false));
        assert_eq!(index.read(100, 4).unwrap(), (b"hi</h1>".to_vec(), true));
        assert_eq!(index.read(1, 1000).unwrap(), (Vec::new(), true));
        assert_eq!(index.read(u64::MAX, u64::MAX).unwrap(), (Vec::new(), true));
        assert_eq!(root.read(1, 0).err(), Some(ErrorCode::IsDirectory));
        assert_eq!(index.stat().size, 11);
        assert_eq!(root.stat().size, 0);
        assert_eq!(root.stat().type_, DescriptorType::Directory);
        let (a, b) = (index.metadata_hash(), root.metadata_hash());
        assert_ne!((a.lower, a.upper), (b.lower, b.upper));
        assert_ne!(a.upper, 0);

        let listing = root.read_directory().unwrap();
        let mut names = Vec::new();
        while let Some(entry) = listing.next_entry() {
            names.push((entry.name, entry.type_));
        }
        assert_eq!(
            names,
            [
                ("css".to_string(), DescriptorType::Directory),
                ("empty".to_string(), DescriptorType::Directory),
                ("index.html".to_string(), DescriptorType::RegularFile),
            ]
        );
        assert!(listing.next_entry().is_none());
        assert_eq!(index.read_directory().err(), Some(ErrorCode::NotDirectory));
    }

    #[test]
    fn memory_stream() {
        let stream = MemoryStream::new(b"hello world", 6);
        assert_eq!(stream.peek(3), Some(&b"wor"[..]));
        assert_eq!(stream.take(3), Some(&b"wor"[..]));
        assert_eq!(stream.take(0), Some(&b""[..]));
        assert_eq!(stream.take(u64::MAX), Some(&b"ld"[..]));
        assert_eq!(stream.take(1), None);
        assert_eq!(stream.peek(0), None);
        assert_eq!(MemoryStream::new(b"x", u64::MAX).take(1), None);
    }
}
