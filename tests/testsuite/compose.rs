//! Multi-component applications (issue 18): Kiln.toml's `[dependencies]` plugged into a
//! component's imports (component files, sibling projects, registry references), the errors
//! that name both sides, `[wit-dependencies]`, Kiln.toml workspaces, credentials scoped to
//! one registry, and the polyglot example (Rust + C + Go) on kiln, the wasmtime CLI and jco.

use std::path::{Path, PathBuf};

use crate::bundle::{jco, other_runtime, wasmtime};
use crate::support::registry::{FaultProxy, Registry};
use crate::support::{Env, assert_output_snapshot};

/// A `language = "custom"` project `name` whose build hands over `socket` (a component file
/// under the scratch root) as is, with `dependencies` as Kiln.toml lines.
fn socket_project(env: &Env, name: &str, socket: &Path, dependencies: &str) -> PathBuf {
    let dir = env.path(name);
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::copy(socket, dir.join("socket.wasm")).unwrap();
    env.write(
        &format!("{name}/Kiln.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"1.2.3\"\nlanguage = \"custom\"\n\n[build]\n\
             command = [\"cp\", \"socket.wasm\", \"out.wasm\"]\noutput = \"out.wasm\"\n\n\
             [dependencies]\n{dependencies}"
        ),
    );
    dir
}

#[test]
fn a_component_file_is_plugged_into_the_imports_and_recorded() {
    let env = Env::new();
    let socket = env.wat_fixture("math-socket");
    env.wat_fixture("math-provider");
    let project = socket_project(
        &env,
        "app",
        &socket,
        "math = { path = \"../math-provider.wasm\" }\n",
    );

    let out = env.kiln(&["build", "-v"]).cwd(&project).run().success();
    assert!(out.stderr.contains("Composing app.wasm"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Plugged test:math/ops@0.1.0 from `math`"),
        "{}",
        out.stderr
    );
    let wasm = project.join("target/kiln/debug/app.wasm");
    let wasm_arg = wasm.to_str().unwrap();

    // The composed component runs: answer() = add(40, 2) through the provider.
    let out = env
        .kiln(&["run", wasm_arg, "--invoke", "answer()"])
        .run()
        .success();
    assert_eq!(out.stdout, "42\n");

    // What it was composed from, and no import of test:math is left.
    let out = env.kiln(&["inspect", wasm_arg]).run().success();
    let provider_digest = crate::support::sha256_file(&env.path("math-provider.wasm"));
    assert!(
        out.stdout
            .contains("composed from:\n  math from ../math-provider.wasm\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("    digest sha256:{provider_digest}\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("    provides test:math/ops@0.1.0\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("import test:math"), "{}", out.stdout);
    let json = env
        .kiln(&["inspect", wasm_arg, "--message-format", "json"])
        .run()
        .success();
    let inspect = json.json_event("inspect");
    assert_eq!(inspect["composed_from"][0]["name"], "math");
    assert_eq!(
        inspect["composed_from"][0]["source"],
        "path:../math-provider.wasm"
    );

    // Unchanged: fresh, nothing rewritten. A changed dependency recomposes.
    let before = crate::support::sha256_file(&wasm);
    let out = env.kiln(&["build"]).cwd(&project).run().success();
    assert!(!out.stderr.contains("Composing"), "{}", out.stderr);
    let mut bytes = fs_err::read(env.path("math-provider.wasm")).unwrap();
    // A custom section changes the bytes, not the behaviour.
    bytes.extend_from_slice(&[0, 4, 3, b'a', b'b', b'c']);
    fs_err::write(env.path("math-provider.wasm"), bytes).unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run().success();
    assert!(out.stderr.contains("Composing"), "{}", out.stderr);
    assert_ne!(crate::support::sha256_file(&wasm), before);
}

#[test]
fn composition_errors_name_the_interface_and_both_sides() {
    let env = Env::new();
    let socket = env.wat_fixture("math-socket");
    env.wat_fixture("math-provider");
    env.wat_fixture("math-provider-s64");
    env.wat_fixture("exit-with-code");
    let cases = [
        (
            "compose_types_do_not_match",
            "math = { path = \"../math-provider-s64.wasm\" }\n",
        ),
        (
            "compose_two_providers",
            "a = { path = \"../math-provider.wasm\" }\nb = { path = \"../math-provider.wasm\" }\n",
        ),
        (
            "compose_provides_nothing",
            "run = { path = \"../exit-with-code.wasm\" }\n",
        ),
        (
            "compose_missing_path",
            "math = { path = \"../nothing-here\" }\n",
        ),
    ];
    for (name, dependencies) in cases {
        let project = socket_project(&env, name, &socket, dependencies);
        let out = env.kiln(&["build"]).cwd(&project).run();
        assert_output_snapshot(name, &env, &out);
        assert!(
            !project
                .join("target/kiln/debug")
                .join(format!("{name}.wasm"))
                .exists(),
            "{name}: nothing is written"
        );
    }
}

#[test]
fn manifest_errors_in_dependencies_point_at_the_entry() {
    let env = Env::new();
    let socket = env.wat_fixture("math-socket");
    let cases = [
        (
            "compose_manifest_both",
            "math = { path = \"a.wasm\", reference = \"r.example/m:1\" }\n",
        ),
        (
            "compose_manifest_bad_reference",
            "math = \"not a reference\"\n",
        ),
        (
            "compose_manifest_unknown_key",
            "math = { git = \"https://example.com\" }\n",
        ),
        (
            "workspace_member_outside",
            "\n[workspace]\nmembers = [\"../elsewhere\"]\n",
        ),
        (
            "wit_dependency_bad_version",
            "\n[wit-dependencies]\n\"test:math\" = \"not a version\"\n",
        ),
        (
            "wit_dependency_bad_name",
            "\n[wit-dependencies]\n\"math\" = { path = \"wit\" }\n",
        ),
    ];
    for (name, dependencies) in cases {
        let project = socket_project(&env, name, &socket, dependencies);
        let out = env.kiln(&["build"]).cwd(&project).run();
        assert_output_snapshot(name, &env, &out);
    }
}

#[test]
fn a_dependency_cycle_between_projects_is_refused() {
    let env = Env::new();
    let socket = env.wat_fixture("math-socket");
    socket_project(&env, "one", &socket, "two = { path = \"../two\" }\n");
    let two = socket_project(&env, "two", &socket, "one = { path = \"../one\" }\n");
    let out = env.kiln(&["build"]).cwd(&two).run();
    assert_output_snapshot("compose_cycle", &env, &out);
}

#[test]
fn a_registry_dependency_is_pulled_verified_and_gets_no_foreign_credentials() {
    let env = Env::new();
    let registry = Registry::open();
    let proxy = FaultProxy::start(&registry, &[]);
    let provider = env.wat_fixture("math-provider");
    let reference = format!("{}/test/math:0.1.1", proxy.addr);
    let published = env
        .kiln(&["publish", &reference, "--wasm", provider.to_str().unwrap()])
        .env("KILN_REGISTRY_TOKEN", "for-the-target-only")
        .run()
        .success();
    let manifest_digest = published
        .stdout
        .trim()
        .rsplit_once('@')
        .unwrap()
        .1
        .to_string();
    assert!(
        proxy.seen().iter().any(|s| s.authorization),
        "the command's own registry gets the token"
    );
    let published_requests = proxy.seen().len();

    let socket = env.wat_fixture("math-socket");
    let project = socket_project(&env, "app", &socket, &format!("math = \"{reference}\"\n"));
    // The token is for another registry: the dependency's registry must not see it.
    let out = env
        .kiln(&["build"])
        .cwd(&project)
        .env("KILN_REGISTRY_TOKEN", "for-another-registry")
        .run()
        .success();
    assert!(
        out.stderr.contains(&format!("Pulled {reference}")),
        "{}",
        out.stderr
    );
    let pulls = &proxy.seen()[published_requests..];
    assert!(!pulls.is_empty());
    assert!(
        pulls.iter().all(|s| !s.authorization),
        "a dependency's registry received an Authorization header: {pulls:?}"
    );

    let wasm = project.join("target/kiln/debug/app.wasm");
    let out = env
        .kiln(&["run", wasm.to_str().unwrap(), "--invoke", "answer()"])
        .run()
        .success();
    assert_eq!(out.stdout, "42\n");
    let out = env
        .kiln(&["inspect", wasm.to_str().unwrap()])
        .run()
        .success();
    assert!(
        out.stdout.contains(&format!(
            "  math from {reference} (manifest {manifest_digest})\n"
        )),
        "{}",
        out.stdout
    );

    // KILN_REGISTRY_HOST names the registry the environment's credentials are for.
    let before = proxy.seen().len();
    fs_err::remove_dir_all(env.cache_dir()).unwrap();
    fs_err::remove_dir_all(project.join("target")).unwrap();
    env.kiln(&["build"])
        .cwd(&project)
        .env("KILN_REGISTRY_TOKEN", "for-this-registry")
        .env("KILN_REGISTRY_HOST", &proxy.addr)
        .run()
        .success();
    assert!(proxy.seen()[before..].iter().any(|s| s.authorization));
}

#[test]
fn wit_dependencies_must_be_the_package_they_are_named() {
    let env = Env::new();
    let socket = env.wat_fixture("math-socket");
    let project = socket_project(&env, "app", &socket, "");
    env.write(
        "app/shared/math.wit",
        "package test:math@0.1.0;\n\ninterface ops {\n    add: func(a: s32, b: s32) -> s32;\n}\n",
    );
    let manifest = project.join("Kiln.toml");
    let text = fs_err::read_to_string(&manifest).unwrap();
    fs_err::write(
        &manifest,
        format!("{text}\n[wit-dependencies]\n\"test:maths\" = {{ path = \"shared\" }}\n"),
    )
    .unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run();
    assert_output_snapshot("wit_dependency_wrong_package", &env, &out);
    assert!(!project.join("wit/deps").exists());

    fs_err::write(
        &manifest,
        format!("{text}\n[wit-dependencies]\n\"test:math\" = {{ path = \"shared\" }}\n"),
    )
    .unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run().success();
    assert!(
        out.stderr
            .contains("Laid out WIT package `test:math` in `wit/deps/test-math`"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs_err::read_to_string(project.join("wit/deps/test-math/math.wit")).unwrap(),
        fs_err::read_to_string(project.join("shared/math.wit")).unwrap()
    );
    // Unchanged: not laid out again.
    let out = env.kiln(&["build"]).cwd(&project).run().success();
    assert!(!out.stderr.contains("Laid out"), "{}", out.stderr);
}

/// The text the polyglot example prints for [`POLYGLOT_INPUT`].
const POLYGLOT_OUTPUT: &str = "Text statistics\n===============\nlines      2\nwords      6\nbytes     46\nlongest: components, languages, polyglot\n";
const POLYGLOT_INPUT: &[&str] = &["polyglot components", "written\nin three languages"];

#[test]
fn the_polyglot_example_builds_from_its_root_and_runs_the_same_on_three_runtimes() {
    let env = Env::new();
    let root = env.example("polyglot");

    let out = env.kiln(&["build"]).cwd(&root).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Dependency order: the libraries before the command that composes them.
    let finished: Vec<&str> = out
        .stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Finished debug "))
        .collect();
    assert_eq!(finished.len(), 3, "{}", out.stderr);
    assert!(finished[2].contains("app"), "{finished:?}");
    for name in ["app", "stats", "fmt"] {
        assert!(
            root.join(format!("target/kiln/debug/{name}.wasm"))
                .is_file(),
            "{name}"
        );
    }
    let app = root.join("target/kiln/debug/app.wasm");

    let mut args = vec!["run", "-q", "-p", "app", "--"];
    args.extend_from_slice(POLYGLOT_INPUT);
    let out = env.kiln(&args).cwd(&root).run().success();
    assert_eq!(out.stdout, POLYGLOT_OUTPUT);

    let mut wasmtime_args = vec!["run", app.to_str().unwrap()];
    wasmtime_args.extend_from_slice(POLYGLOT_INPUT);
    let (code, stdout, stderr) = other_runtime(&wasmtime(), &wasmtime_args, &root);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(String::from_utf8_lossy(&stdout), POLYGLOT_OUTPUT);

    let mut jco_args = vec!["run", app.to_str().unwrap()];
    jco_args.extend_from_slice(POLYGLOT_INPUT);
    let (code, stdout, stderr) = other_runtime(&jco(), &jco_args, &root);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(String::from_utf8_lossy(&stdout), POLYGLOT_OUTPUT);

    // One component: both interfaces are inside, neither is imported.
    let out = env
        .kiln(&["inspect", app.to_str().unwrap()])
        .run()
        .success();
    assert!(
        !out.stdout.contains("import kiln-examples:"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  stats 0.1.0 from ../stats\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("    provides kiln-examples:text/stats@0.1.0\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  fmt 0.1.0 from ../fmt\n"),
        "{}",
        out.stdout
    );

    // A member alone, from the root or from its own directory; the artifact stays in the
    // workspace's target.
    let out = env
        .kiln(&["build", "-p", "stats"])
        .cwd(&root)
        .run()
        .success();
    assert_eq!(
        out.stderr.matches("Finished debug").count(),
        1,
        "{}",
        out.stderr
    );
    env.kiln(&["build"]).cwd(root.join("fmt")).run().success();
    assert!(!root.join("fmt/target/kiln/debug/fmt.wasm").exists());

    // The root is not a component.
    let out = env.kiln(&["run"]).cwd(&root).run();
    assert_output_snapshot("workspace_root_run", &env, &out);
    let out = env.kiln(&["run", "-p", "nope"]).cwd(&root).run();
    assert_output_snapshot("workspace_unknown_member", &env, &out);
}

/// A C library exporting `test:math/ops@0.1.0`, whose WIT comes from `registry` through
/// `[wit-dependencies]`, with `requirement`.
fn math_library(env: &Env, registry: &str, requirement: &str) -> PathBuf {
    env.write(
        "mathlib/Kiln.toml",
        format!(
            "[package]\nname = \"mathlib\"\nlanguage = \"c\"\n\n[build]\nworld = \"wit\"\n\n\
             [wit-dependencies]\n\"test:math\" = {{ version = \"{requirement}\", registry = \"{registry}\" }}\n"
        ),
    );
    env.write(
        "mathlib/wit/world.wit",
        "package test:mathlib;\n\nworld mathlib {\n    export test:math/ops@0.1.0;\n}\n",
    );
    env.write(
        "mathlib/src/lib.c",
        "#include \"mathlib.h\"\n\nint32_t exports_test_math_ops_add(int32_t a, int32_t b) { return a + b; }\n",
    );
    env.path("mathlib")
}

const MATH_WIT: &str =
    "package test:math@VERSION;\n\ninterface ops {\n    add: func(a: s32, b: s32) -> s32;\n}\n";

#[test]
fn a_wit_package_from_a_registry_is_locked_cached_and_builds_locked_offline() {
    let env = Env::new();
    let mut registry = Registry::open();
    let repository = format!("{}/test/math", registry.addr);
    env.write("math-wit/math.wit", MATH_WIT.replace("VERSION", "0.1.0"));
    let out = env
        .kiln(&["publish", &repository, "--wit", "math-wit"])
        .run()
        .success();
    assert!(
        out.stdout
            .starts_with(&format!("{repository}:0.1.0@sha256:")),
        "{}",
        out.stdout
    );

    let project = math_library(&env, &registry.addr, "0.1");
    let out = env.kiln(&["build"]).cwd(&project).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("Fetched WIT package `test:math` 0.1.0"),
        "{}",
        out.stderr
    );
    let lock = fs_err::read_to_string(project.join("wkg.lock")).unwrap();
    assert!(
        lock.starts_with("# This file is automatically generated."),
        "{lock}"
    );
    assert!(lock.contains("name = \"test:math\""), "{lock}");
    assert!(
        lock.contains(&format!("registry = \"{}\"", registry.addr)),
        "{lock}"
    );
    assert!(lock.contains("requirement = \"^0.1\""), "{lock}");
    assert!(lock.contains("version = \"0.1.0\""), "{lock}");
    assert!(lock.contains("digest = \"sha256:"), "{lock}");
    assert!(
        project
            .join("wit/deps/test-math-0.1.0/package.wit")
            .is_file()
    );
    let wasm = project.join("target/kiln/debug/mathlib.wasm");
    let out = env
        .kiln(&["run", wasm.to_str().unwrap(), "--invoke", "add(40, 2)"])
        .run()
        .success();
    assert_eq!(out.stdout, "42\n");

    // What CI does: --locked --offline after a first resolve, with the registry gone and the
    // laid-out packages removed.
    registry.stop();
    fs_err::remove_dir_all(project.join("wit/deps")).unwrap();
    fs_err::remove_dir_all(project.join("target")).unwrap();
    let out = env
        .kiln(&["build", "--locked", "--offline"])
        .cwd(&project)
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        fs_err::read_to_string(project.join("wkg.lock")).unwrap(),
        lock
    );

    // A requirement the lock does not hold: --locked and --offline say why they refuse.
    math_library(&env, "127.0.0.1:1", "=0.1.0");
    let out = env
        .kiln(&["build", "--locked", "--offline"])
        .cwd(&project)
        .run();
    assert_output_snapshot("wit_registry_offline_unlocked", &env, &out);
    let out = env.kiln(&["build", "--locked"]).cwd(&project).run();
    assert_eq!(out.code, 1);
    assert_eq!(
        fs_err::read_to_string(project.join("wkg.lock")).unwrap(),
        lock
    );
}

#[test]
fn kiln_update_moves_the_lock_to_the_newest_release() {
    let env = Env::new();
    let registry = Registry::open();
    let repository = format!("{}/test/math", registry.addr);
    env.write("math-wit/math.wit", MATH_WIT.replace("VERSION", "0.1.0"));
    env.kiln(&["publish", &repository, "--wit", "math-wit"])
        .run()
        .success();
    let project = math_library(&env, &registry.addr, "0.1");
    env.kiln(&["build", "-q"]).cwd(&project).run().success();

    env.write("math-wit/math.wit", MATH_WIT.replace("VERSION", "0.1.1"));
    env.kiln(&["publish", &repository, "--wit", "math-wit"])
        .run()
        .success();
    // A plain build keeps what the lock says.
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    let lock = fs_err::read_to_string(project.join("wkg.lock")).unwrap();
    assert!(lock.contains("version = \"0.1.0\""), "{lock}");
    let out = env.kiln(&["update"]).cwd(&project).run().success();
    assert!(
        out.stderr.contains("Fetched WIT package `test:math` 0.1.1"),
        "{}",
        out.stderr
    );
    let lock = fs_err::read_to_string(project.join("wkg.lock")).unwrap();
    assert!(lock.contains("version = \"0.1.1\""), "{lock}");
    assert!(
        project
            .join("wit/deps/test-math-0.1.1/package.wit")
            .is_file()
    );
}

#[test]
fn a_malformed_composition_record_is_reported_not_fatal() {
    let env = Env::new();
    let wasm = env.wat_fixture("math-provider");
    let mut bytes = fs_err::read(&wasm).unwrap();
    let name = b"kiln-composed-from";
    let data = b"{not json";
    bytes.push(0);
    bytes.push((1 + name.len() + data.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(data);
    fs_err::write(&wasm, bytes).unwrap();
    let out = env
        .kiln(&["inspect", wasm.to_str().unwrap()])
        .run()
        .success();
    assert!(
        out.stderr.contains("warning:") && out.stderr.contains("composition record"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("composed from:"), "{}", out.stdout);
    assert!(
        out.stdout.contains("export test:math/ops@0.1.1"),
        "{}",
        out.stdout
    );
}

#[test]
fn publishing_a_wit_package_that_does_not_parse_sends_nothing() {
    let env = Env::new();
    let registry = Registry::open();
    env.write(
        "broken/math.wit",
        "package test:math@0.1.0;\n\ninterface ops {\n    add: func(a: s32 -> s32;\n}\n",
    );
    let reference = format!("{}/test/math", registry.addr);
    for dir in ["broken", "missing"] {
        let out = env
            .kiln(&["publish", &reference, "--wit", dir])
            .run()
            .code(1);
        assert!(
            out.stderr.contains("error: cannot read the WIT package in"),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
    assert_eq!(registry.tags("test/math"), None);
}
