use std::path::PathBuf;

use crate::ops::registry::RegistryArgs;
use crate::settings::{Environment, PublishSettings};
use crate::shell::Shell;

/// Push the project's component to an OCI registry as a Wasm artifact.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln publish ghcr.io/you/hello            # tag: the package version\n  \
kiln publish 127.0.0.1:5000/demo/hello:0.1.0\n  \
kiln publish --dry-run                     # what would be pushed, and its digest\n\n\
The reference defaults to Kiln.toml's `[publish] reference`; without a tag there, the package \
version is the tag. The release build is made first when stale. The artifact follows the CNCF \
Wasm OCI layout: an OCI image manifest, an `application/vnd.wasm.config.v0+json` config and one \
`application/wasm` layer. Annotations come from `[package]` (title, version, description, \
licenses, source), `[publish] annotations` and --annotation. `created` is SOURCE_DATE_EPOCH, or \
1970-01-01T00:00:00Z when unset: never the clock, so the same component gives the same digest.\n\n\
Credentials, first match wins: --username with --password-stdin; KILN_REGISTRY_USERNAME and \
KILN_REGISTRY_PASSWORD, or KILN_REGISTRY_TOKEN (sent only to this registry, or to the one \
KILN_REGISTRY_HOST names); `kiln login`; the Docker configuration.\n\n\
On success, stdout carries `REFERENCE@sha256:…`."
)]
pub struct Args {
    /// Where to push: REGISTRY/REPOSITORY[:TAG] [default: `[publish] reference`].
    pub reference: Option<String>,

    /// The tag to push [default: the reference's tag, else the package version].
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,

    /// Add a manifest annotation; repeatable; overrides the ones kiln derives.
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = parse_annotation)]
    pub annotations: Vec<(String, String)>,

    /// Publish this component file instead of building the project (annotations then come
    /// from --annotation only, and the tag from the reference or --tag).
    #[arg(long, value_name = "FILE", conflicts_with = "manifest_path")]
    pub wasm: Option<PathBuf>,

    /// Publish the WIT package in this directory (or .wit file) instead, encoded as wkg
    /// publishes one (the wasm-pkg OCI layout `[wit-dependencies]` and wkg read); the tag
    /// defaults to the package's version. Publish it to `REGISTRY/NAMESPACE/NAME` for wkg
    /// and kiln to find it by package name.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["manifest_path", "wasm"])]
    pub wit: Option<PathBuf>,

    /// Sign the pushed manifest with this private key (cosign's encrypted format, or a
    /// PKCS#8/SEC1 PEM) and store the signature as cosign does, at the tag
    /// `sha256-<digest>.sig` [default: `[publish] sign`].
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,

    /// Build and package, print the reference and digest, push nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Path to the project's Kiln.toml or Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

fn parse_annotation(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

pub fn exec(shell: &Shell, args: Args, show_settings: bool) -> anyhow::Result<i32> {
    let env = Environment::capture()?;
    let settings = PublishSettings::resolve(args, &env)?;
    if show_settings {
        crate::settings::show(shell, "publish", &settings, &env)?;
        return Ok(0);
    }
    crate::ops::publish::publish(shell, &settings)?;
    Ok(0)
}
