//! Single-file executables: the `kiln-runner` binary with a payload appended — the
//! component, its precompiled code and the run settings fixed at build time.
//!
//! Layout (kiln's own format; integers little-endian):
//!
//! ```text
//! [runner executable][settings: JSON][component][precompiled code][trailer: 64 bytes]
//! trailer = "KILNEXE1" | settings length: u64 | component length: u64
//!         | precompiled length: u64 | SHA-256 of settings ‖ component ‖ precompiled: 32 bytes
//! ```
//!
//! The operating system loads the runner as usual and ignores what follows it; the runner
//! reads its own file, finds the trailer at the end, and checks the lengths and the digest
//! before using any of it ([`read`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::RunConfig;

/// The first 8 bytes of the trailer.
pub const MAGIC: &[u8; 8] = b"KILNEXE1";
/// The trailer's size in bytes.
pub const TRAILER_LEN: usize = 64;

/// The settings a single-file executable carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExeSettings {
    /// The component's name (for messages).
    pub name: String,
    /// Hex SHA-256 of the component.
    pub component_sha256: String,
    /// Whether the precompiled code meters fuel (needed for a fuel limit).
    pub fuel_metering: bool,
    /// Capabilities and limits fixed at build time (`[run]` in Kiln.toml).
    pub run: RunConfig,
}

/// A payload read back from an executable; the byte slices borrow from it.
#[derive(Debug)]
pub struct Payload<'a> {
    /// The run settings.
    pub settings: ExeSettings,
    /// The component bytes.
    pub component: &'a [u8],
    /// Precompiled code for the build host's platform ([`crate::Runtime::precompile`]).
    pub precompiled: &'a [u8],
}

/// Why an executable's payload cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// There is no trailer: this is a bare runner, or the end of the file was cut off.
    #[error("it carries no component (no kiln payload at its end)")]
    Missing,
    /// The trailer declares more bytes than the file holds.
    #[error(
        "its payload is truncated: the trailer declares {declared} bytes but only {available} are there"
    )]
    Truncated {
        /// Bytes the trailer declares.
        declared: u64,
        /// Bytes before the trailer.
        available: u64,
    },
    /// The payload's bytes do not hash to the digest in the trailer.
    #[error("its payload is damaged: SHA-256 {actual} does not match the recorded {expected}")]
    Digest {
        /// The recorded digest (hex).
        expected: String,
        /// The digest of the bytes found (hex).
        actual: String,
    },
    /// The settings are not valid JSON for [`ExeSettings`].
    #[error("its settings cannot be read: {0}")]
    Settings(String),
    /// The file could not be read.
    #[error("it cannot be read: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends a payload to `runner`, returning the executable's bytes.
pub fn assemble(
    runner: &[u8],
    settings: &ExeSettings,
    component: &[u8],
    precompiled: &[u8],
) -> Vec<u8> {
    let json = serde_json::to_vec(settings).expect("settings serialize");
    let mut hasher = Sha256::new();
    hasher.update(&json);
    hasher.update(component);
    hasher.update(precompiled);
    let digest = hasher.finalize();

    let mut out = Vec::with_capacity(
        runner.len() + json.len() + component.len() + precompiled.len() + TRAILER_LEN,
    );
    out.extend_from_slice(runner);
    out.extend_from_slice(&json);
    out.extend_from_slice(component);
    out.extend_from_slice(precompiled);
    out.extend_from_slice(MAGIC);
    for len in [json.len(), component.len(), precompiled.len()] {
        out.extend_from_slice(&(len as u64).to_le_bytes());
    }
    out.extend_from_slice(&digest);
    out
}

/// The runner part of an executable: everything before its payload, or all of `exe` when it
/// has none. Lets kiln use a runner that already carries a payload.
pub fn runner_part(exe: &[u8]) -> &[u8] {
    match locate(exe) {
        Ok((start, _)) => &exe[..start],
        Err(_) => exe,
    }
}

/// Reads and verifies the payload at the end of an executable's bytes.
///
/// # Errors
///
/// [`PayloadError`] when there is no trailer, the lengths do not fit the file, the digest
/// does not match, or the settings do not parse. Nothing is used before it is verified.
pub fn read(exe: &[u8]) -> Result<Payload<'_>, PayloadError> {
    let (start, lens) = locate(exe)?;
    let [json_len, component_len, precompiled_len] = lens;
    let body = &exe[start..exe.len() - TRAILER_LEN];
    verify(body, &exe[exe.len() - TRAILER_LEN..])?;
    let (json, rest) = body.split_at(json_len);
    let (component, precompiled) = rest.split_at(component_len);
    debug_assert_eq!(precompiled.len(), precompiled_len);
    let settings =
        serde_json::from_slice(json).map_err(|e| PayloadError::Settings(e.to_string()))?;
    Ok(Payload {
        settings,
        component,
        precompiled,
    })
}

/// A payload read from a file, owning its bytes.
#[derive(Debug)]
pub struct OwnedPayload {
    /// The run settings.
    pub settings: ExeSettings,
    bytes: Vec<u8>,
    component_len: usize,
}

impl OwnedPayload {
    /// The component bytes.
    pub fn component(&self) -> &[u8] {
        &self.bytes[..self.component_len]
    }

    /// The precompiled code.
    pub fn precompiled(&self) -> &[u8] {
        &self.bytes[self.component_len..]
    }
}

/// Reads and verifies the payload at the end of the file at `path`, reading only the trailer
/// and the payload (not the runner in front of them).
///
/// # Errors
///
/// As [`read`], plus [`PayloadError::Io`].
pub fn open(path: &std::path::Path) -> Result<OwnedPayload, PayloadError> {
    use std::io::{Read, Seek, SeekFrom};

    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len < TRAILER_LEN as u64 {
        return Err(PayloadError::Missing);
    }
    let mut trailer = [0u8; TRAILER_LEN];
    file.seek(SeekFrom::End(-(TRAILER_LEN as i64)))?;
    file.read_exact(&mut trailer)?;
    let available = len - TRAILER_LEN as u64;
    let [json_len, component_len, precompiled_len] = lengths(&trailer, available)?;
    let mut body = vec![0u8; json_len + component_len + precompiled_len];
    file.seek(SeekFrom::Start(available - body.len() as u64))?;
    file.read_exact(&mut body)?;
    verify(&body, &trailer)?;
    let settings = serde_json::from_slice(&body[..json_len])
        .map_err(|e| PayloadError::Settings(e.to_string()))?;
    body.drain(..json_len);
    Ok(OwnedPayload {
        settings,
        bytes: body,
        component_len,
    })
}

fn verify(body: &[u8], trailer: &[u8]) -> Result<(), PayloadError> {
    let expected = hex::encode(&trailer[TRAILER_LEN - 32..]);
    let actual = hex::encode(Sha256::digest(body));
    if expected != actual {
        return Err(PayloadError::Digest { expected, actual });
    }
    Ok(())
}

/// Finds the payload: its start offset and the three lengths.
fn locate(exe: &[u8]) -> Result<(usize, [usize; 3]), PayloadError> {
    if exe.len() < TRAILER_LEN {
        return Err(PayloadError::Missing);
    }
    let available = (exe.len() - TRAILER_LEN) as u64;
    let lens = lengths(&exe[exe.len() - TRAILER_LEN..], available)?;
    let declared: usize = lens.iter().sum();
    Ok((available as usize - declared, lens))
}

/// The three lengths a trailer declares, checked against the `available` bytes before it.
fn lengths(trailer: &[u8], available: u64) -> Result<[usize; 3], PayloadError> {
    if &trailer[..8] != MAGIC {
        return Err(PayloadError::Missing);
    }
    let field = |i: usize| u64::from_le_bytes(trailer[8 + 8 * i..16 + 8 * i].try_into().unwrap());
    let lens = [field(0), field(1), field(2)];
    let declared = lens.iter().try_fold(0u64, |a, &b| a.checked_add(b));
    match declared {
        Some(declared) if declared <= available => Ok(lens.map(|n| n as usize)),
        declared => Err(PayloadError::Truncated {
            declared: declared.unwrap_or(u64::MAX),
            available,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ExeSettings {
        ExeSettings {
            name: "hello".into(),
            component_sha256: "00".repeat(32),
            fuel_metering: false,
            run: RunConfig::default(),
        }
    }

    #[test]
    fn round_trip() {
        let exe = assemble(b"\x7fELF runner", &settings(), b"component", b"code");
        let payload = read(&exe).unwrap();
        assert_eq!(payload.settings, settings());
        assert_eq!(payload.component, b"component");
        assert_eq!(payload.precompiled, b"code");
        assert_eq!(runner_part(&exe), b"\x7fELF runner");
        assert_eq!(runner_part(b"bare"), b"bare");
    }

    #[test]
    fn open_reads_only_the_payload_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hello");
        let exe = assemble(b"runner", &settings(), b"component", b"code");
        std::fs::write(&path, &exe).unwrap();
        let payload = open(&path).unwrap();
        assert_eq!(payload.settings, settings());
        assert_eq!(payload.component(), b"component");
        assert_eq!(payload.precompiled(), b"code");

        let mut flipped = exe.clone();
        flipped[exe.len() - TRAILER_LEN - 1] ^= 0x80;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(open(&path), Err(PayloadError::Digest { .. })));
        std::fs::write(&path, b"runner").unwrap();
        assert!(matches!(open(&path), Err(PayloadError::Missing)));
    }

    #[test]
    fn damage_is_detected() {
        let exe = assemble(b"runner", &settings(), b"component", b"code");
        assert!(matches!(read(b"runner"), Err(PayloadError::Missing)));
        assert!(matches!(
            read(&exe[..exe.len() - 1]),
            Err(PayloadError::Missing)
        ));
        // A byte flipped in the component.
        let mut flipped = exe.clone();
        let at = exe.len() - TRAILER_LEN - 6;
        flipped[at] ^= 1;
        assert!(matches!(read(&flipped), Err(PayloadError::Digest { .. })));
        // The front cut off: lengths no longer fit.
        let cut = &exe[exe.len() - TRAILER_LEN - 4..];
        assert!(matches!(read(cut), Err(PayloadError::Truncated { .. })));
    }
}
