//! Bad input: each case gets a clear message (snapshotted), exit code 1 (2 for usage), and
//! leaves no output file behind.

use crate::support::{Env, assert_output_snapshot, files_under};

/// A rust-cli project whose Kiln.toml is replaced by `kiln_toml`.
fn project_with_manifest(env: &Env, kiln_toml: &str) -> std::path::PathBuf {
    let project = env.new_project("app", &[]);
    env.write("app/Kiln.toml", kiln_toml);
    project
}

fn assert_no_output(project: &std::path::Path) {
    assert!(
        !project.join("target/kiln").exists(),
        "{:?}",
        files_under(&project.join("target/kiln"))
    );
}

#[test]
fn unknown_manifest_key() {
    let env = Env::new();
    let project = project_with_manifest(
        &env,
        "[package]\nname = \"app\"\n\n[release]\noptimise = \"s\"\n",
    );
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert_output_snapshot("unknown_manifest_key", &env, &out);
    assert_no_output(&project);
}

#[test]
fn bad_toml_syntax() {
    let env = Env::new();
    let project = project_with_manifest(&env, "[package]\nname = \"app\nversion = \"0.1.0\"\n");
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert_output_snapshot("bad_toml_syntax", &env, &out);
    assert_no_output(&project);
}

#[test]
fn wrong_type_in_manifest() {
    let env = Env::new();
    let project = project_with_manifest(
        &env,
        "[package]\nname = \"app\"\n\n[release]\nstrip = \"yes\"\n",
    );
    let out = env.kiln(&["run"]).cwd(&project).run().code(1);
    assert_output_snapshot("wrong_type_in_manifest", &env, &out);
    assert_no_output(&project);
}

#[test]
fn invalid_name_in_manifest() {
    let env = Env::new();
    let project = project_with_manifest(&env, "[package]\nname = \"My App\"\n");
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert_output_snapshot("invalid_name_in_manifest", &env, &out);
    assert_no_output(&project);
}

#[test]
fn a_custom_language_needs_a_command_and_an_output() {
    let env = Env::new();
    let project = project_with_manifest(&env, "[package]\nname = \"app\"\nlanguage = \"custom\"\n");
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert_output_snapshot("custom_without_command", &env, &out);
    assert_no_output(&project);
}

#[test]
fn missing_wasm32_wasip2_target() {
    let env = Env::new();
    let project = env.new_project("app", &[]);
    // A rustc whose sysroot has no wasm32-wasip2 standard library (as after a fresh rustup
    // install): kiln must say which target is missing and how to add it.
    let sysroot = env.path("bare-sysroot");
    fs_err::create_dir_all(sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu/lib")).unwrap();
    let rustc = env.write(
        "bin/rustc",
        format!("#!/bin/sh\n[ \"$1 $2\" = \"--print sysroot\" ] && echo '{}' && exit 0\nexec rustc \"$@\"\n", sysroot.display()),
    );
    #[cfg(unix)]
    fs_err::set_permissions(&rustc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = env
        .kiln(&["build"])
        .cwd(&project)
        .env("RUSTC", &rustc)
        .run()
        .code(1);
    assert_output_snapshot("missing_wasm32_wasip2_target", &env, &out);
    assert_no_output(&project);
}

#[test]
fn no_project_here() {
    let env = Env::new();
    let out = env.kiln(&["build"]).run().code(1);
    assert_output_snapshot("no_project_here", &env, &out);
}

#[test]
fn manifest_path_to_something_else() {
    let env = Env::new();
    env.write("notes.txt", "hello");
    let out = env
        .kiln(&["build", "--manifest-path", "notes.txt"])
        .run()
        .code(1);
    assert_output_snapshot("manifest_path_to_something_else", &env, &out);
}

#[test]
fn run_a_core_module() {
    let env = Env::new();
    env.wat_fixture("core-module");
    let out = env.kiln(&["run", "core-module.wasm"]).run().code(1);
    assert_output_snapshot("run_core_module", &env, &out);
}

#[test]
fn run_a_file_that_is_not_wasm() {
    let env = Env::new();
    env.write("hello.wat", "(module)\n");
    let out = env.kiln(&["run", "hello.wat"]).run().code(1);
    assert_output_snapshot("run_not_wasm", &env, &out);
    env.write("empty.wasm", "");
    let out = env.kiln(&["run", "empty.wasm"]).run().code(1);
    assert_output_snapshot("run_empty_file", &env, &out);
}

#[test]
fn run_a_missing_file() {
    let env = Env::new();
    let out = env.kiln(&["run", "missing.wasm"]).run().code(1);
    assert_output_snapshot("run_missing_file", &env, &out);
}

#[test]
fn run_with_a_missing_dir() {
    let env = Env::new();
    let wasm = env.wat_fixture("exit-with-code");
    let out = env
        .kiln(&["run", "--dir", "nowhere::/data", wasm.to_str().unwrap()])
        .run()
        .code(1);
    assert_output_snapshot("run_missing_dir", &env, &out);
    env.write("file.txt", "x");
    let out = env
        .kiln(&["run", "--dir", "file.txt", wasm.to_str().unwrap()])
        .run()
        .code(1);
    assert!(
        out.stderr.contains("`file.txt` is not a directory"),
        "{}",
        out.stderr
    );
}

#[test]
fn new_with_an_unknown_template() {
    let env = Env::new();
    let out = env
        .kiln(&["new", "app", "--template", "cobol-cli"])
        .run()
        .code(1);
    assert_output_snapshot("new_unknown_template", &env, &out);
    assert!(!env.path("app").exists());
}

#[test]
fn new_into_a_non_empty_directory() {
    let env = Env::new();
    env.write("app/Cargo.toml", "mine");
    let out = env.kiln(&["new", "app"]).run().code(1);
    assert_output_snapshot("new_non_empty_directory", &env, &out);
    assert_eq!(files_under(&env.path("app")), ["Cargo.toml"]);
    assert_eq!(
        fs_err::read_to_string(env.path("app/Cargo.toml")).unwrap(),
        "mine"
    );
}

#[test]
fn new_with_invalid_names() {
    let env = Env::new();
    let out = env.kiln(&["new", "Hello"]).run().code(1);
    assert_output_snapshot("new_invalid_name_from_directory", &env, &out);
    let out = env.kiln(&["new", "app", "--name", "world"]).run().code(1);
    assert_output_snapshot("new_invalid_name_keyword", &env, &out);
    let out = env.kiln(&["new", "app", "--name", "2fast"]).run().code(1);
    assert_output_snapshot("new_invalid_name_digit", &env, &out);
    assert!(!env.path("Hello").exists() && !env.path("app").exists());
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let out = env
        .kiln(&["build", "--message-format", "xml"])
        .run()
        .code(2);
    assert!(
        out.stderr
            .contains("invalid value 'xml' for '--message-format <FMT>'"),
        "{}",
        out.stderr
    );
    let out = env.kiln(&["run", "--dir"]).run().code(2);
    assert!(
        out.stderr
            .contains("a value is required for '--dir <HOST[::GUEST][:ro]>'"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bad_run_limit_in_the_manifest_points_at_its_line() {
    let env = Env::new();
    let project = project_with_manifest(
        &env,
        "[package]\nname = \"app\"\n\n[run]\ntimeout = \"soon\"\n",
    );
    let out = env.kiln(&["run"]).cwd(&project).run().code(1);
    assert_output_snapshot("manifest_bad_run_timeout", &env, &out);
    assert_no_output(&project);
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert!(out.stderr.contains("Kiln.toml:5:11"), "{}", out.stderr);
}

#[test]
fn a_c_sources_pattern_that_matches_nothing_is_named() {
    let env = Env::new();
    let project = env.new_project("app", &["--template", "c-cli"]);
    env.write(
        "app/Kiln.toml",
        "[package]\nname = \"app\"\nlanguage = \"c\"\n\n[build]\nsources = [\"lib/*.c\"]\n",
    );
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert_output_snapshot("c_sources_match_nothing", &env, &out);
    assert!(
        !files_under(&project.join("target/kiln"))
            .iter()
            .any(|f| f.ends_with(".wasm")),
        "{:?}",
        files_under(&project.join("target/kiln"))
    );
}

#[test]
fn exe_without_a_runner_says_where_it_looked_and_writes_no_executable() {
    let env = Env::new();
    let project = env.new_project("app", &[]);
    let missing = env.path("nowhere/kiln-runner");
    let out = env
        .kiln(&["build", "--exe"])
        .cwd(&project)
        .env("KILN_RUNNER", &missing)
        .run()
        .code(1);
    assert_output_snapshot("exe_runner_missing", &env, &out);
    assert_no_output(&project);
}
