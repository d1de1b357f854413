//! Conversions between the host's types (imported interfaces) and the guest's (exported
//! interfaces). The two sides are generated from the same WIT, so enums have identical
//! variants and flags identical bits.

use crate::bindings::exports::wasi::filesystem::types as gfs;
use crate::bindings::wasi::filesystem::types as hfs;

/// Defines a conversion between two generated enums with the same variants.
macro_rules! same_enum {
    ($(#[$meta:meta])* $name:ident: $from:ident -> $to:ident, $ty:ident { $($variant:ident),* $(,)? }) => {
        $(#[$meta])*
        pub fn $name(value: $from::$ty) -> $to::$ty {
            match value {
                $($from::$ty::$variant => $to::$ty::$variant,)*
            }
        }
    };
}

same_enum!(
    /// A host error code as the guest's.
    error_code: hfs -> gfs, ErrorCode {
        Access, WouldBlock, Already, BadDescriptor, Busy, Deadlock, Quota, Exist, FileTooLarge,
        IllegalByteSequence, InProgress, Interrupted, Invalid, Io, IsDirectory, Loop,
        TooManyLinks, MessageSize, NameTooLong, NoDevice, NoEntry, NoLock, InsufficientMemory,
        InsufficientSpace, NotDirectory, NotEmpty, NotRecoverable, Unsupported, NoTty,
        NoSuchDevice, Overflow, NotPermitted, Pipe, ReadOnly, InvalidSeek, TextFileBusy,
        CrossDevice,
    }
);

same_enum!(
    /// A host descriptor type as the guest's.
    descriptor_type: hfs -> gfs, DescriptorType {
        Unknown, BlockDevice, CharacterDevice, Directory, Fifo, SymbolicLink, RegularFile, Socket,
    }
);

same_enum!(
    /// The guest's advice as the host's.
    advice: gfs -> hfs, Advice { Normal, Sequential, Random, WillNeed, DontNeed, NoReuse }
);

/// The guest's descriptor flags as the host's.
pub fn descriptor_flags(flags: gfs::DescriptorFlags) -> hfs::DescriptorFlags {
    hfs::DescriptorFlags::from_bits_retain(flags.bits())
}

/// The host's descriptor flags as the guest's.
pub fn descriptor_flags_back(flags: hfs::DescriptorFlags) -> gfs::DescriptorFlags {
    gfs::DescriptorFlags::from_bits_retain(flags.bits())
}

/// The guest's path flags as the host's.
pub fn path_flags(flags: gfs::PathFlags) -> hfs::PathFlags {
    hfs::PathFlags::from_bits_retain(flags.bits())
}

/// The guest's open flags as the host's.
pub fn open_flags(flags: gfs::OpenFlags) -> hfs::OpenFlags {
    hfs::OpenFlags::from_bits_retain(flags.bits())
}

/// The guest's timestamp change as the host's (`datetime` is the same type on both sides:
/// `wasi:clocks/wall-clock` is only imported).
pub fn new_timestamp(value: gfs::NewTimestamp) -> hfs::NewTimestamp {
    match value {
        gfs::NewTimestamp::NoChange => hfs::NewTimestamp::NoChange,
        gfs::NewTimestamp::Now => hfs::NewTimestamp::Now,
        gfs::NewTimestamp::Timestamp(t) => hfs::NewTimestamp::Timestamp(t),
    }
}

/// A host stat as the guest's.
pub fn stat(value: hfs::DescriptorStat) -> gfs::DescriptorStat {
    gfs::DescriptorStat {
        type_: descriptor_type(value.type_),
        link_count: value.link_count,
        size: value.size,
        data_access_timestamp: value.data_access_timestamp,
        data_modification_timestamp: value.data_modification_timestamp,
        status_change_timestamp: value.status_change_timestamp,
    }
}

/// A host metadata hash as the guest's.
pub fn metadata_hash(value: hfs::MetadataHashValue) -> gfs::MetadataHashValue {
    gfs::MetadataHashValue {
        lower: value.lower,
        upper: value.upper,
    }
}

/// A host directory entry as the guest's.
pub fn directory_entry(value: hfs::DirectoryEntry) -> gfs::DirectoryEntry {
    gfs::DirectoryEntry {
        type_: descriptor_type(value.type_),
        name: value.name,
    }
}
