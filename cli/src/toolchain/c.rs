//! The C driver: finds a compiler that targets WASI preview1, compiles each source file (in
//! parallel, only what changed according to the compiler's dependency files), links a core
//! module, and componentizes it with the preview1 adapter.
//!
//! Toolchain search, first found wins:
//! 1. `$WASI_SDK_PATH` (wasi-sdk: its clang and `share/wasi-sysroot`);
//! 2. `$CC`, else `clang`, `clang-22` … `clang-14` on `PATH`, that has the wasm32 target,
//!    with a WASI sysroot (`$WASI_SYSROOT`, or Debian's multiarch `wasi-libc` under
//!    `/usr/include/wasm32-wasi` and `/usr/lib/wasm32-wasi`), compiler-rt for wasm32 and
//!    `wasm-ld`;
//! 3. `zig cc` (`zig` on `PATH`, or PyPI `ziglang` through `python3 -m ziglang`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use anyhow::{Context, bail};

use crate::driver::{Check, Profile};
use crate::errors::hinted;
use crate::manifest::Build;
use crate::shell::Shell;

/// A C compiler that produces WASI preview1 core modules.
#[derive(Debug, Clone)]
pub struct CCompiler {
    /// What kind of toolchain (for messages and `kiln doctor`).
    pub kind: &'static str,
    /// The program to run, then `prefix` arguments (e.g. `zig` + `cc`).
    pub program: PathBuf,
    prefix: Vec<String>,
    /// Arguments that select the target and sysroot.
    target: Vec<String>,
    /// The first line of `--version`.
    pub version: String,
}

/// Why a candidate was not used, for errors and `kiln doctor`.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// The candidate (a path or command).
    pub candidate: String,
    /// What is missing.
    pub reason: String,
}

impl CCompiler {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix).args(&self.target);
        cmd
    }

    /// The command line as shown to people.
    pub fn display(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.prefix.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

const DEBIAN_INCLUDE: &str = "/usr/include/wasm32-wasi";
const DEBIAN_LIB: &str = "/usr/lib/wasm32-wasi";

/// Checks one clang: wasm32 target, a sysroot, compiler-rt and wasm-ld.
fn probe_clang(program: PathBuf, sdk_sysroot: Option<PathBuf>) -> Result<CCompiler, Rejected> {
    let shown = program.display().to_string();
    let reject = |reason: String| Rejected {
        candidate: shown.clone(),
        reason,
    };
    let version = super::stdout_of(Command::new(&program).arg("--version"))
        .ok_or_else(|| reject("does not run".into()))?;
    let targets =
        super::stdout_of(Command::new(&program).arg("--print-targets")).unwrap_or_default();
    if !targets.contains("wasm32") {
        return Err(reject("has no wasm32 target".into()));
    }
    let sysroot = sdk_sysroot.or_else(crate::env_vars::wasi_sysroot);
    let target = match &sysroot {
        Some(sysroot) => {
            if !sysroot.join("include").is_dir() {
                return Err(reject(format!(
                    "the WASI sysroot `{}` has no include/ directory",
                    sysroot.display()
                )));
            }
            vec![
                "--target=wasm32-wasip1".to_string(),
                format!("--sysroot={}", sysroot.display()),
            ]
        }
        None if Path::new(DEBIAN_INCLUDE).is_dir() && Path::new(DEBIAN_LIB).is_dir() => {
            // Debian's multiarch wasi-libc: the old triple finds it without a sysroot.
            vec!["--target=wasm32-wasi".to_string()]
        }
        None => {
            return Err(reject(
                "no WASI sysroot (set WASI_SYSROOT, or install wasi-libc)".into(),
            ));
        }
    };
    let builtins = super::stdout_of(
        Command::new(&program)
            .args(&target)
            .arg("-print-libgcc-file-name"),
    )
    .unwrap_or_default();
    if builtins.is_empty() || !Path::new(&builtins).is_file() {
        return Err(reject(format!(
            "no compiler-rt for wasm32 (`{builtins}` is missing)"
        )));
    }
    let linker = super::stdout_of(
        Command::new(&program)
            .args(&target)
            .arg("-print-prog-name=wasm-ld"),
    )
    .unwrap_or_default();
    if !Path::new(&linker).is_absolute() || !Path::new(&linker).is_file() {
        return Err(reject("no wasm-ld (install lld)".into()));
    }
    Ok(CCompiler {
        kind: "clang",
        program,
        prefix: Vec::new(),
        target,
        version: super::first_line(&version),
    })
}

/// Searches for a C toolchain; on failure, every candidate tried and why it was rejected.
pub fn find() -> Result<CCompiler, Vec<Rejected>> {
    let mut rejected = Vec::new();
    if let Some(sdk) = crate::env_vars::wasi_sdk_path() {
        match probe_clang(sdk.join("bin/clang"), Some(sdk.join("share/wasi-sysroot"))) {
            Ok(found) => {
                return Ok(CCompiler {
                    kind: "wasi-sdk",
                    ..found
                });
            }
            Err(why) => rejected.push(why),
        }
    }
    let mut clangs: Vec<PathBuf> = Vec::new();
    if let Some(cc) = crate::env_vars::cc() {
        clangs.push(super::which(&cc).unwrap_or_else(|| PathBuf::from(cc)));
    } else {
        clangs.extend(super::which("clang"));
        clangs.extend(
            (14..=22)
                .rev()
                .filter_map(|n| super::which(&format!("clang-{n}"))),
        );
    }
    for clang in clangs {
        match probe_clang(clang, None) {
            Ok(found) => return Ok(found),
            Err(why) => rejected.push(why),
        }
    }
    let zig = super::which("zig")
        .map(|zig| (zig, vec!["cc".to_string()]))
        .or_else(|| {
            let python = super::which("python3")?;
            super::stdout_of(Command::new(&python).args(["-m", "ziglang", "version"]))?;
            Some((python, vec!["-m".into(), "ziglang".into(), "cc".into()]))
        });
    match zig {
        Some((program, prefix)) => {
            let version = super::stdout_of(
                Command::new(&program)
                    .args(&prefix[..prefix.len() - 1])
                    .arg("version"),
            )
            .unwrap_or_default();
            return Ok(CCompiler {
                kind: "zig",
                program,
                prefix,
                target: vec!["--target=wasm32-wasi".to_string()],
                version: format!("zig {}", super::first_line(&version)),
            });
        }
        None => rejected.push(Rejected {
            candidate: "zig".into(),
            reason: "not on PATH, and python3 -m ziglang is not installed".into(),
        }),
    }
    Err(rejected)
}

/// How to get a C toolchain for WebAssembly: the one fix `kiln doctor` and the build error
/// both give.
pub const INSTALL_HINT: &str = "Debian: apt-get install clang-19 lld-19 wasi-libc \
     libclang-rt-19-dev-wasm32; or pip install ziglang; or set WASI_SDK_PATH to a wasi-sdk";

/// The error for a missing toolchain, listing what was tried.
pub fn not_found(rejected: &[Rejected]) -> anyhow::Error {
    let tried = rejected
        .iter()
        .map(|r| format!("\n  {}: {}", r.candidate, r.reason))
        .collect::<String>();
    hinted(
        format!("no C toolchain for WebAssembly was found; tried:{tried}"),
        format!("{INSTALL_HINT}; `kiln doctor` shows what is installed"),
    )
}

/// Source files matched by `[build] sources` (default `src/**/*.c`), sorted, relative to
/// `root`.
fn sources(root: &Path, build: &Build) -> anyhow::Result<Vec<PathBuf>> {
    let patterns: Vec<String> = if build.sources.is_empty() {
        vec!["src/**/*.c".to_string()]
    } else {
        build.sources.clone()
    };
    let mut found = Vec::new();
    for pattern in &patterns {
        if Path::new(pattern).is_absolute() || pattern.split('/').any(|c| c == "..") {
            bail!("`[build] sources` pattern `{pattern}` must stay inside the project");
        }
        let full = root.join(pattern);
        let matches = glob::glob(&full.to_string_lossy())
            .with_context(|| format!("`[build] sources` pattern `{pattern}` is not a glob"))?;
        let before = found.len();
        for entry in matches {
            let path = entry?;
            if path.is_file() {
                found.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            }
        }
        if found.len() == before {
            bail!("`[build] sources` pattern `{pattern}` matches no file");
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// Writes wit-bindgen-c's bindings for the world at `wit` (a file or a directory) into
/// `dir` (only files whose content changed are rewritten, so they do not trigger
/// recompiles); returns the paths written.
fn generate_bindings(wit: &Path, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let (mut resolve, world) = kiln_componentize::load_world(&kiln_componentize::WorldSource {
        path: wit,
        world: None,
    })?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)?;
    fs_err::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, contents) in files.iter() {
        let path = dir.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(contents) {
            crate::fsutil::write_atomic(&path, contents)?;
        }
        written.push(path);
    }
    Ok(written)
}

/// The files a Makefile-style dependency file (`-MMD -MF`) lists as prerequisites.
fn dependencies(text: &str) -> Vec<PathBuf> {
    let joined = text.replace("\\\n", " ").replace("\\\r\n", " ");
    let Some((_, prerequisites)) = joined.split_once(": ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = prerequisites.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(PathBuf::from(current));
    }
    out
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// One translation unit to compile.
struct Unit {
    source: PathBuf,
    object: PathBuf,
    depfile: PathBuf,
    cmdfile: PathBuf,
    command: Vec<String>,
}

impl Unit {
    /// Whether the object is missing or older than anything it was made from, or was made
    /// with other flags.
    fn stale(&self, root: &Path) -> bool {
        let Some(built) = mtime(&self.object) else {
            return true;
        };
        if std::fs::read_to_string(&self.cmdfile).ok().as_deref() != Some(&self.command.join("\n"))
        {
            return true;
        }
        let Ok(deps) = std::fs::read_to_string(&self.depfile) else {
            return true;
        };
        let mut inputs = dependencies(&deps);
        inputs.push(self.source.clone());
        inputs
            .iter()
            .any(|dep| mtime(&root.join(dep)).is_none_or(|t| t > built))
    }
}

/// Compiles, links and componentizes the C project at `root`; returns the component's path
/// (the input to kiln's pipeline).
///
/// # Errors
///
/// No toolchain; bad `[build]` keys; a compile or link error (the compiler's own messages
/// are shown first); a module the adapter cannot turn into a component.
pub fn build(
    shell: &Shell,
    root: &Path,
    name: &str,
    build: &Build,
    profile: Profile,
) -> anyhow::Result<PathBuf> {
    let compiler = find().map_err(|rejected| not_found(&rejected))?;
    shell.verbose_status(
        "Using",
        format_args!("{} ({})", compiler.display(), compiler.version),
    );
    let sources = sources(root, build)?;
    let work = crate::driver::work_dir(root, profile, "c", name)?;
    fs_err::create_dir_all(work.join("obj"))?;

    let mut flags: Vec<String> = match profile {
        Profile::Debug => vec!["-O0".into(), "-g".into()],
        Profile::Release => vec!["-O2".into()],
    };
    if shell.stderr_supports_color() {
        flags.push("-fcolor-diagnostics".into());
    }
    flags.extend(
        build
            .include
            .iter()
            .map(|dir| format!("-I{}", root.join(dir).display())),
    );
    flags.extend(build.defines.iter().map(|d| format!("-D{d}")));
    flags.extend(build.cflags.iter().cloned());

    // A library component: C bindings for the world, generated in-process.
    let mut sources = sources;
    let mut extra_objects = Vec::new();
    if let Some(world) = &build.world {
        let bindings = work.join("bindings");
        let generated = generate_bindings(&root.join(world), &bindings)
            .with_context(|| format!("failed to generate C bindings for `{world}`"))?;
        for file in generated {
            match file.extension().and_then(|e| e.to_str()) {
                Some("c") => sources.push(file),
                Some("o") => extra_objects.push(file),
                _ => {}
            }
        }
        flags.push(format!("-I{}", bindings.display()));
    }

    let units: Vec<Unit> = sources
        .iter()
        .map(|source| {
            let stem = source
                .strip_prefix(&work)
                .unwrap_or(source)
                .to_string_lossy()
                .replace(['/', '\\'], "__");
            let object = work.join("obj").join(format!("{stem}.o"));
            let depfile = object.with_extension("d");
            let mut command = flags.clone();
            command.extend([
                "-MMD".into(),
                "-MF".into(),
                depfile.display().to_string(),
                "-c".into(),
                source.display().to_string(),
                "-o".into(),
                object.display().to_string(),
            ]);
            Unit {
                source: source.clone(),
                cmdfile: object.with_extension("cmd"),
                object,
                depfile,
                command,
            }
        })
        .collect();
    let stale: Vec<&Unit> = units.iter().filter(|u| u.stale(root)).collect();

    // Compile in parallel; diagnostics are shown as the compiler printed them.
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(stale.len().max(1));
    let failures: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut failed = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(unit) = stale.get(i) else { break };
                        shell.status("Compiling", unit.source.display());
                        let out = crate::signals::output(
                            compiler.command().args(&unit.command).current_dir(root),
                        );
                        match out {
                            Ok(out) => {
                                let text = String::from_utf8_lossy(&out.stderr);
                                if !text.trim().is_empty() {
                                    shell.forward_stderr_always(&text);
                                }
                                if out.status.success() {
                                    let _ = fs_err::write(&unit.cmdfile, unit.command.join("\n"));
                                } else {
                                    let _ = std::fs::remove_file(&unit.object);
                                    failed.push(unit.source.clone());
                                }
                            }
                            Err(e) => {
                                shell.warn(format_args!("cannot run {}: {e}", compiler.display()));
                                failed.push(unit.source.clone());
                            }
                        }
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a compile worker does not panic"))
            .collect()
    });
    if !failures.is_empty() {
        let list = failures
            .iter()
            .map(|f| format!("`{}`", f.display()))
            .collect::<Vec<_>>()
            .join(", ");
        bail!("could not compile {list} (the compiler's messages are above)");
    }

    // Link when an object changed, or the link itself is out of date.
    let core = work.join(format!("{name}.core.wasm"));
    let mut link: Vec<OsString> = units.iter().map(|u| u.object.clone().into()).collect();
    link.extend(extra_objects.iter().map(|o| o.clone().into_os_string()));
    if build.world.is_some() {
        // A library: `_initialize` instead of `_start`, so it gets the reactor adapter.
        link.push("-mexec-model=reactor".into());
    }
    link.push("-o".into());
    link.push(core.clone().into());
    link.extend(build.ldflags.iter().map(OsString::from));
    link.extend(build.libs.iter().map(|l| OsString::from(format!("-l{l}"))));
    let link_key = link
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let link_cmdfile = work.join("link.cmd");
    let component = work.join(format!("{name}.component.wasm"));
    let up_to_date = stale.is_empty()
        && std::fs::read_to_string(&link_cmdfile).ok().as_deref() == Some(&link_key)
        && mtime(&component).is_some();
    if !up_to_date {
        super::run_tool(
            shell,
            compiler.command().args(&link).current_dir(root),
            format!("could not link `{name}` (the linker's messages are above)"),
        )?;
        super::componentize(shell, name, &core, None, &component)?;
        fs_err::write(&link_cmdfile, link_key)?;
    }
    Ok(component)
}

/// `kiln doctor`'s check for C guests: the first usable toolchain, or why each candidate was rejected.
pub fn probe() -> Vec<Check> {
    let mut checks = Vec::new();
    // C: the first usable toolchain, or every candidate rejected.
    match find() {
        Ok(compiler) => checks.push(Check {
            name: "c".into(),
            path: Some(compiler.program.clone()),
            detail: format!(
                "{} via `{}`: {}",
                compiler.kind,
                compiler.display(),
                compiler.version
            ),
            ok: true,
            fix: None,
        }),
        Err(rejected) => checks.push(Check {
            name: "c".into(),
            path: None,
            detail: rejected
                .iter()
                .map(|r| format!("{}: {}", r.candidate, r.reason))
                .collect::<Vec<_>>()
                .join("; "),
            ok: false,
            fix: Some(INSTALL_HINT.into()),
        }),
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_files_are_read() {
        let text = "obj/main.o: src/main.c include/greet.h \\\n  /usr/include/wasm32-wasi/stdio.h with\\ space.h\n";
        assert_eq!(
            dependencies(text),
            [
                PathBuf::from("src/main.c"),
                "include/greet.h".into(),
                "/usr/include/wasm32-wasi/stdio.h".into(),
                "with space.h".into()
            ]
        );
        assert!(dependencies("").is_empty());
    }
}
