//! A content-addressed store of pulled manifests and blobs.
//!
//! Layout: `<root>/blobs/sha256/<64 hex>`, one file per digest, plus `<root>/tmp` for
//! downloads in flight. A file enters `blobs/` only by an atomic rename after its size and
//! SHA-256 were checked, and is checked again when read, so a damaged entry is dropped and
//! fetched again rather than used.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Error;

/// The on-disk cache. Cheap to clone; concurrent writers of the same digest are safe (the
/// last rename wins and both wrote the same bytes).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the content of `digest` lives, or `None` when it is not `sha256:<64 lowercase
    /// hex>` (so a digest from a registry can never name a path outside the cache).
    pub fn path_of(&self, digest: &str) -> Option<PathBuf> {
        crate::reference::check_digest(digest).ok()?;
        let hex = digest.strip_prefix("sha256:")?;
        Some(self.root.join("blobs").join("sha256").join(hex))
    }

    /// The cached content of `digest`, if present and intact (`size` bytes when given).
    /// A damaged entry is removed and reported as absent.
    pub fn get(&self, digest: &str, size: Option<u64>) -> Option<PathBuf> {
        let path = self.path_of(digest)?;
        let bytes = fs_err::read(&path).ok()?;
        let intact = size.is_none_or(|s| s == bytes.len() as u64)
            && crate::artifact::sha256_digest(&bytes) == digest;
        if intact {
            Some(path)
        } else {
            let _ = fs_err::remove_file(&path);
            None
        }
    }

    /// The cached bytes of `digest`, if present and intact.
    pub fn read(&self, digest: &str, size: Option<u64>) -> Option<Vec<u8>> {
        self.get(digest, size).and_then(|p| fs_err::read(p).ok())
    }

    /// Stores `bytes` under `digest` after checking that they hash to it.
    ///
    /// # Errors
    ///
    /// [`Error::DigestMismatch`], or [`Error::Io`] when the cache cannot be written.
    pub fn put(&self, what: &str, digest: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
        let mut writer = self.writer(what, digest, bytes.len() as u64)?;
        writer.write(bytes)?;
        writer.commit()
    }

    /// Starts writing the content of `digest`, declared to be `size` bytes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] when `digest` is not a sha256 digest; [`Error::Io`] when
    /// the temporary file cannot be created.
    pub fn writer(&self, what: &str, digest: &str, size: u64) -> Result<BlobWriter, Error> {
        let dest = self
            .path_of(digest)
            .ok_or_else(|| Error::InvalidReference {
                reference: digest.to_string(),
                reason: "not a sha256 digest".into(),
            })?;
        let tmp = self.root.join("tmp");
        fs_err::create_dir_all(&tmp).map_err(|e| Error::Io {
            action: "cannot create the cache directory",
            path: tmp.clone(),
            source: e,
        })?;
        let file = tempfile::NamedTempFile::new_in(&tmp)
            .map_err(Error::io("cannot create a file in", &tmp))?;
        Ok(BlobWriter {
            file,
            hasher: Sha256::new(),
            written: 0,
            size,
            digest: digest.to_string(),
            what: what.to_string(),
            dest,
        })
    }
}

/// A download in flight: bytes are hashed and counted as they are written, and the file
/// enters the cache only on a successful [`BlobWriter::commit`]. Dropped without a commit,
/// it leaves nothing behind.
#[derive(Debug)]
pub struct BlobWriter {
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    written: u64,
    size: u64,
    digest: String,
    what: String,
    dest: PathBuf,
}

impl BlobWriter {
    /// Appends `chunk`.
    ///
    /// # Errors
    ///
    /// [`Error::SizeMismatch`] as soon as more than the declared size arrives;
    /// [`Error::Io`] when the file cannot be written.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.written += chunk.len() as u64;
        if self.written > self.size {
            return Err(Error::SizeMismatch {
                what: self.what.clone(),
                digest: self.digest.clone(),
                expected: self.size,
                actual: self.written,
            });
        }
        self.hasher.update(chunk);
        self.file
            .write_all(chunk)
            .map_err(Error::io("cannot write", self.file.path()))
    }

    /// Checks size and digest, then moves the file into the cache.
    ///
    /// # Errors
    ///
    /// [`Error::SizeMismatch`], [`Error::DigestMismatch`] or [`Error::Io`]; the temporary
    /// file is removed in every case.
    pub fn commit(self) -> Result<PathBuf, Error> {
        if self.written != self.size {
            return Err(Error::SizeMismatch {
                what: self.what,
                digest: self.digest,
                expected: self.size,
                actual: self.written,
            });
        }
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        if actual != self.digest {
            return Err(Error::DigestMismatch {
                what: self.what,
                expected: self.digest,
                actual,
            });
        }
        if let Some(dir) = self.dest.parent() {
            fs_err::create_dir_all(dir).map_err(|e| Error::Io {
                action: "cannot create the cache directory",
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        // No fsync: entries are re-verified when read, so one cut short by a crash is
        // dropped and fetched again.
        self.file.persist(&self.dest).map_err(|e| Error::Io {
            action: "cannot move a download into",
            path: self.dest.clone(),
            source: e.error,
        })?;
        Ok(self.dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_only_verified_content() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let digest = crate::artifact::sha256_digest(b"hello");
        assert!(cache.get(&digest, None).is_none());
        let wrong = crate::artifact::sha256_digest(b"other");
        assert!(matches!(
            cache.put("layer", &wrong, b"hello"),
            Err(Error::DigestMismatch { .. })
        ));
        assert!(cache.get(&wrong, None).is_none());
        let path = cache.put("layer", &digest, b"hello").unwrap();
        assert_eq!(cache.get(&digest, Some(5)), Some(path.clone()));
        // Declared size wrong: too long, then too short.
        let mut w = cache.writer("layer", &digest, 3).unwrap();
        assert!(matches!(w.write(b"hello"), Err(Error::SizeMismatch { .. })));
        drop(w);
        let mut w = cache.writer("layer", &digest, 9).unwrap();
        w.write(b"hello").unwrap();
        assert!(matches!(w.commit(), Err(Error::SizeMismatch { .. })));
        // A damaged entry is dropped.
        fs_err::write(&path, b"jello").unwrap();
        assert!(cache.get(&digest, None).is_none());
        assert!(!path.exists());
        // A digest that is not sha256 hex never becomes a path.
        assert!(cache.path_of("sha256:../../etc/passwd").is_none());
        assert!(cache.writer("layer", "sha256:../x", 1).is_err());
        // Nothing is left in tmp.
        assert_eq!(fs_err::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
