//! `kiln run --invoke`: calling a library component's exports with WAVE arguments, on Rust,
//! C and Go library components, a `.wasm` file and a registry reference.

use std::path::Path;

use crate::support::registry::Registry;
use crate::support::{Env, Output, assert_output_snapshot};

/// `kiln run -q [PATH] --invoke CALL [EXTRA]` in `dir`.
fn invoke(env: &Env, dir: &Path, path: Option<&str>, call: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", "-q"];
    args.extend(path);
    args.extend(["--invoke", call]);
    args.extend_from_slice(extra);
    env.kiln(&args).cwd(dir).run()
}

/// The result a call printed, for a call that must succeed.
fn returns(env: &Env, dir: &Path, call: &str) -> String {
    let out = invoke(env, dir, None, call, &[]);
    assert_eq!(out.code, 0, "{call}: {}", out.stderr);
    assert_eq!(out.stderr, "", "{call}");
    out.stdout
}

#[test]
fn a_wasm_file_export_is_called_and_bad_calls_list_the_exports() {
    let env = Env::new();
    let wasm = env.wat_fixture("library");
    let root = env.root();
    let out = invoke(&env, &root, Some("library.wasm"), "answer()", &[]).success();
    assert_eq!(out.stdout, "42\n");

    let json = env
        .kiln(&[
            "run",
            "library.wasm",
            "--invoke",
            "answer()",
            "--message-format",
            "json",
        ])
        .cwd(&root)
        .run()
        .success();
    let invoked = json.json_event("invoked");
    assert_eq!(invoked["function"], "answer");
    assert_eq!(invoked["signature"], "func() -> u32");
    assert_eq!(invoked["result"], "42");
    assert_eq!(invoked["value"], 42);

    let unknown = invoke(&env, &root, Some("library.wasm"), "question()", &[]).code(1);
    assert_output_snapshot("invoke_unknown_function", &env, &unknown);
    let arity = invoke(&env, &root, Some("library.wasm"), "answer(1)", &[]).code(1);
    assert!(
        arity
            .stderr
            .contains("error: `answer` takes no arguments but 1 was given"),
        "{}",
        arity.stderr
    );
    let syntax = invoke(&env, &root, Some("library.wasm"), "answer", &[]).code(1);
    assert!(
        syntax.stderr.contains("cannot parse `answer` as a call"),
        "{}",
        syntax.stderr
    );
    // Guest arguments belong to commands.
    env.kiln(&["run", "library.wasm", "--invoke", "answer()", "--", "x"])
        .cwd(&root)
        .run()
        .code(2);
    // A JSON error names the function and lists the exports in its hint.
    let json = env
        .kiln(&[
            "run",
            wasm.to_str().unwrap(),
            "--invoke",
            "question()",
            "--message-format",
            "json",
        ])
        .run()
        .code(1);
    let error = json.json_event("error");
    assert_eq!(
        error["message"],
        "the component exports no function `question`"
    );
    assert!(
        error["hints"][0]
            .as_str()
            .unwrap()
            .contains("answer: func() -> u32"),
        "{error}"
    );
}

#[test]
fn a_rust_library_component_takes_scalars_strings_records_lists_and_qualified_names() {
    let env = Env::new();
    let project = env.project_fixture("rust-lib-math");
    let out = invoke(&env, &project, None, "greet(\"wasm\")", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "\"Hello, wasm!\"\n");

    // A bare name is found in the interface that has it; WIT's and Wasmtime's qualified forms.
    for call in [
        "add(40, 2)",
        "acme:math/ops#add(40, 2)",
        "acme:math/ops@0.1.0#add(40, 2)",
        "acme:math/ops.add(40, 2)",
        "acme:math/ops.add@0.1.0(40, 2)",
    ] {
        assert_eq!(returns(&env, &project, call), "42\n", "{call}");
    }
    assert_eq!(
        returns(&env, &project, "midpoint({x: 0, y: 0}, {x: 4, y: 6})"),
        "{x: 2, y: 3}\n"
    );
    assert_eq!(
        returns(&env, &project, "acme:math/ops#sum([1, 2, 3, -10])"),
        "-4\n"
    );
    assert_eq!(
        returns(&env, &project, "acme:math/stats#sum([0.5, 0.25])"),
        "0.75\n"
    );
    assert_eq!(
        returns(&env, &project, "words(\"a b  c\")"),
        "[\"a\", \"b\", \"c\"]\n"
    );
    assert_eq!(returns(&env, &project, "checked-div(7, 2)"), "ok(3)\n");
    assert_eq!(
        returns(&env, &project, "checked-div(1, 0)"),
        "err(\"division by zero\")\n"
    );

    // JSON: the value as JSON beside its WAVE text.
    let json = env
        .kiln(&[
            "run",
            "--invoke",
            "midpoint({x: 0, y: 0}, {x: 4, y: 6})",
            "--message-format",
            "json",
        ])
        .cwd(&project)
        .run()
        .success();
    let invoked = json.json_event("invoked");
    assert_eq!(invoked["function"], "acme:math/ops@0.1.0#midpoint");
    assert_eq!(
        invoked["signature"],
        "func(a: record { x: s32, y: s32 }, b: record { x: s32, y: s32 }) -> record { x: s32, y: s32 }"
    );
    assert_eq!(invoked["value"], serde_json::json!({"x": 2, "y": 3}));
    let json = env
        .kiln(&[
            "run",
            "--invoke",
            "checked-div(1, 0)",
            "--message-format",
            "json",
        ])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(
        json.json_event("invoked")["value"],
        serde_json::json!({"err": "division by zero"})
    );

    // Bad calls say what is wrong and show the signature or the exports.
    let ambiguous = invoke(&env, &project, None, "sum([1])", &[]).code(1);
    assert!(
        ambiguous.stderr.contains(
            "error: `sum` is ambiguous: it could be `acme:math/ops@0.1.0#sum` or `acme:math/stats@0.1.0#sum`"
        ),
        "{}",
        ambiguous.stderr
    );
    let ill_typed = invoke(&env, &project, None, "midpoint({x: 0}, {x: 1, y: 1})", &[]).code(1);
    assert_output_snapshot("invoke_ill_typed_record", &env, &ill_typed);
    let wrong_type = invoke(&env, &project, None, "add(1, \"two\")", &[]).code(1);
    assert!(
        wrong_type
            .stderr
            .contains("error: argument 2 of `acme:math/ops@0.1.0#add` (`b: s32`): invalid value type at `\"two\"`"),
        "{}",
        wrong_type.stderr
    );
    let arity = invoke(&env, &project, None, "acme:math/ops#add(1)", &[]).code(1);
    assert!(
        arity
            .stderr
            .contains("error: `acme:math/ops@0.1.0#add` takes 2 arguments but 1 was given"),
        "{}",
        arity.stderr
    );
    let unknown = invoke(&env, &project, None, "acme:math/ops#mul(1, 2)", &[]).code(1);
    assert!(
        unknown
            .stderr
            .contains("acme:math/ops@0.1.0#add: func(a: s32, b: s32) -> s32"),
        "{}",
        unknown.stderr
    );

    // The sandbox is `kiln run`'s: nothing granted but what is asked for.
    env.write("data/note.txt", "granted\n");
    let denied = invoke(&env, &project, None, "read(\"/data/note.txt\")", &[]).success();
    assert!(denied.stdout.starts_with("err("), "{}", denied.stdout);
    let dir = format!("{}::/data", env.path("data").display());
    let granted = invoke(
        &env,
        &project,
        None,
        "read(\"/data/note.txt\")",
        &["--dir", &dir],
    )
    .success();
    assert_eq!(granted.stdout, "ok(\"granted\\n\")\n");

    // A trap ends the call with the trap's exit status.
    let trap = invoke(&env, &project, None, "fail()", &[]).code(134);
    assert!(trap.stderr.contains("asked to fail"), "{}", trap.stderr);
}

/// The C library fixture with a record and a list beside its scalars and strings.
fn c_library_with_records_and_lists(env: &Env) -> std::path::PathBuf {
    let project = env.project_fixture("c-lib");
    fs_err::write(
        project.join("wit/world.wit"),
        "package test:clib;\n\nworld clib {\n    record point { x: s32, y: s32 }\n    \
         export add: func(a: s32, b: s32) -> s32;\n    export greet: func(name: string) -> string;\n    \
         export midpoint: func(a: point, b: point) -> point;\n    \
         export sum: func(values: list<s64>) -> s64;\n}\n",
    )
    .unwrap();
    let mut source = fs_err::read_to_string(project.join("src/lib.c")).unwrap();
    source.push_str(
        r#"
void exports_clib_midpoint(clib_point_t *a, clib_point_t *b, clib_point_t *ret) {
    ret->x = (a->x + b->x) / 2;
    ret->y = (a->y + b->y) / 2;
}

int64_t exports_clib_sum(clib_list_s64_t *values) {
    int64_t total = 0;
    for (size_t i = 0; i < values->len; i++) total += values->ptr[i];
    clib_list_s64_free(values);
    return total;
}
"#,
    );
    fs_err::write(project.join("src/lib.c"), source).unwrap();
    project
}

#[test]
fn a_c_library_component_is_called_here_and_from_a_registry() {
    let env = Env::new();
    let project = c_library_with_records_and_lists(&env);
    let out = invoke(&env, &project, None, "add(40, 2)", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "42\n");
    assert_eq!(returns(&env, &project, "greet(\"C\")"), "\"Hello, C!\"\n");
    assert_eq!(
        returns(&env, &project, "midpoint({x: -4, y: 2}, {x: 4, y: 6})"),
        "{x: 0, y: 4}\n"
    );
    assert_eq!(returns(&env, &project, "sum([1, 2, 3, -10])"), "-4\n");
    assert_eq!(returns(&env, &project, "sum([])"), "0\n");
    let bad = invoke(&env, &project, None, "sum([1, \"x\"])", &[]).code(1);
    assert!(
        bad.stderr.contains(
            "error: argument 1 of `sum` (`values: list<s64>`): invalid value type at `\"x\"`"
        ),
        "{}",
        bad.stderr
    );

    // Published, then called by its reference (pulled through the cache).
    let registry = Registry::open();
    let reference = format!("{}/demo/clib:0.1.0", registry.addr);
    env.kiln(&["publish", "-q", &reference])
        .cwd(&project)
        .run()
        .success();
    let root = env.root();
    let out = invoke(
        &env,
        &root,
        Some(&reference),
        "midpoint({x: 0, y: 0}, {x: 2, y: 2})",
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{x: 1, y: 1}\n");
}

#[test]
fn a_go_library_component_is_called() {
    let env = Env::new();
    let project = env.project_fixture("go-lib");
    let out = invoke(&env, &project, None, "add(40, 2)", &[]);
    assert_eq!(
        out.code, 0,
        "is Go 1.25+ on PATH? (.ci/run installs it)\n{}",
        out.stderr
    );
    assert_eq!(out.stdout, "42\n");
    assert_eq!(returns(&env, &project, "greet(\"Go\")"), "\"Hello, Go!\"\n");
    let bad = invoke(&env, &project, None, "greet(1)", &[]).code(1);
    assert!(
        bad.stderr
            .contains("error: argument 1 of `greet` (`name: string`): invalid value type at `1`"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr
            .contains("hint: it is `greet: func(name: string) -> string`"),
        "{}",
        bad.stderr
    );
    // An exported interface through kiln's Go glue: records (with strings) in and out, lists
    // of scalars, strings and records, bool, char, s8 and f64.
    let calls = [
        ("area({width: 3, height: 4, label: \"r\"})", "12\n"),
        ("scale([1, 2, 3], 10)", "[10, 20, 30]\n"),
        (
            "describe({width: 3, height: 4, label: \"box\"}, true)",
            "{width: 4, height: 3, label: \"box (filled)\"}\n",
        ),
        ("initial(\"éclair\")", "'é'\n"),
        (
            "any-big([{width: 1, height: 1, label: \"a\"}, {width: 10, height: 10, label: \"b\"}], 50)",
            "true\n",
        ),
        ("any-big([], 0)", "false\n"),
        (
            "labels([{width: 1, height: 1, label: \"one\"}, {width: 2, height: 2, label: \"two\"}])",
            "[\"one\", \"two\"]\n",
        ),
        ("halves(10.0, 3)", "[5, 2.5, 1.25]\n"),
        ("test:golib/shapes#halves(1.0, -1)", "[]\n"),
    ];
    for (call, expected) in calls {
        assert_eq!(returns(&env, &project, call), expected, "{call}");
    }
}
