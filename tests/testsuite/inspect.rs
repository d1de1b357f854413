//! `kiln inspect`.

use crate::support::{Env, assert_output_snapshot};

#[test]
fn inspect_describes_a_component() {
    let env = Env::new();
    env.wat_fixture("exit-with-code");
    let out = env
        .kiln(&["inspect", "exit-with-code.wasm"])
        .run()
        .success();
    assert_output_snapshot("inspect_component", &env, &out);
    let out = env
        .kiln(&["inspect", "--wit", "exit-with-code.wasm"])
        .run()
        .success();
    assert_output_snapshot("inspect_component_wit", &env, &out);
}

#[test]
fn inspect_describes_a_core_module() {
    let env = Env::new();
    env.wat_fixture("core-module");
    let out = env.kiln(&["inspect", "core-module.wasm"]).run().success();
    assert_output_snapshot("inspect_core_module", &env, &out);
    let json = env
        .kiln(&["inspect", "core-module.wasm", "--message-format", "json"])
        .run()
        .success()
        .json_event("inspect");
    assert_eq!(json["kind"], "core module");
    assert_eq!(json["imports"], serde_json::Value::Null);
    let out = env
        .kiln(&["inspect", "--wit", "core-module.wasm"])
        .run()
        .code(1);
    assert_output_snapshot("inspect_wit_of_core_module", &env, &out);
}

#[test]
fn inspect_refuses_corrupted_and_truncated_input() {
    let env = Env::new();
    let wasm = fs_err::read(env.wat_fixture("library")).unwrap();
    env.write("truncated.wasm", &wasm[..wasm.len() - 7]);
    let out = env.kiln(&["inspect", "truncated.wasm"]).run().code(1);
    assert_output_snapshot("inspect_truncated", &env, &out);
    let mut corrupted = wasm.clone();
    corrupted[9] = 0x7f; // the first section's id
    env.write("corrupted.wasm", &corrupted);
    let out = env.kiln(&["inspect", "corrupted.wasm"]).run().code(1);
    assert_output_snapshot("inspect_corrupted", &env, &out);
    let before = crate::support::files_under(&env.root());
    env.kiln(&["inspect", "missing.wasm"]).run().code(1);
    assert_eq!(
        crate::support::files_under(&env.root()),
        before,
        "inspect writes nothing"
    );
}
