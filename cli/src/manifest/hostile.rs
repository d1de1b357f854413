//! Seeded mutations of real manifests through [`Manifest::parse`]: whatever the text, the
//! parser returns, and every refusal is one line naming `Kiln.toml:LINE:COL`.
//!
//! The seeds are the manifests kiln ships or documents: the templates' (rendered), the
//! example's, the test fixtures', and every TOML block of docs/manifest.md. Mutations are
//! deterministic (SplitMix64 from fixed seeds), so a failure reproduces.

use std::path::Path;

use super::Manifest;

const SOURCES: &[&str] = &[
    include_str!("../../../templates/rust-cli/content/Kiln.toml.tmpl"),
    include_str!("../../../templates/rust-http/content/Kiln.toml.tmpl"),
    include_str!("../../../templates/rust-lib/content/Kiln.toml.tmpl"),
    include_str!("../../../templates/c-cli/content/Kiln.toml.tmpl"),
    include_str!("../../../templates/go-cli/content/Kiln.toml.tmpl"),
    include_str!("../../../templates/tinygo-cli/content/Kiln.toml.tmpl"),
    include_str!("../../../examples/md2html/Kiln.toml"),
    include_str!("../../../tests/fixtures/reader-c/Kiln.toml"),
    include_str!("../../../tests/fixtures/c-multi/Kiln.toml"),
    include_str!("../../../tests/fixtures/go-lib/Kiln.toml"),
];

/// The seed manifests: the sources above with template placeholders filled, and the TOML
/// blocks of docs/manifest.md.
fn seeds() -> Vec<String> {
    let docs = include_str!("../../../docs/manifest.md");
    let mut seeds: Vec<String> = SOURCES
        .iter()
        .map(|s| s.replace("{{ name }}", "hello"))
        .collect();
    for block in docs.split("```toml\n").skip(1) {
        if let Some((toml, _)) = block.split_once("```") {
            seeds.push(toml.to_string());
        }
    }
    seeds
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const PIECES: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    ".",
    ",",
    "#",
    "\n",
    "{",
    "}",
    "\\",
    "\\u{0}",
    "\t",
    "\r",
    "é",
    "\u{202e}",
    "\u{0}",
    "0",
    "-1",
    "99999999999999999999",
    "1e400",
    "nan",
    "inf",
    "true",
    "x = 1\n",
    "[package]\n",
    "[[bundle]]\n",
    "[run]\n",
    "name",
    "version",
    "language",
    "mount",
    "source",
    "\"../x\"",
    "\"/\"",
    "\"\"",
];

const VALUES: &[&str] = &[
    "\"\"",
    "\"../..\"",
    "\"/\"",
    "\"/a/../b\"",
    "\"C:\\\\x\"",
    "\"\\u0000\"",
    "\"\\u202e\"",
    "-1",
    "0",
    "18446744073709551616",
    "1e400",
    "nan",
    "true",
    "[]",
    "{}",
    "[[1]]",
    "\"99999999999999999999TiB\"",
    "\"1s1s\"",
    "\"π\"",
];

/// One mutation of `text`.
fn mutate(rng: &mut Rng, text: &mut String) {
    let chars: Vec<char> = text.chars().collect();
    let at = rng.below(chars.len() + 1);
    let byte = |i: usize| chars[..i].iter().map(|c| c.len_utf8()).sum::<usize>();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match rng.below(8) {
        0 if at < chars.len() => {
            let (start, end) = (byte(at), byte(at + 1));
            text.replace_range(start..end, "");
        }
        1 => {
            let piece = rng.pick(PIECES);
            text.insert_str(byte(at), piece);
        }
        2 if !lines.is_empty() => {
            let i = rng.below(lines.len());
            let line = lines[i].clone();
            lines.insert(rng.below(lines.len() + 1), line);
            *text = lines.join("\n");
        }
        3 if !lines.is_empty() => {
            lines.remove(rng.below(lines.len()));
            *text = lines.join("\n");
        }
        4 if lines.len() > 1 => {
            let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
            lines.swap(a, b);
            *text = lines.join("\n");
        }
        5 => text.truncate(byte(at)),
        6 if !lines.is_empty() => {
            // A key's value replaced with something hostile.
            let i = rng.below(lines.len());
            if let Some((key, _)) = lines[i].split_once('=') {
                lines[i] = format!("{key}= {}", rng.pick(VALUES));
                *text = lines.join("\n");
            }
        }
        _ => {
            // A long run of one piece: deep nesting, long strings.
            let piece = rng.pick(&["[", "{ a = ", "a.", "\"", "x"]);
            text.insert_str(byte(at), &piece.repeat(1 + rng.below(2000)));
        }
    }
}

/// Parses `text`; a refusal must name `Kiln.toml:LINE:COL` and be one line.
fn check(text: &str) -> Result<(), String> {
    match Manifest::parse(text, Path::new("Kiln.toml")) {
        Ok(manifest) => {
            let _ = manifest.name();
            Ok(())
        }
        Err(e) => {
            let message = e.to_string();
            let mut parts = message.splitn(4, ':');
            let (file, line, col) = (parts.next(), parts.next(), parts.next());
            let located = file == Some("Kiln.toml")
                && line.is_some_and(|l| l.parse::<usize>().is_ok())
                && col.is_some_and(|c| c.parse::<usize>().is_ok());
            if !located || message.contains('\n') {
                return Err(message);
            }
            Ok(())
        }
    }
}

#[test]
fn the_seeds_parse() {
    for seed in seeds() {
        Manifest::parse(&seed, Path::new("Kiln.toml"))
            .unwrap_or_else(|e| panic!("{e}\n--- seed ---\n{seed}"));
    }
}

#[test]
fn mutated_manifests_never_panic_and_refusals_are_located() {
    let seeds = seeds();
    let mut refused = 0;
    for (index, seed) in seeds.iter().enumerate() {
        let mut rng = Rng(0x4b69_6c6e_2e74_6f6d ^ index as u64);
        for i in 0..400 {
            let mut text = seed.clone();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut text);
            }
            let outcome = std::panic::catch_unwind(|| check(&text));
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(message)) => {
                    panic!(
                        "seed {index} mutant {i}: refusal not located on one line: {message:?}\n--- text ---\n{text}"
                    )
                }
                Err(_) => panic!("seed {index} mutant {i} panicked\n--- text ---\n{text}"),
            }
            refused += usize::from(Manifest::parse(&text, Path::new("Kiln.toml")).is_err());
        }
    }
    assert!(refused > 0);
}
