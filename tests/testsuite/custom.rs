//! `language = "custom"`: kiln runs `[build] command` and takes `[build] output` — here Go
//! invoked by hand through a shell script (a core module kiln componentizes), then a command
//! that hands over a ready component (taken as it is) — and its own pipeline follows.

use crate::support::Env;

#[test]
fn a_custom_command_builds_and_kiln_takes_it_from_there() {
    let env = Env::new();
    let root = env.path("byhand");
    let write = |relative: &str, text: &str| env.write(&format!("byhand/{relative}"), text);
    write("go.mod", "module example.com/byhand\n\ngo 1.21\n");
    write(
        "main.go",
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"built by hand\") }\n",
    );
    // The script records each run, and shows what kiln hands it.
    write(
        "build.sh",
        "set -e\necho run >> runs.log\necho \"profile=$KILN_PROFILE name=$KILN_COMPONENT_NAME\"\n\
         mkdir -p out\nGOOS=wasip1 GOARCH=wasm go build -o out/app.wasm .\n",
    );
    write(
        "Kiln.toml",
        "[package]\nname = \"byhand\"\nlanguage = \"custom\"\n\n[build]\n\
         command = [\"sh\", \"build.sh\"]\noutput = \"out/app.wasm\"\ninputs = [\"*.go\", \"go.mod\"]\n",
    );
    let runs = || {
        fs_err::read_to_string(root.join("runs.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };

    let out = env.kiln(&["build"]).cwd(&root).run();
    assert!(out.code == 0, "is Go on PATH? {}", out.stderr);
    assert!(
        out.stderr.contains("profile=debug name=byhand"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Componentizing"), "{}", out.stderr);
    let out = env.kiln(&["run", "-q"]).cwd(&root).run().success();
    assert_eq!(out.stdout, "built by hand\n");
    assert_eq!(runs(), 1, "run builds nothing new");

    // Nothing changed: the command is not run again; a changed input runs it.
    env.kiln(&["build"]).cwd(&root).run().success();
    assert_eq!(runs(), 1);
    std::thread::sleep(std::time::Duration::from_millis(20));
    write(
        "main.go",
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"changed\") }\n",
    );
    let out = env.kiln(&["run", "-q"]).cwd(&root).run().success();
    assert_eq!(out.stdout, "changed\n");
    assert_eq!(runs(), 2);

    // Release: kiln's pipeline (strip, optimize, metadata) applies to the custom output.
    let out = env
        .kiln(&["build", "--release", "--message-format", "json"])
        .cwd(&root)
        .run()
        .success();
    assert_eq!(out.json_event("artifact")["name"], "byhand");
    assert!(
        out.json_lines()
            .iter()
            .any(|m| m["reason"] == "stage" && m["stage"] == "optimize"),
        "{}",
        out.stdout
    );

    // A command that hands over a component: taken as it is (no adapter run).
    let other = env.path("copied");
    let component = root.join("target/kiln/debug/byhand.wasm");
    env.write(
        "copied/Kiln.toml",
        format!(
            "[package]\nname = \"copied\"\nlanguage = \"custom\"\n\n[build]\n\
             command = [\"cp\", \"{}\", \"copied.wasm\"]\noutput = \"copied.wasm\"\n",
            component.display()
        ),
    );
    let out = env.kiln(&["run"]).cwd(&other).run().success();
    assert!(!out.stderr.contains("Componentizing"), "{}", out.stderr);
    assert_eq!(out.stdout, "changed\n");

    // A failing command is an error with its output shown; a missing output names it.
    env.write(
        "copied/Kiln.toml",
        "[package]\nname = \"copied\"\nlanguage = \"custom\"\n\n[build]\n\
         command = [\"sh\", \"-c\", \"echo no compiler here >&2; exit 3\"]\noutput = \"x.wasm\"\n",
    );
    let out = env.kiln(&["build"]).cwd(&other).run().code(1);
    assert!(
        out.stderr.contains("no compiler here") && out.stderr.contains("failed"),
        "{}",
        out.stderr
    );
    env.write(
        "copied/Kiln.toml",
        "[package]\nname = \"copied\"\nlanguage = \"custom\"\n\n[build]\n\
         command = [\"true\"]\noutput = \"never.wasm\"\n",
    );
    let out = env.kiln(&["build"]).cwd(&other).run().code(1);
    assert!(out.stderr.contains("did not write"), "{}", out.stderr);

    // Manifest errors at their place: an empty command, an output outside the project.
    env.write(
        "copied/Kiln.toml",
        "[package]\nname = \"copied\"\nlanguage = \"custom\"\n\n[build]\ncommand = []\noutput = \"x.wasm\"\n",
    );
    let out = env.kiln(&["build"]).cwd(&other).run().code(1);
    assert!(out.stderr.contains("Kiln.toml:6:11"), "{}", out.stderr);
    env.write(
        "copied/Kiln.toml",
        "[package]\nname = \"copied\"\nlanguage = \"custom\"\n\n[build]\ncommand = [\"true\"]\noutput = \"../x.wasm\"\n",
    );
    let out = env.kiln(&["build"]).cwd(&other).run().code(1);
    assert!(out.stderr.contains("Kiln.toml:7:10"), "{}", out.stderr);
}
