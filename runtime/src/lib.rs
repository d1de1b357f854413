//! # kiln-runtime
//!
//! kiln's embedded [Wasmtime](https://docs.wasmtime.dev/): it compiles components (through an
//! on-disk cache of precompiled code), and runs `wasi:cli/command` components with exactly the
//! capabilities the caller grants.
//!
//! - [`Runtime`] owns the [`wasmtime::Engine`] and the [`CodeCache`].
//! - [`Runtime::load`] turns component bytes into a [`LoadedComponent`], compiling only when
//!   the cache has no precompiled code for the same component digest and engine settings.
//! - [`Runtime::run_command`] instantiates a loaded command component with a
//!   [`Capabilities`] set (arguments, environment variables, preopened directories; stdio is
//!   inherited) and returns the guest's [`ExitStatus`].
//! - [`Runtime::prepare_call`] and [`Runtime::invoke`] ([`invoke`]) call one export of a
//!   library component with arguments in WAVE.
//!
//! Nothing is granted by default: no host directory, no environment variable, no socket.
//! A run can be bounded by [`Limits`] — wall-clock time (epoch interruption), total linear
//! memory and total table elements (a store limiter, with checked arithmetic: a growth whose
//! total does not fit in `usize` is refused), live resource handles, and fuel — and the wasm
//! stack is bounded by the engine ([`RuntimeConfig::max_wasm_stack`]). Tables, handles and
//! the number of instances, tables and memories always have a bound, by default
//! [`DEFAULT_MAX_TABLE_ELEMENTS`], [`DEFAULT_MAX_HANDLES`], [`MAX_INSTANCES`], [`MAX_TABLES`]
//! and [`MAX_MEMORIES`]. Each limit that stops a guest is its own [`Error`]
//! variant with its own exit code ([`Error::exit_code`]); a guest fault never ends the host.
//! The crate never prints; errors and outcomes are values for the caller to render.

#![deny(missing_docs)]

pub mod exe;
mod grants;
pub mod invoke;
pub mod serve;
pub mod text;

pub use grants::{
    DirGrant, EnvGrant, GrantError, MAX_HANDLES, MAX_TABLE_ELEMENTS, MAX_TIMEOUT, MAX_WASM_STACK,
    MIN_WASM_STACK, RunConfig, format_size, is_inheritable, parse_duration, parse_handles,
    parse_size, parse_table_elements, parse_wasm_stack,
};

#[cfg(feature = "compiler")]
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;
#[cfg(feature = "compiler")]
use std::time::Instant;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

/// The exit status a guest trap maps to, as the wasmtime CLI does on Unix (128 + SIGABRT).
pub const TRAP_EXIT_CODE: i32 = 134;
/// The exit status when `Limits::timeout` stops a guest, as coreutils' `timeout`.
pub const TIMEOUT_EXIT_CODE: i32 = 124;
/// The exit status when `Limits::max_memory` stops a guest (128 + SIGKILL, as an OOM kill).
pub const MEMORY_EXIT_CODE: i32 = 137;
/// The exit status when the guest exhausts its wasm stack (128 + SIGSEGV, as a native
/// stack overflow).
pub const STACK_EXIT_CODE: i32 = 139;
/// The exit status when `Limits::fuel` runs out (128 + SIGXCPU, as a CPU-time limit).
pub const FUEL_EXIT_CODE: i32 = 152;

/// The engine's default wasm stack limit in bytes (Wasmtime's default, 512 KiB).
pub const DEFAULT_MAX_WASM_STACK: usize = 512 * 1024;

/// The default for [`Limits::max_table_elements`]: one million elements, all tables
/// together (Wasmtime keeps a pointer or more per element, so about 8 MiB and up).
pub const DEFAULT_MAX_TABLE_ELEMENTS: usize = 1_000_000;
/// The default for [`Limits::max_handles`]: 100,000 live resource handles (Wasmtime's own
/// default for guest handles).
pub const DEFAULT_MAX_HANDLES: usize = 100_000;
/// The most core instances one run may create (Wasmtime's default is 10,000).
pub const MAX_INSTANCES: usize = 1_000;
/// The most tables one run may create.
pub const MAX_TABLES: usize = 1_000;
/// The most linear memories one run may create.
pub const MAX_MEMORIES: usize = 100;

/// Bytes of each pooled linear memory reset in place rather than released (see
/// [`RuntimeConfig::pooling`]): 4 MiB, more than a typical request dirties.
const POOL_MEMORY_KEEP_RESIDENT: usize = 4 << 20;

/// Bytes of each pooled table reset in place rather than released: 64 KiB (8,192 entries).
const POOL_TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// An epoch deadline that is never reached (ticks beyond the current epoch).
const NO_DEADLINE: u64 = 1 << 62;

/// Native stack kept for host calls above the wasm stack on a guest's fiber.
const HOST_STACK_HEADROOM: usize = 1536 * 1024;

/// Bounds on one run. `None` means unbounded (beyond the engine's own limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time the guest may run, host calls included.
    pub timeout: Option<Duration>,
    /// Total bytes of linear memory across every memory of the component. A `memory.grow`
    /// past it fails (returns -1, as the spec allows); a guest that then traps is reported
    /// as stopped by this limit.
    pub max_memory: Option<usize>,
    /// Units of fuel (roughly, WebAssembly instructions) the guest may consume. Requires
    /// [`RuntimeConfig::fuel`].
    pub fuel: Option<u64>,
    /// Total elements across every table of the component. A `table.grow` past it fails
    /// (returns -1); a guest that then traps is reported as stopped by this limit.
    pub max_table_elements: usize,
    /// Live resource handles: guest-defined resources (`resource.new`) across the store, and
    /// host resources (streams, files, requests) in the WASI resource table, each bounded by
    /// it. Creating one more traps.
    pub max_handles: usize,
}

impl Default for Limits {
    /// No time, memory or fuel limit; the default table and handle bounds.
    fn default() -> Self {
        Limits {
            timeout: None,
            max_memory: None,
            fuel: None,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_handles: DEFAULT_MAX_HANDLES,
        }
    }
}

/// An underlying error with its own chain of causes (Wasmtime's errors are `anyhow` chains;
/// converted with `.into()`, the chain stays reachable through `source()`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors from loading or running a component. Variants that wrap an underlying failure keep
/// it as their `source()`, so a caller shows the whole chain (`Caused by:`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Wasmtime engine could not be configured.
    #[error("failed to configure the Wasmtime engine")]
    Engine(#[source] BoxError),
    /// Compiling the component to native code failed.
    #[error("failed to compile the component")]
    Compile(#[source] BoxError),
    /// Precompiled code does not fit this engine, and this build of the runtime has no
    /// compiler to fall back on (`kiln-runner`, built without the `compiler` feature).
    #[error(
        "its precompiled code cannot be loaded here ({reason}), and this runner has no compiler to rebuild it"
    )]
    Incompatible {
        /// Why Wasmtime refused the code, on one line.
        reason: String,
    },
    /// Pre-initialization failed: Wizer refused the component, or its initialization
    /// trapped or hit a limit (the source says which).
    #[error("pre-initialization failed")]
    Preinit {
        /// What went wrong.
        #[source]
        source: BoxError,
        /// What the guest wrote to stdout and stderr meanwhile (lossy UTF-8).
        output: String,
    },
    /// This build of the runtime has no compiler (the `compiler` feature is off), so only
    /// precompiled code can be loaded.
    #[error("this build of kiln's runtime has no compiler, so it can only load precompiled code")]
    NoCompiler,
    /// The component file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The component file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The code cache directory could not be used.
    #[error("compiled-code cache at `{path}`: {source}")]
    Cache {
        /// The cache file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The component does not export `wasi:cli/run`, so it is not a command.
    #[error("the component does not export `wasi:cli/run`, so it is not a command")]
    NotACommand {
        /// What the component does export (fully qualified names).
        exports: Vec<String>,
    },
    /// The component does not export `wasi:http/incoming-handler`, so it cannot be served.
    #[error("the component does not export `wasi:http/incoming-handler`, so it cannot be served")]
    NotAnHttpComponent {
        /// What the component does export (fully qualified names).
        exports: Vec<String>,
    },
    /// The server's address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
    /// A preopened directory could not be opened on the host.
    #[error("cannot grant directory `{}`: {source}", host.display())]
    Preopen {
        /// The host path that was asked for.
        host: PathBuf,
        /// Why it could not be opened.
        source: std::io::Error,
    },
    /// Instantiation failed, for example because the component imports an interface the
    /// host does not provide.
    #[error("failed to instantiate the component")]
    Instantiate(#[source] BoxError),
    /// The guest ran past [`Limits::timeout`].
    #[error("the guest ran longer than its time limit of {} and was stopped", format_duration(*.limit))]
    Timeout {
        /// The limit.
        limit: Duration,
    },
    /// The guest needed more linear memory than [`Limits::max_memory`] and trapped.
    #[error(
        "the guest tried to grow its linear memory to {requested} bytes, over its limit of {limit} bytes, and was stopped"
    )]
    MemoryLimit {
        /// The limit in bytes.
        limit: usize,
        /// The total it asked for, in bytes.
        requested: usize,
    },
    /// The guest needed more table elements than [`Limits::max_table_elements`] and trapped.
    #[error(
        "the guest tried to grow its tables to {requested} elements, over its limit of {limit} elements, and was stopped"
    )]
    TableLimit {
        /// The limit in elements.
        limit: usize,
        /// The total it asked for.
        requested: usize,
    },
    /// A limit's value is outside the range kiln accepts, or cannot be combined with the
    /// engine's own settings without overflowing.
    #[error("invalid limit: {0}")]
    InvalidLimit(String),
    /// The guest consumed all of [`Limits::fuel`].
    #[error("the guest used all of its {fuel} units of fuel and was stopped")]
    FuelExhausted {
        /// The fuel it was given.
        fuel: u64,
    },
    /// The guest exhausted its wasm stack (for example through unbounded recursion).
    #[error("the guest exhausted its wasm stack of {limit} bytes and was stopped")]
    StackExhausted {
        /// The stack limit in bytes.
        limit: usize,
        /// The WebAssembly backtrace, as for [`Error::Trap`].
        backtrace: String,
    },
    /// The guest trapped. The trap ends the guest, never kiln.
    #[error("the guest trapped: {trap}")]
    Trap {
        /// What happened, e.g. "wasm `unreachable` instruction executed".
        trap: String,
        /// The WebAssembly backtrace as Wasmtime renders it, one frame per line;
        /// empty when none was captured.
        backtrace: String,
    },
}

impl Error {
    /// The process exit code this error stands for when it ends a run: one per limit,
    /// [`TRAP_EXIT_CODE`] for other traps, `None` for errors before the guest ran.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Error::Timeout { .. } => Some(TIMEOUT_EXIT_CODE),
            Error::MemoryLimit { .. } | Error::TableLimit { .. } => Some(MEMORY_EXIT_CODE),
            Error::FuelExhausted { .. } => Some(FUEL_EXIT_CODE),
            Error::StackExhausted { .. } => Some(STACK_EXIT_CODE),
            Error::Trap { .. } => Some(TRAP_EXIT_CODE),
            _ => None,
        }
    }

    /// The WebAssembly backtrace of a trap, if one was captured.
    pub fn backtrace(&self) -> Option<&str> {
        match self {
            Error::Trap { backtrace, .. } | Error::StackExhausted { backtrace, .. }
                if !backtrace.is_empty() =>
            {
                Some(backtrace)
            }
            _ => None,
        }
    }
}

fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// How to build a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Where to keep precompiled code; `None` disables the on-disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Compile with fuel metering, so [`Limits::fuel`] can be used (slower code; a separate
    /// cache entry).
    pub fuel: bool,
    /// The wasm stack limit in bytes, from [`MIN_WASM_STACK`] to [`MAX_WASM_STACK`];
    /// [`DEFAULT_MAX_WASM_STACK`] when `None`.
    pub max_wasm_stack: Option<usize>,
    /// Allocate instances from Wasmtime's pooling allocator: slots reserved up front and
    /// reused, so instantiating is cheap (what a server wants; a one-shot run does not).
    /// Up to 1000 instances live at once.
    pub pooling: bool,
}

/// An engine plus its compiled-code cache. Cheap to share by reference; create one per
/// process.
pub struct Runtime {
    engine: Engine,
    cache: Option<CodeCache>,
    max_wasm_stack: usize,
    // Read only when compiling (`precompile_portable`).
    #[cfg_attr(not(feature = "compiler"), allow(dead_code))]
    fuel: bool,
}

/// Where a [`LoadedComponent`]'s native code came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeSource {
    /// Deserialized from the cache file at this path.
    Cache(PathBuf),
    /// Compiled now, taking this long; `cached_at` is where the result was stored, when
    /// the cache is enabled and the write succeeded.
    Compiled {
        /// Wall-clock compile time.
        duration: Duration,
        /// The cache file written, if any.
        cached_at: Option<PathBuf>,
    },
    /// Loaded from precompiled code embedded in a single-file executable.
    Embedded,
    /// The embedded code did not fit this engine, so the component was compiled.
    Recompiled {
        /// Wall-clock compile time.
        duration: Duration,
        /// Why the embedded code was not used.
        reason: String,
    },
}

/// A compiled component, ready to instantiate.
pub struct LoadedComponent {
    component: Component,
    /// Hex BLAKE3 (256-bit) of the component bytes, the cache key.
    pub digest: String,
    /// Where the native code came from.
    pub source: CodeSource,
}

impl LoadedComponent {
    /// The component's top-level export names, in declaration order.
    pub fn exports(&self, runtime: &Runtime) -> Vec<String> {
        self.component
            .component_type()
            .exports(&runtime.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }
}

/// A directory granted to the guest (a preopen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// The directory on the host.
    pub host: PathBuf,
    /// The path the guest sees it at, e.g. `/data` or `.`.
    pub guest: String,
    /// When true the guest may read but not create, write, rename or delete.
    pub read_only: bool,
}

/// Everything a guest is granted. The default grants nothing but inherited stdio.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    /// `argv`, including the program name at index 0.
    pub args: Vec<String>,
    /// Environment variables, in order; later entries win.
    pub env: Vec<(String, String)>,
    /// Directories the guest may open.
    pub preopens: Vec<Preopen>,
    /// Whether the guest may use the host's network (TCP, UDP, name lookups).
    pub inherit_network: bool,
    /// When set, the guest's stdout and stderr are written here, in the order written,
    /// instead of to the host's (stdin stays the host's).
    pub capture: Option<OutputCapture>,
}

/// A buffer that collects a guest's output (see [`Capabilities::capture`]). Clones share it.
#[derive(Debug, Clone)]
pub struct OutputCapture(wasmtime_wasi::p2::pipe::MemoryOutputPipe);

impl OutputCapture {
    /// A buffer for up to `capacity` bytes; a guest that writes more traps.
    pub fn new(capacity: usize) -> OutputCapture {
        OutputCapture(wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(capacity))
    }

    /// What has been written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.contents().to_vec()
    }
}

/// How a guest ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code: 0 when `wasi:cli/run` returned `ok`, 1 for `err`, or the code passed to
    /// `wasi:cli/exit.exit-with-code` (WASI 0.2.12+).
    pub code: i32,
}

impl Runtime {
    /// Creates the engine (Cranelift, component model, async support, backtraces with
    /// source locations where DWARF is present) and opens the cache.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLimit`] when the wasm stack is out of range, [`Error::Engine`] when
    /// Wasmtime rejects the configuration.
    pub fn new(config: RuntimeConfig) -> Result<Self, Error> {
        let max_wasm_stack = config.max_wasm_stack.unwrap_or(DEFAULT_MAX_WASM_STACK);
        let engine =
            Engine::new(&Self::wasm_config(&config)?).map_err(|e| Error::Engine(e.into()))?;
        // Without a compiler there is nothing to cache: only precompiled code loads.
        #[cfg(feature = "compiler")]
        let cache = config.cache_dir.map(|root| CodeCache::new(&root, &engine));
        #[cfg(not(feature = "compiler"))]
        let cache = config.cache_dir.and(None);
        Ok(Runtime {
            engine,
            cache,
            max_wasm_stack,
            fuel: config.fuel,
        })
    }

    fn wasm_config(config: &RuntimeConfig) -> Result<Config, Error> {
        let max_wasm_stack = config.max_wasm_stack.unwrap_or(DEFAULT_MAX_WASM_STACK);
        grants::check_wasm_stack(max_wasm_stack).map_err(Error::InvalidLimit)?;
        // Guests run on a fiber: its stack holds the wasm stack plus room for host calls
        // (Wasmtime's defaults leave 1.5 MiB of the 2 MiB fiber to the host).
        let fiber_stack = max_wasm_stack
            .checked_add(HOST_STACK_HEADROOM)
            .ok_or_else(|| {
                Error::InvalidLimit(format!(
                    "a wasm stack of {max_wasm_stack} bytes leaves no room for host calls"
                ))
            })?;
        let mut wasm_config = Config::new();
        wasm_config
            .wasm_component_model(true)
            // WASI 0.3 components use the component model's async ABI.
            .wasm_component_model_async(true)
            .wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable)
            // Always on, so timed and untimed runs share compiled code.
            .epoch_interruption(true)
            .consume_fuel(config.fuel)
            .max_wasm_stack(max_wasm_stack)
            .async_stack_size(fiber_stack);
        if config.pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            // A component holds several core instances, tables and (usually) one memory.
            pool.total_component_instances(1000)
                .total_memories(1000)
                .total_stacks(1000)
                .total_core_instances(10_000)
                .total_tables(10_000);
            if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
                // A slot is reset for its next instance by finding the pages the last one
                // dirtied (Linux 6.7's PAGEMAP_SCAN) and copying the initial contents back
                // over them, up to these sizes: the pages stay resident, so the next
                // instance takes no page faults and the reset no `madvise`. Past these
                // sizes, and on kernels without the ioctl, slots are reset with `madvise`.
                pool.pagemap_scan(wasmtime::Enabled::Yes)
                    .linear_memory_keep_resident(POOL_MEMORY_KEEP_RESIDENT)
                    .table_keep_resident(POOL_TABLE_KEEP_RESIDENT);
            }
            wasm_config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        Ok(wasm_config)
    }

    /// Compiles `bytes` (a component) to precompiled code that this runtime's settings can
    /// load on any machine of the host's platform: it targets the host triple without
    /// relying on CPU features beyond the architecture's baseline.
    ///
    /// # Errors
    ///
    /// [`Error::Compile`] when Wasmtime rejects the component, [`Error::Engine`] when the
    /// host platform cannot be targeted.
    #[cfg(feature = "compiler")]
    pub fn precompile_portable(&self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let mut config = Self::wasm_config(&RuntimeConfig {
            fuel: self.fuel,
            max_wasm_stack: Some(self.max_wasm_stack),
            cache_dir: None,
            pooling: false,
        })?;
        config
            .target(&host_triple())
            .map_err(|e| Error::Engine(e.into()))?;
        let engine = Engine::new(&config).map_err(|e| Error::Engine(e.into()))?;
        engine
            .precompile_component(bytes)
            .map_err(|e| Error::Compile(e.into()))
    }

    /// Loads code made by [`Runtime::precompile_portable`] with the same settings, checking
    /// it against this engine; when it does not fit (another platform, other settings),
    /// compiles `component` instead, without touching the cache.
    ///
    /// # Safety
    ///
    /// `precompiled` must come from [`Runtime::precompile_portable`] (Wasmtime trusts
    /// precompiled code); a single-file executable verifies its payload's digest first.
    ///
    /// # Errors
    ///
    /// [`Error::Compile`] when the fallback compile fails.
    pub unsafe fn load_precompiled(
        &self,
        precompiled: &[u8],
        component: &[u8],
    ) -> Result<LoadedComponent, Error> {
        let digest = component_digest(component);
        // SAFETY: the caller vouches for the bytes' origin (see above).
        match unsafe { Component::deserialize(&self.engine, precompiled) } {
            Ok(component) => Ok(LoadedComponent {
                component,
                digest,
                source: CodeSource::Embedded,
            }),
            #[cfg(feature = "compiler")]
            Err(why) => {
                let start = Instant::now();
                let compiled = Component::new(&self.engine, component)
                    .map_err(|e| Error::Compile(e.into()))?;
                Ok(LoadedComponent {
                    component: compiled,
                    digest,
                    source: CodeSource::Recompiled {
                        duration: start.elapsed(),
                        reason: format!("{why:#}"),
                    },
                })
            }
            #[cfg(not(feature = "compiler"))]
            Err(why) => Err(Error::Incompatible {
                reason: one_line(&format!("{why:#}")),
            }),
        }
    }

    /// The compiled-code cache, if enabled.
    pub fn cache(&self) -> Option<&CodeCache> {
        self.cache.as_ref()
    }

    /// Compiles `bytes` (a component), or loads its precompiled code from the cache.
    ///
    /// A cache entry that fails to load (for example a truncated file) is recompiled and
    /// replaced. A failure to write the cache is not an error: the code is simply not cached.
    ///
    /// # Errors
    ///
    /// [`Error::Compile`] when Wasmtime rejects the component.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedComponent, Error> {
        let digest = component_digest(bytes);
        if let Some(loaded) = self.load_cached(&digest) {
            return Ok(loaded);
        }
        self.compile(bytes, digest)
    }

    /// Like [`Runtime::load`], for the component in the file at `path`, without reading the
    /// file into memory when its compiled code is cached: the digest is computed over a
    /// memory map of the file (BLAKE3's `update_mmap`), and only a cache miss reads it. On a
    /// 64 MiB component (a large bundle) this is most of the start-up.
    ///
    /// A file that changes while it is hashed gives a digest of no cached entry, so it is
    /// read and compiled like any other miss.
    ///
    /// # Errors
    ///
    /// [`Error::Read`] when the file cannot be read; [`Error::Compile`] when Wasmtime
    /// rejects the component.
    pub fn load_file(&self, path: &Path) -> Result<LoadedComponent, Error> {
        let read_error = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        if self.cache.is_some() {
            let mut hasher = blake3::Hasher::new();
            hasher.update_mmap(path).map_err(read_error)?;
            let digest = hasher.finalize().to_hex().to_string();
            if let Some(loaded) = self.load_cached(&digest) {
                return Ok(loaded);
            }
        }
        let bytes = std::fs::read(path).map_err(read_error)?;
        self.load(&bytes)
    }

    /// The cached compiled code for the component with this digest, if there is a usable entry.
    fn load_cached(&self, digest: &str) -> Option<LoadedComponent> {
        let path = self.cache.as_ref()?.entry(digest);
        if !path.is_file() {
            return None;
        }
        // SAFETY: the cache directory holds only files this crate wrote with
        // `Component::serialize` for this engine's compatibility hash (the directory name),
        // each written atomically; Wasmtime also checks the header and engine compatibility
        // before use. The directory is the user's own, like Wasmtime's own cache.
        let component = unsafe { Component::deserialize_file(&self.engine, &path) }.ok()?;
        Some(LoadedComponent {
            component,
            digest: digest.to_owned(),
            source: CodeSource::Cache(path),
        })
    }

    /// Without a compiler, every cache miss is an error.
    #[cfg(not(feature = "compiler"))]
    fn compile(&self, _bytes: &[u8], _digest: String) -> Result<LoadedComponent, Error> {
        Err(Error::NoCompiler)
    }

    /// Compiles `bytes` (whose digest is `digest`) and stores the code in the cache.
    #[cfg(feature = "compiler")]
    fn compile(&self, bytes: &[u8], digest: String) -> Result<LoadedComponent, Error> {
        let start = Instant::now();
        let component =
            Component::new(&self.engine, bytes).map_err(|e| Error::Compile(e.into()))?;
        let duration = start.elapsed();
        let cached_at = self
            .cache
            .as_ref()
            .and_then(|cache| cache.store(&digest, &component).ok());
        Ok(LoadedComponent {
            component,
            digest,
            source: CodeSource::Compiled {
                duration,
                cached_at,
            },
        })
    }

    /// Runs a `wasi:cli/command` component to completion with stdio inherited and the given
    /// capabilities.
    ///
    /// # Errors
    ///
    /// [`Error::NotACommand`] when the component does not export `wasi:cli/run`,
    /// [`Error::Preopen`] when a granted directory cannot be opened,
    /// [`Error::Instantiate`] when the host cannot satisfy the component's imports,
    /// [`Error::Trap`] when the guest traps, and [`Error::Timeout`], [`Error::MemoryLimit`],
    /// [`Error::FuelExhausted`] or [`Error::StackExhausted`] when a limit stops it.
    pub async fn run_command(
        &self,
        loaded: &LoadedComponent,
        caps: &Capabilities,
        limits: &Limits,
    ) -> Result<ExitStatus, Error> {
        let exports = loaded.exports(self);
        let Some(world) = command_world(&exports) else {
            return Err(Error::NotACommand { exports });
        };

        let mut store = self.new_store(caps, limits)?;
        self.arm_timeout(&mut store, limits.timeout);

        let linker = self.wasi_linker(Some(&loaded.component))?;
        // A memory or table declared over its limit fails instantiation: say which.
        let instantiate_error = |store: &Store<HostState>, e: wasmtime::Error| {
            store
                .data()
                .limiter
                .limit_error(limits)
                .unwrap_or_else(|| Error::Instantiate(e.into()))
        };
        let result =
            match world {
                CommandWorld::P2 => {
                    let command =
                        match Command::instantiate_async(&mut store, &loaded.component, &linker)
                            .await
                        {
                            Ok(command) => command,
                            Err(e) => return Err(instantiate_error(&store, e)),
                        };
                    let run = command.wasi_cli_run().call_run(&mut store);
                    with_timeout(limits.timeout, run).await?
                }
                CommandWorld::P3 => {
                    let command = match wasmtime_wasi::p3::bindings::Command::instantiate_async(
                        &mut store,
                        &loaded.component,
                        &linker,
                    )
                    .await
                    {
                        Ok(command) => command,
                        Err(e) => return Err(instantiate_error(&store, e)),
                    };
                    // The async `run` export, driven by the store's event loop until it returns
                    // (tasks it spawned may still be pending then; they end with the store).
                    let run = store.run_concurrent(async move |store| {
                        command.wasi_cli_run().call_run(store).await
                    });
                    with_timeout(limits.timeout, run).await?.and_then(|r| r)
                }
            };
        match result {
            Ok(Ok(())) => Ok(ExitStatus { code: 0 }),
            Ok(Err(())) => Ok(ExitStatus { code: 1 }),
            Err(error) => {
                if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
                    return Ok(ExitStatus { code: exit.0 });
                }
                Err(self.guest_error(&error, limits, store.data()))
            }
        }
    }

    /// Pre-initializes `component` (Wizer, build time): instantiates it with no capability
    /// (stdout and stderr captured), calls its export `init_func` (a component function
    /// `func()`, [`DEFAULT_INIT_FUNC`] by convention), and returns the component with the
    /// memories and globals that call left as their initial state, so the work is not
    /// repeated at every start. The export is kept (see `wasmtime-wizer`'s
    /// `keep_init_func`). Limits apply as to a run.
    ///
    /// The caller validates the result (Wizer checks its output only in debug builds).
    ///
    /// # Errors
    ///
    /// [`Error::Preinit`] when Wizer refuses the component (no such export, instructions it
    /// cannot snapshot) or the export is not `func()`; [`Error::Instantiate`]; a trap or a
    /// limit as for [`Runtime::run_command`]. Each carries what the guest wrote.
    #[cfg(feature = "compiler")]
    pub async fn preinitialize(
        &self,
        component: &[u8],
        init_func: &str,
        limits: &Limits,
    ) -> Result<Vec<u8>, Error> {
        let capture = OutputCapture::new(PREINIT_OUTPUT_CAPACITY);
        let caps = Capabilities {
            args: vec![init_func.to_string()],
            capture: Some(capture.clone()),
            ..Capabilities::default()
        };
        let mut store = self.new_store(&caps, limits)?;
        self.arm_timeout(&mut store, limits.timeout);
        // Wizer parses the component itself: define both versions.
        let linker = self.wasi_linker(None)?;
        let mut wizer = wasmtime_wizer::Wizer::new();
        // Wizer 48 also drops the core export named like the function, which wit-bindgen's
        // lifting refers to (wasmtime#13168): keeping it keeps the component valid.
        wizer.init_func(init_func).keep_init_func(true);
        let run = wizer.run_component(
            &mut store,
            component,
            async |store: &mut Store<HostState>, component: &Component| {
                linker.instantiate_async(store, component).await
            },
        );
        let result = with_timeout(limits.timeout, run).await;
        let output = String::from_utf8_lossy(&capture.contents()).into_owned();
        let source: BoxError = match result {
            Ok(Ok((bytes, _results))) => return Ok(bytes),
            Ok(Err(error)) => {
                let stopped = error.downcast_ref::<wasmtime::Trap>().is_some()
                    || store.data().limiter.limit_error(limits).is_some();
                if stopped {
                    Box::new(self.guest_error(&error, limits, store.data()))
                } else {
                    format!("{error:#}").into()
                }
            }
            Err(timeout) => Box::new(timeout),
        };
        Err(Error::Preinit { source, output })
    }

    /// A linker with the WASI versions `component` imports, 0.2, 0.3 or both (a 0.3 command
    /// built with Rust's std also imports 0.2's interfaces; the versions never collide), or
    /// both for `None`. Each version is a few hundred host functions to define, a good part
    /// of a cached run's time, so a run defines only what its component can use.
    fn wasi_linker(&self, component: Option<&Component>) -> Result<Linker<HostState>, Error> {
        let (p2, p3) = component.map_or((true, true), |c| wasi_versions(&self.engine, c));
        let mut linker = Linker::<HostState>::new(&self.engine);
        if p2 {
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)
                .map_err(|e| Error::Instantiate(e.into()))?;
        }
        if p3 {
            wasmtime_wasi::p3::add_to_linker(&mut linker)
                .map_err(|e| Error::Instantiate(e.into()))?;
        }
        Ok(linker)
    }

    /// Ends the store's run once `timeout` has passed (one increment of the epoch).
    fn arm_timeout(&self, store: &mut Store<HostState>, timeout: Option<Duration>) {
        if let Some(timeout) = timeout {
            store.set_epoch_deadline(1);
            let engine = self.engine.clone();
            std::thread::spawn(move || {
                std::thread::sleep(timeout);
                engine.increment_epoch();
            });
        }
    }

    /// A store for one guest run: WASI context from `caps` (stdio inherited), the memory
    /// limiter, fuel, and epoch interruption armed (the deadline is the caller's; none set
    /// here means "never").
    fn new_store(&self, caps: &Capabilities, limits: &Limits) -> Result<Store<HostState>, Error> {
        let mut builder = WasiCtx::builder();
        builder.inherit_stdio().args(&caps.args);
        if let Some(capture) = &caps.capture {
            builder.stdout(capture.0.clone()).stderr(capture.0.clone());
        }
        if caps.inherit_network {
            builder
                .inherit_network()
                .allow_tcp(true)
                .allow_udp(true)
                .allow_ip_name_lookup(true);
        }
        for (key, value) in &caps.env {
            builder.env(key, value);
        }
        for preopen in &caps.preopens {
            // Check first so the error names the path and says what is wrong with it;
            // Wasmtime's own error carries neither.
            let meta = std::fs::metadata(&preopen.host).map_err(|source| Error::Preopen {
                host: preopen.host.clone(),
                source,
            })?;
            if !meta.is_dir() {
                return Err(Error::Preopen {
                    host: preopen.host.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotADirectory,
                        "not a directory",
                    ),
                });
            }
            let perms = if preopen.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder
                .preopened_dir(&preopen.host, &preopen.guest, perms)
                .map_err(|e| Error::Preopen {
                    host: preopen.host.clone(),
                    source: std::io::Error::other(format!("{e:#}")),
                })?;
        }
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_handles);
        let state = HostState {
            ctx: builder.build(),
            table,
            limiter: StoreLimiter::new(limits),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            hooks: serve::NetworkHooks {
                allow_outgoing: caps.inherit_network,
            },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_max_component_handles(limits.max_handles);
        if let Some(fuel) = limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| Error::Engine(format!("fuel: {e:#}").into()))?;
        }
        store.epoch_deadline_trap();
        // "Never": far beyond any epoch a process reaches (the deadline is added to the
        // engine's current epoch, so u64::MAX would overflow once the epoch has moved).
        store.set_epoch_deadline(NO_DEADLINE);
        Ok(store)
    }

    /// Names what stopped a guest: a limit (by the trap and the store's limiter) or a trap.
    fn guest_error(&self, error: &wasmtime::Error, limits: &Limits, state: &HostState) -> Error {
        let backtrace = error
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .map(|bt| bt.to_string())
            .unwrap_or_default();
        let trap = error.downcast_ref::<wasmtime::Trap>().copied();
        match (trap, *limits) {
            (
                Some(wasmtime::Trap::Interrupt),
                Limits {
                    timeout: Some(limit),
                    ..
                },
            ) => Error::Timeout { limit },
            (
                Some(wasmtime::Trap::OutOfFuel),
                Limits {
                    fuel: Some(fuel), ..
                },
            ) => Error::FuelExhausted { fuel },
            (Some(wasmtime::Trap::StackOverflow), _) => Error::StackExhausted {
                limit: self.max_wasm_stack,
                backtrace,
            },
            _ => match state.limiter.limit_error(limits) {
                Some(limit) => limit,
                None => {
                    let trap = match trap {
                        Some(trap) => trap.to_string(),
                        None => format!("{:#}", error.root_cause()),
                    };
                    Error::Trap { trap, backtrace }
                }
            },
        }
    }
}

/// Which `wasi:cli/command` a component is, by its `run` export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommandWorld {
    /// `wasi:cli/run@0.2.x` (or unversioned): a synchronous `run`.
    P2,
    /// `wasi:cli/run@0.3.x`: an `async` `run`, WASI 0.3.
    P3,
}

fn command_world(exports: &[String]) -> Option<CommandWorld> {
    exports.iter().find_map(|e| {
        if e == "wasi:cli/run" || e.starts_with("wasi:cli/run@0.2.") {
            Some(CommandWorld::P2)
        } else if e.starts_with("wasi:cli/run@0.3.") {
            Some(CommandWorld::P3)
        } else {
            None
        }
    })
}

/// Awaits `run`, bounded by `timeout` for the time spent waiting in host calls (wasm code
/// itself is stopped by the epoch deadline).
async fn with_timeout<T>(
    timeout: Option<Duration>,
    run: impl std::future::Future<Output = T>,
) -> Result<T, Error> {
    match timeout {
        Some(limit) => tokio::time::timeout(limit, run)
            .await
            .map_err(|_| Error::Timeout { limit }),
        None => Ok(run.await),
    }
}

/// The store's data: the WASI context, the resource table it uses, and the memory limiter.
struct HostState {
    ctx: WasiCtx,
    table: ResourceTable,
    limiter: StoreLimiter,
    http: wasmtime_wasi_http::WasiHttpCtx,
    hooks: serve::NetworkHooks,
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Enforces [`Limits::max_memory`] over the total of all linear memories in the store and
/// [`Limits::max_table_elements`] over the total of all tables, and bounds how many
/// instances, tables and memories a run may create.
///
/// Totals use checked arithmetic: with memory64 and multi-memory a guest can ask one memory
/// to grow by nearly 2^64 bytes, and a growth whose total does not fit in `usize` is refused,
/// never wrapped. A growth past the memory's or table's own maximum is refused here (not
/// counted, not a limit): Wasmtime would refuse it after the limiter. Growth granted here
/// that Wasmtime then fails to perform (the host is out of memory) stays counted: Wasmtime
/// also reports failures no `*_growing` call preceded, so "taking back the last grant"
/// could be replayed to undo growth that did happen.
struct StoreLimiter {
    max_memory: Option<usize>,
    memory: usize,
    max_table_elements: usize,
    table_elements: usize,
    /// The last growth refused by a limit.
    refused: Option<Refused>,
}

/// A growth a limit refused: the total asked for (`usize::MAX` when it did not fit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Memory(usize),
    Table(usize),
}

impl StoreLimiter {
    fn new(limits: &Limits) -> Self {
        StoreLimiter {
            max_memory: limits.max_memory,
            memory: 0,
            max_table_elements: limits.max_table_elements,
            table_elements: 0,
            refused: None,
        }
    }

    /// The limit error for a guest that failed after a growth was refused, if one was.
    fn limit_error(&self, limits: &Limits) -> Option<Error> {
        match (self.refused?, limits.max_memory) {
            (Refused::Memory(requested), Some(limit)) => {
                Some(Error::MemoryLimit { limit, requested })
            }
            (Refused::Memory(_), None) => None,
            (Refused::Table(requested), _) => Some(Error::TableLimit {
                limit: limits.max_table_elements,
                requested,
            }),
        }
    }
}

/// `total + (desired - current)`, or `None` when it does not fit in `usize`.
fn grown_total(total: usize, current: usize, desired: usize) -> Option<usize> {
    total.checked_add(desired.saturating_sub(current))
}

impl wasmtime::ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        let wanted = grown_total(self.memory, current, desired);
        match (wanted, self.max_memory) {
            (Some(wanted), max) if max.is_none_or(|max| wanted <= max) => {
                self.memory = wanted;
                Ok(true)
            }
            (wanted, Some(_)) => {
                self.refused = Some(Refused::Memory(wanted.unwrap_or(usize::MAX)));
                Ok(false)
            }
            // No limit, but a total past the address space: no growth can succeed.
            (_, None) => Ok(false),
        }
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        match grown_total(self.table_elements, current, desired) {
            Some(wanted) if wanted <= self.max_table_elements => {
                self.table_elements = wanted;
                Ok(true)
            }
            wanted => {
                self.refused = Some(Refused::Table(wanted.unwrap_or(usize::MAX)));
                Ok(false)
            }
        }
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// The cache key of a component's bytes: hex BLAKE3, 64 characters.
///
/// BLAKE3 (<https://github.com/BLAKE3-team/BLAKE3-specs>) rather than SHA-256: both are
/// collision-resistant, but the key is computed over the whole component (bundled files
/// included) at every start-up, and on a CPU without SHA extensions BLAKE3 is several times
/// faster.
fn component_digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// An on-disk cache of precompiled components.
///
/// Layout: `<root>/wasmtime-<version>/<engine hash>/<blake3 of component>.cwasm`, where the
/// engine hash covers every setting that affects compiled code
/// ([`Engine::precompile_compatibility_hash`]). Entries are written atomically (temporary file
/// then rename), so concurrent runs never see half a file.
pub struct CodeCache {
    dir: PathBuf,
}

impl CodeCache {
    #[cfg(feature = "compiler")]
    fn new(root: &Path, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = root
            .join(format!("wasmtime-{}", wasmtime_version()))
            .join(format!("{:016x}", hasher.finish()));
        CodeCache { dir }
    }

    /// The directory entries of this engine live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file for a component with the hex BLAKE3 `digest` ([`LoadedComponent::digest`]).
    pub fn entry(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.cwasm"))
    }

    #[cfg(feature = "compiler")]
    fn store(&self, digest: &str, component: &Component) -> Result<PathBuf, Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Cache { path, source }
        };
        let bytes = component.serialize().map_err(|e| {
            Error::Compile(format!("failed to serialize compiled code: {e:#}").into())
        })?;
        fs_err::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io(&self.dir))?;
        std::io::Write::write_all(&mut tmp, &bytes).map_err(io(tmp.path()))?;
        let path = self.entry(digest);
        tmp.persist(&path).map_err(|e| Error::Cache {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(path)
    }
}

/// `text` on one line: Wasmtime's reasons can span several (`{:#}` of a chain).
#[cfg(not(feature = "compiler"))]
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Which WASI versions `component` imports, as (0.2, 0.3): the versions of its `wasi:`
/// imports (`wasi:cli/stdout@0.2.6`, `wasi:cli/stdout@0.3.0-rc-2025-09-16`).
fn wasi_versions(engine: &Engine, component: &Component) -> (bool, bool) {
    let mut versions = (false, false);
    for (name, _) in component.component_type().imports(engine) {
        let version = name
            .strip_prefix("wasi:")
            .and_then(|n| n.split_once('@'))
            .map_or("", |(_, v)| v);
        if version.starts_with("0.2.") {
            versions.0 = true;
        } else if version.starts_with("0.3.") {
            versions.1 = true;
        }
    }
    versions
}

/// The function pre-initialization calls unless told otherwise: Wizer's convention, a
/// component export `wizer-initialize: func()`.
pub const DEFAULT_INIT_FUNC: &str = "wizer-initialize";

/// Bytes of output kept from a guest's pre-initialization (more traps the guest).
#[cfg(feature = "compiler")]
const PREINIT_OUTPUT_CAPACITY: usize = 64 * 1024;

/// The target triple kiln itself was built for, which is the host's.
#[cfg(feature = "compiler")]
fn host_triple() -> String {
    target_lexicon::Triple::host().to_string()
}

/// The version of the embedded Wasmtime (the crate version kiln is built against).
pub fn wasmtime_version() -> &'static str {
    // Keep in step with the `=48.0.8` pin in the workspace Cargo.toml; a unit test checks it.
    "48.0.8"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasmtime_version_matches_the_lockfile() {
        let lock = include_str!("../../Cargo.lock");
        let needle = format!("name = \"wasmtime\"\nversion = \"{}\"", wasmtime_version());
        assert!(
            lock.contains(&needle),
            "Cargo.lock does not pin wasmtime {}",
            wasmtime_version()
        );
    }

    fn trap_component() -> Vec<u8> {
        wat::parse_str(
            r#"(component
                (core module $m (func $boom (export "run") (result i32) unreachable))
                (core instance $i (instantiate $m))
                (func $run (result (result)) (canon lift (core func $i "run")))
                (instance $inst (export "run" (func $run)))
                (export "wasi:cli/run@0.2.0" (instance $inst)))"#,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_trap_is_an_error_with_a_backtrace_and_the_cache_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let bytes = trap_component();

        let first = runtime.load(&bytes).unwrap();
        let CodeSource::Compiled {
            cached_at: Some(path),
            ..
        } = &first.source
        else {
            panic!("first load should compile and cache: {:?}", first.source);
        };
        assert!(path.starts_with(runtime.cache().unwrap().dir()));
        let second = runtime.load(&bytes).unwrap();
        assert_eq!(second.source, CodeSource::Cache(path.clone()));

        match runtime
            .run_command(&second, &Capabilities::default(), &Limits::default())
            .await
        {
            Err(Error::Trap { trap, backtrace }) => {
                assert!(trap.contains("unreachable"), "{trap}");
                assert!(backtrace.contains("boom"), "{backtrace}");
            }
            other => panic!("expected a trap, got {:?}", other.map(|s| s.code)),
        }
    }

    #[tokio::test]
    async fn a_damaged_cache_entry_is_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let bytes = trap_component();
        let loaded = runtime.load(&bytes).unwrap();
        let path = runtime.cache().unwrap().entry(&loaded.digest);
        std::fs::write(&path, b"garbage").unwrap();
        let again = runtime.load(&bytes).unwrap();
        assert!(matches!(again.source, CodeSource::Compiled { .. }));
        assert!(
            std::fs::read(&path).unwrap().len() > 7,
            "the damaged entry was replaced"
        );
    }

    #[test]
    fn a_component_file_is_served_from_the_cache_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().join("cache")),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let file = dir.path().join("app.wasm");
        let first = command("i32.const 0");
        std::fs::write(&file, &first).unwrap();

        let compiled = runtime.load_file(&file).unwrap();
        assert!(matches!(compiled.source, CodeSource::Compiled { .. }));
        assert_eq!(compiled.digest, blake3::hash(&first).to_hex().as_str());
        let cached = runtime.load_file(&file).unwrap();
        let entry = runtime.cache().unwrap().entry(&compiled.digest);
        assert_eq!(cached.source, CodeSource::Cache(entry));
        assert_eq!(
            runtime.load(&first).unwrap().digest,
            cached.digest,
            "bytes and file give one key"
        );

        // Same length, other contents: a new digest, compiled again, never the stale code.
        let second = command("i32.const 1");
        assert_eq!(first.len(), second.len());
        std::fs::write(&file, &second).unwrap();
        let recompiled = runtime.load_file(&file).unwrap();
        assert!(matches!(recompiled.source, CodeSource::Compiled { .. }));
        assert_ne!(recompiled.digest, compiled.digest);

        let missing = runtime.load_file(&dir.path().join("missing.wasm"));
        assert!(
            matches!(&missing, Err(Error::Read { path, .. }) if path.ends_with("missing.wasm")),
            "{:?}",
            missing.err()
        );
    }

    /// A command component whose `run` executes `body` (core WAT instructions leaving an
    /// i32), with one page of memory and a recursive helper `$recurse`.
    fn command(body: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(component
                (core module $m
                  (memory 1)
                  (func $recurse (param i32) (result i32) local.get 0 i32.const 1 i32.add call $recurse)
                  (func (export "run") (result i32) {body}))
                (core instance $i (instantiate $m))
                (func $run (result (result)) (canon lift (core func $i "run")))
                (instance $inst (export "run" (func $run)))
                (export "wasi:cli/run@0.2.0" (instance $inst)))"#
        ))
        .unwrap()
    }

    async fn run_with(
        config: RuntimeConfig,
        bytes: &[u8],
        limits: Limits,
    ) -> Result<ExitStatus, Error> {
        let runtime = Runtime::new(config).unwrap();
        let loaded = runtime.load(bytes).unwrap();
        runtime
            .run_command(&loaded, &Capabilities::default(), &limits)
            .await
    }

    #[tokio::test]
    async fn an_infinite_loop_stops_at_the_timeout() {
        let limits = Limits {
            timeout: Some(Duration::from_millis(200)),
            ..Limits::default()
        };
        let err = run_with(
            RuntimeConfig::default(),
            &command("(loop br 0) i32.const 0"),
            limits,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert_eq!(err.exit_code(), Some(TIMEOUT_EXIT_CODE));
        assert_eq!(
            err.to_string(),
            "the guest ran longer than its time limit of 200ms and was stopped"
        );
    }

    #[tokio::test]
    async fn fuel_runs_out_deterministically() {
        let config = RuntimeConfig {
            fuel: true,
            ..RuntimeConfig::default()
        };
        let limits = Limits {
            fuel: Some(10_000),
            ..Limits::default()
        };
        for _ in 0..3 {
            let err = run_with(config.clone(), &command("(loop br 0) i32.const 0"), limits)
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::FuelExhausted { fuel: 10_000 }),
                "{err}"
            );
            assert_eq!(err.exit_code(), Some(FUEL_EXIT_CODE));
        }
        // Enough fuel: the guest finishes.
        let ok = run_with(config, &command("i32.const 0"), limits)
            .await
            .unwrap();
        assert_eq!(ok.code, 0);
    }

    #[tokio::test]
    async fn memory_growth_past_the_limit_stops_the_guest() {
        // Grow by 16 pages (1 MiB) until refused, then trap as an allocator would.
        let body = "(block (loop (br_if 1 (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br 0))) unreachable";
        let limits = Limits {
            max_memory: Some(4 << 20),
            ..Limits::default()
        };
        let err = run_with(RuntimeConfig::default(), &command(body), limits)
            .await
            .unwrap_err();
        match &err {
            Error::MemoryLimit { limit, requested } => {
                assert_eq!(*limit, 4 << 20);
                assert!(*requested > 4 << 20);
            }
            other => panic!("expected MemoryLimit, got {other}"),
        }
        assert_eq!(err.exit_code(), Some(MEMORY_EXIT_CODE));
        // Without a limit the same guest is an ordinary trap once the 4 GiB address space is
        // used up — not exercised here; a small grow without a limit simply succeeds.
        let ok = run_with(
            RuntimeConfig::default(),
            &command("(drop (memory.grow (i32.const 16))) i32.const 0"),
            limits,
        )
        .await
        .unwrap();
        assert_eq!(ok.code, 0);
    }

    #[tokio::test]
    async fn unbounded_recursion_exhausts_the_stack() {
        let config = RuntimeConfig {
            max_wasm_stack: Some(64 * 1024),
            ..RuntimeConfig::default()
        };
        let err = run_with(
            config,
            &command("i32.const 0 call $recurse"),
            Limits::default(),
        )
        .await
        .unwrap_err();
        match &err {
            Error::StackExhausted { limit, backtrace } => {
                assert_eq!(*limit, 64 * 1024);
                assert!(backtrace.contains("recurse"), "{backtrace}");
                // Wasmtime keeps a bounded number of frames, however deep the recursion.
                assert!(backtrace.lines().count() < 80, "{backtrace}");
            }
            other => panic!("expected StackExhausted, got {other}"),
        }
        assert_eq!(err.exit_code(), Some(STACK_EXIT_CODE));
    }

    #[test]
    fn a_run_links_the_wasi_versions_its_imports_name() {
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let versions = |imports: &str| {
            let bytes = wat::parse_str(format!("(component {imports})")).unwrap();
            let component = Component::new(&runtime.engine, bytes).unwrap();
            wasi_versions(&runtime.engine, &component)
        };
        assert_eq!(versions(""), (false, false));
        assert_eq!(
            versions(r#"(import "wasi:cli/environment@0.2.6" (instance))"#),
            (true, false)
        );
        assert_eq!(
            versions(
                r#"(import "wasi:cli/stdout@0.3.0-rc-2025-09-16" (instance))
                   (import "wasi:io/streams@0.2.0" (instance))"#
            ),
            (true, true)
        );
        // Another package's version, or none, says nothing about WASI.
        assert_eq!(
            versions(
                r#"(import "acme:math/ops@0.3.0" (instance))
                   (import "wasi:cli/stdout" (instance))"#
            ),
            (false, false)
        );
    }

    #[tokio::test]
    async fn portable_precompiled_code_loads_on_the_host_and_runs() {
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let bytes = command("i32.const 0");
        let code = runtime.precompile_portable(&bytes).unwrap();
        // SAFETY: made by precompile_portable just above.
        let loaded = unsafe { runtime.load_precompiled(&code, &bytes) }.unwrap();
        assert_eq!(loaded.source, CodeSource::Embedded);
        let status = runtime
            .run_command(&loaded, &Capabilities::default(), &Limits::default())
            .await
            .unwrap();
        assert_eq!(status.code, 0);

        // Code for other settings (fuel metering) does not fit: the component is compiled.
        let fueled = Runtime::new(RuntimeConfig {
            fuel: true,
            ..RuntimeConfig::default()
        })
        .unwrap();
        // SAFETY: as above.
        let loaded = unsafe { fueled.load_precompiled(&code, &bytes) }.unwrap();
        assert!(
            matches!(loaded.source, CodeSource::Recompiled { .. }),
            "{:?}",
            loaded.source
        );
    }

    #[test]
    fn the_limiter_refuses_totals_that_do_not_fit() {
        use wasmtime::ResourceLimiter;
        const PAGE: usize = 65536;
        let limits = Limits {
            max_memory: Some(8 << 20),
            max_table_elements: 100,
            ..Limits::default()
        };
        let mut limiter = StoreLimiter::new(&limits);
        assert!(limiter.memory_growing(0, PAGE, None).unwrap());
        assert!(limiter.memory_growing(0, PAGE, None).unwrap());
        // The second memory asks for all but 64 KiB of the address space: unchecked, the
        // total would wrap to zero.
        assert!(
            !limiter
                .memory_growing(PAGE, usize::MAX - PAGE + 1, None)
                .unwrap()
        );
        assert_eq!(limiter.refused, Some(Refused::Memory(usize::MAX)));
        assert_eq!(limiter.memory, 2 * PAGE);
        assert!(matches!(
            limiter.limit_error(&limits),
            Some(Error::MemoryLimit { limit, requested: usize::MAX }) if limit == 8 << 20
        ));
        // Past a memory's own maximum: refused, not counted, not a limit.
        let mut fresh = StoreLimiter::new(&limits);
        assert!(!fresh.memory_growing(0, 2 * PAGE, Some(PAGE)).unwrap());
        assert_eq!((fresh.memory, fresh.refused), (0, None));

        // No memory limit: a total that does not fit is still refused.
        let mut unlimited = StoreLimiter::new(&Limits::default());
        assert!(
            unlimited
                .memory_growing(0, usize::MAX - PAGE, None)
                .unwrap()
        );
        assert!(!unlimited.memory_growing(0, 2 * PAGE, None).unwrap());
        assert!(unlimited.limit_error(&Limits::default()).is_none());

        // Tables: a total over the limit, or one that does not fit, is refused.
        assert!(limiter.table_growing(0, 60, None).unwrap());
        assert!(!limiter.table_growing(0, 41, None).unwrap());
        assert!(limiter.table_growing(0, 40, None).unwrap());
        assert!(!limiter.table_growing(0, usize::MAX, None).unwrap());
        assert_eq!(limiter.table_elements, 100);
        assert!(matches!(
            limiter.limit_error(&limits),
            Some(Error::TableLimit {
                limit: 100,
                requested: usize::MAX
            })
        ));
        let mut tables = StoreLimiter::new(&Limits {
            max_table_elements: usize::MAX,
            ..Limits::default()
        });
        assert!(tables.table_growing(0, usize::MAX, None).unwrap());
        assert!(!tables.table_growing(0, 1, None).unwrap());
    }

    #[test]
    fn a_wasm_stack_out_of_range_is_an_error_not_a_wrap() {
        for stack in [
            usize::MAX,
            usize::MAX - HOST_STACK_HEADROOM + 1,
            1 << 40,
            1024,
        ] {
            let result = Runtime::new(RuntimeConfig {
                max_wasm_stack: Some(stack),
                ..RuntimeConfig::default()
            });
            match result {
                Err(Error::InvalidLimit(message)) => {
                    assert!(message.contains("between 16KiB and 1GiB"), "{message}")
                }
                Err(other) => panic!("{stack}: expected InvalidLimit, got {other}"),
                Ok(_) => panic!("{stack}: accepted"),
            }
        }
        assert!(
            Runtime::new(RuntimeConfig {
                max_wasm_stack: Some(MAX_WASM_STACK),
                ..RuntimeConfig::default()
            })
            .is_ok()
        );
    }

    #[tokio::test]
    async fn a_component_without_run_is_not_a_command() {
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let bytes = wat::parse_str(
            r#"(component
                (core module $m (func (export "f") (result i32) i32.const 1))
                (core instance $i (instantiate $m))
                (func $f (result s32) (canon lift (core func $i "f")))
                (export "answer" (func $f)))"#,
        )
        .unwrap();
        let loaded = runtime.load(&bytes).unwrap();
        match runtime
            .run_command(&loaded, &Capabilities::default(), &Limits::default())
            .await
        {
            Err(Error::NotACommand { exports }) => assert_eq!(exports, ["answer"]),
            other => panic!("expected NotACommand, got {:?}", other.map(|s| s.code)),
        }
    }
}
