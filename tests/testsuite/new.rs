//! `kiln new` and `kiln templates`.

use crate::support::{Env, files_under};

#[test]
fn templates_lists_id_language_and_description() {
    let env = Env::new();
    let out = env.kiln(&["templates"]).run().success();
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| {
            let mut words = l.split_whitespace();
            let id = words.next().unwrap_or("");
            let language = words.next().unwrap_or("");
            let description = words.collect::<Vec<_>>().join(" ");
            vec![id, language, if description.is_empty() { "" } else { "x" }]
        })
        .collect();
    let ids: Vec<[&str; 2]> = rows.iter().map(|r| [r[0], r[1]]).collect();
    assert_eq!(
        ids,
        [
            ["c-cli", "c"],
            ["cpp-cli", "c"],
            ["go-cli", "go"],
            ["rust-cli", "rust"],
            ["rust-cli-p3", "rust"],
            ["rust-http", "rust"],
            ["rust-http-p3", "rust"],
            ["rust-lib", "rust"],
            ["tinygo-cli", "tinygo"]
        ],
        "{}",
        out.stdout
    );
    assert!(
        rows.iter().all(|r| r.len() == 3 && !r[2].is_empty()),
        "{}",
        out.stdout
    );

    let json = env
        .kiln(&["templates", "--message-format", "json"])
        .run()
        .success()
        .json_lines();
    assert_eq!(json[0]["id"], "c-cli");
    assert_eq!(json[1]["id"], "cpp-cli");
    assert_eq!(json[3]["language"], "rust");
}

#[test]
fn rust_cli_template_greets_with_args_and_env() {
    let env = Env::new();
    let out = env.kiln(&["new", "hello"]).run().success();
    assert!(
        out.stderr.contains("Created rust component `hello`"),
        "{}",
        out.stderr
    );
    let project = env.path("hello");
    assert_eq!(
        files_under(&project),
        [".gitignore", "Cargo.toml", "Kiln.toml", "src/main.rs"]
    );

    let out = env
        .kiln(&["run", "--", "world"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "Hello, world!\n");
    assert!(
        out.stderr
            .contains("Finished debug target/kiln/debug/hello.wasm ("),
        "{}",
        out.stderr
    );

    let out = env
        .kiln(&["run", "--env", "GREETING=Howdy", "--", "partner"])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "Howdy, partner!\n");
}

#[test]
fn rust_cli_template_reads_stdin_and_granted_files_only() {
    let env = Env::new();
    let project = env.new_project("counter", &["--template", "rust-cli"]);
    let out = env
        .kiln(&["run", "-q", "--", "--count"])
        .cwd(&project)
        .stdin("one two\nthree\n")
        .run()
        .success();
    assert_eq!(out.stdout, "      2       3      14\n");
    assert_eq!(out.stderr, "");

    env.write("counter/data/words.txt", "alpha beta gamma\n");
    // Not granted: the guest cannot see the file, and says so.
    let out = env
        .kiln(&["run", "-q", "--", "--count", "data/words.txt"])
        .cwd(&project)
        .run()
        .code(1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with("error: data/words.txt: "),
        "{}",
        out.stderr
    );
    // Granted: it can.
    let out = env
        .kiln(&[
            "run",
            "-q",
            "--dir",
            "data",
            "--",
            "--count",
            "data/words.txt",
        ])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(out.stdout, "      1       3      17 data/words.txt\n");
}

#[test]
fn new_with_name_and_force() {
    let env = Env::new();
    env.write("existing/notes.txt", "keep me");
    env.write("existing/Cargo.toml", "overwritten");
    env.kiln(&["new", "existing", "--name", "tool_x", "--force"])
        .run()
        .success();
    assert_eq!(
        fs_err::read_to_string(env.path("existing/notes.txt")).unwrap(),
        "keep me"
    );
    let cargo_toml = fs_err::read_to_string(env.path("existing/Cargo.toml")).unwrap();
    assert!(cargo_toml.contains("name = \"tool_x\""), "{cargo_toml}");

    // `kiln new .` inside an empty directory takes the directory's name.
    fs_err::create_dir(env.path("dotted")).unwrap();
    env.kiln(&["new", "."])
        .cwd(env.path("dotted"))
        .run()
        .success();
    let kiln_toml = fs_err::read_to_string(env.path("dotted/Kiln.toml")).unwrap();
    assert!(kiln_toml.contains("name = \"dotted\""), "{kiln_toml}");
}

#[cfg(unix)]
#[test]
fn new_never_writes_through_a_symlink() {
    let env = Env::new();
    let outside = env.path("outside");
    fs_err::create_dir(&outside).unwrap();
    fs_err::create_dir(env.path("proj")).unwrap();
    std::os::unix::fs::symlink(&outside, env.path("proj/src")).unwrap();
    let out = env.kiln(&["new", "proj", "--force"]).run().code(1);
    assert!(out.stderr.contains("is a symbolic link"), "{}", out.stderr);
    assert!(
        files_under(&outside).is_empty(),
        "nothing was written through the link"
    );
    assert!(
        !env.path("proj/Cargo.toml").exists(),
        "nothing was written at all"
    );
}

#[test]
fn rust_lib_template_builds_a_component_exporting_its_world() {
    let env = Env::new();
    let project = env.new_project("wordlib", &["--template", "rust-lib"]);
    assert!(project.join("wit/world.wit").is_file());

    let out = env
        .kiln(&["build", "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    let artifact = out.json_event("artifact");
    assert_eq!(
        artifact["exports"],
        serde_json::json!(["greet", "count-words"])
    );
    assert_eq!(artifact["kind"], "component");
    assert_eq!(out.json_event("build-finished")["success"], true);

    // A second tool agrees: the WIT world decoded from the component has those exports.
    let bytes = fs_err::read(artifact["path"].as_str().unwrap()).unwrap();
    let decoded = wit_component::decode(&bytes).unwrap();
    let wit_component::DecodedWasm::Component(resolve, world) = decoded else {
        panic!("not a component")
    };
    let exports: Vec<String> = resolve.worlds[world]
        .exports
        .keys()
        .map(|k| resolve.name_world_key(k))
        .collect();
    assert_eq!(exports, ["greet", "count-words"]);

    let out = env.kiln(&["run"]).cwd(&project).run().code(1);
    assert!(
        out.stderr.contains("error: `target/kiln/debug/wordlib.wasm` is a library component: it exports `greet`, `count-words` but not `wasi:cli/run`"),
        "{}",
        out.stderr
    );
}
