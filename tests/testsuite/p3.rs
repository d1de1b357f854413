//! WASI 0.3: `wasi:cli/command@0.3` components (an async `run` export) built from the
//! `rust-cli-p3` template with the `wasip3` crate, run by `kiln run` and by an executable from
//! `--exe`, with the same grants, limits and exit codes as WASI 0.2 commands; and
//! `wasi:http/service@0.3` services from `rust-http-p3`, served by `kiln serve`.

use crate::serve::body;
use crate::support::{Env, http};

#[test]
fn a_wasi_0_3_command_runs_with_grants_limits_and_exit_codes() {
    let env = Env::new();
    let project = env.new_project("hello3", &["--template", "rust-cli-p3"]);
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    let wasm = project.join("target/kiln/debug/hello3.wasm");
    let wasm = wasm.to_str().unwrap();

    let out = env.kiln(&["run", wasm, "--", "world"]).run().success();
    assert_eq!(out.stdout, "Hello, world!\n");
    // The same component, unchanged, on the wasmtime CLI (49.x: WASI 0.3 on by default).
    let (code, stdout, stderr) = crate::bundle::other_runtime(
        &crate::bundle::wasmtime(),
        &["run", wasm, "portable"],
        &project,
    );
    assert_eq!(
        (code, stdout.as_slice()),
        (0, &b"Hello, portable!\n"[..]),
        "{stderr}"
    );
    // `kiln inspect` says which WASI it targets: 0.3 for its run export, 0.2 for std's own I/O.
    let out = env.kiln(&["inspect", wasm]).run().success();
    assert!(
        out.stdout.contains("targets: WASI 0.2, WASI 0.3\n")
            || out.stdout.contains("targets: WASI 0.3\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("export wasi:cli/run@0.3."),
        "{}",
        out.stdout
    );
    let json = env
        .kiln(&["inspect", wasm, "--message-format", "json"])
        .run()
        .success()
        .json_event("inspect");
    assert!(
        json["wasi"].as_array().unwrap().contains(&"0.3".into()),
        "{json}"
    );
    // Environment variables only when granted.
    let out = env
        .kiln(&["run", "--env", "GREETING=Howdy", wasm, "--", "partner"])
        .env("GREETING", "ignored")
        .run()
        .success();
    assert_eq!(out.stdout, "Howdy, partner!\n");
    let out = env
        .kiln(&["run", wasm, "--", "partner"])
        .env("GREETING", "not granted")
        .run()
        .success();
    assert_eq!(out.stdout, "Hello, partner!\n");
    // stdin through a WASI 0.3 stream.
    let out = env
        .kiln(&["run", wasm, "--", "--count"])
        .stdin("one two\nthree\n")
        .run()
        .success();
    assert_eq!(out.stdout, "      2       3      14\n");
    // An async timer.
    let out = env
        .kiln(&["run", wasm, "--", "--sleep", "50"])
        .run()
        .success();
    assert_eq!(out.stdout, "slept 50 ms\n");
    // `run` returning `err` is exit status 1, the guest's stderr shown as it wrote it.
    let out = env.kiln(&["run", wasm, "--", "--bogus"]).run().code(1);
    assert_eq!(out.stderr, "error: unknown option `--bogus`\n");
    // A guest waiting on a timer past --timeout is stopped, with the timeout's exit code.
    let out = env
        .kiln(&["run", "--timeout", "1s", wasm, "--", "--sleep", "600000"])
        .run()
        .code(124);
    assert!(
        out.stderr
            .contains("the guest ran longer than its time limit of 1s"),
        "{}",
        out.stderr
    );
    // Fuel counts the async guest's instructions too.
    let out = env
        .kiln(&["run", "--fuel", "1000", wasm, "--", "world"])
        .run()
        .code(152);
    assert!(out.stderr.contains("units of fuel"), "{}", out.stderr);
}

#[test]
fn a_wasi_0_3_command_ships_as_an_executable() {
    let env = Env::new();
    let project = env.new_project("tool3", &["--template", "rust-cli-p3"]);
    env.kiln(&["build", "-q", "--exe"])
        .cwd(&project)
        .run()
        .success();
    let exe = project.join("target/kiln/debug/tool3");
    let out = env.program(&exe, &["executable"]).run().success();
    assert_eq!(out.stdout, "Hello, executable!\n");
    let out = env.program(&exe, &["--bogus"]).run().code(1);
    assert_eq!(out.stderr, "error: unknown option `--bogus`\n");
}

#[test]
fn a_wasi_0_3_http_service_is_served_with_streaming_bodies_and_limits() {
    let env = Env::new();
    let project = env.new_project("api3", &["--template", "rust-http-p3"]);
    let server = env
        .kiln(&[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--max-request-body",
            "4MiB",
        ])
        .cwd(&project)
        .serve();
    let agent = http();
    let (status, text) = body(agent.get(format!("{}/", server.url)).call().unwrap());
    assert_eq!((status, text.as_str()), (200, "Hello from api3!\n"));
    let (status, _) = body(agent.get(format!("{}/nowhere", server.url)).call().unwrap());
    assert_eq!(status, 404);
    // The request's body stream is the response's: 3 MiB through the guest, byte for byte.
    let payload: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let response = agent
        .post(format!("{}/echo", server.url))
        .header("content-type", "application/x-test")
        .send(&payload[..])
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-test"
    );
    let echoed = response
        .into_body()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_vec()
        .unwrap();
    assert!(
        echoed == payload,
        "the echo differs ({} bytes)",
        echoed.len()
    );
    // Over --max-request-body: 413 before the guest runs, as for WASI 0.2 (the head alone
    // declares it; a client streaming 5 MiB would be cut off mid-send).
    {
        use std::io::{Read, Write};
        let addr = server.url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5242880\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 413");
    }
    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Stopped after 4 requests"), "{stderr}");

    // And under `wasmtime serve` (-Scli: Rust's std imports WASI 0.2's cli interfaces).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let wasm = project.join("target/kiln/debug/api3.wasm");
    let mut wasmtime = std::process::Command::new(crate::bundle::wasmtime())
        .args(["serve", "-Scli", "--addr", &addr])
        .arg(&wasm)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{addr}/");
    let start = std::time::Instant::now();
    let answer = loop {
        match agent.get(&url).call() {
            Ok(response) => break body(response),
            Err(_) if start.elapsed() < std::time::Duration::from_secs(60) => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("wasmtime serve did not answer: {e}"),
        }
    };
    let _ = wasmtime.kill();
    let _ = wasmtime.wait();
    assert_eq!(answer, (200, "Hello from api3!\n".to_string()));
}

/// The `rust-cli-p3` template with `--cat FILE`, read through Rust's std (WASI 0.2's
/// `wasi:filesystem`), or through WASI 0.3's own filesystem when `p3_fs` is set.
fn cat_guest(env: &Env, name: &str, p3_fs: bool) -> std::path::PathBuf {
    let project = env.new_project(name, &["--template", "rust-cli-p3"]);
    let lib = project.join("src/lib.rs");
    let source = fs_err::read_to_string(&lib).unwrap();
    let cat = if p3_fs {
        r#"Some("--cat") => {
                let dirs = wasip3::filesystem::preopens::get_directories();
                print(format!("{} preopens\n", dirs.len())).await;
                Ok(())
            }
            Some("--count") =>"#
    } else {
        r#"Some("--cat") => {
                let text = std::fs::read_to_string(&args[1]).map_err(|_| ())?;
                print(text).await;
                Ok(())
            }
            Some("--count") =>"#
    };
    fs_err::write(&lib, source.replacen(r#"Some("--count") =>"#, cat, 1)).unwrap();
    env.write(&format!("{name}/assets/note.txt"), "bundled for WASI 0.3\n");
    let manifest = project.join("Kiln.toml");
    let mut text = fs_err::read_to_string(&manifest).unwrap();
    text.push_str("\n[[bundle]]\nsource = \"assets\"\nmount = \"/assets\"\n");
    fs_err::write(&manifest, text).unwrap();
    project
}

#[test]
fn bundled_files_reach_a_wasi_0_3_guest_through_std_and_0_3_filesystem_is_refused() {
    let env = Env::new();
    // std::fs is WASI 0.2's filesystem, which the vfs serves, beside the guest's 0.3 run.
    let project = cat_guest(&env, "cat3", false);
    env.kiln(&["build", "-q"]).cwd(&project).run().success();
    let wasm = project.join("target/kiln/debug/cat3.wasm");
    let out = env
        .kiln(&[
            "run",
            wasm.to_str().unwrap(),
            "--",
            "--cat",
            "/assets/note.txt",
        ])
        .run()
        .success();
    assert_eq!(out.stdout, "bundled for WASI 0.3\n");

    // WASI 0.3's own filesystem would bypass the bundle: refused, saying why, nothing written.
    let project = cat_guest(&env, "fs3", true);
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert!(
        out.stderr.contains("imports `wasi:filesystem/")
            && out
                .stderr
                .contains("(WASI 0.3); bundled files are served through WASI 0.2"),
        "{}",
        out.stderr
    );
    assert!(!project.join("target/kiln/debug/fs3.wasm").exists());
}

/// Whether rustc has the `wasm32-wasip3` standard library (rustup from Rust 1.100).
fn has_wasip3_target() -> bool {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::path::Path::new(&sysroot)
        .join("lib/rustlib/wasm32-wasip3/lib")
        .is_dir()
}

#[test]
#[allow(clippy::print_stderr)] // the one line saying the wasm32-wasip3 build was skipped
fn build_target_selects_wasm32_wasip3_or_says_how_to_get_it() {
    let env = Env::new();
    let project = env.new_project("native3", &["--template", "rust-cli-p3"]);
    let manifest = project.join("Kiln.toml");
    let original = fs_err::read_to_string(&manifest).unwrap();

    fs_err::write(
        &manifest,
        format!("{original}\n[build]\ntarget = \"wasm32-wasip9\"\n"),
    )
    .unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run().code(1);
    assert!(
        out.stderr.contains(
            "Kiln.toml:8:10: `wasm32-wasip9` is not a target kiln builds Rust for: expected one of \
             `wasm32-wasip2`, `wasm32-wasip3` (at key `build.target`)"
        ),
        "{}",
        out.stderr
    );

    fs_err::write(
        &manifest,
        format!("{original}\n[build]\ntarget = \"wasm32-wasip3\"\n"),
    )
    .unwrap();
    let out = env.kiln(&["build"]).cwd(&project).run();
    if has_wasip3_target() {
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = env
            .kiln(&["run", "-q", "--", "native"])
            .cwd(&project)
            .run()
            .success();
        assert_eq!(out.stdout, "Hello, native!\n");
    } else {
        // Not installed here (Rust 1.95): the error says so and gives the rustup line.
        eprintln!(
            "skipped building for wasm32-wasip3: not installed; its error is checked instead"
        );
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr
                .contains("the `wasm32-wasip3` target is not installed for the Rust toolchain"),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("rustup target add wasm32-wasip3"),
            "{}",
            out.stderr
        );
        assert!(!project.join("target/kiln/debug/native3.wasm").exists());
    }
}

/// The http-guest-p3 fixture (`tests/fixtures/http-guest-p3`), built once per test run: each
/// answer starts `count=N active=M`, from globals of the instance that served it.
fn http_guest_p3(env: &Env) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let shared = Env::new();
        let project = shared.project_fixture("http-guest-p3");
        shared.kiln(&["build", "-q"]).cwd(&project).run().success();
        let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("http-guest-p3.wasm");
        let tmp = kept.with_extension(format!("{}", std::process::id()));
        fs_err::copy(project.join("target/kiln/debug/http-guest-p3.wasm"), &tmp).unwrap();
        fs_err::rename(&tmp, &kept).unwrap();
        kept
    });
    let to = env.path("http-guest-p3.wasm");
    fs_err::copy(built, &to).unwrap();
    to
}

/// `kiln serve http-guest-p3.wasm --addr 127.0.0.1:0 EXTRA...`, running.
fn serve_p3_guest(env: &Env, extra: &[&str]) -> crate::support::Served {
    let wasm = http_guest_p3(env);
    let mut args = vec!["serve", wasm.to_str().unwrap(), "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    env.kiln(&args).serve()
}

/// One answer of http-guest-p3: its status, `count`, `active` and the rest of the body.
fn p3_answer(response: ureq::http::Response<ureq::Body>) -> (u16, u64, u64, String) {
    let (status, text) = body(response);
    if status != 200 {
        return (status, 0, 0, text);
    }
    let mut words = text.splitn(3, ' ');
    let mut field = |name: &str| -> u64 {
        words
            .next()
            .and_then(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {text:?}"))
    };
    let count = field("count");
    let active = field("active");
    let rest = words.next().unwrap_or_default().to_string();
    (status, count, active, rest)
}

/// `n` concurrent `GET path`s: each answer, and how long they took together.
fn concurrently(url: &str, path: &str, n: usize) -> (Vec<(u16, u64, u64, String)>, f64) {
    let start = std::time::Instant::now();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let url = format!("{url}{path}");
            std::thread::spawn(move || p3_answer(http().get(&url).call().unwrap()))
        })
        .collect();
    let answers = threads.into_iter().map(|t| t.join().unwrap()).collect();
    (answers, start.elapsed().as_secs_f64())
}

#[test]
fn a_wasi_0_3_instance_serves_several_requests_concurrently_and_shares_its_state() {
    let env = Env::new();
    let agent = http();

    // The default (128 per instance, 16 at once): one instance takes request after request,
    // and its globals count them.
    let server = serve_p3_guest(&env, &[]);
    let counts: Vec<_> = (0..3)
        .map(|_| {
            let (status, count, active, rest) =
                p3_answer(agent.get(format!("{}/", server.url)).call().unwrap());
            assert_eq!((status, active, rest.as_str()), (200, 1, "hello"));
            count
        })
        .collect();
    assert_eq!(counts, [1, 2, 3]);
    // Requests waiting on a timer side by side: correct bodies, and some of them in flight in
    // one instance together (served one at a time, 16 × 500 ms would take 8 s).
    let (answers, took) = concurrently(&server.url, "/slow?ms=500", 16);
    for answer in &answers {
        assert_eq!(
            (answer.0, answer.3.as_str()),
            (200, "slept 500"),
            "{answers:?}"
        );
    }
    let most = answers.iter().map(|a| a.2).max().unwrap();
    assert!(most > 1, "no instance served two at once: {answers:?}");
    assert!(most <= 16, "{answers:?}");
    assert!(took < 6.0, "16 requests of 500 ms took {took:.1} s");
    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Stopped after 19 requests"), "{stderr}");

    // At most 2 at once in an instance, and a new instance after every 3 requests.
    let server = serve_p3_guest(
        &env,
        &[
            "--max-instance-concurrency",
            "2",
            "--max-instance-reuse",
            "3",
        ],
    );
    let counts: Vec<_> = (0..7)
        .map(|_| p3_answer(agent.get(format!("{}/", server.url)).call().unwrap()).1)
        .collect();
    assert_eq!(counts, [1, 2, 3, 1, 2, 3, 1]);
    let (answers, _) = concurrently(&server.url, "/slow?ms=300", 8);
    for answer in &answers {
        assert_eq!(
            (answer.0, answer.3.as_str()),
            (200, "slept 300"),
            "{answers:?}"
        );
        assert!(answer.2 <= 2 && answer.1 <= 3, "{answers:?}");
    }
    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn max_instance_reuse_1_gives_every_wasi_0_3_request_a_fresh_instance() {
    let env = Env::new();
    let agent = http();
    let server = serve_p3_guest(&env, &["--max-instance-reuse", "1", "-v"]);
    for _ in 0..4 {
        let answer = p3_answer(agent.get(format!("{}/", server.url)).call().unwrap());
        assert_eq!(answer, (200, 1, 1, "hello".to_string()));
    }
    let (answers, took) = concurrently(&server.url, "/slow?ms=500", 8);
    for answer in &answers {
        assert_eq!(answer, &(200, 1, 1, "slept 500".to_string()), "{answers:?}");
    }
    // Side by side still, each in its own instance.
    assert!(took < 4.0, "8 requests of 500 ms took {took:.1} s");
    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr
            .matches("Retired an instance after 1 request\n")
            .count(),
        12,
        "{stderr}"
    );
}

#[test]
fn a_trap_retires_its_wasi_0_3_instance_and_limits_still_apply() {
    let env = Env::new();
    let agent = http();
    let generic = (500, 0, 0, "500 Internal Server Error\n".to_string());
    let server = serve_p3_guest(&env, &["--timeout", "2s", "--max-memory", "32MiB"]);
    let get = |path: &str| p3_answer(agent.get(format!("{}{path}", server.url)).call().unwrap());

    assert_eq!(get("/").1, 1);
    // A request waiting on a timer in the instance when another traps in it: both get 500s.
    let url = server.url.clone();
    let slow = std::thread::spawn(move || {
        p3_answer(http().get(format!("{url}/slow?ms=1500")).call().unwrap())
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(get("/trap"), generic);
    assert_eq!(slow.join().unwrap(), generic);
    // The next request gets a fresh instance.
    assert_eq!(get("/"), (200, 1, 1, "hello".to_string()));

    // A request spinning past --timeout cannot hold its instance: 500, then a fresh one.
    let start = std::time::Instant::now();
    assert_eq!(get("/spin"), generic);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(get("/"), (200, 1, 1, "hello".to_string()));
    // A timer past --timeout too.
    assert_eq!(get("/slow?ms=600000"), generic);
    // --max-memory bounds the instance.
    assert_eq!(get("/alloc?mib=64"), generic);
    assert_eq!(get("/alloc?mib=8").3, "allocated");

    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    for line in [
        "GET /trap -> 500: the guest trapped",
        // The request in flight on the instance gets the same reason.
        "GET /slow?ms=1500 -> 500: the guest trapped",
        "the handler gave up",
        "GET /spin -> 500: the guest ran longer than its time limit of 2s",
        "GET /slow?ms=600000 -> 500: the guest ran longer than its time limit of 2s",
        "GET /alloc?mib=64 -> 500: the guest tried to grow its linear memory",
    ] {
        assert!(stderr.contains(line), "{line:?} not in: {stderr}");
    }

    // Fuel: each request brings its own; one that burns it all stops its instance.
    let server = serve_p3_guest(&env, &["--fuel", "50000000"]);
    let get = |path: &str| p3_answer(agent.get(format!("{}{path}", server.url)).call().unwrap());
    for count in 1..=3 {
        assert_eq!(get("/"), (200, count, 1, "hello".to_string()));
    }
    assert_eq!(get("/spin"), generic);
    assert_eq!(get("/"), (200, 1, 1, "hello".to_string()));
    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("GET /spin -> 500: the guest used all of its 50000000 units of fuel"),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_drains_requests_in_flight_on_a_shared_wasi_0_3_instance() {
    let env = Env::new();
    let server = serve_p3_guest(&env, &[]);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let url = server.url.clone();
            std::thread::spawn(move || {
                p3_answer(http().get(format!("{url}/slow?ms=1500")).call().unwrap())
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let url = server.url.clone();
    let (code, stderr) = server.stop("TERM");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Draining"), "{stderr}");
    for thread in threads {
        let (status, _, _, rest) = thread.join().unwrap();
        assert_eq!((status, rest.as_str()), (200, "slept 1500"));
    }
    assert!(http().get(format!("{url}/")).call().is_err());
}
