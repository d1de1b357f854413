//! Release builds: wasm-opt inside components, strip, metadata — and a differential check
//! that the optimized component behaves exactly as the unoptimized one.

use crate::support::{Env, repo};

fn release(
    env: &Env,
    project: &std::path::Path,
    extra: &[&str],
) -> (crate::support::Output, Vec<u8>, String) {
    let mut args = vec!["build", "--release"];
    args.extend_from_slice(extra);
    let out = env.kiln(&args).cwd(project).run().success();
    let name = project.file_name().unwrap().to_str().unwrap();
    let path = project.join(format!("target/kiln/release/{name}.wasm"));
    let bytes = fs_err::read(&path).unwrap();
    (out, bytes, path.display().to_string())
}

#[test]
fn release_optimizes_strips_and_behaves_the_same() {
    let env = Env::new();
    let project = env.new_project("hello", &[]);

    let (plain_out, plain, _) = release(&env, &project, &["--no-optimize"]);
    assert!(
        !plain_out.stderr.contains("Optimizing"),
        "{}",
        plain_out.stderr
    );
    let plain_copy = env.write("plain.wasm", &plain);

    let (out, optimized, path) = release(&env, &project, &[]);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("Optimizing"))
        .expect("an Optimizing line");
    assert!(
        line.trim_start().starts_with("Optimizing hello.wasm ") && line.contains(" → "),
        "{line}"
    );
    assert!(
        out.stderr.contains("Stripping hello.wasm "),
        "{}",
        out.stderr
    );
    // The adapter's shims that wasm-opt would grow are kept quietly: no warning on every
    // release build, a `Kept` line with -v.
    assert!(!out.stderr.contains("warning:"), "{}", out.stderr);
    fs_err::remove_dir_all(project.join("target/kiln/release")).unwrap();
    let verbose = env
        .kiln(&["build", "--release", "-v"])
        .cwd(&project)
        .run()
        .success();
    assert!(
        verbose
            .stderr
            .lines()
            .any(|l| l.trim_start().starts_with("Kept hello: ") && l.contains("as it was")),
        "{}",
        verbose.stderr
    );
    assert!(
        optimized.len() < plain.len(),
        "optimized {} >= unoptimized {}",
        optimized.len(),
        plain.len()
    );

    // Differential: same stdout, stderr and exit code for the same inputs.
    for (args, stdin) in [
        (vec!["--", "world"], ""),
        (vec!["--", "--count"], "one two\nthree\n"),
        (vec!["--", "--bogus"], ""),
    ] {
        let run = |wasm: &str| {
            let mut full = vec!["run", "-q", wasm];
            full.extend_from_slice(&args);
            env.kiln(&full).stdin(stdin).run()
        };
        let (a, b) = (run(&path), run(plain_copy.to_str().unwrap()));
        assert_eq!(
            (a.code, &a.stdout, &a.stderr),
            (b.code, &b.stdout, &b.stderr),
            "{args:?}"
        );
    }

    // Metadata from the manifest, and kiln in processed-by.
    let inspect = env
        .kiln(&["inspect", &path, "--message-format", "json"])
        .run()
        .success();
    let info = inspect.json_event("inspect");
    assert_eq!(info["metadata"]["name"], "hello");
    assert_eq!(info["metadata"]["version"], "0.1.0");
    assert_eq!(
        info["metadata"]["description"],
        "A command-line WebAssembly component"
    );
    let producers = info["metadata"]["producers"].as_array().unwrap();
    assert!(
        producers.iter().any(|p| p["field"] == "processed-by"
            && p["name"] == "kiln"
            && p["version"] == env!("CARGO_PKG_VERSION")),
        "{producers:?}"
    );
}

#[test]
fn optimize_level_and_strip_come_from_the_manifest() {
    let env = Env::new();
    let project = env.new_project("tuned", &[]);
    // Debug info in the release profile, so stripping has something to remove.
    let cargo_toml = fs_err::read_to_string(project.join("Cargo.toml")).unwrap()
        + "\n[profile.release]\ndebug = true\n";
    env.write("tuned/Cargo.toml", cargo_toml);
    let kiln_toml = fs_err::read_to_string(project.join("Kiln.toml")).unwrap();

    env.write(
        "tuned/Kiln.toml",
        format!("{kiln_toml}\n[release]\noptimize = \"z\"\nstrip = false\n"),
    );
    let (out, kept, path) = release(&env, &project, &[]);
    assert!(!out.stderr.contains("Stripping"), "{}", out.stderr);
    let customs = |path: &str| {
        let info = env
            .kiln(&["inspect", path, "--message-format", "json"])
            .run()
            .success()
            .json_event("inspect");
        info["custom_sections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        customs(&path).iter().any(|c| c.starts_with(".debug_")),
        "strip = false keeps DWARF"
    );

    env.write(
        "tuned/Kiln.toml",
        format!("{kiln_toml}\n[release]\noptimize = \"z\"\nstrip = true\n"),
    );
    let (out, stripped, path) = release(&env, &project, &[]);
    assert!(
        out.stderr.contains("Stripping tuned.wasm"),
        "{}",
        out.stderr
    );
    let after = customs(&path);
    assert!(!after.iter().any(|c| c.starts_with(".debug_")), "{after:?}");
    assert!(
        after.iter().any(|c| c == "name"),
        "names are kept: {after:?}"
    );
    assert!(stripped.len() < kept.len());
    let out = env
        .kiln(&["run", "-q", &path, "--", "tuned"])
        .run()
        .success();
    assert_eq!(out.stdout, "Hello, tuned!\n");
}

/// The cargo command line a verbose build ran.
fn cargo_line(out: &crate::support::Output) -> String {
    out.stderr
        .lines()
        .find(|l| l.trim_start().starts_with("Running `") && l.contains(" build --target "))
        .unwrap_or_else(|| panic!("no cargo command in:\n{}", out.stderr))
        .to_string()
}

#[test]
fn optimize_z_has_the_compiler_optimize_for_size_unless_the_project_says_otherwise() {
    let env = Env::new();
    let project = env.new_project("small", &[]);
    let kiln_toml = fs_err::read_to_string(project.join("Kiln.toml")).unwrap();
    let cargo_toml = fs_err::read_to_string(project.join("Cargo.toml")).unwrap();

    // The default ("s") leaves cargo's release profile alone.
    let (out, _, _) = release(&env, &project, &["-v"]);
    assert!(
        !cargo_line(&out).contains("--config"),
        "{}",
        cargo_line(&out)
    );

    env.write(
        "small/Kiln.toml",
        format!("{kiln_toml}\n[release]\noptimize = \"z\"\n"),
    );
    let (out, smallest, path) = release(&env, &project, &["-v"]);
    assert!(
        cargo_line(&out).contains(
            " --config profile.release.opt-level=\"z\" --config profile.release.lto=true \
             --config profile.release.codegen-units=1"
        ),
        "{}",
        cargo_line(&out)
    );
    let ran = env.kiln(&["run", "-q", &path, "--", "z"]).run().success();
    assert_eq!(ran.stdout, "Hello, z!\n");

    // What the project (Cargo.toml) or its user (CARGO_PROFILE_*) set stays theirs.
    env.write(
        "small/Cargo.toml",
        format!("{cargo_toml}\n[profile.release]\nopt-level = 3\n"),
    );
    let out = env
        .kiln(&["build", "--release", "-v"])
        .cwd(&project)
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .run()
        .success();
    let line = cargo_line(&out);
    assert!(
        line.contains(" --config profile.release.codegen-units=1")
            && !line.contains("opt-level")
            && !line.contains("lto"),
        "{line}"
    );
    let fast = fs_err::read(&path).unwrap();
    assert!(
        smallest.len() < fast.len(),
        "opt-level \"z\" with LTO ({} bytes) is smaller than opt-level 3 ({} bytes)",
        smallest.len(),
        fast.len()
    );
}

#[test]
fn the_optimized_library_still_exports_its_world() {
    let env = Env::new();
    let project = env.new_project("wordlib", &["--template", "rust-lib"]);
    let out = env
        .kiln(&["build", "--release", "--message-format", "json"])
        .cwd(&project)
        .run()
        .success();
    let stages: Vec<_> = out
        .json_lines()
        .into_iter()
        .filter(|e| e["reason"] == "stage")
        .collect();
    assert_eq!(
        stages
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["strip", "optimize"]
    );
    assert!(stages[1]["after"].as_u64() < stages[1]["before"].as_u64());
    assert_eq!(
        out.json_event("artifact")["exports"],
        serde_json::json!(["greet", "count-words"])
    );

    let wit = env
        .kiln(&["inspect", "--wit", "target/kiln/release/wordlib.wasm"])
        .cwd(&project)
        .run()
        .success();
    assert!(
        wit.stdout
            .contains("export greet: func(name: string) -> string;"),
        "{}",
        wit.stdout
    );
    assert!(
        wit.stdout
            .contains("export count-words: func(text: string) -> u32;"),
        "{}",
        wit.stdout
    );
}

#[test]
fn md2html_optimized_produces_identical_html() {
    let env = Env::new();
    let example = env.path("md2html");
    for entry in ["Cargo.toml", "Cargo.lock", "Kiln.toml", "src/main.rs"] {
        env.write(
            &format!("md2html/{entry}"),
            fs_err::read(repo().join("examples/md2html").join(entry)).unwrap(),
        );
    }
    let (_, _, optimized) = release(&env, &example, &[]);
    let (_, plain, _) = release(&env, &example, &["--no-optimize"]);
    let plain = env.write("plain.wasm", plain);
    let docs = format!("{}::/docs", repo().join("docs").display());
    for (wasm, out) in [(optimized.as_str(), "a"), (plain.to_str().unwrap(), "b")] {
        fs_err::create_dir(env.path(out)).unwrap();
        let grant = format!("{out}::/out");
        env.kiln(&[
            "run", "-q", wasm, "--dir", &docs, "--dir", &grant, "--", "/docs", "/out",
        ])
        .run()
        .success();
    }
    let files = crate::support::files_under(&env.path("a"));
    assert!(!files.is_empty());
    assert_eq!(files, crate::support::files_under(&env.path("b")));
    for file in files {
        let (a, b) = (
            fs_err::read(env.path("a").join(&file)).unwrap(),
            fs_err::read(env.path("b").join(&file)).unwrap(),
        );
        assert!(
            a == b,
            "{file} differs between the optimized and unoptimized component"
        );
    }
}

#[test]
fn fixture_guests_behave_the_same_optimized() {
    let env = Env::new();
    for (guest, runs) in [
        (
            "panic-guest",
            vec![vec!["ok"], vec!["fail"], vec!["panic"], vec!["env"]],
        ),
        ("cpu-guest", vec![vec!["100000", "1000"]]),
    ] {
        let project = env.project_fixture(guest);
        let (_, plain, _) = release(&env, &project, &["--no-optimize"]);
        let plain = env.write(&format!("{guest}.plain.wasm"), plain);
        let (out, optimized, path) = release(&env, &project, &[]);
        assert!(
            out.stderr.contains(&format!("Optimizing {guest}.wasm")),
            "{}",
            out.stderr
        );
        assert!(
            optimized.len() < fs_err::metadata(&plain).unwrap().len() as usize,
            "{guest}"
        );
        for args in runs {
            let run = |wasm: &str| {
                let mut full = vec!["run", "-q", wasm, "--"];
                full.extend_from_slice(&args);
                env.kiln(&full).run()
            };
            let (a, b) = (run(&path), run(plain.to_str().unwrap()));
            assert_eq!((a.code, &a.stdout), (b.code, &b.stdout), "{guest} {args:?}");
            // The guest's own stderr (a panic message) is the same; kiln's trap report names
            // different files and offsets, so compare up to it.
            let guest_part = |s: &str| {
                s.split("error: failed to run")
                    .next()
                    .unwrap_or("")
                    .to_string()
            };
            assert_eq!(
                guest_part(&a.stderr),
                guest_part(&b.stderr),
                "{guest} {args:?}"
            );
            if args == ["panic"] {
                // Release strips DWARF but keeps names: the backtrace still reads.
                assert_eq!(a.code, 134);
                assert!(a.stderr.contains("panic_guest::main"), "{}", a.stderr);
            }
        }
    }
}
