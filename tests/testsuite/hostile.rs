//! Hostile input, table-driven: hundreds of malformed WebAssembly files through `kiln
//! inspect`, `kiln run`, `kiln publish --wasm` and `kiln build --exe`, and bad Kiln.toml
//! files through `kiln build`. Each must be refused with exit 1 (2 for usage errors), one
//! `error:` line naming the file (`file:line:col` for manifests), no panic, and nothing
//! written. Plus a sample of seeded mutations of real components through the binary.
//!
//! `kiln build --exe` takes no prebuilt component; the way in is the toolchain kiln runs: a
//! stand-in `tinygo` (through `TINYGO`, as documented) that "compiles" by copying the hostile
//! file to where kiln reads its output.
//!
//! The cases run on a few threads at once; none needs the guest to start, so the whole
//! module takes seconds rather than minutes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{Env, Output, files_under};

/// Maps `f` over `items` on a few threads, in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 6);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        out.push((i, f(i, item)));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker does not panic"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Checks what a user sees of a refusal: the exit code, no panic, exactly one `error:` line,
/// and `names` (the file) somewhere in the error. Returns a description of what is wrong.
fn refusal_problem(out: &Output, code: i32, names: &str) -> Option<String> {
    let errors = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .count();
    let problem = if out.stderr.contains("panicked") || out.code == 101 {
        "a panic"
    } else if out.code != code {
        "the wrong exit code"
    } else if errors != 1 {
        "not exactly one `error:` line"
    } else if !out.stderr.contains(names) {
        "an error that does not name the file"
    } else {
        return None;
    };
    Some(format!(
        "{problem} (exit {}, expected {code}, naming `{names}`):\n{}",
        out.code, out.stderr
    ))
}

// ---------------------------------------------------------------------------------------
// Malformed WebAssembly.

/// A command component with a core module, a core instance, a lifted function and an
/// exported instance: many sections to cut and corrupt.
const COMPONENT: &str = r#"
    (component
      (core module $m
        (memory (export "memory") 1)
        (global $g (mut i32) (i32.const 7))
        (data (i32.const 0) "hello")
        (func (export "run") (result i32) global.get $g drop i32.const 0))
      (core instance $i (instantiate $m))
      (func $run (result (result)) (canon lift (core func $i "run")))
      (instance $inst (export "run" (func $run)))
      (export "wasi:cli/run@0.2.0" (instance $inst)))
"#;

/// A core module with most section kinds.
const MODULE: &str = r#"
    (module
      (type $t (func (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1 2)
      (table 2 funcref)
      (global $g i32 (i32.const 1))
      (elem (i32.const 0) $f $f)
      (data (i32.const 8) "data")
      (func $f (type $t) local.get 0 i32.const 1 i32.add)
      (func (export "_start") i32.const 0 call $exit)
      (@custom "note" "a custom section"))
"#;

/// A component holding a nested component that holds a core module.
const NESTED: &str = r#"
    (component
      (component $inner
        (core module $m (func (export "f") (result i32) i32.const 1))
        (core instance $i (instantiate $m))
        (func $f (result u32) (canon lift (core func $i "f")))
        (export "f" (func $f)))
      (instance $x (instantiate $inner))
      (export "f" (func $x "f")))
"#;

/// The top-level sections: (id, start of header, start of payload, end).
fn sections(bytes: &[u8]) -> Vec<(u8, usize, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        let (mut size, mut shift, mut p) = (0usize, 0, at + 1);
        loop {
            let b = bytes[p];
            p += 1;
            size |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        out.push((id, at, p, p + size));
        at = p + size;
    }
    out
}

fn leb(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `bytes` with section `index`'s payload replaced (its size re-encoded).
fn replace_payload(bytes: &[u8], index: usize, payload: &[u8]) -> Vec<u8> {
    let (id, start, _, end) = sections(bytes)[index];
    let mut out = bytes[..start].to_vec();
    out.push(id);
    out.extend(leb(payload.len()));
    out.extend_from_slice(payload);
    out.extend_from_slice(&bytes[end..]);
    out
}

/// A component whose single core module section holds `module` (any bytes).
fn component_with_module(module: &[u8]) -> Vec<u8> {
    let mut out = b"\0asm\x0d\0\x01\0".to_vec();
    out.push(1);
    out.extend(leb(module.len()));
    out.extend_from_slice(module);
    out
}

/// What each command must do with an input: `Some(code)` is an exact exit code (a refusal
/// when non-zero), `None` anything but a panic.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Expect {
    inspect: Option<i32>,
    run: Option<i32>,
    publish: Option<i32>,
    build: Option<i32>,
}

impl Expect {
    /// Refused by all four commands.
    const REFUSED: Expect = Expect {
        inspect: Some(1),
        run: Some(1),
        publish: Some(1),
        build: Some(1),
    };

    /// From what the bytes are: invalid input is refused everywhere; a valid core module is
    /// described but neither run, published nor accepted as a build output (kiln's drivers
    /// componentize core modules themselves, TinyGo's output must be a component); a valid
    /// component that is not a command is described and published, not run, and built into
    /// whatever it is.
    fn of(bytes: &[u8]) -> Option<Expect> {
        use kiln_componentize::WasmKind;
        match kiln_componentize::validate(bytes) {
            Err(_) => Some(Self::REFUSED),
            Ok(WasmKind::CoreModule) => Some(Expect {
                inspect: Some(0),
                ..Self::REFUSED
            }),
            Ok(_) => {
                let command =
                    kiln_componentize::describe(bytes).is_ok_and(|w| w.command_export().is_some());
                // A valid command is not hostile input: left out.
                (!command).then_some(Expect {
                    inspect: Some(0),
                    run: Some(1),
                    publish: Some(0),
                    build: None,
                })
            }
        }
    }

    fn is_malformed(&self) -> bool {
        *self == Self::REFUSED
    }
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
}

fn malformed_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // Each input's expectations follow from what it is (a cut at a section boundary may well
    // leave a valid module); the few valid commands that mutations leave are dropped.
    let mut refused = |name: String, bytes: Vec<u8>| {
        if let Some(expect) = Expect::of(&bytes) {
            cases.push(Case {
                name,
                bytes,
                expect,
            });
        }
    };
    let seeds = [
        ("component", wat::parse_str(COMPONENT).unwrap()),
        ("module", wat::parse_str(MODULE).unwrap()),
        ("nested", wat::parse_str(NESTED).unwrap()),
    ];
    // Bad magic, version and layer; not wasm at all.
    for (name, bytes) in [
        ("empty", b"".to_vec()),
        ("one byte", b"\0".to_vec()),
        ("magic only", b"\0asm".to_vec()),
        ("bad magic", b"\0asn\x01\0\0\0".to_vec()),
        ("version 2", b"\0asm\x02\0\0\0".to_vec()),
        ("version 0", b"\0asm\0\0\0\0".to_vec()),
        ("component version 0x0e", b"\0asm\x0e\0\x01\0".to_vec()),
        ("component layer 2", b"\0asm\x0d\0\x02\0".to_vec()),
        ("layer without version", b"\0asm\0\0\x01\0".to_vec()),
        ("all ones", vec![0xff; 64]),
        ("zeros", vec![0; 64]),
        ("text", b"(module)".to_vec()),
        ("text component", b"(component)\n".to_vec()),
        ("elf", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec()),
        ("pe", b"MZ\x90\0\x03\0\0\0".to_vec()),
        ("utf-8 bom", b"\xef\xbb\xbf\0asm\x01\0\0\0".to_vec()),
        ("gzip", b"\x1f\x8b\x08\0\0\0\0\0".to_vec()),
    ] {
        refused(name.to_string(), bytes);
    }
    for (seed, bytes) in &seeds {
        let secs = sections(bytes);
        // Truncated inside the preamble.
        for cut in 1..8 {
            refused(format!("{seed} cut at byte {cut}"), bytes[..cut].to_vec());
        }
        for (i, &(id, start, payload, end)) in secs.iter().enumerate() {
            // Truncated at every section boundary (the whole file minus its tail), after the
            // section id, after the size, and in the middle of the payload.
            refused(
                format!("{seed} cut before section {i}"),
                bytes[..start].to_vec(),
            );
            refused(
                format!("{seed} cut after section {i}'s id"),
                bytes[..start + 1].to_vec(),
            );
            if end > payload {
                refused(
                    format!("{seed} cut after section {i}'s size"),
                    bytes[..payload].to_vec(),
                );
                let mid = payload + (end - payload) / 2;
                if mid > payload {
                    refused(
                        format!("{seed} cut inside section {i}"),
                        bytes[..mid].to_vec(),
                    );
                }
            }
            // Oversized and overlong LEB128 sizes.
            for (what, size) in [
                ("a 4 GiB size", vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
                ("an overlong size", vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
                ("a size one too large", leb(end - payload + 1)),
            ] {
                let mut out = bytes[..start + 1].to_vec();
                out.extend(size);
                out.extend_from_slice(&bytes[payload..]);
                refused(format!("{seed} section {i} (id {id}) with {what}"), out);
            }
            // An unknown section id.
            let mut out = bytes.clone();
            out[start] = 0x7e;
            refused(format!("{seed} section {i} with an unknown id"), out);
        }
        // Core module and component headers swapped.
        let mut swapped = bytes.clone();
        let header: &[u8] = if bytes[4] == 1 {
            b"\x0d\0\x01\0"
        } else {
            b"\x01\0\0\0"
        };
        swapped[4..8].copy_from_slice(header);
        refused(format!("{seed} with the other kind's header"), swapped);
        // Trailing garbage; a section duplicated at the end.
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"\x01\x05garb");
        refused(format!("{seed} with trailing garbage"), trailing);
        // Payloads replaced by a vector claiming u32::MAX entries.
        for (i, &(id, ..)) in secs.iter().enumerate() {
            if id != 0 {
                refused(
                    format!("{seed} section {i} claiming 2^32-1 entries"),
                    replace_payload(bytes, i, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
                );
            }
        }
    }
    // Components with bad nested modules.
    let module = wat::parse_str(MODULE).unwrap();
    let component = wat::parse_str(COMPONENT).unwrap();
    let mut bad_module = |name: &str, bytes: Vec<u8>| {
        refused(
            format!("component with {name}"),
            component_with_module(&bytes),
        )
    };
    bad_module("an empty module section", Vec::new());
    bad_module("a truncated module", module[..module.len() / 2].to_vec());
    bad_module(
        "a module with bad magic",
        [b"\0asX".as_slice(), &module[4..]].concat(),
    );
    bad_module("a component as its module", component.clone());
    bad_module(
        "a module that does not validate",
        wat::parse_str("(module (func (result i32) i32.add))").unwrap(),
    );
    bad_module(
        "a module with an out-of-range call",
        wat::parse_str("(module (func call 7))").unwrap(),
    );
    bad_module(
        "a module with two memories",
        b"\0asm\x01\0\0\0\x05\x05\x02\x00\x01\x00\x01".to_vec(),
    );
    // A component whose inner module is replaced by a corrupt one, keeping the rest.
    let secs = sections(&component);
    let module_section = secs.iter().position(|s| s.0 == 1).unwrap();
    for (name, payload) in [
        ("truncated", module[..20].to_vec()),
        (
            "unvalidated",
            wat::parse_str("(module (func (export \"run\") (result i32) f32.const 0))").unwrap(),
        ),
        ("garbage", vec![0xaa; 40]),
    ] {
        refused(
            format!("component with its module {name}"),
            replace_payload(&component, module_section, &payload),
        );
    }
    // Random garbage after valid preambles (seeded, so the same every run).
    let mut state = 0x6b69_6c6e_u64;
    for (i, header) in [b"\0asm\x01\0\0\0", b"\0asm\x0d\0\x01\0"]
        .iter()
        .cycle()
        .take(12)
        .enumerate()
    {
        let mut bytes = header.to_vec();
        for _ in 0..(16 << (i % 6)) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.push(state as u8);
        }
        refused(
            format!(
                "random bytes {i} after a {} header",
                if header[4] == 1 {
                    "module"
                } else {
                    "component"
                }
            ),
            bytes,
        );
    }
    // A WIT package with no world (43 bytes; it used to panic `kiln inspect`).
    refused(
        "a WIT package with no world".into(),
        wit_package("package a:b;\ninterface i {}\n"),
    );
    let wit = wit_package("package a:b;\ninterface i { f: func(); }\n");
    for cut in [9, wit.len() / 2, wit.len() - 1] {
        refused(
            format!("a WIT package cut at byte {cut}"),
            wit[..cut].to_vec(),
        );
    }
    // A valid component whose bundled archive claims shared children (2^20 paths if it were
    // walked): `inspect` refuses the archive; it is nothing to the others.
    cases.push(Case {
        name: "component with an archive whose directories share children".into(),
        bytes: archive_component(&shared_children_archive(20)),
        expect: Expect {
            inspect: Some(1),
            ..Expect::of(&archive_component(&[])).unwrap()
        },
    });
    cases
}

/// A WIT package encoded as a component (43 bytes for an empty interface).
fn wit_package(source: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("p.wit", source).unwrap();
    wit_component::encode(&resolve, package).unwrap()
}

/// An archive of bundled files (the kiln-vfs-archive format) in which each level's two
/// directories both claim the next level's two as children.
fn shared_children_archive(depth: u32) -> Vec<u8> {
    let mut nodes = vec![(0u32, 2u32, 1u32, 2u32)]; // (parent, kind 0, first child, count)
    for level in 0..depth {
        let first = 1 + 2 * level;
        let parent = if level == 0 { 0 } else { first - 2 };
        let (a, b) = if level + 1 < depth {
            (first + 2, 2)
        } else {
            (0, 0)
        };
        nodes.push((parent, 0, a, b));
        nodes.push((parent, 0, a, b));
    }
    let names = b"mxy/m";
    let u = |out: &mut Vec<u8>, n: usize| out.extend_from_slice(&(n as u32).to_le_bytes());
    let names_offset = 40 + nodes.len() * 24 + 12;
    let data_offset = names_offset + names.len();
    let mut out = b"KILNVFS\0".to_vec();
    for field in [
        1,
        nodes.len(),
        1,
        names_offset,
        names.len(),
        data_offset,
        data_offset,
        0,
    ] {
        u(&mut out, field);
    }
    for (i, (parent, _, a, b)) in nodes.iter().enumerate() {
        let name = if i == 0 { 0 } else { 1 + (i + 1) % 2 };
        for field in [name, 1, 0, *parent as usize, *a as usize, *b as usize] {
            u(&mut out, field);
        }
    }
    for field in [3, 2, 0] {
        u(&mut out, field);
    }
    out.extend_from_slice(names);
    out
}

/// A component with a core module whose data segment is `archive`, where `kiln inspect`
/// looks for bundled files.
fn archive_component(archive: &[u8]) -> Vec<u8> {
    let escaped: String = archive.iter().map(|b| format!("\\{b:02x}")).collect();
    wat::parse_str(format!(
        "(component (core module (memory 1) (data (i32.const 0) \"{escaped}\")))"
    ))
    .unwrap()
}

/// A stand-in for TinyGo: `version` prints one, `build … -o OUT` copies `$HOSTILE_WASM` to
/// OUT.
fn fake_tinygo(env: &Env) -> PathBuf {
    let path = env.write(
        "bin/tinygo",
        "#!/bin/sh\n\
         if [ \"$1\" = version ]; then echo 'tinygo version 0.0.0-hostile linux/amd64'; exit 0; fi\n\
         while [ $# -gt 0 ]; do\n\
           if [ \"$1\" = -o ]; then cp \"$HOSTILE_WASM\" \"$2\"; exit $?; fi\n\
           shift\n\
         done\n\
         exit 2\n",
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// Runs one case through the four commands; returns the problems found.
fn run_case(env: &Env, tinygo: &Path, i: usize, case: &Case) -> Vec<String> {
    let file = format!("inputs/{i:03}.wasm");
    let path = env.write(&file, &case.bytes);
    let mut problems = Vec::new();
    let mut check = |command: &str, out: Output, code: Option<i32>, names: &str| {
        let problem = match code {
            Some(0) if out.code != 0 || out.stderr.contains("panicked") => Some(format!(
                "exit {} where 0 was expected:\n{}",
                out.code, out.stderr
            )),
            Some(0) => None,
            Some(code) => refusal_problem(&out, code, names),
            None if out.code == 101 || out.stderr.contains("panicked") => {
                Some(format!("a panic:\n{}", out.stderr))
            }
            None => None,
        };
        if let Some(problem) = problem {
            problems.push(format!("{} through `kiln {command}`: {problem}", case.name));
        }
    };
    let expect = case.expect;
    let out = env.kiln(&["inspect", &file]).run();
    check("inspect", out, expect.inspect, &file);
    let out = env.kiln(&["run", &file]).run();
    check("run", out, expect.run, &file);
    let out = env
        .kiln(&[
            "publish",
            "127.0.0.1:9/hostile/x:1",
            "--wasm",
            &file,
            "--dry-run",
        ])
        .run();
    check("publish --wasm", out, expect.publish, &file);
    // `kiln build --exe`, the component coming from the stand-in TinyGo.
    let project = format!("projects/{i:03}");
    env.write(
        &format!("{project}/Kiln.toml"),
        "[package]\nname = \"hostile\"\nlanguage = \"tinygo\"\n",
    );
    let out = env
        .kiln(&["build", "--exe", "-q"])
        .cwd(env.path(&project))
        .env("TINYGO", tinygo)
        .env("HOSTILE_WASM", &path)
        .run();
    check(
        "build --exe",
        out,
        expect.build,
        "target/kiln/debug/tinygo/hostile/hostile.component.wasm",
    );
    if expect.build.is_some_and(|c| c != 0) {
        let written: Vec<String> = files_under(&env.path(&project).join("target/kiln/debug"))
            .into_iter()
            .filter(|f| !f.starts_with("tinygo/"))
            .collect();
        if !written.is_empty() {
            problems.push(format!(
                "{} through `kiln build --exe` wrote {written:?}",
                case.name
            ));
        }
    }
    problems
}

#[test]
fn malformed_wasm_is_refused_by_every_command() {
    let env = Env::new();
    let tinygo = fake_tinygo(&env);
    let cases = malformed_cases();
    let malformed = cases.iter().filter(|c| c.expect.is_malformed()).count();
    assert!(
        malformed >= 200,
        "{malformed} malformed inputs of {}",
        cases.len()
    );
    let problems: Vec<String> = par_map(&cases, |i, case| run_case(&env, &tinygo, i, case))
        .into_iter()
        .flatten()
        .collect();
    assert!(
        problems.is_empty(),
        "{} problems in {} cases:\n\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n\n")
    );
    // Nothing but the inputs, the projects and what the stand-in compiler wrote.
    let stray: Vec<String> = files_under(&env.root())
        .into_iter()
        .filter(|f| {
            !(f.starts_with("inputs/")
                || f.starts_with("bin/")
                || f.starts_with(".kiln-cache/")
                || f.starts_with("projects/")
                    && (f.ends_with("/Kiln.toml") || f.contains("/target/kiln/debug/tinygo/")))
        })
        .collect();
    let allowed_outputs = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.expect.build.is_none())
        .map(|(i, _)| format!("projects/{i:03}/"))
        .collect::<Vec<_>>();
    let stray: Vec<_> = stray
        .into_iter()
        .filter(|f| !allowed_outputs.iter().any(|p| f.starts_with(p)))
        .collect();
    assert!(stray.is_empty(), "files written: {stray:?}");
}

// ---------------------------------------------------------------------------------------
// Bad Kiln.toml files.

/// (what, Kiln.toml, the line the error must point at).
const BAD_MANIFESTS: &[(&str, &str, usize)] = &[
    ("unclosed table header", "[package\nname = \"a\"\n", 1),
    ("unclosed string", "[package]\nname = \"a\n", 2),
    ("unclosed array", "[build]\nfeatures = [\"a\",\n", 2),
    ("bare value", "[package]\nname = a\n", 2),
    (
        "duplicate key",
        "[package]\nname = \"a\"\nname = \"b\"\n",
        3,
    ),
    ("duplicate table", "[package]\n[package]\n", 2),
    ("key without value", "[package]\nname =\n", 2),
    ("value without key", "[package]\n= \"a\"\n", 2),
    ("unknown table", "[pakage]\nname = \"a\"\n", 1),
    ("unknown key", "[package]\nnmae = \"a\"\n", 2),
    ("unknown nested key", "[release]\noptimise = \"s\"\n", 2),
    ("name is a number", "[package]\nname = 1\n", 2),
    ("name is a table", "[package]\nname = { a = 1 }\n", 2),
    ("name is empty", "[package]\nname = \"\"\n", 2),
    ("name with capitals", "[package]\nname = \"Hello\"\n", 2),
    ("name with a space", "[package]\nname = \"a b\"\n", 2),
    ("name is a keyword", "[package]\nname = \"fn\"\n", 2),
    (
        "name too long",
        "[package]\nname = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n",
        2,
    ),
    (
        "name with escapes",
        "[package]\nname = \"a\\u001b[2J\"\n",
        2,
    ),
    ("unknown language", "[package]\nlanguage = \"cobol\"\n", 2),
    ("language is a number", "[package]\nlanguage = 7\n", 2),
    ("version is a bool", "[package]\nversion = true\n", 2),
    (
        "license not SPDX",
        "[package]\nlicense = \"whatever I like\"\n",
        2,
    ),
    ("license empty", "[package]\nlicense = \"\"\n", 2),
    ("exe is a string", "[package]\nexe = \"yes\"\n", 2),
    ("features not an array", "[build]\nfeatures = \"a\"\n", 2),
    ("features of numbers", "[build]\nfeatures = [1, 2]\n", 2),
    (
        "default-features a string",
        "[build]\ndefault-features = \"no\"\n",
        2,
    ),
    ("optimize level 9", "[release]\noptimize = \"9\"\n", 2),
    ("optimize level -1", "[release]\noptimize = -1\n", 2),
    ("optimize a table", "[release]\noptimize = {}\n", 2),
    ("strip unknown", "[release]\nstrip = \"everything\"\n", 2),
    ("run timeout nonsense", "[run]\ntimeout = \"soon\"\n", 2),
    ("run timeout negative", "[run]\ntimeout = \"-1s\"\n", 2),
    (
        "run max-memory nonsense",
        "[run]\nmax-memory = \"lots\"\n",
        2,
    ),
    ("run max-memory an array", "[run]\nmax-memory = []\n", 2),
    ("run fuel negative", "[run]\nfuel = -5\n", 2),
    (
        "run fuel too big",
        "[run]\nfuel = 99999999999999999999\n",
        2,
    ),
    ("run dirs not an array", "[run]\ndirs = \"data\"\n", 2),
    ("run env not strings", "[run]\nenv = [1]\n", 2),
    ("run unknown key", "[run]\nmax-memroy = \"1MiB\"\n", 2),
    (
        "bundle as a table",
        "[bundle]\nsource = \"a\"\nmount = \"/a\"\n",
        1,
    ),
    ("bundle without a mount", "[[bundle]]\nsource = \"a\"\n", 1),
    (
        "bundle relative mount",
        "[[bundle]]\nsource = \"a\"\nmount = \"assets\"\n",
        3,
    ),
    (
        "bundle root mount",
        "[[bundle]]\nsource = \"a\"\nmount = \"/\"\n",
        3,
    ),
    (
        "bundle dotted mount",
        "[[bundle]]\nsource = \"a\"\nmount = \"/a/../b\"\n",
        3,
    ),
    (
        "bundle mounts overlap",
        "[[bundle]]\nsource = \"a\"\nmount = \"/a\"\n\n[[bundle]]\nsource = \"b\"\nmount = \"/a/b\"\n",
        7,
    ),
    (
        "publish reference without registry",
        "[publish]\nreference = \"hello\"\n",
        2,
    ),
    (
        "publish reference bad tag",
        "[publish]\nreference = \"ghcr.io/a/b:-x\"\n",
        2,
    ),
    (
        "publish annotations not a table",
        "[publish]\nannotations = \"x\"\n",
        2,
    ),
    ("not UTF-8 in a string", "[package]\nname = \"\u{0}\"\n", 2),
    (
        "deeply nested arrays",
        "[build]\nfeatures = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
        2,
    ),
];

#[test]
fn bad_manifests_are_refused_at_their_line_and_column() {
    assert!(
        BAD_MANIFESTS.len() >= 50,
        "{} manifests",
        BAD_MANIFESTS.len()
    );
    let env = Env::new();
    let problems: Vec<String> = par_map(BAD_MANIFESTS, |i, (what, text, line)| {
        let dir = format!("m{i:02}");
        let manifest = env.write(&format!("{dir}/Kiln.toml"), text);
        let shown = manifest.display().to_string();
        let out = env
            .kiln(&["build", "--manifest-path", &shown])
            .cwd(env.path(&dir))
            .run();
        let mut problem = refusal_problem(&out, 1, &format!("{shown}:{line}:"));
        if problem.is_none() {
            // `PATH:LINE:COL: message`, the column a number.
            let error = out
                .stderr
                .lines()
                .find(|l| l.starts_with("error:"))
                .unwrap();
            let rest = &error[error.find(&shown).unwrap() + shown.len()..];
            let col = rest.split(':').nth(2).unwrap_or("");
            if col.parse::<usize>().map_or(true, |c| c == 0) {
                problem = Some(format!("no column in: {error}"));
            }
        }
        let written: Vec<_> = files_under(&env.path(&dir))
            .into_iter()
            .filter(|f| f != "Kiln.toml")
            .collect();
        if !written.is_empty() {
            problem = Some(format!("wrote {written:?}"));
        }
        problem.map(|p| format!("{what}: {p}\n--- Kiln.toml\n{text}"))
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let cases: &[&[&str]] = &[
        &["inspect"],
        &["inspect", "a.wasm", "b.wasm"],
        &["inspect", "--no-such-flag", "a.wasm"],
        &["run", "--timeout"],
        &["publish", "--wasm"],
        &["build", "--manifest-path"],
        &["build", "--message-format", "xml"],
        &["no-such-command"],
    ];
    let problems: Vec<String> = par_map(cases, |_, args| {
        let out = env.kiln(args).run();
        refusal_problem(&out, 2, "").map(|p| format!("kiln {}: {p}", args.join(" ")))
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!(files_under(&env.root()), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// Seeded mutations of real components, a sample through the binary (the library passes see
// thousands in componentize/tests/mutations.rs).

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
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let at = rng.below(bytes.len());
    match rng.below(5) {
        0 => bytes[at] ^= 1 << rng.below(8),
        1 => bytes[at] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)],
        2 => bytes.truncate(at.max(1)),
        3 => {
            let end = (at + 1 + rng.below(8)).min(bytes.len());
            bytes.drain(at..end);
        }
        _ => {
            let insert: Vec<u8> = (0..1 + rng.below(4)).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, insert);
        }
    }
}

#[test]
fn mutated_components_through_the_binary() {
    let env = Env::new();
    let command = env.wat_fixture("exit-with-code");
    let core = wat::parse_str(MODULE).unwrap();
    let seeds = [
        fs_err::read(&command).unwrap(),
        kiln_componentize::componentize(&core, None).unwrap().bytes,
        wat::parse_str(NESTED).unwrap(),
    ];
    let mut rng = Rng(0x6b69_6c6e_6d75_7461);
    let mutants: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            let mut bytes = seeds[i % seeds.len()].clone();
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut bytes);
            }
            bytes
        })
        .collect();
    let problems: Vec<String> = par_map(&mutants, |i, bytes| {
        let file = format!("mutants/{i:02}.wasm");
        env.write(&file, bytes);
        let mut problems = Vec::new();
        let valid = kiln_componentize::validate(bytes).is_ok();
        for args in [
            vec!["inspect", file.as_str()],
            vec![
                "run",
                "--timeout",
                "10s",
                "--max-memory",
                "64MiB",
                file.as_str(),
            ],
        ] {
            let out = env.kiln(&args).run();
            let panicked = out.code == 101 || out.stderr.contains("panicked");
            let errors = out
                .stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count();
            // Invalid input is always refused; a valid mutant may also run (and exit as it
            // likes), but a refusal is one error line naming the file.
            let bad = panicked
                || (!valid && (out.code != 1 || errors != 1))
                || (errors > 1)
                || (errors == 1 && !out.stderr.contains(&file));
            if bad {
                problems.push(format!(
                    "mutant {i} through `kiln {}` (exit {}):\n{}",
                    args[0], out.code, out.stderr
                ));
            }
        }
        problems
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
