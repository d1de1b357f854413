//! Project templates: data under `templates/<id>/`, embedded into the binary.
//!
//! Each template is a directory holding `template.toml` (its language and description) and
//! `content/`, the files of a new project. Files whose name ends in `.tmpl` are rendered with
//! minijinja (the suffix is dropped); other files are copied verbatim. Path components may use
//! template syntax too. Rendering produces a plan — every file's relative path and bytes —
//! before anything is written, and every rendered path is checked to stay inside the project.
//!
//! Variables available to templates: `name` (as given), `crate_name` (`_` for `-`),
//! `wit_name` (`-` for `_`) and `kiln_version`.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use include_dir::{Dir, include_dir};
use serde::Deserialize;

use crate::manifest::Language;

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// `templates/<id>/template.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateToml {
    language: Language,
    description: String,
}

/// An embedded template.
#[derive(Debug)]
pub struct Template {
    /// Its id, the directory name (`rust-cli`).
    pub id: &'static str,
    /// The guest language of projects made from it.
    pub language: Language,
    /// One line saying what it makes.
    pub description: String,
    content: &'static Dir<'static>,
}

/// The values a template is rendered with.
#[derive(Debug)]
pub struct RenderContext {
    /// The component name as given.
    pub name: String,
    /// The name as a Rust crate name.
    pub crate_name: String,
    /// The name as a WIT identifier.
    pub wit_name: String,
    /// The kiln version rendering the template.
    pub kiln_version: &'static str,
}

impl RenderContext {
    /// The context for a (validated) component name.
    pub fn new(name: &str) -> Self {
        RenderContext {
            name: name.to_string(),
            crate_name: crate::manifest::crate_name(name),
            wit_name: crate::manifest::wit_name(name),
            kiln_version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// One file of a rendered template.
#[derive(Debug)]
pub struct PlannedFile {
    /// Path relative to the project root; only normal components.
    pub path: PathBuf,
    /// The file's contents.
    pub contents: Vec<u8>,
}

/// Every embedded template, sorted by id.
pub fn all() -> anyhow::Result<Vec<Template>> {
    let mut templates = TEMPLATES
        .dirs()
        .map(|dir| {
            let id = dir.path().to_str().context("template ids are UTF-8")?;
            let toml_file = dir
                .get_file(dir.path().join("template.toml"))
                .with_context(|| format!("template `{id}` has no template.toml"))?;
            let text = toml_file
                .contents_utf8()
                .context("template.toml is UTF-8")?;
            let meta: TemplateToml = toml::from_str(text)
                .with_context(|| format!("template `{id}` has an invalid template.toml"))?;
            let content = dir
                .get_dir(dir.path().join("content"))
                .with_context(|| format!("template `{id}` has no content/ directory"))?;
            Ok(Template {
                id,
                language: meta.language,
                description: meta.description,
                content,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    templates.sort_by_key(|t| t.id);
    Ok(templates)
}

impl Template {
    /// Renders every file of the template for `context`.
    ///
    /// # Errors
    ///
    /// A template error (with the file named), or a rendered path that is absolute, empty,
    /// or contains `..`.
    pub fn render(&self, context: &RenderContext) -> anyhow::Result<Vec<PlannedFile>> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        let context = minijinja::context! {
            name => &context.name,
            crate_name => &context.crate_name,
            wit_name => &context.wit_name,
            kiln_version => context.kiln_version,
        };
        let mut files = Vec::new();
        collect_files(self.content, &mut files);
        let mut plan = Vec::with_capacity(files.len());
        for file in files {
            let relative = file
                .path()
                .strip_prefix(self.content.path())
                .expect("files live under content/");
            let relative = relative.to_str().context("template paths are UTF-8")?;
            let (relative, render) = match relative.strip_suffix(".tmpl") {
                Some(stripped) => (stripped, true),
                None => (relative, false),
            };
            let path = env.render_str(relative, &context).with_context(|| {
                format!(
                    "template `{}`: failed to render the path `{relative}`",
                    self.id
                )
            })?;
            let path = confined(&path)
                .with_context(|| format!("template `{}`: bad path `{relative}`", self.id))?;
            let contents = if render {
                let source = file.contents_utf8().with_context(|| {
                    format!("template `{}`: `{relative}.tmpl` is not UTF-8", self.id)
                })?;
                env.render_str(source, &context)
                    .with_context(|| {
                        format!("template `{}`: failed to render `{relative}.tmpl`", self.id)
                    })?
                    .into_bytes()
            } else {
                file.contents().to_vec()
            };
            plan.push(PlannedFile { path, contents });
        }
        plan.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(plan)
    }
}

fn collect_files<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    out.extend(dir.files());
    for sub in dir.dirs() {
        collect_files(sub, out);
    }
}

/// Accepts a rendered relative path only if every component is a plain name: no root, no
/// prefix, no `.`/`..`, not empty. Such a path joined to a directory cannot leave it.
pub fn confined(path: &str) -> anyhow::Result<PathBuf> {
    let candidate = Path::new(path);
    if path.is_empty() || path.contains('\0') {
        bail!("the path is empty or contains NUL");
    }
    let mut clean = PathBuf::new();
    for component in candidate.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir
            | Component::ParentDir
            | Component::RootDir
            | Component::Prefix(_) => {
                bail!("`{path}` would leave the project directory")
            }
        }
    }
    if clean.as_os_str().is_empty() {
        bail!("the path is empty");
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_inside_its_root() {
        let templates = all().unwrap();
        let ids: Vec<_> = templates.iter().map(|t| t.id).collect();
        assert_eq!(
            ids,
            [
                "c-cli",
                "cpp-cli",
                "go-cli",
                "rust-cli",
                "rust-cli-p3",
                "rust-http",
                "rust-http-p3",
                "rust-lib",
                "tinygo-cli"
            ]
        );
        for template in &templates {
            let plan = template.render(&RenderContext::new("my_app")).unwrap();
            assert!(
                plan.iter().any(|f| f.path == Path::new("Kiln.toml")),
                "{}",
                template.id
            );
            assert!(
                plan.iter()
                    .all(|f| !f.path.to_string_lossy().ends_with(".tmpl"))
            );
            let kiln_toml = plan
                .iter()
                .find(|f| f.path == Path::new("Kiln.toml"))
                .unwrap();
            let manifest = crate::manifest::Manifest::parse(
                std::str::from_utf8(&kiln_toml.contents).unwrap(),
                Path::new("Kiln.toml"),
            )
            .unwrap();
            assert_eq!(manifest.name(), Some("my_app"));
        }
    }

    #[test]
    fn paths_cannot_escape() {
        assert_eq!(confined("src/main.rs").unwrap(), Path::new("src/main.rs"));
        for bad in ["../x", "a/../../x", "/etc/passwd", "", "./x"] {
            assert!(confined(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
