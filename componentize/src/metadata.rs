//! Writing metadata into components and core modules with `wasm-metadata`.
//!
//! The fields are the custom sections `wasm-metadata` defines after the OCI image annotations
//! (`description`, `licenses`, `source`, `version`), the `name`/`component-name` section,
//! and the tool-conventions `producers` section
//! (<https://github.com/WebAssembly/tool-conventions/blob/main/ProducersSection.md>), whose
//! `processed-by` field records the tools that touched the binary.

use wasm_metadata::{AddMetadata, AddMetadataField};

use crate::Error;

/// The metadata to write. `None` fields leave what the binary has as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The component name.
    pub name: Option<String>,
    /// The version of the packaged software.
    pub version: Option<String>,
    /// A human-readable description.
    pub description: Option<String>,
    /// An SPDX license expression.
    pub license: Option<String>,
    /// A URL to the source code.
    pub source: Option<String>,
    /// `(tool, version)` pairs added to `producers.processed-by`.
    pub processed_by: Vec<(String, String)>,
}

/// Checks that `license` is a valid SPDX license expression, as the `licenses` section
/// requires. Returns the parser's explanation when it is not.
pub fn check_license(license: &str) -> Result<(), String> {
    wasm_metadata::Licenses::new(license)
        .map(|_| ())
        .map_err(|e| spdx_reason(&format!("{e:#}")))
}

/// The SPDX parser's explanation on one line: it prints the expression, then a line of
/// carets under the offending term and the reason; this gives `unknown term `X``.
fn spdx_reason(message: &str) -> String {
    let mut lines = message.lines();
    let (Some(expression), Some(marker)) = (lines.next(), lines.next()) else {
        return message.trim().to_string();
    };
    let start = marker.len() - marker.trim_start().len();
    let carets = marker[start..].bytes().take_while(|b| *b == b'^').count();
    let reason = marker[start + carets..].trim();
    match expression.get(start..start + carets) {
        Some(term) if carets > 0 && !reason.is_empty() => format!("{reason} `{term}`"),
        _ => message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// Writes `metadata` into `input` (a component or core module), replacing fields it sets.
///
/// # Errors
///
/// [`Error::Metadata`] for a license that is not an SPDX expression or a source that is not
/// a URL, and [`Error::Invalid`] for input that is not valid WebAssembly.
pub fn add_metadata(input: &[u8], metadata: &Metadata) -> Result<Vec<u8>, Error> {
    crate::validate(input)?;
    let set = |value: &Option<String>| {
        value
            .clone()
            .map_or(AddMetadataField::Keep, AddMetadataField::Set)
    };
    let mut add = AddMetadata::default();
    add.name = set(&metadata.name);
    add.processed_by = metadata.processed_by.clone();
    if let Some(version) = &metadata.version {
        add.version = AddMetadataField::Set(wasm_metadata::Version::new(version.clone()));
    }
    if let Some(description) = &metadata.description {
        add.description =
            AddMetadataField::Set(wasm_metadata::Description::new(description.clone()));
    }
    if let Some(license) = &metadata.license {
        let licenses = wasm_metadata::Licenses::new(license).map_err(|e| {
            Error::Metadata(format!(
                "license `{license}` is not an SPDX expression: {}",
                spdx_reason(&format!("{e:#}"))
            ))
        })?;
        add.licenses = AddMetadataField::Set(licenses);
    }
    if let Some(source) = &metadata.source {
        let source = wasm_metadata::Source::new(source)
            .map_err(|e| Error::Metadata(format!("source `{source}` is not a URL: {e:#}")))?;
        add.source = AddMetadataField::Set(source);
    }
    add.to_wasm(input)
        .map_err(|e| Error::Metadata(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn license_errors_are_one_line() {
        assert_eq!(
            check_license("Apache-2.0 WITH LLVM-xception").unwrap_err(),
            "unknown term `LLVM-xception`"
        );
        assert!(!check_license("(((").unwrap_err().contains('\n'));
        check_license("Apache-2.0 WITH LLVM-exception").unwrap();
    }

    #[test]
    fn writes_every_field() {
        let input = wat::parse_str(r#"(component (core module))"#).unwrap();
        let metadata = Metadata {
            name: Some("hello".into()),
            version: Some("1.2.3".into()),
            description: Some("Says hello".into()),
            license: Some("Apache-2.0 OR MIT".into()),
            source: Some("https://example.com/hello".into()),
            processed_by: vec![("kiln".into(), "0.1.0".into())],
        };
        let out = add_metadata(&input, &metadata).unwrap();
        crate::validate_component(&out).unwrap();
        let info = crate::inspect(&out).unwrap().metadata;
        assert_eq!(info.name.as_deref(), Some("hello"));
        assert_eq!(info.version.as_deref(), Some("1.2.3"));
        assert_eq!(info.description.as_deref(), Some("Says hello"));
        assert_eq!(info.license.as_deref(), Some("Apache-2.0 OR MIT"));
        assert_eq!(info.source.as_deref(), Some("https://example.com/hello"));
        assert!(
            info.producers
                .contains(&("processed-by".into(), "kiln".into(), "0.1.0".into()))
        );
    }

    #[test]
    fn bad_license_and_source_are_errors() {
        let input = wat::parse_str("(module)").unwrap();
        let bad = Metadata {
            license: Some("not a license!".into()),
            ..Default::default()
        };
        assert!(matches!(
            add_metadata(&input, &bad),
            Err(Error::Metadata(_))
        ));
        assert!(check_license("MIT").is_ok() && check_license("nope nope").is_err());
        let bad = Metadata {
            source: Some("no url".into()),
            ..Default::default()
        };
        assert!(matches!(
            add_metadata(&input, &bad),
            Err(Error::Metadata(_))
        ));
    }
}
