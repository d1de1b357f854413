//! Registry references (`registry/repository[:tag][@sha256:…]`), checked strictly before
//! anything touches the network or the disk.
//!
//! Grammar: the OCI distribution spec's `<name>` and `<reference>` rules
//! (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests>),
//! with digests restricted to `sha256`, the only algorithm kiln verifies.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::Error;

/// A validated reference to a manifest in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    inner: oci_client::Reference,
}

impl Reference {
    /// `host[:port]` of the registry (`docker.io` when the reference names none).
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository path, e.g. `demo/hello`.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The `sha256:<64 hex>` digest, if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The same repository with `tag` instead of the current tag and digest.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] when `tag` is not a valid tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self, Error> {
        check_tag(tag).map_err(|reason| Error::InvalidReference {
            reference: format!("{}/{}:{tag}", self.registry(), self.repository()),
            reason,
        })?;
        Ok(Self {
            inner: oci_client::Reference::with_tag(
                self.registry().to_string(),
                self.repository().to_string(),
                tag.to_string(),
            ),
        })
    }

    /// Parses `s`; when it has neither a tag nor a digest, `default_tag` is its tag
    /// (`kiln publish` uses the package version).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`], as [`str::parse`] gives.
    pub fn parse_with_default_tag(s: &str, default_tag: &str) -> Result<Self, Error> {
        let last = s.rsplit('/').next().unwrap_or(s);
        if s.contains('/') && !s.contains('@') && !last.contains(':') {
            format!("{s}:{default_tag}").parse()
        } else {
            s.parse()
        }
    }

    /// Checks a tag on its own (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] naming the tag and what is wrong with it.
    pub fn validate_tag(tag: &str) -> Result<(), Error> {
        check_tag(tag).map_err(|reason| Error::InvalidReference {
            reference: format!(":{tag}"),
            reason,
        })
    }

    /// The same repository pinned to `digest` (no tag).
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            inner: oci_client::Reference::with_digest(
                self.registry().to_string(),
                self.repository().to_string(),
                digest.to_string(),
            ),
        }
    }

    /// The last component of the repository, e.g. `hello` for `demo/hello`.
    pub fn name(&self) -> &str {
        self.repository()
            .rsplit('/')
            .next()
            .unwrap_or(self.repository())
    }

    pub(crate) fn oci(&self) -> &oci_client::Reference {
        &self.inner
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry(), self.repository())?;
        if let Some(tag) = self.tag() {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = self.digest() {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidReference {
            reference: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(format!("it contains {c:?}")));
        }
        let (name_and_tag, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (s, None),
        };
        if let Some(digest) = digest {
            check_digest(digest).map_err(invalid)?;
        }
        // The tag follows the last `:` after the last `/`.
        let last_slash = name_and_tag.rfind('/');
        let (name, tag) = match name_and_tag.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
            }
            _ => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(invalid)?;
        }
        let Some((registry, repository)) = name.split_once('/') else {
            return Err(invalid(
                "it names no registry; write `REGISTRY/REPOSITORY[:TAG]`, e.g. `ghcr.io/you/app:1.0`"
                    .into(),
            ));
        };
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(invalid(format!(
                "it names no registry (`{registry}` is not a host); write \
                 `REGISTRY/REPOSITORY[:TAG]`, e.g. `ghcr.io/you/app:1.0` or `docker.io/you/app:1.0`"
            )));
        }
        check_registry(registry).map_err(invalid)?;
        for component in repository.split('/') {
            check_path_component(component).map_err(invalid)?;
        }
        // Built from the parts checked above rather than parsed again: oci-spec's parser
        // compiles a large regex on first use, a visible share of a short command's time.
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        let (registry, tag, digest) = (
            registry.to_string(),
            tag.map(str::to_string),
            digest.map(str::to_string),
        );
        let inner = match (tag, digest) {
            (Some(tag), Some(digest)) => {
                oci_client::Reference::with_tag_and_digest(registry, repository, tag, digest)
            }
            (Some(tag), None) => oci_client::Reference::with_tag(registry, repository, tag),
            (None, Some(digest)) => {
                oci_client::Reference::with_digest(registry, repository, digest)
            }
            (None, None) => return Err(invalid("it has neither a tag nor a digest".into())),
        };
        Ok(Self { inner })
    }
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
///
/// # Errors
///
/// A reason, naming the offending character.
pub(crate) fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag is empty".into());
    }
    if tag.len() > 128 {
        return Err(format!("the tag is {} characters, over 128", tag.len()));
    }
    if tag.starts_with(['.', '-']) {
        return Err(format!("the tag `{tag}` starts with `{}`", &tag[..1]));
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "the tag `{tag}` contains `{c}`; tags are letters, digits, `_`, `.` and `-`"
        ));
    }
    Ok(())
}

pub(crate) fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "the digest `{digest}` has no algorithm; write `sha256:` and 64 hex digits"
        ));
    };
    if algorithm != "sha256" {
        return Err(format!(
            "the digest algorithm `{algorithm}` is not supported; kiln verifies sha256 digests"
        ));
    }
    if hex.len() != 64 || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(format!(
            "the digest `{digest}` is not `sha256:` followed by 64 lowercase hex digits"
        ));
    }
    Ok(())
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = split_host_port(registry);
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("the registry port `{port}` is not a number"));
    }
    let host_ok = !host.is_empty()
        && (host.parse::<IpAddr>().is_ok()
            || host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }));
    if !host_ok {
        return Err(format!("`{registry}` is not a registry host"));
    }
    Ok(())
}

fn check_path_component(component: &str) -> Result<(), String> {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let valid = !bytes.is_empty()
        && alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && bytes
            .iter()
            .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        && !component.contains("..")
        && !component.contains("___")
        && !component.contains("._")
        && !component.contains("_.")
        && !component.contains(".-")
        && !component.contains("-.")
        && !component.contains("_-")
        && !component.contains("-_");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the repository component `{component}` is not lowercase letters and digits separated by `.`, `_`, `__` or `-`"
        ))
    }
}

fn split_host_port(registry: &str) -> (&str, Option<&str>) {
    if let Some(rest) = registry.strip_prefix('[') {
        // [v6]:port
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (registry, None),
        };
    }
    match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    }
}

/// Whether `registry` (`host[:port]`) is this machine: `localhost`, `127.0.0.0/8` or `[::1]`.
/// kiln speaks plain HTTP to such registries when they do not speak TLS.
pub fn is_loopback(registry: &str) -> bool {
    let (host, _) = split_host_port(registry);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> String {
        match s.parse::<Reference>() {
            Err(Error::InvalidReference { reason, .. }) => reason,
            other => panic!("{s}: expected an invalid reference, got {other:?}"),
        }
    }

    #[test]
    fn accepts_tags_and_digests() {
        let r: Reference = "127.0.0.1:5000/demo/hello:0.1.0".parse().unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "demo/hello");
        assert_eq!(r.tag(), Some("0.1.0"));
        assert_eq!(r.name(), "hello");
        assert_eq!(r.to_string(), "127.0.0.1:5000/demo/hello:0.1.0");
        let d = format!("ghcr.io/a/b@sha256:{}", "ab".repeat(32));
        let r: Reference = d.parse().unwrap();
        assert_eq!(r.digest().unwrap().len(), 71);
        assert_eq!(r.to_string(), d);
        let both: Reference = format!("r.io/a/b:1@{}", r.digest().unwrap())
            .parse()
            .unwrap();
        assert_eq!((both.tag(), both.digest()), (Some("1"), r.digest()));
        // The same parts oci-spec's own parser finds.
        for text in [
            "127.0.0.1:5000/demo/hello:0.1.0",
            "docker.io/app:1",
            "ghcr.io/a/b/c:x",
        ] {
            let ours: Reference = text.parse().unwrap();
            let theirs = oci_client::Reference::from_str(text).unwrap();
            assert_eq!(
                (ours.registry(), ours.repository(), ours.tag()),
                (theirs.registry(), theirs.repository(), theirs.tag()),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_bad_input() {
        assert!(reason("127.0.0.1:5000/demo/hello").contains("neither a tag nor a digest"));
        assert!(reason("hello:1.0").contains("no registry"));
        assert!(reason("you/hello:1.0").contains("`you` is not a host"));
        assert!(reason("r.io/a/b@md5:abc").contains("`md5` is not supported"));
        assert!(reason("r.io/a/b@sha256:ABC").contains("64 lowercase hex"));
        assert!(reason("r.io/a/b@sha256").contains("no algorithm"));
        assert!(reason("r.io/a/../b:1").contains("`..`"));
        assert!(reason("r.io/a/b:1/../../x").contains("repository component"));
        assert!(reason("r.io/a/B:1").contains("`B`"));
        assert!(reason("r.io/a/b:-x").contains("starts with `-`"));
        assert!(reason("r.io/a/b:x%y").contains("contains `%`"));
        assert!(reason("r.io:99999/a/b:1").contains("port"));
        assert!(reason("r .io/a:1").contains("' '"));
        assert!(reason("").contains("empty"));
    }

    #[test]
    fn default_tag() {
        let r = Reference::parse_with_default_tag("r.io/a/b", "1.2.0").unwrap();
        assert_eq!(r.to_string(), "r.io/a/b:1.2.0");
        let r = Reference::parse_with_default_tag("r.io:5000/a/b:x", "1.2.0").unwrap();
        assert_eq!(r.tag(), Some("x"));
        let r = Reference::parse_with_default_tag("r.io:5000/a", "1.2.0").unwrap();
        assert_eq!(r.to_string(), "r.io:5000/a:1.2.0");
    }

    #[test]
    fn loopback() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("ghcr.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }
}
