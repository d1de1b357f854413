//! C guests: the c-cli template, a multi-file program with flags from Kiln.toml, incremental
//! rebuilds from the compiler's dependency files, and compile errors. These need a C toolchain
//! for WebAssembly (CI installs Debian's clang, lld, wasi-libc and compiler-rt for wasm32).

use crate::support::{Env, assert_output_snapshot, files_under};

#[test]
fn the_c_cli_template_builds_and_runs() {
    let env = Env::new();
    let project = env.new_project("hello", &["--template", "c-cli"]);
    let run = |args: &[&str]| {
        let mut all = vec!["run", "-q"];
        all.extend_from_slice(args);
        env.kiln(&all).cwd(&project)
    };
    assert_eq!(
        run(&["--", "there"]).run().success().stdout,
        "Hello, there!\n"
    );
    assert_eq!(
        run(&["--env", "GREETING=Howdy", "--", "partner"])
            .run()
            .success()
            .stdout,
        "Howdy, partner!\n"
    );
    assert_eq!(
        run(&["--", "--count"])
            .stdin("one two\nthree\n")
            .run()
            .success()
            .stdout,
        "      2       3      14\n"
    );
    let out = run(&["--dir", ".", "--", "--count", "include/count.h"])
        .run()
        .success();
    assert!(out.stdout.ends_with(" include/count.h\n"), "{}", out.stdout);
    // Without the grant the file is not there; the program's status 1 passes through.
    let out = run(&["--", "--count", "include/count.h"]).run().code(1);
    assert!(out.stderr.contains("include/count.h"), "{}", out.stderr);
    // `return 2` arrives as 1: WASI 0.2's exit carries only ok/err.
    run(&["--", "--bad"]).run().code(1);
}

#[test]
fn a_multi_file_program_builds_with_flags_from_kiln_toml_and_rebuilds_only_what_changed() {
    let env = Env::new();
    let project = env.project_fixture("c-multi");
    env.write("data/note.txt", "quiet words\n");

    let out = env.kiln(&["build"]).cwd(&project).run().success();
    for file in ["src/main.c", "src/plain.c", "src/shout.c"] {
        assert!(
            out.stderr.contains(&format!("Compiling {file}")),
            "{file}: {}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("Componentizing c-multi"),
        "{}",
        out.stderr
    );

    let out = env
        .kiln(&[
            "run",
            "-q",
            "c-multi",
            "--dir",
            "data::/data",
            "--",
            "/data/note.txt",
        ])
        .run()
        .success();
    assert_eq!(out.stdout, "QUIET WORDS\nshouted 42\n");
    // The program's own non-zero status (4: the file is missing) arrives as 1.
    env.kiln(&["run", "-q", "c-multi", "--", "/data/note.txt"])
        .run()
        .code(1);

    // Nothing changed: nothing is compiled, and the component is not rewritten.
    let out = env.kiln(&["build"]).cwd(&project).run().success();
    assert!(!out.stderr.contains("Compiling"), "{}", out.stderr);

    // The header changed: the files that include it are compiled again, the other is not.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let header = project.join("include/shout.h");
    let text = fs_err::read_to_string(&header).unwrap();
    fs_err::write(&header, format!("{text}/* touched */\n")).unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run().success();
    assert!(
        out.stderr.contains("Compiling src/main.c"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Compiling src/shout.c"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("Compiling src/plain.c"),
        "{}",
        out.stderr
    );

    // A changed flag recompiles everything.
    let manifest = project.join("Kiln.toml");
    let text = fs_err::read_to_string(&manifest).unwrap();
    fs_err::write(&manifest, text.replace("\"LOUD\"", "\"QUIET\"")).unwrap();
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    let out = env
        .kiln(&[
            "run",
            "-q",
            "c-multi",
            "--dir",
            "data::/data",
            "--",
            "/data/note.txt",
        ])
        .run()
        .success();
    assert_eq!(out.stdout, "quiet words\nshouted 42\n");

    // The release build optimizes and carries the metadata.
    let out = env
        .kiln(&["build", "--release", "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    let artifact = out.json_event("artifact");
    assert_eq!(artifact["package_version"], "1.2.3");
    assert!(
        artifact["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("wasi:cli/run@0.2.")),
        "{artifact}"
    );
}

#[test]
fn a_compile_error_shows_the_compiler_message_and_writes_nothing() {
    let env = Env::new();
    let project = env.project_fixture("c-multi");
    fs_err::write(
        project.join("src/plain.c"),
        "int plain_answer(void) { return missing_name; }\n",
    )
    .unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert!(
        out.stderr.contains("src/plain.c:1:"),
        "the compiler's location: {}",
        out.stderr
    );
    assert!(out.stderr.contains("missing_name"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: could not compile `src/plain.c` (the compiler's messages are above)"),
        "{}",
        out.stderr
    );
    assert!(
        !files_under(&project.join("target/kiln/debug"))
            .iter()
            .any(|f| f.ends_with(".wasm")),
        "{:?}",
        files_under(&project.join("target"))
    );
}

#[test]
fn without_a_c_toolchain_the_error_says_what_was_tried() {
    let env = Env::new();
    let project = env.project_fixture("c-multi");
    let empty = env.path("empty-bin");
    fs_err::create_dir_all(&empty).unwrap();
    let out = env
        .kiln(&["build"])
        .cwd(&project)
        .env("PATH", &empty)
        .env_remove("CC")
        .env_remove("WASI_SDK_PATH")
        .run()
        .code(1);
    assert_output_snapshot("c_no_toolchain", &env, &out);
}

#[test]
fn doctor_tells_the_truth_with_and_without_a_c_toolchain() {
    let env = Env::new();
    let find = |out: &crate::support::Output, name: &str| {
        out.json_lines()
            .into_iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` in {}", out.stdout))
    };
    let out = env
        .kiln(&["doctor", "--message-format", "json"])
        .run()
        .success();
    assert_eq!(find(&out, "c")["ok"], true, "{}", out.stdout);
    assert_eq!(find(&out, "rust target wasm32-wasip2")["ok"], true);

    // Without any toolchain on PATH, C is reported missing with a fix, and doctor still
    // exits 0.
    let empty = env.path("empty-bin");
    fs_err::create_dir_all(&empty).unwrap();
    let out = env
        .kiln(&["doctor", "--message-format", "json"])
        .env("PATH", &empty)
        .env_remove("CC")
        .env_remove("WASI_SDK_PATH")
        .run()
        .success();
    let c = find(&out, "c");
    assert_eq!(c["ok"], false);
    assert!(
        c["fix"].as_str().unwrap().contains("apt-get install"),
        "{c}"
    );
    let human = env
        .kiln(&["doctor"])
        .env("PATH", &empty)
        .env_remove("CC")
        .env_remove("WASI_SDK_PATH")
        .run()
        .success();
    assert!(
        human
            .stdout
            .contains("fix: Debian: apt-get install clang-19"),
        "{}",
        human.stdout
    );
}

/// A test host: instantiates a library component on Wasmtime (with WASI, nothing granted)
/// and calls `add(s32, s32) -> s32` and `greet(string) -> string`.
pub fn call_add_and_greet(wasm: &std::path::Path) -> (i32, String) {
    use wasmtime::component::{Component, Linker, ResourceTable};
    use wasmtime::{Engine, Store};
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

    struct Host {
        ctx: WasiCtx,
        table: ResourceTable,
    }
    impl WasiView for Host {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.ctx,
                table: &mut self.table,
            }
        }
    }
    let engine = Engine::default();
    let component = Component::from_file(&engine, wasm).unwrap();
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    let mut store = Store::new(
        &engine,
        Host {
            ctx: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let add = instance
        .get_typed_func::<(i32, i32), (i32,)>(&mut store, "add")
        .unwrap();
    let (sum,) = add.call(&mut store, (40, 2)).unwrap();
    let greet = instance
        .get_typed_func::<(&str,), (String,)>(&mut store, "greet")
        .unwrap();
    let (greeting,) = greet.call(&mut store, ("wasm",)).unwrap();
    (sum, greeting)
}

#[test]
fn a_c_library_component_exports_its_world() {
    let env = Env::new();
    let project = env.project_fixture("c-lib");
    let out = env
        .kiln(&["build", "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    let artifact = out.json_event("artifact");
    assert_eq!(
        artifact["exports"],
        serde_json::json!(["add", "greet"]),
        "{artifact}"
    );
    let wasm = std::path::PathBuf::from(artifact["path"].as_str().unwrap());
    assert_eq!(call_add_and_greet(&wasm), (42, "Hello, wasm!".to_string()));
    // Optimized and stripped, it still works.
    let out = env
        .kiln(&["build", "--release", "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    let wasm = std::path::PathBuf::from(out.json_event("artifact")["path"].as_str().unwrap());
    assert_eq!(call_add_and_greet(&wasm), (42, "Hello, wasm!".to_string()));
}
