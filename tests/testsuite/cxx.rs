//! C++ guests and the C/C++ toolchain choice: the cpp-cli template (strings, containers,
//! iostreams and `<filesystem>` paths on a granted directory), a C++ library mixed with C,
//! exceptions off by default, `[build] toolchain` / `KILN_C_TOOLCHAIN`, and `[build] setjmp`
//! with zig (PyPI `ziglang`) and refused with Debian's wasi-libc. CI installs Debian's
//! `libc++-19-dev-wasm32` and `libc++abi-19-dev-wasm32` beside the C toolchain, and ziglang.

use crate::support::Env;

/// zig's cache, shared by the tests and kept between runs (zig builds its wasi-libc once per
/// set of flags: tens of seconds), instead of `~/.cache/zig`.
fn zig_cache() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("zig-cache")
}

#[test]
fn the_cpp_cli_template_builds_and_runs_on_a_granted_directory() {
    let env = Env::new();
    let project = env.new_project("words", &["--template", "cpp-cli"]);
    let run = |args: &[&str]| {
        let mut all = vec!["run", "-q"];
        all.extend_from_slice(args);
        env.kiln(&all).cwd(&project)
    };
    let out = env.kiln(&["build"]).cwd(&project).run().success();
    assert!(
        out.stderr.contains("Compiling src/main.cpp"),
        "{}",
        out.stderr
    );
    assert_eq!(
        run(&["--", "there"]).run().success().stdout,
        "Hello, there!\n"
    );
    // iostreams on stdin, a std::map and a sorted std::vector.
    assert_eq!(
        run(&["--", "--words"])
            .stdin("b a B c a b\n")
            .run()
            .success()
            .stdout,
        "3 b\n2 a\n1 c\n"
    );
    // A granted directory under another name; the path is normalized with std::filesystem.
    env.write("data/notes/one.txt", "wasm and C++\n");
    env.write("data/two.txt", "and WASM\n");
    let out = run(&[
        "--dir",
        "../data::/srv",
        "--",
        "--words",
        "/srv/notes/one.txt",
        "/srv/notes/../two.txt",
    ])
    .run()
    .success();
    assert_eq!(out.stdout, "2 and\n2 wasm\n1 c++\n");
    assert!(
        out.stderr
            .contains("read one.txt (13 bytes) from /srv/notes\n")
            && out.stderr.contains("read two.txt (9 bytes) from /srv\n"),
        "{}",
        out.stderr
    );
    // Without the grant there is no such file, and the status passes through (as 1).
    let out = run(&["--", "--words", "/srv/two.txt"]).run().code(1);
    assert!(
        out.stderr.contains("error: /srv/two.txt: "),
        "{}",
        out.stderr
    );
}

#[test]
fn a_cxx_library_mixed_with_c_exports_its_world() {
    let env = Env::new();
    let project = env.project_fixture("cxx-lib");
    let out = env.kiln(&["build"]).cwd(&project).run().success();
    for file in ["Compiling src/add.c", "Compiling src/lib.cpp"] {
        assert!(out.stderr.contains(file), "{file}: {}", out.stderr);
    }
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
    assert_eq!(
        crate::c::call_add_and_greet(&wasm),
        (42, "Hello, wasm!".to_string())
    );
    // `kiln run --invoke` calls it as well.
    let out = env
        .kiln(&["run", "-q", "--invoke", "greet(\"C++\")"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "\"Hello, C++!\"\n");
}

#[test]
fn cxx_exceptions_are_off_by_default() {
    let env = Env::new();
    env.write(
        "throws/Kiln.toml",
        "[package]\nname = \"throws\"\nlanguage = \"c++\"\n",
    );
    env.write(
        "throws/src/main.cc",
        "#include <stdexcept>\nint main() { throw std::runtime_error(\"no\"); }\n",
    );
    let out = env.kiln(&["build"]).cwd(env.path("throws")).run().code(1);
    assert!(
        out.stderr.contains("src/main.cc:2:")
            && out.stderr.contains("exceptions disabled")
            && out
                .stderr
                .contains("error: could not compile `src/main.cc`"),
        "{}",
        out.stderr
    );
}

#[test]
fn setjmp_with_zig_unwinds_across_frames_on_kiln_and_wasmtime() {
    let env = Env::new();
    let project = env.project_fixture("c-setjmp");
    // clang is installed too (the C tests need it): the environment picks zig.
    let out = env
        .kiln(&["build", "-v"])
        .cwd(&project)
        .env("KILN_C_TOOLCHAIN", "zig")
        .env("ZIG_GLOBAL_CACHE_DIR", zig_cache())
        .run()
        .success();
    assert!(out.stderr.contains("Using zig "), "{}", out.stderr);
    let out = env
        .kiln(&["run", "-q", "--", "7"])
        .cwd(&project)
        .env("KILN_C_TOOLCHAIN", "zig")
        .env("ZIG_GLOBAL_CACHE_DIR", zig_cache())
        .run()
        .success();
    assert_eq!(out.stdout, "caught 7 then 8\n");
    let wasm = project.join("target/kiln/debug/c-setjmp.wasm");
    let out = std::process::Command::new(crate::bundle::wasmtime())
        .arg("run")
        .arg(&wasm)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "caught 42 then 43\n");
}

#[test]
fn setjmp_with_debian_wasi_libc_is_an_error_that_names_the_fix() {
    let env = Env::new();
    let project = env.project_fixture("c-setjmp");
    let manifest = project.join("Kiln.toml");
    let text = fs_err::read_to_string(&manifest).unwrap();
    fs_err::write(&manifest, format!("{text}toolchain = \"clang\"\n")).unwrap();
    let out = env
        .kiln(&["build"])
        .cwd(&project)
        .env_remove("WASI_SYSROOT")
        .env_remove("CC")
        .run()
        .code(1);
    assert!(
        out.stderr
            .contains("error: `[build] setjmp = true`, but the clang toolchain")
            && out.stderr.contains("Debian's wasi-libc has no setjmp.h")
            && out.stderr.contains(
                "hint: build with zig (pip install ziglang; `[build] toolchain = \"zig\"`"
            ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("Compiling"), "{}", out.stderr);

    // Without the switch, the compiler's error comes with the hint to set it.
    fs_err::write(
        &manifest,
        text.replace("setjmp = true", "toolchain = \"clang\""),
    )
    .unwrap();
    let out = env
        .kiln(&["build"])
        .cwd(&project)
        .env_remove("CC")
        .run()
        .code(1);
    assert!(
        out.stderr.contains("error: could not compile `src/main.c`")
            && out
                .stderr
                .contains("hint: for setjmp/longjmp, set `[build] setjmp = true`"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_toolchain_choice_is_checked_and_says_where_it_came_from() {
    let env = Env::new();
    let project = env.project_fixture("c-setjmp");
    let out = env
        .kiln(&["build"])
        .cwd(&project)
        .env("KILN_C_TOOLCHAIN", "gcc")
        .run()
        .code(1);
    assert!(
        out.stderr.contains(
            "error: KILN_C_TOOLCHAIN=`gcc` is not a C toolchain kiln drives: expected one of `wasi-sdk`, `clang`, `zig`"
        ),
        "{}",
        out.stderr
    );
    let manifest = project.join("Kiln.toml");
    fs_err::write(
        &manifest,
        "[package]\nname = \"c-setjmp\"\nlanguage = \"c\"\n\n[build]\ntoolchain = \"wasi-sdk\"\n",
    )
    .unwrap();
    let out = env
        .kiln(&["build"])
        .cwd(&project)
        .env_remove("WASI_SDK_PATH")
        .run()
        .code(1);
    assert!(
        out.stderr.contains(
            "error: no `wasi-sdk` C toolchain for WebAssembly was found (chosen by `[build] toolchain`); tried:\n  wasi-sdk: WASI_SDK_PATH is not set"
        ) && out.stderr.contains("hint: set WASI_SDK_PATH to a wasi-sdk"),
        "{}",
        out.stderr
    );
    fs_err::write(&manifest, "[build]\ntoolchain = \"gcc\"\n").unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert!(
        out.stderr.contains("Kiln.toml:2:13: unknown variant `gcc`, expected one of `wasi-sdk`, `clang`, `zig` (at key `build.toolchain`)"),
        "{}",
        out.stderr
    );
}

#[test]
fn doctor_reports_cxx_readiness_and_the_chosen_toolchain() {
    let env = Env::new();
    let find = |out: &crate::support::Output, name: &str| {
        out.json_lines()
            .into_iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` in {}", out.stdout))
    };
    let out = env
        .kiln(&["doctor", "--message-format", "json"])
        .env_remove("CC")
        .run()
        .success();
    let cxx = find(&out, "c++");
    assert_eq!(cxx["ok"], true, "{cxx}");
    assert!(cxx["detail"].as_str().unwrap().contains("libc++"), "{cxx}");

    let out = env
        .kiln(&["doctor", "--message-format", "json"])
        .env("KILN_C_TOOLCHAIN", "zig")
        .run()
        .success();
    let c = find(&out, "c");
    assert!(c["detail"].as_str().unwrap().starts_with("zig via "), "{c}");
    assert_eq!(find(&out, "c++")["ok"], true);

    // A chosen toolchain that is missing is reported as such, with its own fix.
    let out = env
        .kiln(&["doctor", "--message-format", "json"])
        .env("KILN_C_TOOLCHAIN", "wasi-sdk")
        .env_remove("WASI_SDK_PATH")
        .run()
        .success();
    let c = find(&out, "c");
    assert_eq!(c["ok"], false, "{c}");
    assert_eq!(
        c["detail"],
        "KILN_C_TOOLCHAIN=wasi-sdk: wasi-sdk: WASI_SDK_PATH is not set"
    );
    assert_eq!(c["fix"], "set WASI_SDK_PATH to a wasi-sdk");

    // Nothing installed: the fix is the apt line, libc++ included.
    let empty = env.path("empty-bin");
    fs_err::create_dir_all(&empty).unwrap();
    let out = env
        .kiln(&["doctor"])
        .env("PATH", &empty)
        .env_remove("CC")
        .env_remove("WASI_SDK_PATH")
        .run()
        .success();
    assert!(
        out.stdout
            .contains("libc++-19-dev-wasm32 libc++abi-19-dev-wasm32"),
        "{}",
        out.stdout
    );
}
