//! `--show-settings`: what a command resolved from its flags, Kiln.toml and the environment,
//! before any work (nothing is built, pulled or pushed).

use crate::support::Env;

fn settings(out: &crate::support::Output) -> serde_json::Value {
    let event = out.json_event("settings");
    event["settings"].clone()
}

#[test]
fn flags_beat_kiln_toml_which_beats_the_environment() {
    let env = Env::new();
    let project = env.new_project("hello", &[]);
    fs_err::write(
        project.join("Kiln.toml"),
        "[package]\nversion = \"2.0.0\"\n\n[run]\nenv = [\"GREETING=hi\"]\ntimeout = \"5s\"\n\n\
         [publish]\nreference = \"127.0.0.1:5000/demo/hello\"\nannotations = { team = \"a\" }\n\n\
         [release]\noptimize = \"z\"\n",
    )
    .unwrap();
    let show = |args: &[&str]| {
        env.kiln(&[&["--show-settings", "--message-format", "json"], args].concat())
            .cwd(&project)
            .env("SOURCE_DATE_EPOCH", "86400")
            .run()
            .success()
    };

    // run: Kiln.toml's grants plus the flags', the flags' limits over Kiln.toml's; paths
    // absolute.
    let out = show(&["run", "--env", "NAME=you", "--timeout", "1s", "--", "x"]);
    let run = settings(&out);
    assert_eq!(run["target"]["kind"], "project", "{run}");
    assert_eq!(run["config"]["timeout"], "1s", "{run}");
    assert_eq!(
        run["config"]["env"],
        serde_json::json!(["GREETING=hi", "NAME=you"])
    );
    assert_eq!(run["flags"]["env"], serde_json::json!(["NAME=you"]));
    assert_eq!(run["args"], serde_json::json!(["x"]));
    assert_eq!(
        run["target"]["build"]["project"]["root"],
        project.display().to_string()
    );

    // publish: the reference from Kiln.toml, tagged with the package version; annotations
    // from Kiln.toml and then the flags; `created` from SOURCE_DATE_EPOCH.
    let out = show(&["publish", "--annotation", "team=b", "--annotation", "x=1"]);
    let publish = settings(&out);
    assert_eq!(publish["reference"], "127.0.0.1:5000/demo/hello:2.0.0");
    assert_eq!(
        publish["annotations"],
        serde_json::json!({"team": "b", "x": "1"})
    );
    assert_eq!(publish["created"], "1970-01-02T00:00:00Z");
    assert_eq!(publish["source"]["build"]["stages"]["optimize"], "z");
    let out = show(&["publish", "--tag", "edge"]);
    assert_eq!(
        settings(&out)["reference"],
        "127.0.0.1:5000/demo/hello:edge"
    );

    // build and pull.
    let out = show(&["build", "--release", "--no-optimize"]);
    let build = settings(&out);
    assert_eq!(build["profile"], "release");
    assert_eq!(build["stages"]["optimize"], serde_json::Value::Null);
    let out = show(&["pull", "127.0.0.1:5000/demo/hello:1", "-o", "out.wasm"]);
    assert_eq!(
        settings(&out)["output"],
        project.join("out.wasm").display().to_string()
    );

    // Nothing ran: no build output, no pulled file.
    assert!(!project.join("target").exists());
    assert!(!project.join("out.wasm").exists());

    // Bad input is still refused while resolving, with exit 1.
    let out = env
        .kiln(&["publish", "not a reference", "--show-settings"])
        .cwd(&project)
        .run()
        .code(1);
    assert!(out.stderr.contains("error:"), "{}", out.stderr);
}
