//! SIGINT and SIGTERM sent to kiln's own pid (as a CI runner or `kill` sends them, not a
//! terminal's Ctrl-C to the whole process group): what kiln started stops with it, no
//! temporary file stays behind, and the exit status says which signal it was.

#![cfg(unix)]

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Env, files_under};

/// Waits for `path` to exist, for at most `limit` (a bound on a hang, not a timing check).
fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "`{}` did not appear in {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether process `pid` still runs (a zombie waiting to be reaped does not).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// A build script that, when `KILN_TEST_BLOCK` names a directory, writes its pid there and
/// then sleeps forever: a grandchild of kiln (kiln → cargo → build script).
const BLOCKING_BUILD_SCRIPT: &str = r#"
fn main() {
    println!("cargo:rerun-if-env-changed=KILN_TEST_BLOCK");
    if let Some(dir) = std::env::var_os("KILN_TEST_BLOCK") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::write(dir.join("pid.tmp"), std::process::id().to_string()).unwrap();
        std::fs::rename(dir.join("pid.tmp"), dir.join("pid")).unwrap();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}
"#;

#[test]
fn sigterm_during_a_build_stops_cargo_and_its_build_scripts_and_exits_143() {
    let env = Env::new();
    let project = env.new_project("slow", &[]);
    env.write("slow/build.rs", BLOCKING_BUILD_SCRIPT);
    let marker = env.path("marker");
    fs_err::create_dir_all(&marker).unwrap();

    let build = env
        .kiln(&["build"])
        .cwd(&project)
        .env("KILN_TEST_BLOCK", &marker)
        .spawn();
    wait_for(&marker.join("pid"), Duration::from_secs(300));
    let script: u32 = fs_err::read_to_string(marker.join("pid"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(running(script));

    let out = build.signal("TERM");
    assert_eq!(out.code, 143, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // The build script got the signal too (kiln waits for its process group to be gone).
    let start = Instant::now();
    while running(script) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the build script (pid {script}) outlived kiln"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let leftovers: Vec<String> = files_under(&project.join("target/kiln"))
        .into_iter()
        .filter(|f| f.contains(".kiln-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The next build works without cleaning.
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    assert!(project.join("target/kiln/debug/slow.wasm").is_file());
}

#[test]
fn sigint_stops_a_running_guest_and_exits_130() {
    let env = Env::new();
    let looping = wat::parse_str(
        r#"(component
            (core module $m (func (export "run") (result i32) (loop br 0) i32.const 0))
            (core instance $i (instantiate $m))
            (func $run (result (result)) (canon lift (core func $i "run")))
            (instance $inst (export "run" (func $run)))
            (export "wasi:cli/run@0.2.0" (instance $inst)))"#,
    )
    .unwrap();
    env.write("loop.wasm", looping);
    let run = env.kiln(&["run", "loop.wasm"]).spawn();
    // Whenever it lands, the signal is kiln's to handle: the watcher is installed first.
    std::thread::sleep(Duration::from_millis(500));
    let out = run.signal("INT");
    assert_eq!(out.code, 130, "{}", out.stderr);
    let run = env.kiln(&["run", "loop.wasm"]).spawn();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(run.signal("TERM").code, 143);
}

#[test]
fn sigterm_drains_kiln_serve_like_ctrl_c() {
    let env = Env::new();
    let server = crate::serve::serve_http_guest(&env, &[]);
    let url = server.url.clone();
    let in_flight = std::thread::spawn(move || {
        crate::serve::body(
            crate::support::http()
                .get(format!("{url}/slow?ms=1500"))
                .call()
                .unwrap(),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    let (code, stderr) = server.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Draining"), "{stderr}");
    assert_eq!(in_flight.join().unwrap(), (200, "slept 1500".to_string()));
}
