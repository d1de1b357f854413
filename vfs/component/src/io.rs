//! `wasi:io` (errors, pollables, streams), stdio, terminals and the monotonic clock: the
//! guest's resources wrap the host's, except for the bundle's in-memory input streams and
//! their always-ready pollables.

use crate::Component;
use crate::bindings::exports::wasi::cli::{
    stderr as gstderr, stdin as gstdin, stdout as gstdout, terminal_input as gterm_in,
    terminal_output as gterm_out, terminal_stderr as gterm_stderr, terminal_stdin as gterm_stdin,
    terminal_stdout as gterm_stdout,
};
use crate::bindings::exports::wasi::clocks::monotonic_clock as gclock;
use crate::bindings::exports::wasi::io::{error as gerror, poll as gpoll, streams as gstreams};
use crate::bindings::wasi::cli::{
    stderr as hstderr, stdin as hstdin, stdout as hstdout, terminal_input as hterm_in,
    terminal_output as hterm_out, terminal_stderr as hterm_stderr, terminal_stdin as hterm_stdin,
    terminal_stdout as hterm_stdout,
};
use crate::bindings::wasi::clocks::monotonic_clock as hclock;
use crate::bindings::wasi::io::{error as herror, poll as hpoll, streams as hstreams};
use crate::bundle::MemoryStream;

/// The most a blocking splice from a memory stream writes at once (what
/// `blocking-write-and-flush` accepts).
const BLOCKING_CHUNK: u64 = 4096;

/// An `error`: always a host error (the vfs's own streams never fail).
pub struct VfsError(pub herror::Error);

impl gerror::GuestError for VfsError {
    fn to_debug_string(&self) -> String {
        self.0.to_debug_string()
    }
}

impl gerror::Guest for Component {
    type Error = VfsError;
}

/// A host stream error as the guest's.
pub fn stream_error(error: hstreams::StreamError) -> gstreams::StreamError {
    match error {
        hstreams::StreamError::Closed => gstreams::StreamError::Closed,
        hstreams::StreamError::LastOperationFailed(e) => {
            gstreams::StreamError::LastOperationFailed(gerror::Error::new(VfsError(e)))
        }
    }
}

/// A `pollable`: always ready (the bundle's streams), or the host's.
pub enum VfsPollable {
    /// Always ready.
    Ready,
    /// The host's pollable.
    Host(hpoll::Pollable),
}

impl VfsPollable {
    /// Wraps a host pollable for the guest.
    pub fn host(pollable: hpoll::Pollable) -> gpoll::Pollable {
        gpoll::Pollable::new(Self::Host(pollable))
    }
}

impl gpoll::GuestPollable for VfsPollable {
    fn ready(&self) -> bool {
        match self {
            Self::Ready => true,
            Self::Host(p) => p.ready(),
        }
    }

    fn block(&self) {
        if let Self::Host(p) = self {
            p.block();
        }
    }
}

impl gpoll::Guest for Component {
    type Pollable = VfsPollable;

    /// The indices of the always-ready pollables if there are any; otherwise (every pollable
    /// is the host's) the host's answer.
    fn poll(list: Vec<gpoll::PollableBorrow<'_>>) -> Vec<u32> {
        let pollables: Vec<&VfsPollable> = list.iter().map(|p| p.get::<VfsPollable>()).collect();
        let ready: Vec<u32> = (0u32..)
            .zip(&pollables)
            .filter(|(_, p)| matches!(p, VfsPollable::Ready))
            .map(|(i, _)| i)
            .collect();
        if !ready.is_empty() {
            return ready;
        }
        // No pollable is always-ready, so the host's indices are the guest's.
        let host: Vec<&hpoll::Pollable> = pollables
            .iter()
            .filter_map(|p| match p {
                VfsPollable::Host(h) => Some(h),
                VfsPollable::Ready => None,
            })
            .collect();
        hpoll::poll(&host)
    }
}

/// An `input-stream`: a bundled file's contents, or the host's stream.
pub enum VfsInputStream {
    /// A bundled file's contents.
    Memory(MemoryStream),
    /// The host's stream (stdin, a host file).
    Host(hstreams::InputStream),
}

impl VfsInputStream {
    /// Reads (non-blocking or blocking) up to `len` bytes.
    fn read_with(&self, len: u64, blocking: bool) -> Result<Vec<u8>, gstreams::StreamError> {
        match self {
            Self::Memory(m) => m
                .take(len)
                .map(<[u8]>::to_vec)
                .ok_or(gstreams::StreamError::Closed),
            Self::Host(h) if blocking => h.blocking_read(len).map_err(stream_error),
            Self::Host(h) => h.read(len).map_err(stream_error),
        }
    }

    /// Skips (non-blocking or blocking) up to `len` bytes.
    fn skip_with(&self, len: u64, blocking: bool) -> Result<u64, gstreams::StreamError> {
        match self {
            Self::Memory(m) => m
                .take(len)
                .map(|b| b.len() as u64)
                .ok_or(gstreams::StreamError::Closed),
            Self::Host(h) if blocking => h.blocking_skip(len).map_err(stream_error),
            Self::Host(h) => h.skip(len).map_err(stream_error),
        }
    }
}

impl gstreams::GuestInputStream for VfsInputStream {
    fn read(&self, len: u64) -> Result<Vec<u8>, gstreams::StreamError> {
        self.read_with(len, false)
    }

    fn blocking_read(&self, len: u64) -> Result<Vec<u8>, gstreams::StreamError> {
        self.read_with(len, true)
    }

    fn skip(&self, len: u64) -> Result<u64, gstreams::StreamError> {
        self.skip_with(len, false)
    }

    fn blocking_skip(&self, len: u64) -> Result<u64, gstreams::StreamError> {
        self.skip_with(len, true)
    }

    fn subscribe(&self) -> gpoll::Pollable {
        match self {
            Self::Memory(_) => gpoll::Pollable::new(VfsPollable::Ready),
            Self::Host(h) => VfsPollable::host(h.subscribe()),
        }
    }
}

/// An `output-stream`: always the host's (stdout, stderr, a host file).
pub struct VfsOutputStream(pub hstreams::OutputStream);

impl VfsOutputStream {
    /// Splices up to `len` bytes from a memory stream: at most what `check-write` permits
    /// (non-blocking), or one chunk written with `blocking-write-and-flush`.
    fn splice_memory(
        &self,
        src: &MemoryStream,
        len: u64,
        blocking: bool,
    ) -> Result<u64, gstreams::StreamError> {
        // At the end, the input is closed.
        src.peek(0).ok_or(gstreams::StreamError::Closed)?;
        let len = if blocking {
            len.min(BLOCKING_CHUNK)
        } else {
            len.min(self.0.check_write().map_err(stream_error)?)
        };
        let bytes = src.peek(len).unwrap_or_default();
        if bytes.is_empty() {
            return Ok(0);
        }
        if blocking {
            self.0.blocking_write_and_flush(bytes)
        } else {
            self.0.write(bytes)
        }
        .map_err(stream_error)?;
        src.advance(bytes.len());
        Ok(bytes.len() as u64)
    }
}

impl gstreams::GuestOutputStream for VfsOutputStream {
    fn check_write(&self) -> Result<u64, gstreams::StreamError> {
        self.0.check_write().map_err(stream_error)
    }

    fn write(&self, contents: Vec<u8>) -> Result<(), gstreams::StreamError> {
        self.0.write(&contents).map_err(stream_error)
    }

    fn blocking_write_and_flush(&self, contents: Vec<u8>) -> Result<(), gstreams::StreamError> {
        self.0
            .blocking_write_and_flush(&contents)
            .map_err(stream_error)
    }

    fn flush(&self) -> Result<(), gstreams::StreamError> {
        self.0.flush().map_err(stream_error)
    }

    fn blocking_flush(&self) -> Result<(), gstreams::StreamError> {
        self.0.blocking_flush().map_err(stream_error)
    }

    fn subscribe(&self) -> gpoll::Pollable {
        VfsPollable::host(self.0.subscribe())
    }

    fn write_zeroes(&self, len: u64) -> Result<(), gstreams::StreamError> {
        self.0.write_zeroes(len).map_err(stream_error)
    }

    fn blocking_write_zeroes_and_flush(&self, len: u64) -> Result<(), gstreams::StreamError> {
        self.0
            .blocking_write_zeroes_and_flush(len)
            .map_err(stream_error)
    }

    fn splice(
        &self,
        src: gstreams::InputStreamBorrow<'_>,
        len: u64,
    ) -> Result<u64, gstreams::StreamError> {
        match src.get::<VfsInputStream>() {
            VfsInputStream::Memory(m) => self.splice_memory(m, len, false),
            VfsInputStream::Host(h) => self.0.splice(h, len).map_err(stream_error),
        }
    }

    fn blocking_splice(
        &self,
        src: gstreams::InputStreamBorrow<'_>,
        len: u64,
    ) -> Result<u64, gstreams::StreamError> {
        match src.get::<VfsInputStream>() {
            VfsInputStream::Memory(m) => self.splice_memory(m, len, true),
            VfsInputStream::Host(h) => self.0.blocking_splice(h, len).map_err(stream_error),
        }
    }
}

impl gstreams::Guest for Component {
    type InputStream = VfsInputStream;
    type OutputStream = VfsOutputStream;
}

impl gstdin::Guest for Component {
    fn get_stdin() -> gstreams::InputStream {
        gstreams::InputStream::new(VfsInputStream::Host(hstdin::get_stdin()))
    }
}

impl gstdout::Guest for Component {
    fn get_stdout() -> gstreams::OutputStream {
        gstreams::OutputStream::new(VfsOutputStream(hstdout::get_stdout()))
    }
}

impl gstderr::Guest for Component {
    fn get_stderr() -> gstreams::OutputStream {
        gstreams::OutputStream::new(VfsOutputStream(hstderr::get_stderr()))
    }
}

/// A `terminal-input`: the host's.
pub struct VfsTerminalInput(pub hterm_in::TerminalInput);

impl gterm_in::GuestTerminalInput for VfsTerminalInput {}

impl gterm_in::Guest for Component {
    type TerminalInput = VfsTerminalInput;
}

/// A `terminal-output`: the host's.
pub struct VfsTerminalOutput(pub hterm_out::TerminalOutput);

impl gterm_out::GuestTerminalOutput for VfsTerminalOutput {}

impl gterm_out::Guest for Component {
    type TerminalOutput = VfsTerminalOutput;
}

impl gterm_stdin::Guest for Component {
    fn get_terminal_stdin() -> Option<gterm_in::TerminalInput> {
        hterm_stdin::get_terminal_stdin().map(|t| gterm_in::TerminalInput::new(VfsTerminalInput(t)))
    }
}

impl gterm_stdout::Guest for Component {
    fn get_terminal_stdout() -> Option<gterm_out::TerminalOutput> {
        hterm_stdout::get_terminal_stdout()
            .map(|t| gterm_out::TerminalOutput::new(VfsTerminalOutput(t)))
    }
}

impl gterm_stderr::Guest for Component {
    fn get_terminal_stderr() -> Option<gterm_out::TerminalOutput> {
        hterm_stderr::get_terminal_stderr()
            .map(|t| gterm_out::TerminalOutput::new(VfsTerminalOutput(t)))
    }
}

impl gclock::Guest for Component {
    fn now() -> gclock::Instant {
        hclock::now()
    }

    fn resolution() -> gclock::Duration {
        hclock::resolution()
    }

    fn subscribe_instant(when: gclock::Instant) -> gpoll::Pollable {
        VfsPollable::host(hclock::subscribe_instant(when))
    }

    fn subscribe_duration(when: gclock::Duration) -> gpoll::Pollable {
        VfsPollable::host(hclock::subscribe_duration(when))
    }
}
