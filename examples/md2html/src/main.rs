//! md2html: Markdown to HTML with pulldown-cmark, as a WebAssembly component.
//!
//! ```text
//! md2html < in.md > out.html      convert stdin to stdout
//! md2html FILE.md                 convert one file to stdout
//! md2html IN_DIR OUT_DIR          convert every *.md in IN_DIR to OUT_DIR/*.html
//! ```
//!
//! Run it with kiln, granting the directories it reads and writes:
//!
//! ```text
//! kiln run examples/md2html --dir docs::/docs --dir out::/out -- /docs /out
//! ```

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [] => convert_stdin(),
        [file] => fs::read_to_string(file)
            .map_err(|e| format!("{file}: {e}"))
            .map(|text| print!("{}", document(&text).html)),
        [input, output] => convert_dir(Path::new(input), Path::new(output)),
        _ => Err("usage: md2html [FILE.md | IN_DIR OUT_DIR]".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("md2html: {message}");
            ExitCode::FAILURE
        }
    }
}

fn convert_stdin() -> Result<(), String> {
    let mut text = String::new();
    io::stdin().read_to_string(&mut text).map_err(|e| format!("stdin: {e}"))?;
    io::stdout().write_all(document(&text).html.as_bytes()).map_err(|e| format!("stdout: {e}"))
}

fn convert_dir(input: &Path, output: &Path) -> Result<(), String> {
    let mut sources: Vec<PathBuf> = fs::read_dir(input)
        .map_err(|e| format!("{}: {e}", input.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    sources.sort();
    fs::create_dir_all(output).map_err(|e| format!("{}: {e}", output.display()))?;
    let (mut headings, mut links) = (0, 0);
    for source in &sources {
        let text = fs::read_to_string(source).map_err(|e| format!("{}: {e}", source.display()))?;
        let doc = document(&text);
        let stem = source.file_stem().unwrap_or_default().to_string_lossy();
        let target = output.join(format!("{stem}.html"));
        fs::write(&target, &doc.html).map_err(|e| format!("{}: {e}", target.display()))?;
        println!(
            "{} -> {}: \"{}\", {} headings, {} links",
            source.display(),
            target.display(),
            doc.title,
            doc.headings,
            doc.links
        );
        headings += doc.headings;
        links += doc.links;
    }
    println!("converted {} files: {headings} headings, {links} links", sources.len());
    Ok(())
}

struct Document {
    html: String,
    title: String,
    headings: usize,
    links: usize,
}

/// Converts Markdown (CommonMark plus tables, footnotes, strikethrough and task lists) to a
/// complete HTML page titled after its first level-1 heading.
fn document(markdown: &str) -> Document {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS;
    let events: Vec<Event> = Parser::new_ext(markdown, options).collect();

    let (mut title, mut in_title, mut headings, mut links) = (String::new(), false, 0, 0);
    for event in &events {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                headings += 1;
                in_title = *level == HeadingLevel::H1 && title.is_empty();
            }
            Event::End(TagEnd::Heading(_)) => in_title = false,
            Event::Start(Tag::Link { .. }) => links += 1,
            Event::Text(text) | Event::Code(text) if in_title => title.push_str(text),
            _ => {}
        }
    }
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, events.into_iter());
    let escaped = title.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let html = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{escaped}</title>\n</head>\n<body>\n{body}</body>\n</html>\n"
    );
    Document { html, title, headings, links }
}
