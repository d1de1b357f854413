//! A WASI 0.3 command (`wasi:cli/command@0.3`), scaffolded by `kiln new --template rust-cli-p3`.
//!
//! Its `run` export is an `async` function: the host calls it once, and it may await WASI's
//! native streams, futures and timers while it runs.
//!
//! ```text
//! kiln run -- world                           Hello, world!
//! kiln run --env GREETING=Howdy -- partner    Howdy, partner!
//! echo "some words" | kiln run -- --count     counts lines, words and bytes of stdin
//! kiln run -- --sleep 100                     waits 100 ms on the monotonic clock, then says so
//! ```

use wasip3::cli::{environment, stderr, stdin, stdout};
use wasip3::clocks::monotonic_clock;

struct Command;

wasip3::cli::command::export!(Command);

impl wasip3::exports::cli::run::Guest for Command {
    async fn run() -> Result<(), ()> {
        let args: Vec<String> = environment::get_arguments().into_iter().skip(1).collect();
        match args.first().map(String::as_str) {
            Some("--count") => {
                let input = read_stdin().await;
                let lines = input.iter().filter(|&&b| b == b'\n').count();
                let words = input
                    .split(|b| b.is_ascii_whitespace())
                    .filter(|w| !w.is_empty())
                    .count();
                print(format!("{lines:>7} {words:>7} {:>7}\n", input.len())).await;
                Ok(())
            }
            Some("--sleep") => {
                let Some(ms) = args.get(1).and_then(|ms| ms.parse::<u64>().ok()) else {
                    eprint("error: --sleep needs a number of milliseconds\n").await;
                    return Err(());
                };
                monotonic_clock::wait_for(ms * 1_000_000).await;
                print(format!("slept {ms} ms\n")).await;
                Ok(())
            }
            Some(flag) if flag.starts_with('-') => {
                eprint(&format!("error: unknown option `{flag}`\n")).await;
                Err(())
            }
            _ => {
                let greeting = environment::get_environment()
                    .into_iter()
                    .find(|(key, _)| key == "GREETING")
                    .map_or_else(|| "Hello".to_string(), |(_, value)| value);
                let name = if args.is_empty() {
                    "world".to_string()
                } else {
                    args.join(" ")
                };
                print(format!("{greeting}, {name}!\n")).await;
                Ok(())
            }
        }
    }
}

/// Writes `text` to stdout through a WASI 0.3 stream: the host takes the stream's readable
/// end at once, so writing and the host's reading run together.
async fn print(text: String) {
    write_to(stdout::write_via_stream, text.into_bytes()).await;
}

/// Writes `text` to stderr.
async fn eprint(text: &str) {
    write_to(stderr::write_via_stream, text.as_bytes().to_vec()).await;
}

async fn write_to<E: 'static>(
    sink: impl FnOnce(
        wasip3::wit_bindgen::StreamReader<u8>,
    ) -> wasip3::wit_bindgen::FutureReader<Result<(), E>>,
    bytes: Vec<u8>,
) {
    let (mut tx, rx) = wasip3::wit_stream::new();
    let done = sink(rx);
    tx.write_all(bytes).await;
    drop(tx);
    let _ = done.await;
}

/// Reads all of stdin.
async fn read_stdin() -> Vec<u8> {
    let (rx, _done) = stdin::read_via_stream();
    rx.collect().await
}
