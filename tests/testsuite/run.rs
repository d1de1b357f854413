//! `kiln run`: exit statuses, traps, capabilities and the compiled-code cache.

use crate::support::{Env, assert_output_snapshot, files_under};

#[test]
fn exit_statuses_pass_through() {
    let env = Env::new();
    let project = env.project_fixture("panic-guest");
    let out = env
        .kiln(&["run", "-q", "--", "ok"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "ok\n");
    // Rust's std reports a non-zero ExitCode through `wasi:cli/exit.exit(err)`, which carries no
    // number in WASI 0.2: it arrives as 1 (docs/cli.md, "Exit status").
    env.kiln(&["run", "-q", "--", "fail"])
        .cwd(&project)
        .run()
        .code(1);
    // A guest using `exit-with-code` (WASI 0.2.12) gets its exact status through.
    let wasm = env.wat_fixture("exit-with-code");
    env.kiln(&["run", wasm.to_str().unwrap()]).run().code(3);
}

#[test]
fn a_trap_prints_the_backtrace_and_exits_134() {
    let env = Env::new();
    let project = env.project_fixture("panic-guest");
    let out = env
        .kiln(&["run", "-q", "--", "panic"])
        .cwd(&project)
        .run()
        .code(134);
    assert!(
        out.stderr.contains("panicked at src/main.rs"),
        "the guest's own message: {}",
        out.stderr
    );
    assert!(out.stderr.contains("the guest gave up"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: failed to run `target/kiln/debug/panic-guest.wasm`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("the guest trapped: wasm trap: wasm `unreachable` instruction executed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("error while executing at wasm backtrace:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("panic_guest::main"),
        "a frame names the guest's main: {}",
        out.stderr
    );
}

#[test]
fn nothing_is_granted_unless_asked() {
    let env = Env::new();
    let project = env.project_fixture("panic-guest");
    let out = env
        .kiln(&["run", "-q", "--", "env"])
        .cwd(&project)
        .env("SECRET_TOKEN", "hunter2")
        .run()
        .success();
    assert_eq!(out.stdout, "", "no host variable is visible by default");

    let out = env
        .kiln(&[
            "run",
            "-q",
            "--env",
            "SECRET_TOKEN",
            "--env",
            "MODE=test",
            "--",
            "env",
        ])
        .cwd(&project)
        .env("SECRET_TOKEN", "hunter2")
        .run()
        .success();
    assert_eq!(out.stdout, "SECRET_TOKEN=hunter2\nMODE=test\n");

    let out = env
        .kiln(&["run", "-q", "--inherit-env", "--", "env"])
        .cwd(&project)
        .env("SECRET_TOKEN", "hunter2")
        .run()
        .success();
    assert!(
        out.stdout.lines().any(|l| l == "SECRET_TOKEN=hunter2"),
        "{}",
        out.stdout
    );
}

#[test]
fn the_second_run_uses_cached_compiled_code() {
    let env = Env::new();
    let project = env.new_project("cached", &[]);
    let out = env.kiln(&["run", "-v"]).cwd(&project).run().success();
    assert!(
        out.stderr
            .contains("Compiled target/kiln/debug/cached.wasm in "),
        "{}",
        out.stderr
    );
    // One compiled component (beside it, the build's cached `cargo metadata`).
    let entries: Vec<String> = files_under(&env.cache_dir())
        .into_iter()
        .filter(|e| !e.starts_with("cargo-metadata/"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].starts_with("wasmtime-48.0.8/") && entries[0].ends_with(".cwasm"),
        "{entries:?}"
    );

    let out = env.kiln(&["run", "-v"]).cwd(&project).run().success();
    assert!(
        out.stderr.contains("Cached compiled code from "),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("Compiled target"), "{}", out.stderr);
    assert_eq!(out.stdout, "Hello, world!\n");
}

#[test]
fn a_library_component_is_not_runnable() {
    let env = Env::new();
    let wasm = env.wat_fixture("library");
    let out = env
        .kiln(&["run", wasm.file_name().unwrap().to_str().unwrap()])
        .run();
    assert_output_snapshot("run_library_component", &env, &out);
}
