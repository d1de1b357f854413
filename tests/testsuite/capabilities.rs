//! A guest gets no capability it was not granted: no host files, environment variables or
//! sockets by default, and no way out of a granted directory.

use std::net::TcpListener;

use crate::support::{Env, files_under};

#[test]
fn without_grants_the_guest_sees_no_files_variables_or_network() {
    let env = Env::new();
    env.probe();
    env.write("secret.txt", "host secret");
    let secret = env.path("secret.txt").display().to_string();

    let out = env
        .kiln(&["run", "probe.wasm", "--", "read", &secret])
        .run()
        .code(1);
    assert_eq!(out.stdout, "error: NotFound\n");
    let out = env
        .kiln(&["run", "probe.wasm", "--", "list", "/"])
        .run()
        .code(1);
    assert_eq!(out.stdout, "error: NotFound\n");

    let out = env
        .kiln(&["run", "probe.wasm", "--", "env"])
        .env("KILN_TEST_SECRET", "hunter2")
        .run()
        .success();
    assert_eq!(out.stdout, "");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let out = env
        .kiln(&["run", "probe.wasm", "--", "connect", &addr])
        .run()
        .code(1);
    assert_eq!(out.stdout, "error: PermissionDenied\n");
    // The same probe connects once the network is granted, so the denial above is real.
    let out = env
        .kiln(&[
            "run",
            "probe.wasm",
            "--inherit-network",
            "--",
            "connect",
            &addr,
        ])
        .run()
        .success();
    assert_eq!(out.stdout, "connected\n");
}

#[test]
fn granted_variables_are_the_only_ones_seen() {
    let env = Env::new();
    env.probe();
    let out = env
        .kiln(&[
            "run",
            "probe.wasm",
            "--env",
            "GIVEN=1",
            "--env",
            "PASSED",
            "--env",
            "UNSET_ON_HOST",
            "--",
            "env",
        ])
        .env("PASSED", "from host")
        .env("NOT_GRANTED", "x")
        .run()
        .success();
    assert_eq!(out.stdout, "GIVEN=1\nPASSED=from host\n");
}

#[cfg(unix)]
#[test]
fn a_granted_directory_cannot_be_escaped() {
    let env = Env::new();
    env.probe();
    env.write("secret.txt", "host secret");
    env.write("data/inside.txt", "inside");
    env.write("data/sub/deeper.txt", "deeper");
    std::os::unix::fs::symlink("../secret.txt", env.path("data/up-link")).unwrap();
    std::os::unix::fs::symlink(env.path("secret.txt"), env.path("data/abs-link")).unwrap();

    let probe = |args: &[&str]| {
        let mut all = vec!["run", "probe.wasm", "--dir", "data::/data", "--"];
        all.extend_from_slice(args);
        env.kiln(&all).run()
    };
    probe(&["exit", "0"]).success(); // fills the compiled-code cache under the root
    let before = files_under(&env.root());
    // Inside the grant, `..` that stays inside is fine.
    assert_eq!(
        probe(&["read", "/data/inside.txt"]).success().stdout,
        "inside"
    );
    assert_eq!(
        probe(&["read", "/data/sub/../inside.txt"]).success().stdout,
        "inside"
    );
    // Every way out fails.
    for path in [
        "/data/../secret.txt",
        "/data/sub/../../secret.txt",
        "/secret.txt",
        &env.path("secret.txt").display().to_string(),
        "/data/up-link",
        "/data/abs-link",
    ] {
        let out = probe(&["read", path]).code(1);
        assert!(
            out.stdout.starts_with("error: "),
            "reading {path} escaped the grant: {}",
            out.stdout
        );
    }
    for path in ["/data/../escaped.txt", "/data/up-link", "/data/abs-link"] {
        let out = probe(&["write", path, "overwritten"]).code(1);
        assert!(out.stdout.starts_with("error: "), "{path}: {}", out.stdout);
    }
    assert_eq!(files_under(&env.root()), before);
    assert_eq!(
        fs_err::read_to_string(env.path("secret.txt")).unwrap(),
        "host secret"
    );
    // Inside, writing works.
    assert_eq!(
        probe(&["write", "/data/new.txt", "new"]).success().stdout,
        "written\n"
    );
    assert_eq!(
        fs_err::read_to_string(env.path("data/new.txt")).unwrap(),
        "new"
    );
}

#[test]
fn a_read_only_grant_can_be_read_but_not_changed() {
    let env = Env::new();
    env.probe();
    env.write("data/inside.txt", "inside");
    let probe = |args: &[&str]| {
        let mut all = vec!["run", "probe.wasm", "--dir", "data::/data:ro", "--"];
        all.extend_from_slice(args);
        env.kiln(&all).run()
    };
    assert_eq!(
        probe(&["read", "/data/inside.txt"]).success().stdout,
        "inside"
    );
    assert_eq!(probe(&["list", "/data"]).success().stdout, "inside.txt\n");
    let out = probe(&["write", "/data/new.txt", "x"]).code(1);
    assert!(out.stdout.starts_with("error: "), "{}", out.stdout);
    let out = probe(&["write", "/data/inside.txt", "x"]).code(1);
    assert!(out.stdout.starts_with("error: "), "{}", out.stdout);
    assert_eq!(files_under(&env.path("data")), ["inside.txt"]);
    assert_eq!(
        fs_err::read_to_string(env.path("data/inside.txt")).unwrap(),
        "inside"
    );
}

#[test]
fn inherit_env_leaves_kiln_secrets_out_unless_granted_by_name() {
    let env = Env::new();
    env.probe();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "probe.wasm", "--inherit-env"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "env"]);
        env.kiln(&args)
            .env("KILN_REGISTRY_TOKEN", "hunter2")
            .env("KILN_REGISTRY_PASSWORD", "hunter3")
            .env("kiln_registry_username", "lowercase")
            .env("VISIBLE", "yes")
            .run()
            .success()
    };
    let out = run(&[]);
    assert!(
        out.stdout.lines().any(|l| l == "VISIBLE=yes"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("hunter"), "{}", out.stdout);
    assert!(
        !out.stdout.to_lowercase().contains("kiln_"),
        "{}",
        out.stdout
    );
    // Named explicitly, one is granted: that is the user's decision, not an accident.
    let out = run(&["--env", "KILN_REGISTRY_TOKEN"]);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "KILN_REGISTRY_TOKEN=hunter2"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("hunter3"), "{}", out.stdout);
}
