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
fn a_trapping_request_gets_500_and_the_next_one_succeeds() {
    let env = Env::new();
    let server = serve_http_guest(&env, &["--timeout", "1s", "--max-memory", "32MiB"]);
    let agent = http();
    let get = |path: &str| body(agent.get(format!("{}{path}", server.url)).call().unwrap());

    let (status, text) = get("/trap");
    assert_eq!(status, 500);
    assert!(text.contains("the guest trapped"), "{text}");
    assert_eq!(get("/hello"), (200, "Method::Get /hello".to_string()));

    // Limits apply per request, and each failure leaves the server serving.
    let (status, text) = get("/spin");
    assert_eq!(status, 500);
    assert!(text.contains("time limit of 1s"), "{text}");
    let (status, text) = get("/alloc?mib=64");
    assert_eq!(status, 500);
    assert!(text.contains("over its limit"), "{text}");
    assert_eq!(get("/alloc?mib=8"), (200, "allocated".to_string()));

    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("GET /trap -> 500"), "{stderr}");
    assert!(
        stderr.contains("the handler gave up"),
        "the guest's panic message: {stderr}"
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
