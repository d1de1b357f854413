//! Limits on `kiln run`: each stops its guest with a clear message and its own exit code, and
//! kiln itself exits normally (the harness fails on death by signal).

use std::time::Duration;

use crate::support::{Env, assert_output_snapshot};

#[test]
fn an_infinite_loop_stops_at_the_timeout() {
    let env = Env::new();
    env.probe();
    // Warm the compiled-code cache, so the timed run measures the guest, not the compiler.
    env.kiln(&["run", "probe.wasm", "--", "exit", "0"])
        .run()
        .success();
    let (out, elapsed) = env
        .kiln(&["run", "probe.wasm", "--timeout", "1s", "--", "spin"])
        .run_timed();
    assert_output_snapshot("timeout", &env, &out);
    assert_eq!(out.code, 124);
    assert!(
        elapsed < Duration::from_millis(1500),
        "the guest was stopped only after {elapsed:?}"
    );
}

#[test]
fn a_guest_allocating_4_gib_stops_at_max_memory() {
    let env = Env::new();
    env.probe();
    let out = env
        .kiln(&[
            "run",
            "probe.wasm",
            "--max-memory",
            "64MiB",
            "--",
            "alloc",
            "4096",
        ])
        .run()
        .code(137);
    assert!(!out.stdout.contains("done"), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("over its limit of 67108864 bytes, and was stopped"),
        "{}",
        out.stderr
    );
    // Under the limit, the same guest finishes.
    let out = env
        .kiln(&[
            "run",
            "probe.wasm",
            "--max-memory",
            "256MiB",
            "--",
            "alloc",
            "128",
        ])
        .run()
        .success();
    assert_eq!(out.stdout, "done\n");
}

#[test]
fn unbounded_recursion_exhausts_the_stack_and_kiln_exits_normally() {
    let env = Env::new();
    env.probe();
    let out = env
        .kiln(&["run", "probe.wasm", "--", "recurse"])
        .run()
        .code(139);
    assert!(
        out.stderr
            .contains("the guest exhausted its wasm stack of 524288 bytes and was stopped"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("recurse"),
        "no backtrace: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // A bigger stack is still bounded, and says so.
    let out = env
        .kiln(&[
            "run",
            "probe.wasm",
            "--max-wasm-stack",
            "2MiB",
            "--",
            "recurse",
        ])
        .run()
        .code(139);
    assert!(
        out.stderr.contains("stack of 2097152 bytes"),
        "{}",
        out.stderr
    );
}

#[test]
fn fuel_exhaustion_is_deterministic() {
    let env = Env::new();
    env.probe();
    let runs: Vec<_> = (0..10)
        .map(|_| {
            env.kiln(&["run", "probe.wasm", "--fuel", "3000000", "--", "count"])
                .run()
                .code(152)
        })
        .collect();
    let first = &runs[0];
    assert!(
        first.stdout.lines().count() > 3,
        "the guest should get some way first: {first:?}"
    );
    assert!(
        first
            .stderr
            .contains("the guest used all of its 3000000 units of fuel and was stopped"),
        "{}",
        first.stderr
    );
    for run in &runs[1..] {
        assert_eq!(run.stdout, first.stdout);
        assert_eq!(run.stderr, first.stderr);
    }
}

#[test]
fn bad_limits_are_usage_errors() {
    let env = Env::new();
    env.probe();
    let out = env
        .kiln(&["run", "probe.wasm", "--timeout", "soon"])
        .run()
        .code(2);
    assert!(
        out.stderr.contains("`soon` is not a duration"),
        "{}",
        out.stderr
    );
    let out = env
        .kiln(&["run", "probe.wasm", "--max-memory", "0"])
        .run()
        .code(2);
    assert!(out.stderr.contains("`0` is zero"), "{}", out.stderr);
}
