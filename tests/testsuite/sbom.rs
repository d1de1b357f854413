//! SBOMs and provenance (issue 19 items 4–5): the CycloneDX document a release build writes
//! beside the component, its packages against `cargo tree`, its referrer on publish, found
//! again from the component's digest, and the revision annotations.

use std::process::Command;

use crate::support::Env;
use crate::support::registry::Registry;

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "kiln")
        .env("GIT_AUTHOR_EMAIL", "kiln@example.com")
        .env("GIT_COMMITTER_NAME", "kiln")
        .env("GIT_COMMITTER_EMAIL", "kiln@example.com")
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn md2html_sbom_lists_what_cargo_tree_shows_and_travels_as_a_referrer() {
    let env = Env::new();
    let project = env.example("md2html");
    env.write("md2html/.gitignore", "target/\n");
    git(&project, &["init", "-q"]);
    git(&project, &["add", "."]);
    git(&project, &["commit", "-q", "-m", "md2html"]);
    let commit = git(&project, &["rev-parse", "HEAD"]);

    env.kiln(&["build", "--release", "-q"])
        .cwd(&project)
        .run()
        .success();
    let sbom_path = project.join("target/kiln/release/md2html.cdx.json");
    let sbom: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&sbom_path).unwrap()).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.5");
    let component = project.join("target/kiln/release/md2html.wasm");
    assert_eq!(
        sbom["metadata"]["component"]["hashes"][0]["content"],
        crate::support::sha256_file(&component)
    );
    let mut listed: Vec<String> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["purl"]
                .as_str()
                .is_some_and(|p| p.starts_with("pkg:cargo/"))
        })
        .map(|c| {
            format!(
                "{} v{}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap()
            )
        })
        .collect();
    listed.sort();
    // What cargo says is compiled in for the wasm target, the package itself aside.
    let tree = Command::new("cargo")
        .args([
            "tree",
            "-e",
            "normal",
            "--target",
            "wasm32-wasip2",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    let mut expected: Vec<String> = String::from_utf8_lossy(&tree.stdout)
        .lines()
        .map(|l| {
            l.trim_end_matches(" (*)")
                .split(" (")
                .next()
                .unwrap()
                .to_string()
        })
        .filter(|p| !p.starts_with("md2html "))
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(listed, expected);
    assert!(
        listed.iter().any(|p| p.starts_with("pulldown-cmark v")),
        "{listed:?}"
    );
    // Registry packages carry Cargo.lock's checksum.
    let pulldown = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "pulldown-cmark")
        .unwrap();
    assert_eq!(pulldown["hashes"][0]["alg"], "SHA-256");
    // Reproducible: an unchanged rebuild keeps the document byte for byte.
    let before = fs_err::read(&sbom_path).unwrap();
    fs_err::remove_file(&sbom_path).unwrap();
    env.kiln(&["build", "--release", "-q"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(fs_err::read(&sbom_path).unwrap(), before);

    let out = env
        .kiln(&["inspect", "--sbom", component.to_str().unwrap()])
        .run()
        .success();
    assert!(
        out.stdout.contains("CycloneDX 1.5, md2html 0.1.0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("pkg:cargo/pulldown-cmark@"),
        "{}",
        out.stdout
    );

    // Publish: the SBOM is attached as a referrer of the component's manifest, listed at the
    // referrers tag fallback, and found again from the reference.
    let registry = Registry::open();
    let reference = format!("{}/acme/md2html:0.1.0", registry.addr);
    let out = env
        .kiln(&["publish", &reference, "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    assert!(
        out.stderr.is_empty() || !out.stderr.contains("error"),
        "{}",
        out.stderr
    );
    let published = out.json_event("publish");
    let digest = published["digest"].as_str().unwrap().to_string();
    assert_eq!(
        published["annotations"]["org.opencontainers.image.revision"],
        commit.as_str()
    );
    assert_eq!(
        published["annotations"]["dev.kiln.version"],
        env!("CARGO_PKG_VERSION")
    );
    let tags = registry.tags("acme/md2html").unwrap();
    assert!(tags.contains(&digest.replacen(':', "-", 1)), "{tags:?}");

    let out = env
        .kiln(&["inspect", "--sbom", &reference, "--message-format", "json"])
        .run()
        .success();
    let found = out.json_event("sbom");
    assert_eq!(found["document"], sbom);
    assert!(found["referrer"].as_str().unwrap().starts_with("sha256:"));

    // A dirty tree is marked so; the revision is otherwise the commit.
    env.write("md2html/NOTES", "uncommitted\n");
    let out = env
        .kiln(&[
            "publish",
            &reference,
            "--dry-run",
            "--message-format",
            "json",
        ])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(
        out.json_event("publish")["annotations"]["org.opencontainers.image.revision"],
        format!("{commit}-dirty").as_str()
    );
}

#[test]
fn an_sbom_lists_c_sources_bundled_files_composed_parts_and_the_adapter() {
    let env = Env::new();
    let root = env.example("polyglot");
    env.write("polyglot/app/assets/greeting.txt", "hello\n");
    let manifest = root.join("app/Kiln.toml");
    let text = fs_err::read_to_string(&manifest).unwrap();
    fs_err::write(
        &manifest,
        format!("{text}\n[[bundle]]\nsource = \"assets\"\nmount = \"/assets\"\n"),
    )
    .unwrap();
    let out = env.kiln(&["build", "--release", "-q"]).cwd(&root).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let read = |name: &str| -> serde_json::Value {
        let path = root.join(format!("target/kiln/release/{name}.cdx.json"));
        serde_json::from_str(&fs_err::read_to_string(path).unwrap()).unwrap()
    };
    let names = |doc: &serde_json::Value| -> Vec<String> {
        doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let stats = names(&read("stats"));
    assert!(stats.contains(&"src/stats.c".to_string()), "{stats:?}");
    assert!(
        stats.contains(&"wasi_snapshot_preview1".to_string()),
        "{stats:?}"
    );
    let fmt = names(&read("fmt"));
    assert!(
        fmt.contains(&"example.com/polyglot/fmt".to_string()),
        "{fmt:?}"
    );
    let app = names(&read("app"));
    for part in [
        "stats",
        "fmt",
        "/assets/greeting.txt",
        "kiln-vfs",
        "wit-bindgen",
    ] {
        assert!(app.contains(&part.to_string()), "{part} in {app:?}");
    }
}
