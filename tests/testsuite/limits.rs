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

/// What a hostile guest component exports: `wasi:cli/run` (for `kiln run` and executables)
/// or `wasi:http/incoming-handler` (for `kiln serve`).
#[derive(Clone, Copy)]
pub(crate) enum World {
    Command,
    Http,
}

/// A component around core WAT that defines a core instance `$main` exporting `attack`
/// (`(result i32)`, 0 when the attack got through). As a command it returns `ok` when
/// `attack` returns; as an HTTP handler it returns without a response (a 500).
pub(crate) fn hostile(world: World, core: &str) -> Vec<u8> {
    let (imports, export) = match world {
        World::Command => (
            "",
            r#"(core module $lift (import "m" "attack" (func $attack (result i32)))
                 (func (export "run") (result i32) (drop (call $attack)) (i32.const 0)))
               (core instance $lifted (instantiate $lift (with "m" (instance $main))))
               (func $run (result (result)) (canon lift (core func $lifted "run")))
               (instance $inst (export "run" (func $run)))
               (export "wasi:cli/run@0.2.0" (instance $inst))"#,
        ),
        World::Http => (
            r#"(import "wasi:http/types@0.2.0" (instance $types
                 (export "incoming-request" (type (sub resource)))
                 (export "response-outparam" (type (sub resource)))))
               (alias export $types "incoming-request" (type $req))
               (alias export $types "response-outparam" (type $out))"#,
            r#"(core module $lift (import "m" "attack" (func $attack (result i32)))
                 (func (export "handle") (param i32 i32) (drop (call $attack))))
               (core instance $lifted (instantiate $lift (with "m" (instance $main))))
               (func $handle (param "request" (own $req)) (param "response-out" (own $out))
                 (canon lift (core func $lifted "handle")))
               (instance $inst (export "handle" (func $handle)))
               (export "wasi:http/incoming-handler@0.2.0" (instance $inst))"#,
        ),
    };
    wat::parse_str(format!("(component {imports} {core} {export})"))
        .unwrap_or_else(|e| panic!("hostile guest: {e}"))
}

/// Two memories in two core instances, one of them memory64. Each round asks the memory64
/// one to grow by the number of bytes that brings an unchecked running total back to zero
/// (2^64 minus the total so far, which the guest can work out: 2 pages at first, then the
/// 64 pages it grew the other memory by), then grows the 32-bit memory by 4 MiB; 32 rounds
/// are 128 MiB. A limiter that wraps lets every round through; a checked one refuses the
/// memory64 grow, counts the 4 MiB grows, and the guest traps on the first refused one.
pub(crate) const WRAPPING_MEMORY: &str = r#"
    (core module $big
      (memory $m i64 1)
      (func (export "grow") (param i64) (result i64) (memory.grow $m (local.get 0))))
    (core instance $big (instantiate $big))
    (core module $attacker
      (import "big" "grow" (func $grow_big (param i64) (result i64)))
      (memory 1)
      (func (export "attack") (result i32)
        (local $round i32) (local $pages i64)
        (local.set $pages (i64.const 2))
        (loop $again
          (drop (call $grow_big (i64.sub (i64.const 0x1000000000000) (local.get $pages))))
          (if (i32.eq (memory.grow (i32.const 64)) (i32.const -1)) (then unreachable))
          (local.set $pages (i64.const 64))
          (local.set $round (i32.add (local.get $round) (i32.const 1)))
          (br_if $again (i32.lt_u (local.get $round) (i32.const 32))))
        (i32.const 0)))
    (core instance $main (instantiate $attacker (with "big" (instance $big))))"#;

/// A funcref table of one element grown by `elements` at once; traps when refused.
pub(crate) fn growing_table(elements: u32) -> String {
    format!(
        r#"(core module $m
             (table $t 1 funcref)
             (func (export "attack") (result i32)
               (if (i32.eq (table.grow $t (ref.null func) (i32.const {elements})) (i32.const -1))
                 (then unreachable))
               (i32.const 0)))
           (core instance $main (instantiate $m))"#
    )
}

#[test]
fn a_memory64_grow_cannot_wrap_the_memory_total() {
    let env = Env::new();
    let wasm = env.write("wrap.wasm", hostile(World::Command, WRAPPING_MEMORY));
    let out = env
        .kiln(&["run", wasm.to_str().unwrap(), "--max-memory", "8MiB"])
        .run()
        .code(137);
    assert!(
        out.stderr
            .contains("over its limit of 8388608 bytes, and was stopped"),
        "{}",
        out.stderr
    );
    // Without a memory limit nothing wraps either: the memory64 grow fails, the 4 MiB ones
    // succeed (128 MiB of 32-bit memory is a legitimate ask).
    env.kiln(&["run", wasm.to_str().unwrap()]).run().success();
}

#[test]
fn tables_are_bounded_by_default_and_by_the_flag() {
    let env = Env::new();
    let huge = env.write(
        "huge-table.wasm",
        hostile(World::Command, &growing_table(50_000_000)),
    );
    let out = env
        .kiln(&["run", huge.to_str().unwrap(), "--max-memory", "1MiB"])
        .run()
        .code(137);
    assert!(
        out.stderr.contains(
            "tried to grow its tables to 50000001 elements, over its limit of 1000000 elements"
        ),
        "{}",
        out.stderr
    );

    let small = env.write("table.wasm", hostile(World::Command, &growing_table(1000)));
    env.kiln(&["run", small.to_str().unwrap()]).run().success();
    let out = env
        .kiln(&[
            "run",
            small.to_str().unwrap(),
            "--max-table-elements",
            "500",
        ])
        .run()
        .code(137);
    assert!(
        out.stderr.contains("over its limit of 500 elements"),
        "{}",
        out.stderr
    );

    // A table declared over the limit fails at instantiation, and says why.
    let declared = env.write(
        "declared.wasm",
        hostile(
            World::Command,
            r#"(core module $m
                 (table 2000000 funcref)
                 (func (export "attack") (result i32) (i32.const 0)))
               (core instance $main (instantiate $m))"#,
        ),
    );
    let out = env
        .kiln(&["run", declared.to_str().unwrap()])
        .run()
        .code(137);
    assert!(
        out.stderr
            .contains("tried to grow its tables to 2000000 elements"),
        "{}",
        out.stderr
    );
}

#[test]
fn resource_handles_are_bounded_by_the_flag() {
    let env = Env::new();
    let handles = |count: u32| {
        format!(
            r#"(type $r (resource (rep i32)))
               (core func $new (canon resource.new $r))
               (core module $m
                 (import "" "new" (func $new (param i32) (result i32)))
                 (func (export "attack") (result i32) (local $i i32)
                   (loop $again
                     (drop (call $new (local.get $i)))
                     (local.set $i (i32.add (local.get $i) (i32.const 1)))
                     (br_if $again (i32.lt_u (local.get $i) (i32.const {count}))))
                   (i32.const 0)))
               (core instance $main (instantiate $m
                 (with "" (instance (export "new" (func $new))))))"#
        )
    };
    let many = env.write("handles.wasm", hostile(World::Command, &handles(2000)));
    let out = env
        .kiln(&["run", many.to_str().unwrap(), "--max-handles", "1000"])
        .run()
        .code(134);
    assert!(
        out.stderr.contains("handle limit exceeded"),
        "{}",
        out.stderr
    );
    env.kiln(&["run", many.to_str().unwrap(), "--max-handles", "5000"])
        .run()
        .success();
}

#[test]
fn out_of_range_limits_are_usage_errors_naming_the_flag() {
    let env = Env::new();
    env.probe();
    for (flag, value, why) in [
        ("--max-wasm-stack", "1TiB", "between 16KiB and 1GiB"),
        ("--max-wasm-stack", "1KiB", "between 16KiB and 1GiB"),
        ("--max-table-elements", "0", "from 1 to 4294967295"),
        (
            "--max-table-elements",
            "99999999999",
            "from 1 to 4294967295",
        ),
        ("--max-handles", "300000000", "from 1 to 268435456"),
        ("--timeout", "1000years", "longer than the 30 days"),
    ] {
        let out = env
            .kiln(&["run", "probe.wasm", flag, value, "--", "exit", "0"])
            .run()
            .code(2);
        assert!(
            out.stderr.contains(&format!("for '{flag} ")) && out.stderr.contains(why),
            "{flag} {value}: {}",
            out.stderr
        );
    }
    // The largest stack accepted runs.
    env.kiln(&[
        "run",
        "probe.wasm",
        "--max-wasm-stack",
        "1GiB",
        "--",
        "exit",
        "0",
    ])
    .run()
    .success();
    // And Kiln.toml's `[run]` is held to the same ranges.
    env.write(
        "proj/Kiln.toml",
        "[package]\nname = \"proj\"\n\n[run]\nmax-wasm-stack = \"1TiB\"\n",
    );
    let out = env.kiln(&["run"]).cwd(env.path("proj")).run().code(1);
    assert!(
        out.stderr.contains("between 16KiB and 1GiB"),
        "{}",
        out.stderr
    );
}
