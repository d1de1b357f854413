//! The C and C++ driver: finds a compiler that targets WASI preview1, compiles each source
//! file (in parallel, only what changed according to the compiler's dependency files; `.c`
//! as C, `.cc`/`.cpp`/`.cxx` as C++ against libc++ with exceptions off), links a core module
//! (with libc++ when there is C++), and componentizes it with the preview1 adapter.
//!
//! Toolchain search: `KILN_C_TOOLCHAIN`, else `[build] toolchain`, picks one kind; without
//! either, the first found wins:
//! 1. `wasi-sdk`: `$WASI_SDK_PATH` (its clang and `share/wasi-sysroot`);
//! 2. `clang`: `$CC`, else `clang`, `clang-22` … `clang-14` on `PATH`, that has the wasm32
//!    target, with a WASI sysroot (`$WASI_SYSROOT`, or Debian's multiarch `wasi-libc` under
//!    `/usr/include/wasm32-wasi` and `/usr/lib/wasm32-wasi`), compiler-rt for wasm32 and
//!    `wasm-ld`;
//! 3. `zig`: `zig cc` (`zig` on `PATH`, or PyPI `ziglang` through `python3 -m ziglang`).
//!
//! `[build] setjmp = true` becomes what each toolchain needs for setjmp/longjmp through
//! WebAssembly exception handling: zig gets the LLVM flags and an object defining the
//! `__c_longjmp` tag its libc references; wasi-sdk (or a sysroot that has it) gets its
//! `libsetjmp`; Debian's wasi-libc has none, which is an error naming the fix.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use anyhow::{Context, bail};

use crate::driver::{Check, Profile};
use crate::errors::hinted;
use crate::manifest::{Build, CToolchain};
use crate::shell::Shell;

/// A C compiler that produces WASI preview1 core modules.
#[derive(Debug, Clone)]
pub struct CCompiler {
    /// What kind of toolchain (for messages and `kiln doctor`).
    pub kind: CToolchain,
    /// The program to run, then `prefix` arguments (e.g. `zig` + `cc`).
    pub program: PathBuf,
    prefix: Vec<String>,
    /// Arguments that select the target and sysroot.
    target: Vec<String>,
    /// The first line of `--version`.
    pub version: String,
    /// The WASI sysroot given with `--sysroot` (wasi-sdk's, or `$WASI_SYSROOT`); `None` for
    /// Debian's multiarch wasi-libc and for zig's own.
    sysroot: Option<PathBuf>,
}

/// What `[build] setjmp = true` adds for one toolchain.
struct Setjmp {
    compile: Vec<String>,
    link: Vec<String>,
    /// zig's libc references the `__c_longjmp` exception tag without defining it.
    tag_object: bool,
}

/// The assembler source of the `__c_longjmp` tag zig's libc needs (../shared notes §1b).
const C_LONGJMP_TAG: &str = ".globl __c_longjmp\n.tagtype __c_longjmp i32\n__c_longjmp:\n";

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

    /// The same toolchain's C++ driver: `zig c++`, or clang in g++ mode (libc++ for wasm32).
    fn cxx_command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        match self.kind {
            CToolchain::Zig => {
                let (_, front) = self.prefix.split_last().expect("zig's prefix ends in `cc`");
                cmd.args(front).arg("c++");
            }
            CToolchain::Clang | CToolchain::WasiSdk => {
                cmd.args(&self.prefix).arg("--driver-mode=g++");
            }
        }
        cmd.args(&self.target);
        cmd
    }

    /// What makes this toolchain's output differ from another's: objects built by one are
    /// rebuilt when the other is chosen.
    fn identity(&self) -> String {
        format!("{} {} ({})", self.kind, self.display(), self.version)
    }

    /// The major version of a clang (`Debian clang version 19.1.7` gives 19).
    fn clang_major(&self) -> Option<u32> {
        let rest = &self.version[self.version.find("version ")? + "version ".len()..];
        rest.split('.').next()?.trim().parse().ok()
    }

    /// Whether C++ sources can be built: zig ships libc++; clang needs libc++ and libc++abi
    /// for wasm32 (Debian's `libc++-N-dev-wasm32`, or the sysroot's).
    ///
    /// # Errors
    ///
    /// What is missing, for the error and `kiln doctor`.
    pub fn cxx_support(&self) -> Result<(), String> {
        if self.kind == CToolchain::Zig {
            return Ok(());
        }
        for lib in ["libc++.a", "libc++abi.a"] {
            let found = super::stdout_of(self.cxx_command().arg(format!("-print-file-name={lib}")))
                .unwrap_or_default();
            if !Path::new(&found).is_absolute() || !Path::new(&found).is_file() {
                return Err(format!("no {lib} for wasm32"));
            }
        }
        Ok(())
    }

    /// How to get C++ support for this toolchain.
    pub fn cxx_hint(&self) -> String {
        match (self.kind, &self.sysroot) {
            (CToolchain::Clang, None) => {
                let n = self.clang_major().unwrap_or(19);
                format!(
                    "Debian: apt-get install libc++-{n}-dev-wasm32 libc++abi-{n}-dev-wasm32; \
                     or use a wasi-sdk (it ships libc++)"
                )
            }
            _ => "use a wasi-sdk sysroot, which ships libc++ and libc++abi; or pip install \
                  ziglang and set `[build] toolchain = \"zig\"`"
                .to_string(),
        }
    }

    /// What `[build] setjmp = true` adds for this toolchain: compile flags, link flags, and
    /// whether the `__c_longjmp` tag object is needed.
    ///
    /// # Errors
    ///
    /// The toolchain has no setjmp/longjmp (Debian's wasi-libc), with the fix.
    fn setjmp(&self) -> anyhow::Result<Setjmp> {
        const EH: [&str; 5] = [
            "-mllvm",
            "-wasm-enable-sjlj",
            "-mllvm",
            "-wasm-use-legacy-eh=false",
            "-mcpu=generic+exception_handling",
        ];
        let compile: Vec<String> = EH.iter().map(|s| s.to_string()).collect();
        match (self.kind, &self.sysroot) {
            (CToolchain::Zig, _) => Ok(Setjmp {
                link: vec!["-mcpu=generic+exception_handling".into()],
                compile,
                tag_object: true,
            }),
            (_, Some(sysroot)) => {
                let header = [
                    "include/setjmp.h",
                    "include/wasm32-wasip1/setjmp.h",
                    "include/wasm32-wasi/setjmp.h",
                ]
                .iter()
                .any(|h| sysroot.join(h).is_file());
                let lib = [
                    "lib/wasm32-wasip1/libsetjmp.a",
                    "lib/wasm32-wasi/libsetjmp.a",
                    "lib/libsetjmp.a",
                ]
                .iter()
                .any(|l| sysroot.join(l).is_file());
                if !header || !lib {
                    return Err(hinted(
                        format!(
                            "`[build] setjmp = true`, but the WASI sysroot `{}` has no setjmp/longjmp \
                             (no setjmp.h and libsetjmp.a)",
                            sysroot.display()
                        ),
                        "use wasi-sdk 22 or later, or pip install ziglang and set `[build] toolchain = \"zig\"`",
                    ));
                }
                Ok(Setjmp {
                    compile,
                    link: vec!["-mcpu=generic+exception_handling".into(), "-lsetjmp".into()],
                    tag_object: false,
                })
            }
            (_, None) => Err(hinted(
                format!(
                    "`[build] setjmp = true`, but the clang toolchain (`{}` with Debian's wasi-libc) \
                     has no setjmp/longjmp: Debian's wasi-libc has no setjmp.h and no libsetjmp",
                    self.display()
                ),
                "build with zig (pip install ziglang; `[build] toolchain = \"zig\"` or \
                 KILN_C_TOOLCHAIN=zig), or with a wasi-sdk 22 or later (WASI_SDK_PATH; \
                 `toolchain = \"wasi-sdk\"`)",
            )),
        }
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
        kind: CToolchain::Clang,
        program,
        prefix: Vec::new(),
        target,
        version: super::first_line(&version),
        sysroot,
    })
}

/// The toolchain asked for: `KILN_C_TOOLCHAIN` (this machine's choice) over `[build]
/// toolchain` (the project's); `None` for the first found.
///
/// # Errors
///
/// `KILN_C_TOOLCHAIN` names no toolchain.
pub fn chosen(build: Option<&Build>) -> anyhow::Result<Option<CToolchain>> {
    if let Some(name) = crate::env_vars::c_toolchain() {
        return match CToolchain::parse(&name) {
            Some(t) => Ok(Some(t)),
            None => bail!(
                "{}=`{name}` is not a C toolchain kiln drives: expected one of {}",
                crate::env_vars::KILN_C_TOOLCHAIN,
                CToolchain::ALL
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    }
    Ok(build.and_then(|b| b.toolchain))
}

/// Searches for a C toolchain — only `only`'s kind when given, else the first found; on
/// failure, every candidate tried and why it was rejected.
pub fn find(only: Option<CToolchain>) -> Result<CCompiler, Vec<Rejected>> {
    let wanted = |kind: CToolchain| only.is_none_or(|o| o == kind);
    let mut rejected = Vec::new();
    if wanted(CToolchain::WasiSdk) {
        match crate::env_vars::wasi_sdk_path() {
            Some(sdk) => {
                match probe_clang(sdk.join("bin/clang"), Some(sdk.join("share/wasi-sysroot"))) {
                    Ok(found) => {
                        return Ok(CCompiler {
                            kind: CToolchain::WasiSdk,
                            ..found
                        });
                    }
                    Err(why) => rejected.push(why),
                }
            }
            None if only.is_some() => rejected.push(Rejected {
                candidate: "wasi-sdk".into(),
                reason: format!("{} is not set", crate::env_vars::WASI_SDK_PATH),
            }),
            None => {}
        }
    }
    if wanted(CToolchain::Clang)
        && let Some(found) = find_clang(&mut rejected)
    {
        return Ok(found);
    }
    if wanted(CToolchain::Zig)
        && let Some(found) = find_zig(&mut rejected)
    {
        return Ok(found);
    }
    Err(rejected)
}

/// The first usable clang; the others tried go to `rejected`.
fn find_clang(rejected: &mut Vec<Rejected>) -> Option<CCompiler> {
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
            Ok(found) => return Some(found),
            Err(why) => rejected.push(why),
        }
    }
    None
}

/// zig, as [`find_clang`] reports.
fn find_zig(rejected: &mut Vec<Rejected>) -> Option<CCompiler> {
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
            Some(CCompiler {
                kind: CToolchain::Zig,
                program,
                prefix,
                target: vec!["--target=wasm32-wasi".to_string()],
                version: format!("zig {}", super::first_line(&version)),
                sysroot: None,
            })
        }
        None => {
            rejected.push(Rejected {
                candidate: "zig".into(),
                reason: "not on PATH, and python3 -m ziglang is not installed".into(),
            });
            None
        }
    }
}

/// How to get a C toolchain for WebAssembly: the one fix `kiln doctor` and the build error
/// both give.
pub const INSTALL_HINT: &str = "Debian: apt-get install clang-19 lld-19 wasi-libc \
     libclang-rt-19-dev-wasm32; or pip install ziglang; or set WASI_SDK_PATH to a wasi-sdk";

/// The error for a missing toolchain (of kind `only`, when one was chosen), listing what
/// was tried.
pub fn not_found(rejected: &[Rejected], only: Option<CToolchain>) -> anyhow::Error {
    let tried = rejected
        .iter()
        .map(|r| format!("\n  {}: {}", r.candidate, r.reason))
        .collect::<String>();
    let (what, hint) = match only {
        None => ("C".to_string(), INSTALL_HINT),
        Some(kind) => (format!("`{kind}` C"), kind_hint(kind)),
    };
    let chosen_by = match (only, crate::env_vars::c_toolchain()) {
        (None, _) => String::new(),
        (Some(_), Some(_)) => format!(" (chosen by {})", crate::env_vars::KILN_C_TOOLCHAIN),
        (Some(_), None) => " (chosen by `[build] toolchain`)".to_string(),
    };
    hinted(
        format!("no {what} toolchain for WebAssembly was found{chosen_by}; tried:{tried}"),
        format!("{hint}; `kiln doctor` shows what is installed"),
    )
}

/// How to install one kind of toolchain.
fn kind_hint(kind: CToolchain) -> &'static str {
    match kind {
        CToolchain::Clang => {
            "Debian: apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32"
        }
        CToolchain::WasiSdk => "set WASI_SDK_PATH to a wasi-sdk",
        CToolchain::Zig => "pip install ziglang (or put zig on PATH)",
    }
}

/// The extensions compiled as C++ (everything else is C).
const CXX_EXTENSIONS: [&str; 3] = ["cc", "cpp", "cxx"];

/// Whether `source` is compiled as C++.
fn is_cxx(source: &Path) -> bool {
    source
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| CXX_EXTENSIONS.contains(&e))
}

/// Source files matched by `[build] sources` (default: `.c`, `.cc`, `.cpp` and `.cxx` under
/// `src/`), sorted, relative to `root`.
pub fn sources(root: &Path, build: &Build) -> anyhow::Result<Vec<PathBuf>> {
    let defaults = build.sources.is_empty();
    let patterns: Vec<String> = if defaults {
        ["c", "cc", "cpp", "cxx"]
            .iter()
            .map(|ext| format!("src/**/*.{ext}"))
            .collect()
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
        if found.len() == before && !defaults {
            bail!("`[build] sources` pattern `{pattern}` matches no file");
        }
    }
    if found.is_empty() {
        bail!(
            "no C or C++ sources in `{}` (`.c`, `.cc`, `.cpp` or `.cxx` files); list them in \
             `[build] sources`",
            root.join("src").display()
        );
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
    /// What the object was made with (toolchain and arguments), recorded in `cmdfile`.
    key: String,
    /// Compiled as C++.
    cxx: bool,
}

impl Unit {
    /// Whether the object is missing or older than anything it was made from, or was made
    /// with other flags.
    fn stale(&self, root: &Path) -> bool {
        let Some(built) = mtime(&self.object) else {
            return true;
        };
        if std::fs::read_to_string(&self.cmdfile).ok().as_deref() != Some(&self.key) {
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

/// Compiles, links and componentizes the C/C++ project at `root`; returns the component's path
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
    for_size: bool,
) -> anyhow::Result<PathBuf> {
    let only = chosen(Some(build))?;
    let compiler = find(only).map_err(|rejected| not_found(&rejected, only))?;
    shell.verbose_status(
        "Using",
        format_args!(
            "{} {} ({})",
            compiler.kind,
            compiler.display(),
            compiler.version
        ),
    );
    let sources = sources(root, build)?;
    let has_cxx = sources.iter().any(|s| is_cxx(s));
    if has_cxx && let Err(why) = compiler.cxx_support() {
        return Err(hinted(
            format!(
                "cannot build C++ with {} `{}`: {why}",
                compiler.kind,
                compiler.display()
            ),
            compiler.cxx_hint(),
        ));
    }
    let setjmp = build.setjmp.then(|| compiler.setjmp()).transpose()?;
    let work = crate::driver::work_dir(root, profile, "c", name)?;
    fs_err::create_dir_all(work.join("obj"))?;

    let mut flags: Vec<String> = match profile {
        Profile::Debug => vec!["-O0".into(), "-g".into()],
        // `[release] optimize = "z"`: the smallest code, as wasm-opt's `-Oz` after it.
        Profile::Release if for_size => vec!["-Oz".into()],
        Profile::Release => vec!["-O2".into()],
    };
    if compiler.kind == CToolchain::Zig && profile == Profile::Debug {
        // zig cc turns UBSan traps on in unoptimized builds; clang and wasi-sdk do not, and
        // a debug build should not trap where the release build runs (Lua's 4-byte-aligned
        // state does).
        flags.push("-fno-sanitize=undefined".into());
    }
    if shell.stderr_supports_color() {
        flags.push("-fcolor-diagnostics".into());
    }
    if let Some(setjmp) = &setjmp {
        flags.extend(setjmp.compile.iter().cloned());
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
    // zig's libc references the `__c_longjmp` tag and leaves defining it to the program.
    let mut tag_rebuilt = false;
    if setjmp.as_ref().is_some_and(|s| s.tag_object) {
        let tag = work.join("c_longjmp_tag.s");
        let object = work.join("obj").join("c_longjmp_tag.o");
        if std::fs::read_to_string(&tag).ok().as_deref() != Some(C_LONGJMP_TAG) || !object.is_file()
        {
            fs_err::write(&tag, C_LONGJMP_TAG)?;
            super::run_tool(
                shell,
                compiler
                    .command()
                    .args(["-mcpu=generic+exception_handling", "-c"])
                    .arg(&tag)
                    .arg("-o")
                    .arg(&object),
                "could not assemble the `__c_longjmp` tag setjmp needs".to_string(),
            )?;
            tag_rebuilt = true;
        }
        extra_objects.push(object);
    }

    let identity = compiler.identity();
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
            let cxx = is_cxx(source);
            let mut command = flags.clone();
            if cxx {
                // Exceptions are off unless `cxxflags` turns them on (Debian's libc++abi is
                // built without them).
                command.push("-fno-exceptions".into());
                command.extend(build.cxxflags.iter().cloned());
            }
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
                key: format!("{identity}\n{}", command.join("\n")),
                command,
                cxx,
            }
        })
        .collect();
    let stale: Vec<&Unit> = units.iter().filter(|u| u.stale(root)).collect();

    // Compile in parallel; diagnostics are shown as the compiler printed them.
    let next = AtomicUsize::new(0);
    let missing_setjmp = std::sync::atomic::AtomicBool::new(false);
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
                        let mut cmd = if unit.cxx {
                            compiler.cxx_command()
                        } else {
                            compiler.command()
                        };
                        let out = crate::signals::output(cmd.args(&unit.command).current_dir(root));
                        match out {
                            Ok(out) => {
                                let text = String::from_utf8_lossy(&out.stderr);
                                if !text.trim().is_empty() {
                                    shell.forward_stderr_always(&text);
                                }
                                if out.status.success() {
                                    let _ = fs_err::write(&unit.cmdfile, &unit.key);
                                } else {
                                    if text.contains("setjmp") {
                                        missing_setjmp.store(true, Ordering::Relaxed);
                                    }
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
        let message = format!("could not compile {list} (the compiler's messages are above)");
        if missing_setjmp.into_inner() && !build.setjmp {
            return Err(hinted(
                message,
                "for setjmp/longjmp, set `[build] setjmp = true` (with the zig toolchain or a \
                 wasi-sdk: Debian's wasi-libc has none)",
            ));
        }
        bail!("{message}");
    }

    // Link when an object changed, or the link itself is out of date.
    let core = work.join(format!("{name}.core.wasm"));
    let mut link: Vec<OsString> = units.iter().map(|u| u.object.clone().into()).collect();
    link.extend(extra_objects.iter().map(|o| o.clone().into_os_string()));
    if build.world.is_some() {
        // A library: `_initialize` instead of `_start`, so it gets the reactor adapter.
        link.push("-mexec-model=reactor".into());
    }
    if let Some(setjmp) = &setjmp {
        link.extend(setjmp.link.iter().map(OsString::from));
    }
    if has_cxx {
        link.push("-fno-exceptions".into());
    }
    link.push("-o".into());
    link.push(core.clone().into());
    link.extend(build.ldflags.iter().map(OsString::from));
    link.extend(build.libs.iter().map(|l| OsString::from(format!("-l{l}"))));
    let link_key = std::iter::once(identity.clone())
        .chain(std::iter::once(format!("c++: {has_cxx}")))
        .chain(link.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join("\n");
    let link_cmdfile = work.join("link.cmd");
    let component = work.join(format!("{name}.component.wasm"));
    let up_to_date = stale.is_empty()
        && !tag_rebuilt
        && std::fs::read_to_string(&link_cmdfile).ok().as_deref() == Some(&link_key)
        && mtime(&component).is_some();
    if !up_to_date {
        // With C++ the C++ driver links, so libc++ and libc++abi come along.
        let mut cmd = if has_cxx {
            compiler.cxx_command()
        } else {
            compiler.command()
        };
        super::run_tool(
            shell,
            cmd.args(&link).current_dir(root),
            format!("could not link `{name}` (the linker's messages are above)"),
        )?;
        super::componentize(shell, name, &core, None, &component)?;
        fs_err::write(&link_cmdfile, link_key)?;
    }
    Ok(component)
}

/// `kiln doctor`'s checks for C and C++ guests: the toolchain `KILN_C_TOOLCHAIN` picks (else
/// the first usable one) or why each candidate was rejected, and whether it builds C++.
pub fn probe() -> Vec<Check> {
    let mut checks = Vec::new();
    let only = match chosen(None) {
        Ok(only) => only,
        Err(e) => {
            checks.push(Check {
                name: "c".into(),
                path: None,
                detail: e.to_string(),
                ok: false,
                fix: Some(format!(
                    "unset {} or set it to clang, wasi-sdk or zig",
                    crate::env_vars::KILN_C_TOOLCHAIN
                )),
            });
            return checks;
        }
    };
    match find(only) {
        Ok(compiler) => {
            checks.push(Check {
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
            });
            let cxx = compiler.cxx_support();
            checks.push(Check {
                name: "c++".into(),
                path: Some(compiler.program.clone()),
                detail: match &cxx {
                    Ok(()) => format!("{} with libc++", compiler.kind),
                    Err(why) => format!("{} `{}`: {why}", compiler.kind, compiler.display()),
                },
                ok: cxx.is_ok(),
                fix: cxx.is_err().then(|| compiler.cxx_hint()),
            });
        }
        Err(rejected) => {
            let mut detail = rejected
                .iter()
                .map(|r| format!("{}: {}", r.candidate, r.reason))
                .collect::<Vec<_>>()
                .join("; ");
            if let Some(kind) = only {
                detail = format!("{}={kind}: {detail}", crate::env_vars::KILN_C_TOOLCHAIN);
            }
            for name in ["c", "c++"] {
                let fix = match (only, name) {
                    (Some(kind), _) => kind_hint(kind),
                    (None, "c") => INSTALL_HINT,
                    (None, _) => CXX_INSTALL_HINT,
                };
                checks.push(Check {
                    name: name.into(),
                    path: None,
                    detail: detail.clone(),
                    ok: false,
                    fix: Some(fix.into()),
                });
            }
        }
    }
    checks
}

/// How to get a C++ toolchain for WebAssembly from nothing.
pub const CXX_INSTALL_HINT: &str = "Debian: apt-get install clang-19 lld-19 wasi-libc \
     libclang-rt-19-dev-wasm32 libc++-19-dev-wasm32 libc++abi-19-dev-wasm32; or pip install \
     ziglang; or set WASI_SDK_PATH to a wasi-sdk";

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
