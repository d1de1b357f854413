//! The real-input example: examples/md2html (pulldown-cmark from crates.io) converts the
//! repository's own docs, granted through `--dir`.

use crate::support::{Env, files_under, repo};

#[test]
fn md2html_converts_the_repository_docs() {
    let env = Env::new();
    let docs = repo().join("docs");
    let sources: Vec<String> = files_under(&docs)
        .into_iter()
        .filter(|f| f.ends_with(".md") && !f.contains('/'))
        .collect();
    assert!(sources.len() >= 3, "{sources:?}");
    fs_err::create_dir(env.path("out")).unwrap();

    let docs_grant = format!("{}::/docs", docs.display());
    let out = env
        .kiln(&[
            "run",
            "-q",
            repo().join("examples/md2html").to_str().unwrap(),
            "--dir",
            &docs_grant,
            "--dir",
            "out::/out",
            "--",
            "/docs",
            "/out",
        ])
        .run()
        .success();
    let last = out.stdout.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("converted {} files: ", sources.len())),
        "{}",
        out.stdout
    );

    let expected: Vec<String> = sources.iter().map(|s| s.replace(".md", ".html")).collect();
    assert_eq!(files_under(&env.path("out")), expected);
    let manifest = fs_err::read_to_string(env.path("out/manifest.html")).unwrap();
    assert!(manifest.contains("<title>Kiln.toml</title>"), "{manifest}");
    assert!(manifest.contains("<h1>Kiln.toml</h1>"));
    assert!(
        manifest.contains("<table>"),
        "the manifest reference has tables"
    );
    assert!(manifest.contains("<code>[package]</code>"));
    // Nothing outside the granted directories was touched.
    assert_eq!(files_under(&docs), files_under(&repo().join("docs")));
}

#[test]
fn md2html_reads_stdin() {
    let env = Env::new();
    let out = env
        .kiln(&[
            "run",
            "-q",
            repo().join("examples/md2html").to_str().unwrap(),
        ])
        .stdin("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~\n")
        .run()
        .success();
    assert!(
        out.stdout.contains("<title>Title</title>"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("<td>1</td>"));
    assert!(out.stdout.contains("<del>gone</del>"));
}
