//! Provenance annotations for `kiln publish` of a project: where the component was built
//! from and by what, as OCI image annotations (image-spec `annotations.md`):
//!
//! - `org.opencontainers.image.revision`: the git commit of the project's work tree, with
//!   `-dirty` appended when tracked or untracked (not ignored) files differ from it;
//! - `org.opencontainers.image.source`: the `origin` remote's URL, when `[package]
//!   repository` gave none;
//! - `dev.kiln.version`: the kiln that built it.
//!
//! Each is a function of the inputs only (no clock, no host name), so publishing the same
//! tree twice still gives the same digest.

use std::path::Path;
use std::process::Command;

/// `dev.kiln.version`.
pub const KILN_VERSION: &str = "dev.kiln.version";

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The provenance annotations for the project at `root` (see the module docs); git's are
/// left out when `root` is not in a git work tree or git is not installed.
pub fn annotations(root: &Path) -> Vec<(String, String)> {
    let mut out = vec![(
        KILN_VERSION.to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    )];
    if let Some(commit) = git(root, &["rev-parse", "--verify", "HEAD"]).filter(|c| !c.is_empty()) {
        let dirty = git(root, &["status", "--porcelain"]).is_none_or(|s| !s.is_empty());
        let revision = if dirty {
            format!("{commit}-dirty")
        } else {
            commit
        };
        out.push((
            kiln_registry_client::annotations::REVISION.to_string(),
            revision,
        ));
        if let Some(url) = git(root, &["remote", "get-url", "origin"]).filter(|u| !u.is_empty()) {
            out.push((
                kiln_registry_client::annotations::SOURCE.to_string(),
                without_userinfo(&url),
            ));
        }
    }
    out
}

/// `url` without the `user:password@` a remote URL may carry: a token in a remote must not
/// end up in a registry.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn remote_credentials_are_dropped() {
        assert_eq!(
            super::without_userinfo("https://me:ghp_secret@github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
        assert_eq!(
            super::without_userinfo("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
    }
}
