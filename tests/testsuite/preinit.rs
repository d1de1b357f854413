//! `[release] preinit`: the init export runs at build time (Wizer) and its state is the
//! component's initial state.

use crate::bundle::wasmtime;
use crate::support::{Env, assert_output_snapshot};

#[test]
fn a_pre_initialized_command_starts_with_its_state() {
    let env = Env::new();
    let project = env.project_fixture("preinit-guest");

    // Debug builds do not pre-initialize: `main` builds the table.
    let out = env
        .kiln(&["run", "-q", "--", "100"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "prime 100 is 541 (computed at start-up)\n");

    let out = env
        .kiln(&["build", "--release"])
        .cwd(&project)
        .run()
        .success();
    assert!(
        out.stderr.contains("Initializing primes.wasm"),
        "{}",
        out.stderr
    );
    let out = env
        .kiln(&["run", "-q", "--release", "--", "60000"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "prime 60000 is 746773 (pre-initialized)\n");

    // The snapshot is a plain component: another runtime runs it the same way.
    let wasm = project.join("target/kiln/release/primes.wasm");
    let out = env
        .program(&wasmtime(), &["run", wasm.to_str().unwrap(), "100"])
        .run()
        .success();
    assert_eq!(out.stdout, "prime 100 is 541 (pre-initialized)\n");

    // Turning it off is a different pipeline: rebuilt, and `main` computes again.
    fs_err::write(
        project.join("Kiln.toml"),
        "[package]\nname = \"primes\"\n\n[release]\npreinit = false\n",
    )
    .unwrap();
    let out = env
        .kiln(&["run", "-q", "--release", "--", "100"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "prime 100 is 541 (computed at start-up)\n");
}

#[test]
fn preinit_without_the_export_says_how_to_add_it() {
    let env = Env::new();
    let project = env.project_fixture("probe-guest");
    let release_build_fails = |kiln_toml: &str, snapshot: &str| {
        fs_err::write(project.join("Kiln.toml"), kiln_toml).unwrap();
        let out = env
            .kiln(&["build", "--release"])
            .cwd(&project)
            .run()
            .code(1);
        assert_output_snapshot(snapshot, &env, &out);
    };
    release_build_fails(
        "[package]\nname = \"probe\"\n\n[release]\npreinit = true\n",
        "preinit_without_the_export",
    );
    assert!(!project.join("target/kiln/release/probe.wasm").exists());

    // A name that is no WIT item is a manifest error, located.
    release_build_fails("[release]\npreinit = \"init(1)\"\n", "preinit_bad_name");
}
