//! `--watch`: `kiln serve --watch` picks up an edit without a restart by hand, and a failed
//! build keeps the last good component serving.

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
            // Between two servers the address refuses connections for a moment.
            Err(error) => last = error.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(last)
}

#[cfg(unix)]
#[test]
fn serve_watch_swaps_in_an_edit_and_keeps_the_last_good_build() {
    let env = Env::new();
    let project = env.new_project("watched", &["--template", "rust-http"]);
    let served = env
        .kiln(&["serve", "--watch", "--addr", "127.0.0.1:0"])
        .cwd(&project)
        .serve();
    let url = served.url.clone();
    wait_for_body(&url, "Hello from watched!\n", Duration::from_secs(10)).unwrap();

    let lib = project.join("src/lib.rs");
    let source = fs_err::read_to_string(&lib).unwrap();
    fs_err::write(&lib, source.replace("Hello from", "Edited:")).unwrap();
    if let Err(last) = wait_for_body(&url, "Edited: watched!\n", Duration::from_secs(120)) {
        let (_, stderr) = served.interrupt();
        panic!("the edit was not served (last: {last})\n{stderr}");
    }

    // A change that does not compile: the last good build keeps answering.
    fs_err::write(&lib, source.replace("Hello from", "Broken\"")).unwrap();
    std::thread::sleep(Duration::from_secs(15));
    wait_for_body(&url, "Edited: watched!\n", Duration::from_secs(2)).unwrap();

    let (code, stderr) = served.interrupt();
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("Changed src/lib.rs"), "{stderr}");
    assert!(
        stderr.contains("the build failed; still serving the last good build"),
        "{stderr}"
    );
}
