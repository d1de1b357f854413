//! A command-line WebAssembly component, scaffolded by `kiln new`.
//!
//! ```text
//! kiln run -- world                            Hello, world!
//! kiln run --env GREETING=Howdy -- partner     Howdy, partner!
//! echo "some text" | kiln run -- --count       counts lines, words and bytes of stdin
//! kiln run --dir . -- --count Cargo.toml       counts a file (its directory must be granted)
//! ```

use std::io::{self, Read};
use std::process::ExitCode;

const USAGE: &str = "\
usage: NAME...             print a greeting ($GREETING, default \"Hello\")
       --count [FILE...]   count lines, words and bytes of FILEs, or of stdin
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--help" | "-h") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("--count") => count(&args[1..]),
        Some(flag) if flag.starts_with('-') => {
            eprint!("error: unknown option `{flag}`\n{USAGE}");
            ExitCode::from(2)
        }
        _ => {
            let greeting = std::env::var("GREETING").unwrap_or_else(|_| "Hello".to_string());
            let name = if args.is_empty() { "world".to_string() } else { args.join(" ") };
            println!("{greeting}, {name}!");
            ExitCode::SUCCESS
        }
    }
}

/// Prints `lines words bytes [name]`, like `wc`.
fn count(files: &[String]) -> ExitCode {
    if files.is_empty() {
        let mut input = Vec::new();
        if let Err(err) = io::stdin().read_to_end(&mut input) {
            eprintln!("error: reading stdin: {err}");
            return ExitCode::FAILURE;
        }
        println!("{}", counts(&input));
        return ExitCode::SUCCESS;
    }
    let mut status = ExitCode::SUCCESS;
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => println!("{} {file}", counts(&bytes)),
            Err(err) => {
                eprintln!("error: {file}: {err}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}

fn counts(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    format!("{lines:>7} {:>7} {:>7}", text.split_whitespace().count(), bytes.len())
}
