use std::path::PathBuf;

use crate::ops::sign::GenerateOptions;
use crate::shell::Shell;

/// Generate a key pair for signing published components (cosign's format).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln generate-key-pair                       # writes kiln.key and kiln.pub here\n  \
KILN_KEY_PASSWORD=… kiln generate-key-pair --output-key-prefix ci/release\n\n\
The key is ECDSA P-256. The private key is written in cosign's encrypted format (`ENCRYPTED \
COSIGN PRIVATE KEY`: scrypt and NaCl secretbox), readable only by you, so cosign and skopeo \
(`--sign-by-sigstore-private-key`) sign with it too; the public key is a `PUBLIC KEY` PEM for \
`kiln pull --verify`, `cosign verify --key` and skopeo's `sigstoreSigned` policy. The passphrase \
is KILN_KEY_PASSWORD when set (it may be empty), else asked twice on the terminal."
)]
pub struct Args {
    /// Write `<PREFIX>.key` and `<PREFIX>.pub`.
    #[arg(long, value_name = "PREFIX", default_value = "kiln")]
    pub output_key_prefix: PathBuf,

    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    crate::ops::sign::generate_key_pair(
        shell,
        &GenerateOptions {
            prefix: args.output_key_prefix,
            force: args.force,
        },
    )?;
    Ok(0)
}
