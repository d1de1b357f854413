//! `kiln test`: a project's tests run inside the sandbox, through cargo and go.

use crate::support::Env;

/// Tests appended to the rust-cli template: one passes, one fails, one needs `/data`, one is
/// ignored, one is `#[should_panic]` (which libtest skips on wasm).
const RUST_TESTS: &str = r#"
#[cfg(test)]
mod tests {
    #[test]
    fn adds() {
        assert_eq!(2 + 2, 4);
    }

    #[test]
    fn fails() {
        assert_eq!(2 + 2, 5, "arithmetic is broken");
    }

    #[test]
    fn reads_granted_file() {
        let text = std::fs::read_to_string("/data/note.txt").expect("/data is granted");
        assert_eq!(text, "granted\n");
    }

    #[test]
    #[ignore]
    fn slow() {}

    // It does not panic: on wasm, libtest can only skip it, so kiln must not call it a pass.
    #[test]
    #[should_panic(expected = "boom")]
    fn must_panic() {}
}
"#;

#[test]
fn rust_tests_pass_and_fail_as_cargo_test_in_the_sandbox() {
    let env = Env::new();
    let project = env.new_project("tested", &[]);
    let main = project.join("src/main.rs");
    let mut source = fs_err::read_to_string(&main).unwrap();
    source.push_str(RUST_TESTS);
    fs_err::write(&main, source).unwrap();
    env.write("tested/data/note.txt", "granted\n");

    // Nothing granted: the file test fails beside the failing one; every test still runs.
    let out = env.kiln(&["test"]).cwd(&project).run().code(101);
    for line in [
        "running 5 tests",
        "test tests::adds ... ok",
        "test tests::fails ... FAILED",
        "test tests::reads_granted_file ... FAILED",
        "test tests::slow ... ignored",
        "test tests::must_panic ... ignored, should_panic tests cannot run on wasm",
        "arithmetic is broken",
        "test result: FAILED. 1 passed; 2 failed; 2 ignored; 0 measured; 0 filtered out",
    ] {
        assert!(out.stdout.contains(line), "{line}\n{}", out.stdout);
    }
    assert!(
        out.stderr
            .contains("error: test failed, to rerun pass `--bin tested`"),
        "{}",
        out.stderr
    );

    // Granted, the file test passes; cargo's filter and libtest's `--skip` pass through.
    let out = env
        .kiln(&["test", "--dir", "data::/data"])
        .cwd(&project)
        .run()
        .code(101);
    assert!(
        out.stdout.contains("test tests::reads_granted_file ... ok"),
        "{}",
        out.stdout
    );
    let out = env
        .kiln(&["test", "--dir", "data::/data", "--", "--skip", "fails"])
        .cwd(&project)
        .run()
        .success();
    assert!(
        out.stdout
            .contains("test result: ok. 2 passed; 0 failed; 2 ignored; 0 measured; 1 filtered out"),
        "{}",
        out.stdout
    );
    let out = env.kiln(&["test", "adds"]).cwd(&project).run().success();
    assert!(
        out.stdout
            .contains("test result: ok. 1 passed; 0 failed; 0 ignored"),
        "{}",
        out.stdout
    );

    // JSON: only messages on stdout, one per test binary and one at the end.
    let out = env
        .kiln(&["test", "--message-format", "json"])
        .cwd(&project)
        .run()
        .code(101);
    let binary = out.json_event("test-binary");
    assert_eq!(binary["exit_code"], 101, "{binary}");
    assert_eq!(binary["tests"], 3, "{binary}");
    assert_eq!(
        binary["failed"],
        serde_json::json!(["tests::fails", "tests::reads_granted_file"])
    );
    let finished = out.json_event("test-finished");
    assert_eq!(finished["success"], false);
    assert_eq!(finished["exit_code"], 101);
    assert!(
        out.stderr.contains("test tests::fails ... FAILED"),
        "{}",
        out.stderr
    );
}

#[test]
fn go_tests_run_through_kiln_in_the_sandbox() {
    let env = Env::new();
    let project = env.new_project("gotested", &["--template", "go-cli"]);
    env.write(
        "gotested/main_test.go",
        r#"package main

import (
	"os"
	"testing"
)

func TestAdds(t *testing.T) {
	if 2+2 != 4 {
		t.Fatal("arithmetic")
	}
}

func TestFails(t *testing.T) {
	t.Errorf("deliberately failing")
}

func TestReadsGranted(t *testing.T) {
	b, err := os.ReadFile("/data/note.txt")
	if err != nil || string(b) != "granted\n" {
		t.Fatalf("read: %v %q", err, b)
	}
}
"#,
    );
    env.write("gotested/data/note.txt", "granted\n");
    let out = env.kiln(&["test"]).cwd(&project).run();
    assert_eq!(
        out.code, 1,
        "is Go 1.25+ on PATH? (.ci/run installs it)\n{}{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains("--- FAIL: TestFails"), "{}", out.stdout);
    assert!(
        out.stdout.contains("--- FAIL: TestReadsGranted"),
        "{}",
        out.stdout
    );
    let out = env
        .kiln(&[
            "test",
            "--dir",
            "data::/data",
            "--message-format",
            "json",
            "TestReadsGranted|TestAdds",
        ])
        .cwd(&project)
        .run()
        .success();
    let binary = out.json_event("test-binary");
    assert_eq!(binary["passed"], true, "{binary}");
    assert_eq!(out.json_event("test-finished")["language"], "go");
}

#[test]
fn c_projects_are_not_tested_yet() {
    let env = Env::new();
    let project = env.project_fixture("c-lib");
    let out = env.kiln(&["test"]).cwd(&project).run().code(1);
    assert!(
        out.stderr
            .contains("error: `kiln test` does not run tests of C projects yet"),
        "{}",
        out.stderr
    );
}
