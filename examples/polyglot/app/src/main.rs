//! Text statistics of its arguments (joined by spaces): counted by the C component,
//! formatted by the Go component, both reached through WIT imports that `kiln build` plugs.

wit_bindgen::generate!({ world: "app", path: "wit", generate_all });

use kiln_examples::text::format::{self, Row};
use kiln_examples::text::stats;

fn main() {
    let text = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let counts = stats::count(&text);
    println!("{}", format::title("Text statistics"));
    let rows = [
        ("lines", counts.lines),
        ("words", counts.words),
        ("bytes", counts.bytes),
    ]
    .map(|(label, value)| Row {
        label: label.to_string(),
        value,
    });
    print!("{}", format::table(&rows));
    println!("longest: {}", stats::longest(&text, 3).join(", "));
}
