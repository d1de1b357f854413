//! `kiln build`.

use std::time::SystemTime;

use crate::support::{Env, sha256_file};

fn mtime(path: &std::path::Path) -> SystemTime {
    fs_err::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn build_writes_the_component_and_an_unchanged_build_writes_nothing() {
    let env = Env::new();
    let project = env.new_project("hello", &[]);
    let out = env
        .kiln(&["build", "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    let artifact = out.json_event("artifact");
    let path = project.join("target/kiln/debug/hello.wasm");
    assert_eq!(artifact["path"], path.display().to_string());
    assert_eq!(artifact["size"], fs_err::metadata(&path).unwrap().len());
    assert_eq!(artifact["sha256"], sha256_file(&path));
    assert_eq!(artifact["fresh"], false);
    assert_eq!(artifact["package_version"], "0.1.0");
    assert_eq!(artifact["version"], 1, "the message format's version");
    assert!(
        artifact["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("wasi:cli/run@0.2."))
    );
    assert!(
        out.json_lines()
            .iter()
            .any(|e| e["reason"] == "unit-finished"),
        "{}",
        out.stdout
    );

    let before = mtime(&path);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = env
        .kiln(&["build", "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.json_event("artifact")["fresh"], true);
    assert_eq!(
        mtime(&path),
        before,
        "a no-op build must not rewrite the artifact"
    );

    // A changed source rebuilds and rewrites.
    let main = project.join("src/main.rs");
    let source = fs_err::read_to_string(&main)
        .unwrap()
        .replace("Hello", "Hi");
    fs_err::write(&main, source).unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run().success();
    assert!(
        out.stderr
            .contains("Finished debug target/kiln/debug/hello.wasm"),
        "{}",
        out.stderr
    );
    assert_ne!(mtime(&path), before);
    let out = env
        .kiln(&["run", "-q", "target/kiln/debug/hello.wasm"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "Hi, world!\n");
}

#[test]
fn a_damaged_artifact_is_rewritten() {
    let env = Env::new();
    let project = env.new_project("mended", &[]);
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    let path = project.join("target/kiln/debug/mended.wasm");
    let good = sha256_file(&path);
    fs_err::write(&path, b"scribbled").unwrap();
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    assert_eq!(sha256_file(&path), good);
}

#[test]
fn release_builds_go_to_their_own_directory() {
    let env = Env::new();
    let project = env.new_project("fast", &[]);
    let out = env
        .kiln(&["build", "--release"])
        .cwd(&project)
        .run()
        .success();
    assert!(
        out.stderr
            .contains("Finished release target/kiln/release/fast.wasm ("),
        "{}",
        out.stderr
    );
    let out = env
        .kiln(&["run", "-q", "--release", "--", "speed"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "Hello, speed!\n");
    assert!(!project.join("target/kiln/debug").exists());
}

#[test]
fn a_cargo_project_without_kiln_toml_builds() {
    let env = Env::new();
    let project = env.project_fixture("panic-guest");
    assert!(!project.join("Kiln.toml").exists());
    let out = env
        .kiln(&["build", "--manifest-path", "panic-guest/Cargo.toml"])
        .run()
        .success();
    assert!(
        out.stderr
            .contains("Finished debug panic-guest/target/kiln/debug/panic-guest.wasm ("),
        "{}",
        out.stderr
    );
}

#[test]
fn a_compile_error_shows_rustc_diagnostics_and_writes_nothing() {
    let env = Env::new();
    let project = env.new_project("broken", &[]);
    env.write(
        "broken/src/main.rs",
        "fn main() {\n    let x: u32 = \"text\";\n}\n",
    );
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert!(
        out.stderr.contains("error[E0308]: mismatched types"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("src/main.rs:2:18"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: could not compile `broken` for wasm32-wasip2"),
        "{}",
        out.stderr
    );
    assert!(!project.join("target/kiln").exists());

    // JSON mode carries the diagnostic as an event.
    let out = env
        .kiln(&["build", "--message-format", "json"])
        .cwd(&project)
        .run()
        .code(1);
    let message = out
        .json_lines()
        .into_iter()
        .find(|e| e["reason"] == "compiler-message")
        .unwrap();
    assert_eq!(message["level"], "error");
    assert!(
        message["rendered"]
            .as_str()
            .unwrap()
            .contains("mismatched types")
    );
}

#[test]
fn quiet_builds_print_nothing_on_success() {
    let env = Env::new();
    let project = env.new_project("silent", &[]);
    let out = env.kiln(&["build", "-q"]).cwd(&project).run().success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
}

/// At a cargo virtual workspace's root, `kiln build` builds every member that is a
/// component — a command and a library — and skips plain libraries; `-p` picks one.
#[test]
fn a_virtual_workspace_builds_its_component_members() {
    let env = Env::new();
    env.new_project("ws/hello", &[]);
    env.new_project("ws/wordlib", &["--template", "rust-lib"]);
    env.write(
        "ws/util/Cargo.toml",
        "[package]\nname = \"util\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    );
    env.write("ws/util/src/lib.rs", "pub fn helper() {}\n");
    let root = env.write(
        "ws/Cargo.toml",
        "[workspace]\nmembers = [\"hello\", \"wordlib\", \"util\"]\nresolver = \"3\"\n",
    );
    let root = root.parent().unwrap().to_path_buf();

    let out = env
        .kiln(&["build", "--message-format", "json"])
        .cwd(&root)
        .run()
        .success();
    let mut names: Vec<String> = out
        .json_lines()
        .into_iter()
        .filter(|m| m["reason"] == "artifact")
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["hello", "wordlib"], "{}", out.stdout);
    // One target directory, the workspace's, as cargo has it.
    assert!(root.join("target/kiln/debug/hello.wasm").is_file());
    assert!(root.join("target/kiln/debug/wordlib.wasm").is_file());
    assert!(!root.join("target/kiln/debug/util.wasm").exists());
    let out = env
        .kiln(&["run", "-q", "target/kiln/debug/hello.wasm", "--", "ws"])
        .cwd(&root)
        .run()
        .success();
    assert_eq!(out.stdout, "Hello, ws!\n");

    // -p: one member, as cargo does; an unknown name lists the members.
    let out = env
        .kiln(&["build", "-p", "hello"])
        .cwd(&root)
        .run()
        .success();
    assert!(out.stderr.contains("hello.wasm"), "{}", out.stderr);
    assert!(!out.stderr.contains("wordlib.wasm"), "{}", out.stderr);
    let out = env.kiln(&["build", "-p", "nope"]).cwd(&root).run().code(1);
    assert!(
        out.stderr.contains("no member named `nope`")
            && out.stderr.contains("hello, wordlib, util"),
        "{}",
        out.stderr
    );
}

/// A no-op build asks cargo only to build (issue 21 item 3): what `cargo metadata` said is
/// cached until something it reads changes. A wrapper records each cargo invocation.
#[test]
fn an_unchanged_build_runs_cargo_build_only() {
    let env = Env::new();
    let project = env.new_project("quick", &["--template", "rust-cli"]);
    let log = env.path("cargo.log");
    let wrapper = env.write(
        "cargo-wrapper.sh",
        format!(
            "#!/bin/sh\necho \"$1\" >> '{}'\nexec cargo \"$@\"\n",
            log.display()
        ),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let build = || {
        env.kiln(&["build", "-q"])
            .cwd(&project)
            .env("CARGO", &wrapper)
            .run()
            .success();
        let calls = fs_err::read_to_string(&log).unwrap_or_default();
        fs_err::remove_file(&log).ok();
        calls.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let first = build();
    assert!(first.contains(&"metadata".to_string()), "{first:?}");
    assert_eq!(build(), ["build"]);
    // A changed manifest is read again.
    let cargo_toml = project.join("Cargo.toml");
    let text = fs_err::read_to_string(&cargo_toml).unwrap();
    fs_err::write(&cargo_toml, format!("{text}\n# changed\n")).unwrap();
    assert_eq!(build(), ["metadata", "build"]);
    assert_eq!(build(), ["build"]);
}
