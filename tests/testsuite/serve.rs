//! `kiln serve`: HTTP components on the embedded Wasmtime, checked with a real HTTP client.

use std::sync::OnceLock;

use crate::support::{Env, http};

/// The http-guest fixture, built once per test run (`tests/fixtures/http-guest`).
fn http_guest(env: &Env) -> std::path::PathBuf {
    static BUILT: OnceLock<std::path::PathBuf> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let shared = Env::new();
        let project = shared.project_fixture("http-guest");
        shared.kiln(&["build", "-q"]).cwd(&project).run().success();
        let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("http-guest.wasm");
        let tmp = kept.with_extension(format!("{}", std::process::id()));
        fs_err::copy(project.join("target/kiln/debug/http-guest.wasm"), &tmp).unwrap();
        fs_err::rename(&tmp, &kept).unwrap();
        kept
    });
    let to = env.path("http-guest.wasm");
    fs_err::copy(built, &to).unwrap();
    to
}

/// `kiln serve http-guest.wasm --addr 127.0.0.1:0 EXTRA...`, running.
pub(crate) fn serve_http_guest(env: &Env, extra: &[&str]) -> crate::support::Served {
    let wasm = http_guest(env);
    let mut args = vec!["serve", wasm.to_str().unwrap(), "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    env.kiln(&args).serve()
}

pub(crate) fn body(response: ureq::http::Response<ureq::Body>) -> (u16, String) {
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap();
    (status, text)
}

#[test]
fn the_rust_http_template_answers_get_and_post() {
    let env = Env::new();
    let project = env.new_project("api", &["--template", "rust-http"]);
    let server = env
        .kiln(&["serve", "--addr", "127.0.0.1:0"])
        .cwd(&project)
        .serve();
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    let agent = http();

    let response = agent.get(format!("{}/", server.url)).call().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.headers()["content-length"], "16");
    assert_eq!(
        response.into_body().read_to_string().unwrap(),
        "Hello from api!\n"
    );

    // The echo streams any size back (here 1 MiB of non-text bytes), with its content type.
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let response = agent
        .post(format!("{}/echo", server.url))
        .header("content-type", "application/x-test")
        .send(&payload[..])
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-test");
    let echoed = response
        .into_body()
        .with_config()
        .limit(8 << 20)
        .read_to_vec()
        .unwrap();
    assert!(
        echoed == payload,
        "the echo differs ({} bytes back)",
        echoed.len()
    );

    let (status, text) = body(agent.get(format!("{}/missing", server.url)).call().unwrap());
    assert_eq!((status, text.as_str()), (404, "not found\n"));
}

#[test]
fn a_hundred_concurrent_requests_are_all_answered() {
    let env = Env::new();
    let server = serve_http_guest(&env, &[]);
    let url = server.url.clone();
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                // Each request waits 200 ms inside the guest: served one at a time they would
                // take 20 s, so answers in time show the instances run side by side.
                body(
                    http()
                        .get(format!("{url}/slow?ms=200&n={i}"))
                        .call()
                        .unwrap(),
                )
            })
        })
        .collect();
    for (i, thread) in threads.into_iter().enumerate() {
        let (status, text) = thread.join().unwrap();
        assert_eq!((status, text.as_str()), (200, "slept 200"), "request {i}");
    }
}

#[test]
fn every_request_gets_an_instance_in_its_initial_state() {
    // Pooled slots are reset between instances, in place where the kernel can tell which
    // pages were dirtied: to the initial data (41, not zero), and nothing one request wrote
    // may reach the next.
    let env = Env::new();
    let server = serve_http_guest(&env, &[]);
    for i in 0..20 {
        let counted = body(http().get(format!("{}/count", server.url)).call().unwrap());
        assert_eq!(
            (counted.0, counted.1.as_str()),
            (200, "count 42"),
            "request {i}"
        );
        let allocated = body(
            http()
                .get(format!("{}/alloc?mib={}", server.url, i % 6))
                .call()
                .unwrap(),
        );
        assert_eq!(allocated, (200, "allocated".to_string()), "request {i}");
    }
}

#[test]
fn a_trapping_request_gets_500_and_the_next_one_succeeds() {
    let env = Env::new();
    let server = serve_http_guest(&env, &["--timeout", "1s", "--max-memory", "32MiB"]);
    let agent = http();
    let get = |path: &str| body(agent.get(format!("{}{path}", server.url)).call().unwrap());

    // The client gets a generic 500; what went wrong goes to kiln's own log.
    let generic = (500, "500 Internal Server Error\n".to_string());
    assert_eq!(get("/trap"), generic);
    assert_eq!(get("/hello"), (200, "Method::Get /hello".to_string()));

    // Limits apply per request, and each failure leaves the server serving.
    assert_eq!(get("/spin"), generic);
    assert_eq!(get("/alloc?mib=64"), generic);
    assert_eq!(get("/alloc?mib=8"), (200, "allocated".to_string()));

    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("GET /trap -> 500: the guest trapped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the handler gave up"),
        "the guest's panic message: {stderr}"
    );
    assert!(
        stderr.contains("GET /spin -> 500: the guest ran longer than its time limit of 1s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("GET /alloc?mib=64 -> 500: the guest tried to grow its linear memory"),
        "{stderr}"
    );
    assert!(stderr.contains("Stopped after 5 requests"), "{stderr}");
}

#[test]
fn an_oversized_body_is_refused_with_413() {
    let env = Env::new();
    let server = serve_http_guest(&env, &["--max-request-body", "1KiB"]);
    let agent = http();
    let (status, text) = body(
        agent
            .post(format!("{}/upload", server.url))
            .send(&[0u8; 1025][..])
            .unwrap(),
    );
    assert_eq!(status, 413);
    assert_eq!(
        text,
        "request body of 1025 bytes is over the limit of 1024 bytes\n"
    );
    let (status, _) = body(
        agent
            .post(format!("{}/upload", server.url))
            .send(&[0u8; 1024][..])
            .unwrap(),
    );
    assert_eq!(status, 200);
}

#[cfg(unix)]
#[test]
fn ctrl_c_lets_requests_in_flight_finish_and_exits_0() {
    let env = Env::new();
    let server = serve_http_guest(&env, &[]);
    let url = server.url.clone();
    let in_flight =
        std::thread::spawn(move || body(http().get(format!("{url}/slow?ms=1500")).call().unwrap()));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let url = server.url.clone();
    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Draining"), "{stderr}");
    assert_eq!(in_flight.join().unwrap(), (200, "slept 1500".to_string()));
    // And it no longer listens.
    assert!(http().get(format!("{url}/")).call().is_err());
}

#[test]
fn only_http_components_are_served() {
    let env = Env::new();
    env.probe();
    let out = env
        .kiln(&["serve", "probe.wasm", "--addr", "127.0.0.1:0"])
        .run()
        .code(1);
    assert!(
        out.stderr.contains("`probe.wasm` is not an HTTP component"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("run it with `kiln run probe.wasm`"),
        "{}",
        out.stderr
    );
    let wasm = http_guest(&env);
    let out = env.kiln(&["run", wasm.to_str().unwrap()]).run().code(1);
    assert!(
        out.stderr.contains("is an HTTP component"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("serve it with `kiln serve"),
        "{}",
        out.stderr
    );
}

#[test]
fn hostile_guests_are_bounded_per_request() {
    use crate::limits::{WRAPPING_MEMORY, World, growing_table, hostile};
    let env = Env::new();
    let agent = http();
    let generic = (500, "500 Internal Server Error\n".to_string());

    let wasm = env.write("wrap.wasm", hostile(World::Http, WRAPPING_MEMORY));
    let server = env
        .kiln(&[
            "serve",
            wasm.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--max-memory",
            "8MiB",
        ])
        .serve();
    for _ in 0..2 {
        assert_eq!(
            body(agent.get(format!("{}/", server.url)).call().unwrap()),
            generic
        );
    }
    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr
            .matches("over its limit of 8388608 bytes, and was stopped")
            .count(),
        2,
        "{stderr}"
    );

    let wasm = env.write("table.wasm", hostile(World::Http, &growing_table(1000)));
    let server = env
        .kiln(&[
            "serve",
            wasm.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--max-table-elements",
            "500",
        ])
        .serve();
    assert_eq!(
        body(agent.get(format!("{}/", server.url)).call().unwrap()),
        generic
    );
    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("over its limit of 500 elements"),
        "{stderr}"
    );
}

/// Reads what the server sends until it closes the connection; panics when it does not
/// within a minute (the test's own bound, not a measurement).
fn read_until_closed(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut received = Vec::new();
    stream
        .read_to_end(&mut received)
        .expect("the server closes the connection");
    received
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use std::io::Write;
    let env = Env::new();
    let server = serve_http_guest(&env, &["--header-timeout", "1s"]);
    let addr = server.url.trim_start_matches("http://");
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let received = read_until_closed(&mut slow);
    assert!(
        !String::from_utf8_lossy(&received).contains("200 OK"),
        "{received:?}"
    );
    // The server still serves.
    let (status, text) = body(http().get(format!("{}/hello", server.url)).call().unwrap());
    assert_eq!((status, text.as_str()), (200, "Method::Get /hello"));
}

#[test]
fn connections_over_the_cap_wait_for_a_free_slot() {
    let env = Env::new();
    let server = serve_http_guest(&env, &["--max-connections", "1", "--header-timeout", "1s"]);
    let addr = server.url.trim_start_matches("http://").to_string();
    // An idle connection takes the only slot.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    // This request waits until the idle connection is closed, then is answered.
    let (status, text) = body(http().get(format!("{}/hello", server.url)).call().unwrap());
    assert_eq!((status, text.as_str()), (200, "Method::Get /hello"));
    // So by now the idle one was closed by the server.
    assert!(read_until_closed(&mut idle).is_empty());
}

#[test]
fn inherit_env_leaves_kiln_secrets_out() {
    let env = Env::new();
    let wasm = http_guest(&env);
    let server = env
        .kiln(&[
            "serve",
            wasm.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--inherit-env",
        ])
        .env("KILN_REGISTRY_TOKEN", "hunter2")
        .env("KILN_REGISTRY_PASSWORD", "hunter3")
        .env("VISIBLE", "yes")
        .serve();
    let (status, text) = body(http().get(format!("{}/env", server.url)).call().unwrap());
    assert_eq!(status, 200);
    assert!(text.lines().any(|l| l == "VISIBLE=yes"), "{text}");
    assert!(!text.contains("hunter"), "{text}");
    assert!(!text.contains("KILN_"), "{text}");
}

#[test]
fn bad_serve_limits_are_usage_errors() {
    let env = Env::new();
    let wasm = http_guest(&env);
    for (flag, value) in [
        ("--max-connections", "0"),
        ("--max-connections", "1000000"),
        ("--header-timeout", "0s"),
        ("--max-wasm-stack", "1TiB"),
    ] {
        let out = env
            .kiln(&["serve", wasm.to_str().unwrap(), flag, value])
            .run()
            .code(2);
        assert!(
            out.stderr.contains(&format!("for '{flag} ")),
            "{flag} {value}: {}",
            out.stderr
        );
    }
}

#[cfg(unix)]
#[test]
fn accept_errors_back_off_and_the_server_recovers() {
    use std::io::{Read, Write};
    let env = Env::new();
    let wasm = http_guest(&env);
    // kiln with few file descriptors, so that accepting runs out of them.
    let server = env
        .program(
            std::path::Path::new("/bin/sh"),
            &[
                "-c",
                "ulimit -n 64 && exec \"$0\" serve \"$1\" --addr 127.0.0.1:0",
                env!("CARGO_BIN_EXE_kiln"),
                wasm.to_str().unwrap(),
            ],
        )
        .env("KILN_CACHE_DIR", env.cache_dir())
        .env("NO_COLOR", "1")
        .serve();
    let addr = server.url.trim_start_matches("http://").to_string();
    // More connections than descriptors, each with a request; kept alive, they hold the
    // descriptors of those kiln accepted, so accepting the rest fails for a while.
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&addr).unwrap();
            stream
                .write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    // Each is answered in turn as earlier ones close: the server recovers from the errors.
    // (A request may get a 500 while descriptors are short: instantiating its guest can need
    // one too. Either way it gets an answer.)
    for (i, mut stream) in clients.into_iter().enumerate() {
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let mut response = Vec::new();
        let mut chunk = [0u8; 1024];
        // A chunked response ends with its empty last chunk; a 500 is followed by a close.
        while !response.ends_with(b"\r\n0\r\n\r\n") {
            let n = stream.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            response.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&response);
        let answered = (text.starts_with("HTTP/1.1 200 OK")
            && text.contains("\r\nMethod::Get /hello\r\n"))
            || (text.starts_with("HTTP/1.1 500 Internal Server Error")
                && text.ends_with("\r\n\r\n500 Internal Server Error\n"));
        assert!(answered, "{i}: {text}");
    }
    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("cannot accept a connection: Too many open files"),
        "{stderr}"
    );
    assert!(stderr.contains("retrying in 10 ms"), "{stderr}");
}
