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

    /// A directory for the cache when the platform names none: `kiln-cache-<uid>` in `temp`
    /// (the system's temporary directory), created owner-only (0700). One that exists must
    /// be a real directory (not a link), owned by this user and closed to others: content in
    /// the cache is used once verified, and a shared `/tmp/kiln-cache` would let another
    /// user plant or watch it. Outside Unix, `kiln-cache` in `temp` (per user on Windows).
    ///
    /// # Errors
    ///
    /// [`Error::UnsafeCache`] for a directory that is not private; [`Error::Io`] when it
    /// cannot be created.
    pub fn private_dir_in(temp: &Path) -> Result<PathBuf, Error> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
            // Who we are, without unsafe code: the owner of a file we just created.
            let probe =
                tempfile::tempfile_in(temp).map_err(Error::io("cannot create a file in", temp))?;
            let uid = probe
                .metadata()
                .map_err(Error::io("cannot read the metadata of a file in", temp))?
                .uid();
            let dir = temp.join(format!("kiln-cache-{uid}"));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("cannot create the cache directory", &dir)(e)),
            }
            let meta = std::fs::symlink_metadata(&dir)
                .map_err(Error::io("cannot read the metadata of", &dir))?;
            let mode = meta.permissions().mode() & 0o7777;
            let reason = if meta.file_type().is_symlink() {
                Some("it is a symbolic link".to_string())
            } else if !meta.is_dir() {
                Some("it is not a directory".to_string())
            } else if meta.uid() != uid {
                Some(format!("it belongs to user {}, not {uid}", meta.uid()))
            } else if mode & 0o077 != 0 {
                Some(format!("its mode is {mode:o}, open to other users"))
            } else {
                None
            };
            match reason {
                Some(reason) => Err(Error::UnsafeCache { path: dir, reason }),
                None => Ok(dir),
            }
        }
        #[cfg(not(unix))]
        {
            Ok(temp.join("kiln-cache"))
        }
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

    /// The cached content of `digest`, if present and intact (`size` bytes when given): the
    /// bytes that were verified, so nothing can change them between the check and their use.
    /// A damaged entry is removed and reported as absent.
    pub fn get(&self, digest: &str, size: Option<u64>) -> Option<Vec<u8>> {
        let path = self.path_of(digest)?;
        let bytes = fs_err::read(&path).ok()?;
        let intact = size.is_none_or(|s| s == bytes.len() as u64)
            && crate::artifact::sha256_digest(&bytes) == digest;
        if intact {
            Some(bytes)
        } else {
            let _ = fs_err::remove_file(&path);
            None
        }
    }

    /// Stores `bytes` under `digest` after checking that they hash to it.
    ///
    /// # Errors
    ///
    /// [`Error::DigestMismatch`], or [`Error::Io`] when the cache cannot be written.
    pub fn put(&self, what: &str, digest: &str, bytes: &[u8]) -> Result<(), Error> {
        let mut writer = self.writer(what, digest, bytes.len() as u64)?;
        writer.write(bytes)?;
        writer.commit().map(drop)
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
        create_private_dir(&tmp)?;
        let file = tempfile::NamedTempFile::new_in(&tmp)
            .map_err(Error::io("cannot create a file in", &tmp))?;
        Ok(BlobWriter {
            file,
            data: Vec::new(),
            hasher: Sha256::new(),
            written: 0,
            size,
            digest: digest.to_string(),
            what: what.to_string(),
            dest,
        })
    }
}

impl Cache {
    /// Where the signature that verified `manifest_digest` with the key `key` (a
    /// [`crate::PublicKey::fingerprint`]) is kept:
    /// `<root>/signatures/<manifest hex>/<key hex>.json`.
    fn verified_path(&self, manifest_digest: &str, key: &str) -> Option<PathBuf> {
        crate::reference::check_digest(manifest_digest).ok()?;
        crate::reference::check_digest(key).ok()?;
        Some(
            self.root
                .join("signatures")
                .join(manifest_digest.strip_prefix("sha256:")?)
                .join(format!("{}.json", key.strip_prefix("sha256:")?)),
        )
    }

    /// The signature kept by [`Self::put_verified`], if any. It is data, not a verdict: the
    /// caller verifies it again before trusting it.
    pub(crate) fn verified(
        &self,
        manifest_digest: &str,
        key: &str,
    ) -> Option<crate::signature::StoredSignature> {
        let path = self.verified_path(manifest_digest, key)?;
        let bytes = fs_err::read(path).ok()?;
        if bytes.len() as u64 > 2 * crate::signature::MAX_PAYLOAD_SIZE {
            return None;
        }
        serde_json::from_slice(&bytes).ok()
    }

    /// Keeps `signature`, which verified `manifest_digest` with `key`, so that a later pull
    /// of that digest with that key needs no request for it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the cache cannot be written.
    pub(crate) fn put_verified(
        &self,
        manifest_digest: &str,
        key: &str,
        signature: &crate::signature::StoredSignature,
    ) -> Result<(), Error> {
        let Some(dest) = self.verified_path(manifest_digest, key) else {
            return Ok(());
        };
        let tmp = self.root.join("tmp");
        create_private_dir(&tmp)?;
        if let Some(dir) = dest.parent() {
            create_private_dir(dir)?;
        }
        let mut file = tempfile::NamedTempFile::new_in(&tmp)
            .map_err(Error::io("cannot create a file in", &tmp))?;
        let json = serde_json::to_vec(signature).unwrap_or_default();
        file.write_all(&json)
            .map_err(Error::io("cannot write", file.path()))?;
        file.persist(&dest).map_err(|e| Error::Io {
            action: "cannot move a signature into",
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(())
    }
}

/// Creates `dir` and its missing parents, owner-only (0700) on Unix: what is cached is read
/// back as trusted once verified, so other users have no business in it.
fn create_private_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::Io {
        action: "cannot create the cache directory",
        path: dir.to_path_buf(),
        source: e,
    })
}

/// A download in flight: bytes are hashed and counted as they are written, and the file
/// enters the cache only on a successful [`BlobWriter::commit`], which hands back the bytes
/// it verified. Dropped without a commit, it leaves nothing behind.
#[derive(Debug)]
pub struct BlobWriter {
    file: tempfile::NamedTempFile,
    /// What was written, handed back by `commit` (never read again from the file).
    data: Vec<u8>,
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
        self.written = self.written.saturating_add(chunk.len() as u64);
        if self.written > self.size {
            return Err(Error::SizeMismatch {
                what: self.what.clone(),
                digest: self.digest.clone(),
                expected: self.size,
                actual: self.written,
            });
        }
        self.hasher.update(chunk);
        self.data.extend_from_slice(chunk);
        self.file
            .write_all(chunk)
            .map_err(Error::io("cannot write", self.file.path()))
    }

    /// Checks size and digest, then moves the file into the cache; returns the verified bytes.
    ///
    /// # Errors
    ///
    /// [`Error::SizeMismatch`], [`Error::DigestMismatch`] or [`Error::Io`]; the temporary
    /// file is removed in every case.
    pub fn commit(self) -> Result<Vec<u8>, Error> {
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
            create_private_dir(dir)?;
        }
        // No fsync: entries are re-verified when read, so one cut short by a crash is
        // dropped and fetched again.
        self.file.persist(&self.dest).map_err(|e| Error::Io {
            action: "cannot move a download into",
            path: self.dest.clone(),
            source: e.error,
        })?;
        Ok(self.data)
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
        cache.put("layer", &digest, b"hello").unwrap();
        assert_eq!(cache.get(&digest, Some(5)), Some(b"hello".to_vec()));
        assert_eq!(
            cache.get(&digest, Some(4)),
            None,
            "the wrong size is a miss"
        );
        cache.put("layer", &digest, b"hello").unwrap();
        let path = cache.path_of(&digest).unwrap();
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

    #[cfg(unix)]
    #[test]
    fn the_fallback_directory_is_private_or_refused() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let temp = tempfile::tempdir().unwrap();
        let uid = fs_err::metadata(temp.path()).unwrap().uid();
        let dir = Cache::private_dir_in(temp.path()).unwrap();
        assert_eq!(dir, temp.path().join(format!("kiln-cache-{uid}")));
        let mode = fs_err::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // Again: the same directory, accepted.
        assert_eq!(Cache::private_dir_in(temp.path()).unwrap(), dir);
        // Opened to others (as the shared /tmp/kiln-cache was): refused, left as it is.
        fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Cache::private_dir_in(temp.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("refusing the registry cache `{}`", dir.display()))
                && err.contains("its mode is 777, open to other users"),
            "{err}"
        );
        // A link planted in its place, even to a private directory, is refused too.
        fs_err::remove_dir(&dir).unwrap();
        let elsewhere = temp.path().join("elsewhere");
        std::fs::DirBuilder::new().create(&elsewhere).unwrap();
        fs_err::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
        let err = Cache::private_dir_in(temp.path()).unwrap_err().to_string();
        assert!(err.contains("it is a symbolic link"), "{err}");
        // A file in its place.
        fs_err::remove_file(&dir).unwrap();
        fs_err::write(&dir, b"").unwrap();
        let err = Cache::private_dir_in(temp.path()).unwrap_err().to_string();
        assert!(err.contains("it is not a directory"), "{err}");
    }

    #[test]
    fn a_commit_hands_back_what_it_verified() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("oci"));
        let digest = crate::artifact::sha256_digest(b"hello");
        let mut w = cache.writer("layer", &digest, 5).unwrap();
        w.write(b"hel").unwrap();
        w.write(b"lo").unwrap();
        assert_eq!(w.commit().unwrap(), b"hello");
        #[cfg(unix)]
        for sub in ["oci", "oci/tmp", "oci/blobs", "oci/blobs/sha256"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs_err::metadata(dir.path().join(sub))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{sub} is private: {mode:o}");
        }
    }
}
