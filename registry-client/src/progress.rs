//! Progress reporting: the client reports, the CLI renders (indicatif on a TTY).

use std::time::Duration;

/// Which blob of an artifact a transfer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// The `application/vnd.wasm.config.v0+json` config.
    Config,
    /// The `application/wasm` layer: the component.
    Layer,
}

/// Receives transfer events. Every method has an empty default, so an implementation
/// overrides only what it shows. Calls come from the transfer's task; implementations must
/// be cheap and must not block.
pub trait Progress: Send + Sync {
    /// A blob transfer starts: `size` bytes in total.
    fn blob_started(&self, _kind: BlobKind, _digest: &str, _size: u64) {}
    /// `bytes` more bytes of the blob have been sent or received.
    fn blob_advanced(&self, _digest: &str, _bytes: u64) {}
    /// The blob is in place: `transferred` is false when nothing was sent or received
    /// because the registry or the cache already had it.
    fn blob_finished(&self, _digest: &str, _transferred: bool) {}
    /// A request failed transiently; attempt `attempt + 1` starts after `delay`.
    fn retrying(&self, _operation: &str, _attempt: u32, _delay: Duration, _reason: &str) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
