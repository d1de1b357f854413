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

/// A custom section appended to `wasm` (id 0: name and payload; valid at the end of a core
/// module or a component).
fn with_custom_section(mut wasm: Vec<u8>, name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    wasm.push(0);
    leb(body.len(), &mut wasm);
    wasm.extend_from_slice(&body);
    wasm
}

#[test]
fn untrusted_text_reaches_the_terminal_escaped() {
    let env = Env::new();
    let wasm = fs_err::read(env.wat_fixture("library")).unwrap();
    // A section name that would clear the screen, recolor the terminal and set its title.
    let hostile = "\u{1b}[2J\u{1b}[31mevil\u{1b}]0;owned\u{7}\u{202e}";
    env.write("hostile.wasm", with_custom_section(wasm, hostile, b"x"));
    let out = env.kiln(&["inspect", "hostile.wasm"]).run().success();
    assert!(!out.stdout.contains('\u{1b}'), "{:?}", out.stdout);
    assert!(!out.stdout.contains('\u{7}') && !out.stdout.contains('\u{202e}'));
    assert!(
        out.stdout
            .contains("\\u{1b}[2J\\u{1b}[31mevil\\u{1b}]0;owned\\u{7}\\u{202e}"),
        "{}",
        out.stdout
    );
    // JSON keeps the exact name, escaped as JSON escapes it.
    let json = env
        .kiln(&["inspect", "hostile.wasm", "--message-format", "json"])
        .run()
        .success();
    assert!(!json.stdout.contains('\u{1b}'));
    assert!(
        json.stdout.contains("\\u001b[2J\\u001b[31mevil"),
        "{}",
        json.stdout
    );

    // Errors too: a file name from an archive or a script is shown, not obeyed.
    let out = env
        .kiln(&["inspect", "missing\u{1b}[2J.wasm"])
        .run()
        .code(1);
    assert!(!out.stderr.contains('\u{1b}'), "{:?}", out.stderr);
    assert!(
        out.stderr.contains("missing\\u{1b}[2J.wasm"),
        "{}",
        out.stderr
    );
}
