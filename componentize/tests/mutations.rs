//! Seeded mutations of real components through every pass `kiln inspect`, `kiln run`'s
//! checks and `kiln build` apply: whatever the bytes, each pass returns (an error or a
//! result) and never panics; a refusal is one line.
//!
//! The seeds are components made by the real tools: wit-component with the preview1 adapter
//! (`componentize`), the vfs guest built by rustc (`vfs_component`), and the two composed by
//! wac-graph with an archive of bundled files (`bundle`); plus a core module and a WIT
//! package. Mutants come from `wasm-mutate` (structure-aware, on the core modules inside a
//! component, spliced back in) and from a seeded byte-level mutator that knows section
//! boundaries and LEB128 lengths. Everything is deterministic: the same seeds give the same
//! mutants on every run.

use std::sync::OnceLock;

use kiln_componentize as kc;

const VFS_MODULE: &[u8] = include_bytes!("../../vfs/kiln_vfs.wasm");

const COMMAND: &str = r#"
    (module
      (import "wasi_snapshot_preview1" "fd_write"
        (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "hello\n")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 6))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#;

/// SplitMix64: small, seedable, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The seeds: (name, bytes).
fn seeds() -> &'static [(&'static str, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let core = wat::parse_str(COMMAND).unwrap();
        let command = kc::componentize(&core, None).unwrap().bytes;
        let mut archive = kiln_vfs_archive::ArchiveBuilder::new();
        archive.mount("/assets").unwrap();
        archive
            .add_file("/assets", "index.html", b"<h1>hi</h1>".to_vec())
            .unwrap();
        archive
            .add_file("/assets", "css/site.css", b"body {}".to_vec())
            .unwrap();
        let archive = archive.build().unwrap();
        let versions = kc::wasi_versions(
            kc::describe(&command)
                .unwrap()
                .imports
                .iter()
                .map(String::as_str),
        );
        let vfs = kc::vfs_component(VFS_MODULE, &archive, &versions).unwrap();
        let bundled = kc::bundle(&command, VFS_MODULE, &archive).unwrap();
        let mut resolve = wit_parser::Resolve::default();
        let package = resolve
            .push_str("p.wit", "package a:b;\ninterface i { f: func(); }\n")
            .unwrap();
        let wit_package = wit_component::encode(&resolve, package).unwrap();
        vec![
            ("core module", core),
            ("command", command),
            ("vfs", vfs),
            ("bundled", bundled),
            ("wit package", wit_package),
        ]
    })
}

/// The top-level sections of a module or component: (id, start of the section header, start
/// of its payload, end). Stops at the first section that does not fit.
fn sections(bytes: &[u8]) -> Vec<(u8, usize, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        let (mut size, mut shift, mut p) = (0usize, 0, at + 1);
        loop {
            let Some(&b) = bytes.get(p) else { return out };
            p += 1;
            size |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 || shift > 28 {
                break;
            }
        }
        let Some(end) = p.checked_add(size).filter(|e| *e <= bytes.len()) else {
            return out;
        };
        out.push((id, at, p, end));
        at = end;
    }
    out
}

fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// One byte-level mutation of `bytes`.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        bytes.push(rng.next() as u8);
        return;
    }
    let at = rng.below(bytes.len());
    match rng.below(9) {
        0 => bytes[at] ^= 1 << rng.below(8),
        1 => bytes[at] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x40, 0x0d][rng.below(7)],
        2 => {
            // Truncate at a section boundary, or inside a section.
            let s = sections(bytes);
            let cut = match s.get(rng.below(s.len() + 1)) {
                Some(&(_, start, payload, end)) => [start, payload, end - 1][rng.below(3)],
                None => at,
            };
            bytes.truncate(cut);
        }
        3 => {
            let end = (at + 1 + rng.below(16)).min(bytes.len());
            bytes.drain(at..end);
        }
        4 => {
            let n = 1 + rng.below(8);
            let insert: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, insert);
        }
        5 => {
            // An oversized LEB128 length where a section's size is.
            let s = sections(bytes);
            if let Some(&(_, start, payload, _)) = s.get(rng.below(s.len().max(1))) {
                const HUGE: [&[u8]; 2] = [
                    &[0xff, 0xff, 0xff, 0xff, 0x0f],
                    &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
                ];
                let huge = HUGE[rng.below(2)];
                bytes.splice(start + 1..payload, huge.iter().copied());
            }
        }
        6 => {
            let end = (at + 1 + rng.below(64)).min(bytes.len());
            let chunk = bytes[at..end].to_vec();
            let to = rng.below(bytes.len());
            bytes.splice(to..to, chunk);
        }
        7 => {
            // Module and component headers swapped.
            if bytes.len() >= 8 {
                let header: &[u8] = if bytes[4] == 1 {
                    &[0x0d, 0, 1, 0]
                } else {
                    &[1, 0, 0, 0]
                };
                bytes[4..8].copy_from_slice(header);
            }
        }
        _ => {
            // A section's id replaced.
            let s = sections(bytes);
            if let Some(&(_, start, ..)) = s.get(rng.below(s.len().max(1))) {
                bytes[start] = rng.below(20) as u8;
            }
        }
    }
}

/// A wasm-mutate mutation of one top-level core module of `bytes` (the whole of it for a
/// core module), spliced back in; `None` when wasm-mutate has nothing to offer.
fn mutate_module(seed: u64, bytes: &[u8]) -> Option<Vec<u8>> {
    let is_module = wasmparser::Parser::is_core_wasm(bytes);
    let modules: Vec<_> = if is_module {
        vec![(0, 0, 0, bytes.len())]
    } else {
        sections(bytes).into_iter().filter(|s| s.0 == 1).collect()
    };
    if modules.is_empty() {
        return None;
    }
    let (_, start, payload, end) = modules[(seed as usize) % modules.len()];
    let module = &bytes[payload..end];
    let mut mutate = wasm_mutate::WasmMutate::default();
    mutate.seed(seed).fuel(1_000).preserve_semantics(false);
    let mutated = mutate.run(module).ok()?.find_map(Result::ok)?;
    if is_module {
        return Some(mutated);
    }
    let mut out = bytes[..start].to_vec();
    out.push(1);
    leb(mutated.len(), &mut out);
    out.extend_from_slice(&mutated);
    out.extend_from_slice(&bytes[end..]);
    Some(out)
}

/// Runs every pass on `bytes`; a panic fails the test, and an error must be one line.
fn exercise(bytes: &[u8]) {
    fn one_line<T>(what: &str, result: Result<T, kc::Error>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                let message = e.to_string();
                assert!(
                    !message.is_empty() && !message.contains('\n'),
                    "{what}: {message:?}"
                );
                None
            }
        }
    }
    let _ = kc::detect(bytes);
    let valid = one_line("validate", kc::validate(bytes));
    one_line("describe", kc::describe(bytes));
    one_line("inspect", kc::inspect(bytes));
    one_line("wit", kc::wit(bytes).map(|_| ()));
    if let Some(stripped) = one_line("strip", kc::strip(bytes, &kc::StripOptions::default())) {
        assert_eq!(
            kc::validate(&stripped).ok(),
            valid,
            "strip changed validity"
        );
    }
    let metadata = kc::Metadata {
        name: Some("mutant".into()),
        processed_by: vec![("kiln".into(), "0".into())],
        ..kc::Metadata::default()
    };
    one_line("add_metadata", kc::add_metadata(bytes, &metadata));
    if let Some(Some(archive)) = one_line("find_archive", kc::find_archive(bytes))
        && let Ok(archive) = kiln_vfs_archive::Archive::parse(&archive)
    {
        assert!(archive.walk().count() <= archive.node_count());
    }
}

/// The mutants of one seed: a chain of 1–3 byte-level mutations, or a wasm-mutate one
/// followed sometimes by a byte-level one.
fn mutants(index: usize, seed: &[u8], count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x6b69_6c6e ^ (index as u64) << 32);
    (0..count)
        .map(|i| {
            let mut bytes = if i % 4 == 0 {
                mutate_module(rng.next(), seed).unwrap_or_else(|| seed.to_vec())
            } else {
                seed.to_vec()
            };
            for _ in 0..1 + rng.below(3) {
                mutate_bytes(&mut rng, &mut bytes);
            }
            bytes
        })
        .collect()
}

#[test]
fn seeds_are_what_they_claim() {
    for (name, bytes) in seeds() {
        kc::validate(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        exercise(bytes);
    }
    let bundled = &seeds()[3].1;
    assert!(kc::find_archive(bundled).unwrap().is_some());
}

#[test]
fn mutated_components_never_panic() {
    // About 7,000 mutants, fewer of the large seeds (each pass is linear in the size, and
    // the dev profile compiles this crate without optimization): seconds in all.
    std::thread::scope(|scope| {
        for (index, (name, seed)) in seeds().iter().enumerate() {
            let per_seed = (100_000_000 / seed.len().max(1)).clamp(300, 2000);
            scope.spawn(move || {
                for (i, mutant) in mutants(index, seed, per_seed).iter().enumerate() {
                    let outcome = std::panic::catch_unwind(|| exercise(mutant));
                    if let Err(panic) = outcome {
                        let dir = std::env::temp_dir().join("kiln-mutants");
                        let _ = std::fs::create_dir_all(&dir);
                        let path = dir.join(format!("{}-{i}.wasm", name.replace(' ', "-")));
                        let _ = std::fs::write(&path, mutant);
                        std::panic::resume_unwind(Box::new(format!(
                            "{name} mutant {i} (saved to {}): {:?}",
                            path.display(),
                            panic
                                .downcast_ref::<String>()
                                .map(String::as_str)
                                .or(panic.downcast_ref::<&str>().copied())
                        )));
                    }
                }
            });
        }
    });
}

#[test]
fn mutated_components_through_wasm_opt() {
    // binaryen is slow in a dev build: a few valid mutants of the small seeds.
    let options = kc::OptimizeOptions {
        level: kc::OptLevel::Size,
        debug_info: false,
    };
    let mut optimized = 0;
    for (index, (_, seed)) in seeds().iter().enumerate().take(2) {
        for mutant in mutants(index, seed, 40) {
            if let Ok(kind) = kc::validate(&mutant) {
                if let Ok(out) = kc::optimize(&mutant, &options) {
                    assert_eq!(kc::validate(&out.bytes).ok(), Some(kind));
                }
                optimized += 1;
            }
        }
    }
    assert!(optimized > 0, "no valid mutant to optimize");
}

/// Writes the seeds into the fuzz corpora (`cargo test -p kiln-componentize --test mutations
/// -- --ignored write_fuzz_seeds`), so the committed seeds are these components.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_fuzz_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for target in ["component", "component_optimize"] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        // Small seeds only: the vfs and the composed component stay in this test.
        for (name, bytes) in seeds().iter().filter(|(_, b)| b.len() < 40_000) {
            std::fs::write(
                dir.join(format!("seed-{}.wasm", name.replace(' ', "-"))),
                bytes,
            )
            .unwrap();
        }
    }
    let archive = root.join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let bundled = &seeds()[3].1;
    let bytes = kc::find_archive(bundled).unwrap().unwrap();
    std::fs::write(archive.join("seed-assets.bin"), bytes).unwrap();
}
