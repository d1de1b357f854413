//! `kiln build --exe`: one native file that runs its component anywhere on this platform,
//! with no kiln installed, with the capabilities fixed at build time.

use crate::support::{Env, files_under};

const KILN_TOML: &str = r#"[package]
name = "probe"
exe = true

[run]
dirs = ["data::/data:ro"]
env = ["GREETING=hello", "FROM_HOST"]
"#;

/// Builds the probe guest as an executable in one scratch directory and copies it alone into
/// another; returns that second directory's environment and the executable's path there.
fn built_elsewhere() -> (Env, std::path::PathBuf) {
    let build = Env::new();
    let project = build.project_fixture("probe-guest");
    fs_err::write(project.join("Kiln.toml"), KILN_TOML).unwrap();
    let out = build.kiln(&["build"]).cwd(&project).run().success();
    assert!(
        out.stderr
            .contains("Packaged debug target/kiln/debug/probe"),
        "{}",
        out.stderr
    );
    let exe = project.join("target/kiln/debug/probe");

    let elsewhere = Env::new();
    let copied = elsewhere.path("probe");
    fs_err::copy(&exe, &copied).unwrap();
    elsewhere.write("data/note.txt", "bundled with the grant");
    drop(build); // The project, its component and its cache are gone.
    (elsewhere, copied)
}

#[test]
fn an_executable_runs_from_anywhere_without_kiln() {
    let (env, exe) = built_elsewhere();
    let run = |args: &[&str]| env.program(&exe, args);

    let out = run(&["echo", "a b", "c"])
        .stdin("from stdin\n")
        .run()
        .success();
    assert_eq!(out.stdout, "a b\nc\nfrom stdin\n");
    assert_eq!(out.stderr, "");
    // WASI 0.2 carries ok/err only: a non-zero status arrives as 1.
    run(&["exit", "0"]).run().success();
    run(&["exit", "3"]).run().code(1);
    let out = run(&["panic"]).run().code(134);
    assert!(out.stderr.contains("the probe gave up"), "{}", out.stderr);
    assert!(
        out.stderr.contains("error: the guest trapped"),
        "{}",
        out.stderr
    );

    // Only what Kiln.toml granted: two variables (one passed from the host), one read-only
    // directory.
    let out = run(&["env"])
        .env("FROM_HOST", "passed")
        .env("NOT_GRANTED", "kept out")
        .run()
        .success();
    assert_eq!(out.stdout, "FROM_HOST=passed\nGREETING=hello\n");
    let out = run(&["read", "/data/note.txt"]).run().success();
    assert_eq!(out.stdout, "bundled with the grant");
    let out = run(&["write", "/data/new.txt", "x"]).run().code(1);
    assert!(out.stdout.starts_with("error: "), "{}", out.stdout);
    assert_eq!(files_under(&env.path("data")), ["note.txt"]);
}

#[test]
fn kiln_variables_override_the_built_in_settings() {
    let (env, exe) = built_elsewhere();
    let run = |args: &[&str]| env.program(&exe, args);

    let out = run(&["spin"]).env("KILN_TIMEOUT", "300ms").run().code(124);
    assert!(out.stderr.contains("time limit of 300ms"), "{}", out.stderr);
    let out = run(&["read", "/data/note.txt"])
        .env("KILN_DIRS", "")
        .run()
        .code(1);
    assert_eq!(out.stdout, "error: NotFound\n");
    let out = run(&["env"]).env("KILN_ENV", "EXTRA=1").run().success();
    assert_eq!(out.stdout, "EXTRA=1\nGREETING=hello\n");
    let out = run(&["alloc", "4096"])
        .env("KILN_MAX_MEMORY", "64MiB")
        .run()
        .code(137);
    assert!(out.stderr.contains("over its limit"), "{}", out.stderr);
    let out = run(&["exit", "0"]).env("KILN_FUEL", "1000").run().code(1);
    assert!(
        out.stderr.contains("built without fuel metering"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_damaged_executable_says_so() {
    let (env, exe) = built_elsewhere();
    let bytes = fs_err::read(&exe).unwrap();

    let mut flipped = bytes.clone();
    let at = bytes.len() - 1000;
    flipped[at] ^= 0x55;
    fs_err::write(&exe, &flipped).unwrap();
    let out = env.program(&exe, &["exit", "0"]).run().code(1);
    assert!(
        out.stderr.contains("its payload is damaged"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: rebuild it with `kiln build --exe`"),
        "{}",
        out.stderr
    );

    fs_err::write(&exe, &bytes[..bytes.len() - 10]).unwrap();
    let out = env.program(&exe, &["exit", "0"]).run().code(1);
    assert!(
        out.stderr.contains("carries no component"),
        "{}",
        out.stderr
    );

    // The bare runner is not a program either.
    let runner = std::path::Path::new(env!("KILN_RUNNER_BIN"));
    let out = env.program(runner, &[]).run().code(1);
    assert!(
        out.stderr.contains("carries no component"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unchanged_executable_is_not_rewritten() {
    let env = Env::new();
    let project = env.project_fixture("probe-guest");
    let out = env
        .kiln(&["build", "--exe", "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    let exe: Vec<_> = out
        .json_lines()
        .into_iter()
        .filter(|e| e["kind"] == "executable")
        .collect();
    assert_eq!(exe.len(), 1, "{}", out.stdout);
    assert_eq!(exe[0]["fresh"], false);
    let path = std::path::PathBuf::from(exe[0]["path"].as_str().unwrap());
    assert_eq!(path, project.join("target/kiln/debug/probe-guest"));
    let modified = fs_err::metadata(&path).unwrap().modified().unwrap();

    let out = env.kiln(&["build", "--exe"]).cwd(&project).run().success();
    assert!(!out.stderr.contains("Packaging"), "{}", out.stderr);
    assert!(out.stderr.contains("Packaged"), "{}", out.stderr);
    assert_eq!(
        fs_err::metadata(&path).unwrap().modified().unwrap(),
        modified
    );

    // A changed `[run]` table is a different executable.
    fs_err::write(project.join("Kiln.toml"), "[run]\ntimeout = \"1s\"\n").unwrap();
    let out = env.kiln(&["build", "--exe"]).cwd(&project).run().success();
    assert!(out.stderr.contains("Packaging"), "{}", out.stderr);
    let out = env.program(&path, &["spin"]).run().code(124);
    assert!(out.stderr.contains("time limit of 1s"), "{}", out.stderr);
}

/// An executable made the way `kiln build --exe` makes one (the real `kiln-runner` kiln
/// carries, with a payload appended), around a component that is not built from a project.
fn executable_around(env: &Env, name: &str, component: &[u8]) -> std::path::PathBuf {
    executable_compiled_with(env, name, component, kiln_runtime::RuntimeConfig::default())
}

/// [`executable_around`], with code precompiled under `config`.
fn executable_compiled_with(
    env: &Env,
    name: &str,
    component: &[u8],
    config: kiln_runtime::RuntimeConfig,
) -> std::path::PathBuf {
    use kiln_runtime::exe::{ExeSettings, assemble};
    let runner = fs_err::read(env!("KILN_RUNNER_BIN")).unwrap();
    let runtime = kiln_runtime::Runtime::new(config).unwrap();
    let precompiled = runtime.precompile_portable(component).unwrap();
    let settings = ExeSettings {
        name: name.into(),
        component_sha256: String::new(),
        fuel_metering: false,
        run: kiln_runtime::RunConfig::default(),
    };
    let path = env.path(name);
    fs_err::write(&path, assemble(&runner, &settings, component, &precompiled)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// A core instance `$main` whose `attack` does nothing.
const PEACEFUL: &str = r#"(core module $m (func (export "attack") (result i32) (i32.const 1)))
    (core instance $main (instantiate $m))"#;

#[test]
fn the_runner_has_no_compiler_and_says_so_in_one_line() {
    use crate::limits::{World, hostile};
    let env = Env::new();
    // Code compiled with fuel metering does not fit an executable whose settings have none:
    // a runner with a compiler would recompile it; kiln's runner has none.
    let fueled = kiln_runtime::RuntimeConfig {
        fuel: true,
        ..kiln_runtime::RuntimeConfig::default()
    };
    let exe =
        executable_compiled_with(&env, "mismatch", &hostile(World::Command, PEACEFUL), fueled);
    let out = env.program(&exe, &[]).run().code(1);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("its precompiled code cannot be loaded here (")
            && out
                .stderr
                .contains("this runner has no compiler to rebuild it"),
        "{}",
        out.stderr
    );

    // The runner is runtime-only: no Cranelift in it (kiln itself names its sources in
    // panic locations; the runner never does).
    let runner = fs_err::read(env!("KILN_RUNNER_BIN")).unwrap();
    let kiln = fs_err::read(env!("CARGO_BIN_EXE_kiln")).unwrap();
    let mentions = |bytes: &[u8]| {
        bytes
            .windows(b"cranelift-codegen".len())
            .any(|w| w == b"cranelift-codegen")
    };
    assert!(mentions(&kiln), "the check would see Cranelift in kiln");
    assert!(!mentions(&runner), "the runner carries Cranelift");
}

#[test]
fn hostile_guests_in_an_executable_are_bounded() {
    use crate::limits::{WRAPPING_MEMORY, World, growing_table, hostile};
    let env = Env::new();
    let wrap = executable_around(&env, "wrap", &hostile(World::Command, WRAPPING_MEMORY));
    let out = env
        .program(&wrap, &[])
        .env("KILN_MAX_MEMORY", "8MiB")
        .run()
        .code(137);
    assert!(
        out.stderr
            .contains("over its limit of 8388608 bytes, and was stopped"),
        "{}",
        out.stderr
    );

    let table = executable_around(
        &env,
        "table",
        &hostile(World::Command, &growing_table(50_000_000)),
    );
    let out = env.program(&table, &[]).run().code(137);
    assert!(
        out.stderr.contains("over its limit of 1000000 elements"),
        "{}",
        out.stderr
    );
}

#[test]
fn only_commands_are_packaged_as_executables() {
    let env = Env::new();
    let project = env.new_project("wordlib", &["--template", "rust-lib"]);
    let out = env.kiln(&["build", "--exe"]).cwd(&project).run().code(1);
    assert!(
        out.stderr.contains(
            "cannot package `wordlib` as an executable: it does not export `wasi:cli/run`"
        ),
        "{}",
        out.stderr
    );
    assert!(!project.join("target/kiln/debug/wordlib").exists());
    // The component itself was built, and is what it is.
    assert!(project.join("target/kiln/debug/wordlib.wasm").is_file());
}
