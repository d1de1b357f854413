//! `wasi:filesystem`: descriptors are bundled nodes (read-only, see [`crate::bundle`]) or the
//! host's descriptors (forwarded, converting types); the preopens are the bundle's mounts
//! followed by the host's.

use crate::bindings::exports::wasi::filesystem::{preopens as gpreopens, types as gfs};
use crate::bindings::exports::wasi::io::streams as gstreams;
use crate::bindings::wasi::filesystem::{preopens as hpreopens, types as hfs};
use crate::bundle::{BundleNode, DirectoryListing};
use crate::convert;
use crate::io::{VfsError, VfsInputStream, VfsOutputStream};
use crate::{Component, archive};

use gfs::ErrorCode;

/// A `descriptor`: a bundled file or directory, or the host's descriptor.
pub enum VfsDescriptor {
    /// A bundled file or directory.
    Bundle(BundleNode),
    /// The host's descriptor (a `--dir` preopen, or opened from one).
    Host(hfs::Descriptor),
}

/// Converts a host result's error code.
fn host<T>(result: Result<T, hfs::ErrorCode>) -> Result<T, ErrorCode> {
    result.map_err(convert::error_code)
}

/// The guest's handle for a host descriptor.
fn wrap_host(descriptor: hfs::Descriptor) -> gfs::Descriptor {
    gfs::Descriptor::new(VfsDescriptor::Host(descriptor))
}

impl VfsDescriptor {
    /// The host descriptor, or `read-only` for a bundled one: for operations that only ever
    /// write.
    fn writable_host(&self) -> Result<&hfs::Descriptor, ErrorCode> {
        match self {
            Self::Bundle(_) => Err(ErrorCode::ReadOnly),
            Self::Host(h) => Ok(h),
        }
    }

    /// Both host descriptors for a two-descriptor operation; `read-only` when both are
    /// bundled, `cross-device` when one is.
    fn host_pair<'a>(
        &'a self,
        other: &'a Self,
    ) -> Result<(&'a hfs::Descriptor, &'a hfs::Descriptor), ErrorCode> {
        match (self, other) {
            (Self::Host(a), Self::Host(b)) => Ok((a, b)),
            (Self::Bundle(_), Self::Bundle(_)) => Err(ErrorCode::ReadOnly),
            _ => Err(ErrorCode::CrossDevice),
        }
    }
}

impl gfs::GuestDescriptor for VfsDescriptor {
    fn read_via_stream(&self, offset: gfs::Filesize) -> Result<gstreams::InputStream, ErrorCode> {
        let stream = match self {
            Self::Bundle(b) => VfsInputStream::Memory(b.read_via_stream(offset)?),
            Self::Host(h) => VfsInputStream::Host(host(h.read_via_stream(offset))?),
        };
        Ok(gstreams::InputStream::new(stream))
    }

    fn write_via_stream(&self, offset: gfs::Filesize) -> Result<gstreams::OutputStream, ErrorCode> {
        let stream = host(self.writable_host()?.write_via_stream(offset))?;
        Ok(gstreams::OutputStream::new(VfsOutputStream(stream)))
    }

    fn append_via_stream(&self) -> Result<gstreams::OutputStream, ErrorCode> {
        let stream = host(self.writable_host()?.append_via_stream())?;
        Ok(gstreams::OutputStream::new(VfsOutputStream(stream)))
    }

    fn advise(
        &self,
        offset: gfs::Filesize,
        length: gfs::Filesize,
        advice: gfs::Advice,
    ) -> Result<(), ErrorCode> {
        match self {
            Self::Bundle(_) => Ok(()),
            Self::Host(h) => host(h.advise(offset, length, convert::advice(advice))),
        }
    }

    fn sync_data(&self) -> Result<(), ErrorCode> {
        match self {
            Self::Bundle(_) => Ok(()),
            Self::Host(h) => host(h.sync_data()),
        }
    }

    fn get_flags(&self) -> Result<gfs::DescriptorFlags, ErrorCode> {
        match self {
            Self::Bundle(_) => Ok(gfs::DescriptorFlags::READ),
            Self::Host(h) => host(h.get_flags()).map(convert::descriptor_flags_back),
        }
    }

    fn get_type(&self) -> Result<gfs::DescriptorType, ErrorCode> {
        match self {
            Self::Bundle(b) => Ok(b.descriptor_type()),
            Self::Host(h) => host(h.get_type()).map(convert::descriptor_type),
        }
    }

    fn set_size(&self, size: gfs::Filesize) -> Result<(), ErrorCode> {
        host(self.writable_host()?.set_size(size))
    }

    fn set_times(
        &self,
        data_access_timestamp: gfs::NewTimestamp,
        data_modification_timestamp: gfs::NewTimestamp,
    ) -> Result<(), ErrorCode> {
        host(self.writable_host()?.set_times(
            convert::new_timestamp(data_access_timestamp),
            convert::new_timestamp(data_modification_timestamp),
        ))
    }

    fn read(
        &self,
        length: gfs::Filesize,
        offset: gfs::Filesize,
    ) -> Result<(Vec<u8>, bool), ErrorCode> {
        match self {
            Self::Bundle(b) => b.read(length, offset),
            Self::Host(h) => host(h.read(length, offset)),
        }
    }

    fn write(&self, buffer: Vec<u8>, offset: gfs::Filesize) -> Result<gfs::Filesize, ErrorCode> {
        host(self.writable_host()?.write(&buffer, offset))
    }

    fn read_directory(&self) -> Result<gfs::DirectoryEntryStream, ErrorCode> {
        let stream = match self {
            Self::Bundle(b) => VfsDirectoryStream::Bundle(b.read_directory()?),
            Self::Host(h) => VfsDirectoryStream::Host(host(h.read_directory())?),
        };
        Ok(gfs::DirectoryEntryStream::new(stream))
    }

    fn sync(&self) -> Result<(), ErrorCode> {
        match self {
            Self::Bundle(_) => Ok(()),
            Self::Host(h) => host(h.sync()),
        }
    }

    fn create_directory_at(&self, path: String) -> Result<(), ErrorCode> {
        host(self.writable_host()?.create_directory_at(&path))
    }

    fn stat(&self) -> Result<gfs::DescriptorStat, ErrorCode> {
        match self {
            Self::Bundle(b) => Ok(b.stat()),
            Self::Host(h) => host(h.stat()).map(convert::stat),
        }
    }

    fn stat_at(
        &self,
        path_flags: gfs::PathFlags,
        path: String,
    ) -> Result<gfs::DescriptorStat, ErrorCode> {
        match self {
            Self::Bundle(b) => Ok(b.lookup(&path)?.stat()),
            Self::Host(h) => {
                host(h.stat_at(convert::path_flags(path_flags), &path)).map(convert::stat)
            }
        }
    }

    fn set_times_at(
        &self,
        path_flags: gfs::PathFlags,
        path: String,
        data_access_timestamp: gfs::NewTimestamp,
        data_modification_timestamp: gfs::NewTimestamp,
    ) -> Result<(), ErrorCode> {
        host(self.writable_host()?.set_times_at(
            convert::path_flags(path_flags),
            &path,
            convert::new_timestamp(data_access_timestamp),
            convert::new_timestamp(data_modification_timestamp),
        ))
    }

    fn link_at(
        &self,
        old_path_flags: gfs::PathFlags,
        old_path: String,
        new_descriptor: gfs::DescriptorBorrow<'_>,
        new_path: String,
    ) -> Result<(), ErrorCode> {
        let (old, new) = self.host_pair(new_descriptor.get::<VfsDescriptor>())?;
        host(old.link_at(
            convert::path_flags(old_path_flags),
            &old_path,
            new,
            &new_path,
        ))
    }

    fn open_at(
        &self,
        path_flags: gfs::PathFlags,
        path: String,
        open_flags: gfs::OpenFlags,
        flags: gfs::DescriptorFlags,
    ) -> Result<gfs::Descriptor, ErrorCode> {
        match self {
            Self::Bundle(b) => Ok(gfs::Descriptor::new(Self::Bundle(
                b.open(&path, open_flags, flags)?,
            ))),
            Self::Host(h) => host(h.open_at(
                convert::path_flags(path_flags),
                &path,
                convert::open_flags(open_flags),
                convert::descriptor_flags(flags),
            ))
            .map(wrap_host),
        }
    }

    fn readlink_at(&self, path: String) -> Result<String, ErrorCode> {
        match self {
            // There are no symbolic links in the bundle.
            Self::Bundle(b) => b.lookup(&path).and(Err(ErrorCode::Invalid)),
            Self::Host(h) => host(h.readlink_at(&path)),
        }
    }

    fn remove_directory_at(&self, path: String) -> Result<(), ErrorCode> {
        host(self.writable_host()?.remove_directory_at(&path))
    }

    fn rename_at(
        &self,
        old_path: String,
        new_descriptor: gfs::DescriptorBorrow<'_>,
        new_path: String,
    ) -> Result<(), ErrorCode> {
        let (old, new) = self.host_pair(new_descriptor.get::<VfsDescriptor>())?;
        host(old.rename_at(&old_path, new, &new_path))
    }

    fn symlink_at(&self, old_path: String, new_path: String) -> Result<(), ErrorCode> {
        host(self.writable_host()?.symlink_at(&old_path, &new_path))
    }

    fn unlink_file_at(&self, path: String) -> Result<(), ErrorCode> {
        host(self.writable_host()?.unlink_file_at(&path))
    }

    fn is_same_object(&self, other: gfs::DescriptorBorrow<'_>) -> bool {
        match (self, other.get::<VfsDescriptor>()) {
            (Self::Bundle(a), Self::Bundle(b)) => a.is_same(*b),
            (Self::Host(a), Self::Host(b)) => a.is_same_object(b),
            _ => false,
        }
    }

    fn metadata_hash(&self) -> Result<gfs::MetadataHashValue, ErrorCode> {
        match self {
            Self::Bundle(b) => Ok(b.metadata_hash()),
            Self::Host(h) => host(h.metadata_hash()).map(convert::metadata_hash),
        }
    }

    fn metadata_hash_at(
        &self,
        path_flags: gfs::PathFlags,
        path: String,
    ) -> Result<gfs::MetadataHashValue, ErrorCode> {
        match self {
            Self::Bundle(b) => Ok(b.lookup(&path)?.metadata_hash()),
            Self::Host(h) => host(h.metadata_hash_at(convert::path_flags(path_flags), &path))
                .map(convert::metadata_hash),
        }
    }
}

/// A `directory-entry-stream`: a bundled directory's listing, or the host's stream.
pub enum VfsDirectoryStream {
    /// A bundled directory's listing.
    Bundle(DirectoryListing),
    /// The host's stream.
    Host(hfs::DirectoryEntryStream),
}

impl gfs::GuestDirectoryEntryStream for VfsDirectoryStream {
    fn read_directory_entry(&self) -> Result<Option<gfs::DirectoryEntry>, ErrorCode> {
        match self {
            Self::Bundle(listing) => Ok(listing.next_entry()),
            Self::Host(h) => {
                host(h.read_directory_entry()).map(|e| e.map(convert::directory_entry))
            }
        }
    }
}

impl gfs::Guest for Component {
    type Descriptor = VfsDescriptor;
    type DirectoryEntryStream = VfsDirectoryStream;

    /// The host's code for a host error (every `error` is one).
    fn filesystem_error_code(err: gfs::ErrorBorrow<'_>) -> Option<ErrorCode> {
        hfs::filesystem_error_code(&err.get::<VfsError>().0).map(convert::error_code)
    }
}

impl gpreopens::Guest for Component {
    /// The bundle's mounts first, then the host's preopens.
    fn get_directories() -> Vec<(gfs::Descriptor, String)> {
        let bundle = archive().into_iter().flat_map(|archive| {
            archive.mounts().map(move |(path, node)| {
                let node = BundleNode::new(archive, node);
                (
                    gfs::Descriptor::new(VfsDescriptor::Bundle(node)),
                    path.to_string(),
                )
            })
        });
        let host = hpreopens::get_directories()
            .into_iter()
            .map(|(descriptor, path)| (wrap_host(descriptor), path));
        bundle.chain(host).collect()
    }
}
