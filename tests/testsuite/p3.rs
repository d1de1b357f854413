//! WASI 0.3: `wasi:cli/command@0.3` components (an async `run` export) built from the
//! `rust-cli-p3` template with the `wasip3` crate, run by `kiln run` and by an executable from
//! `--exe`, with the same grants, limits and exit codes as WASI 0.2 commands.

use crate::support::Env;

#[test]
fn a_wasi_0_3_command_runs_with_grants_limits_and_exit_codes() {
    let env = Env::new();
    let project = env.new_project("hello3", &["--template", "rust-cli-p3"]);
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    let wasm = project.join("target/kiln/debug/hello3.wasm");
    let wasm = wasm.to_str().unwrap();

    let out = env.kiln(&["run", wasm, "--", "world"]).run().success();
    assert_eq!(out.stdout, "Hello, world!\n");
    // Environment variables only when granted.
    let out = env
        .kiln(&["run", "--env", "GREETING=Howdy", wasm, "--", "partner"])
        .env("GREETING", "ignored")
        .run()
        .success();
    assert_eq!(out.stdout, "Howdy, partner!\n");
    let out = env
        .kiln(&["run", wasm, "--", "partner"])
        .env("GREETING", "not granted")
        .run()
        .success();
    assert_eq!(out.stdout, "Hello, partner!\n");
    // stdin through a WASI 0.3 stream.
    let out = env
        .kiln(&["run", wasm, "--", "--count"])
        .stdin("one two\nthree\n")
        .run()
        .success();
    assert_eq!(out.stdout, "      2       3      14\n");
    // An async timer.
    let out = env
        .kiln(&["run", wasm, "--", "--sleep", "50"])
        .run()
        .success();
    assert_eq!(out.stdout, "slept 50 ms\n");
    // `run` returning `err` is exit status 1, the guest's stderr shown as it wrote it.
    let out = env.kiln(&["run", wasm, "--", "--bogus"]).run().code(1);
    assert_eq!(out.stderr, "error: unknown option `--bogus`\n");
    // A guest waiting on a timer past --timeout is stopped, with the timeout's exit code.
    let out = env
        .kiln(&["run", "--timeout", "1s", wasm, "--", "--sleep", "600000"])
        .run()
        .code(124);
    assert!(
        out.stderr
            .contains("the guest ran longer than its time limit of 1s"),
        "{}",
        out.stderr
    );
    // Fuel counts the async guest's instructions too.
    let out = env
        .kiln(&["run", "--fuel", "1000", wasm, "--", "world"])
        .run()
        .code(152);
    assert!(out.stderr.contains("units of fuel"), "{}", out.stderr);
}

#[test]
fn a_wasi_0_3_command_ships_as_an_executable() {
    let env = Env::new();
    let project = env.new_project("tool3", &["--template", "rust-cli-p3"]);
    env.kiln(&["build", "-q", "--exe"]).cwd(&project).run().success();
    let exe = project.join("target/kiln/debug/tool3");
    let out = env.program(&exe, &["executable"]).run().success();
    assert_eq!(out.stdout, "Hello, executable!\n");
    let out = env.program(&exe, &["--bogus"]).run().code(1);
    assert_eq!(out.stderr, "error: unknown option `--bogus`\n");
}
