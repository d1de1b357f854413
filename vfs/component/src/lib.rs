//! kiln's guest-side virtual filesystem.
//!
//! kiln composes this component in front of a guest component. It exports
//! `wasi:filesystem/{types,preopens}` serving the bundled files (the archive that kiln writes
//! into this module's memory, see [`kiln_vfs_archive`]) read-only, followed by the host's own
//! preopens. Because bundled files are read through `wasi:io` streams, and a guest's pollables
//! must all come from one place, it also exports `wasi:io/{error,poll,streams}`, the stdio and
//! terminal interfaces of `wasi:cli` and `wasi:clocks/monotonic-clock`; everything that is not
//! the bundle is passed through to the host's versions of those interfaces, which it imports.
//!
//! - [`bundle`]: the bundled tree (path resolution, stat, reads, directory listings) and the
//!   in-memory input streams over file contents;
//! - [`convert`]: conversions between the host's (imported) and the guest's (exported) types;
//! - [`io`]: errors, pollables, streams, stdio, terminals and the monotonic clock;
//! - [`fs`]: descriptors, directory-entry streams and preopens.

use std::sync::OnceLock;

use kiln_vfs_archive::Archive;

pub mod bundle;
pub mod convert;
pub mod fs;
pub mod io;

/// The bindings generated from `wit/world.wit`.
mod bindings {
    #![allow(missing_docs)]
    wit_bindgen::generate!({
        path: "wit",
        world: "kiln:vfs/vfs",
        generate_all,
    });
}

/// What [`kiln_vfs_archive`] returns until kiln replaces its body: no archive.
static ARCHIVE_PLACEHOLDER: usize = 0;

/// Replaced by kiln when it embeds the archive: returns the archive's address in linear memory,
/// or 0 when there is none.
///
/// kiln replaces this exported function's body (type `() -> i32`) with a `global.get` of the
/// archive's address and then removes the export. The volatile read keeps LLVM from folding
/// the placeholder into the callers.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn kiln_vfs_archive() -> *const u8 {
    // SAFETY: reading a valid, aligned static.
    unsafe { core::ptr::read_volatile(&raw const ARCHIVE_PLACEHOLDER) as *const u8 }
}

/// The length of the archive's header, which holds the archive's total length.
const HEADER_LEN: usize = 40;

/// The bundled archive, parsed once; `None` without one, or when it does not parse (then only
/// the host's preopens are served).
pub fn archive() -> Option<&'static Archive<'static>> {
    static ARCHIVE: OnceLock<Option<Archive<'static>>> = OnceLock::new();
    ARCHIVE.get_or_init(load_archive).as_ref()
}

/// Finds and parses the archive kiln embedded, if any.
fn load_archive() -> Option<Archive<'static>> {
    let address = kiln_vfs_archive();
    if address.is_null() {
        return None;
    }
    let start = address as usize;
    // Never read past the end of linear memory, whatever the header says.
    let memory_end = memory_size();
    if start.checked_add(HEADER_LEN)? > memory_end {
        return None;
    }
    // SAFETY: kiln placed the archive at `address` in a data segment that nothing writes to;
    // the header lies within linear memory (checked above).
    let header = unsafe { core::slice::from_raw_parts(address, HEADER_LEN) };
    // The header's seventh field (bytes 32..36) is the archive's total length.
    let total = u32::from_le_bytes([header[32], header[33], header[34], header[35]]) as usize;
    if total < HEADER_LEN || start.checked_add(total)? > memory_end {
        return None;
    }
    // SAFETY: as above; the whole archive lies within linear memory (checked above).
    let bytes = unsafe { core::slice::from_raw_parts(address, total) };
    Archive::parse(bytes).ok()
}

/// The size of linear memory in bytes.
#[cfg(target_arch = "wasm32")]
fn memory_size() -> usize {
    core::arch::wasm32::memory_size::<0>().saturating_mul(65536)
}

/// Off wasm (in unit tests) there is never an archive to read.
#[cfg(not(target_arch = "wasm32"))]
fn memory_size() -> usize {
    0
}

/// The component: implements every exported interface.
pub struct Component;

bindings::export!(Component with_types_in bindings);
