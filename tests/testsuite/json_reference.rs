//! docs/json.md is generated from kiln's message types (`kiln json-reference`); this test
//! fails when they drift. Regenerate with `KILN_BLESS=1 cargo test --test testsuite json_reference`.
//! Beside it: every command takes the global `--message-format json` and writes nothing but
//! JSON messages (with `reason` and `version`) on stdout.

use crate::support::{Env, repo};

#[test]
fn json_reference_is_up_to_date() {
    let env = Env::new();
    let generated = env.kiln(&["json-reference"]).run().success().stdout;
    for reason in [
        "artifact",
        "compiler-message",
        "status",
        "error",
        "publish",
        "request",
    ] {
        assert!(
            generated.contains(&format!("\n## {reason}\n")),
            "no section for `{reason}`:\n{generated}"
        );
    }
    let path = repo().join("docs/json.md");
    if std::env::var_os("KILN_BLESS").is_some() {
        fs_err::write(&path, &generated).unwrap();
        return;
    }
    let current = fs_err::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "docs/json.md is out of date; regenerate it with `KILN_BLESS=1 cargo test --test testsuite json_reference`"
    );
}

/// Every line on stdout is a JSON object with a documented reason and the version.
fn assert_only_messages(stdout: &str, documented: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{stdout}"));
            assert_eq!(value["version"], 1, "{line}");
            let reason = value["reason"].as_str().expect("a reason");
            assert!(
                documented.contains(&format!("\n## {reason}\n")),
                "`{reason}` is not in docs/json.md"
            );
            value
        })
        .collect()
}

#[test]
fn every_command_speaks_json() {
    let env = Env::new();
    let documented = env.kiln(&["json-reference"]).run().success().stdout;

    // `new` (a command that had no --message-format before) reports the project it made.
    let out = env
        .kiln(&["--message-format", "json", "new", "hello"])
        .run()
        .success();
    let messages = assert_only_messages(&out.stdout, &documented);
    assert_eq!(messages.len(), 1, "{}", out.stdout);
    assert_eq!(messages[0]["reason"], "project-created");
    assert_eq!(messages[0]["template"], "rust-cli");
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    // `build`: status lines become messages too (here `-v`'s detail lines); the global flag
    // goes after the command as well.
    let project = env.path("hello");
    let out = env
        .kiln(&["build", "-v", "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    let messages = assert_only_messages(&out.stdout, &documented);
    let reasons: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"artifact"), "{reasons:?}");
    assert_eq!(reasons.last(), Some(&"build-finished"), "{reasons:?}");
    assert!(
        messages
            .iter()
            .any(|m| m["reason"] == "status" && m["verb"] == "Running" && m["detail"] == true),
        "{}",
        out.stdout
    );

    // `run`: kiln's messages, then the guest's own output on the same stdout.
    let out = env
        .kiln(&["run", "--message-format", "json", "--", "kiln"])
        .cwd(&project)
        .run()
        .success();
    let (guest, kiln): (Vec<&str>, Vec<&str>) =
        out.stdout.lines().partition(|l| !l.starts_with('{'));
    assert_only_messages(&kiln.join("\n"), &documented);
    assert_eq!(guest, ["Hello, kiln!"], "{}", out.stdout);

    // `-q` drops status lines, not data.
    let out = env
        .kiln(&["-q", "--message-format", "json", "build"])
        .cwd(&project)
        .run()
        .success();
    let messages = assert_only_messages(&out.stdout, &documented);
    assert!(
        messages.iter().all(|m| m["reason"] != "status"),
        "{}",
        out.stdout
    );
    assert!(messages.iter().any(|m| m["reason"] == "artifact"));

    // A failure ends with an `error` message; people still get the error on stderr.
    let out = env
        .kiln(&["inspect", "--message-format", "json", "missing.wasm"])
        .run()
        .code(1);
    let messages = assert_only_messages(&out.stdout, &documented);
    let last = messages.last().expect("an error message");
    assert_eq!(last["reason"], "error");
    assert!(
        last["message"].as_str().unwrap().contains("missing.wasm"),
        "{last}"
    );
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);

    // Commands with nothing but data: doctor, templates.
    for args in [&["doctor"][..], &["templates"]] {
        let out = env
            .kiln(&[args, &["--message-format", "json"]].concat())
            .run()
            .success();
        assert!(!assert_only_messages(&out.stdout, &documented).is_empty());
    }
}

#[test]
fn a_closed_stdout_ends_kiln_quietly() {
    let env = Env::new();
    // `kiln templates | head -1`: the reader goes away after one line.
    let mut child = env
        .kiln(&["doctor"])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_an_error() {
    let env = Env::new();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = env
        .kiln(&["templates"])
        .command()
        .stdout(full)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write to stdout") && stderr.contains("No space left"),
        "{stderr}"
    );
}
