//! `--watch`: `kiln serve --watch` picks up an edit without a restart, on the connection that
//! was already open, and a failed build keeps the last good component serving.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{Env, http};

/// GETs `url` until the body is `want` or `within` passes; the last body (or error) seen.
fn wait_for_body(url: &str, want: &str, within: Duration) -> Result<(), String> {
    let agent = http();
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        match agent.get(url).call() {
            Ok(mut response) => {
                last = response.body_mut().read_to_string().unwrap_or_default();
                if last == want {
                    return Ok(());
                }
            }
            Err(error) => last = error.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(last)
}

/// One `GET /` on an open keep-alive connection; the response body.
fn get_on(conn: &mut BufReader<TcpStream>) -> String {
    conn.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

#[cfg(unix)]
#[test]
fn serve_watch_swaps_in_an_edit_and_keeps_the_last_good_build() {
    let env = Env::new();
    let project = env.new_project("watched", &["--template", "rust-http"]);
    let served = env
        .kiln(&[
            "serve",
            "--watch",
            "--addr",
            "127.0.0.1:0",
            // The kept connection sits idle through a rebuild.
            "--header-timeout",
            "10m",
        ])
        .cwd(&project)
        .serve();
    let url = served.url.clone();
    wait_for_body(&url, "Hello from watched!\n", Duration::from_secs(10)).unwrap();
    // A connection opened before the edit, kept alive across it.
    let addr = url.trim_start_matches("http://");
    let mut kept = BufReader::new(TcpStream::connect(addr).unwrap());
    assert_eq!(get_on(&mut kept), "Hello from watched!\n");

    let lib = project.join("src/lib.rs");
    let source = fs_err::read_to_string(&lib).unwrap();
    fs_err::write(&lib, source.replace("Hello from", "Edited:")).unwrap();
    if let Err(last) = wait_for_body(&url, "Edited: watched!\n", Duration::from_secs(120)) {
        let (_, stderr) = served.interrupt();
        panic!("the edit was not served (last: {last})\n{stderr}");
    }
    // The same connection: the listener and the connection stayed, the component changed.
    assert_eq!(get_on(&mut kept), "Edited: watched!\n");

    // A change that does not compile: the last good build keeps answering.
    fs_err::write(&lib, source.replace("Hello from", "Broken\"")).unwrap();
    std::thread::sleep(Duration::from_secs(15));
    wait_for_body(&url, "Edited: watched!\n", Duration::from_secs(2)).unwrap();

    drop(kept);
    let (code, stderr) = served.interrupt();
    // One server all along: Ctrl-C drains it as without --watch.
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Changed src/lib.rs"), "{stderr}");
    assert!(stderr.contains("Replaced now serving the new"), "{stderr}");
    assert!(stderr.contains("error: "), "{stderr}");
    assert!(
        stderr.contains("still serving the last good build"),
        "{stderr}"
    );
}
