//! `[release] preinit`: build-time pre-initialization with Wizer (`wasmtime-wizer`).
//!
//! The component is instantiated on kiln's Wasmtime with no capability (its output is
//! captured), its init export is called once, and the memories and globals that call left
//! become the component's initial state: start-up work (tables, parsed configuration, an
//! interpreter's boot) happens at build time instead of at every start.

use std::time::Duration;

use anyhow::Context;
use kiln_runtime::{Limits, Runtime, RuntimeConfig};

use crate::errors::hinted;

/// How long the init export may run at build time.
pub const PREINIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Linear memory the init export may use, all memories together (1 GiB): the snapshot of
/// that memory becomes the component's data, so this also bounds the output.
pub const PREINIT_MAX_MEMORY: usize = 1 << 30;

/// Pre-initializes `bytes` by calling its export `init_func`.
///
/// # Errors
///
/// The component has no such export (with a hint showing how to add one), Wizer refuses it,
/// or initialization traps or runs over [`PREINIT_TIMEOUT`] or [`PREINIT_MAX_MEMORY`]; the
/// error carries what the guest wrote.
pub fn preinitialize(name: &str, bytes: &[u8], init_func: &str) -> anyhow::Result<Vec<u8>> {
    let world = kiln_componentize::describe(bytes)
        .with_context(|| format!("cannot pre-initialize `{name}`"))?;
    if !world.exports.iter().any(|e| e == init_func) && !init_func.contains('.') {
        return Err(hinted(
            format!(
                "cannot pre-initialize `{name}`: it does not export `{init_func}` \
                 (`[release] preinit` calls it at build time)"
            ),
            format!(
                "export a `{init_func}: func()` from the component's world (in Rust: \
                 `wit_bindgen::generate!({{ inline: \"package local:init; world init {{ export {init_func}: func(); }}\" }})`), \
                 or name another export with `preinit = \"NAME\"`"
            ),
        ));
    }
    let limits = Limits {
        timeout: Some(PREINIT_TIMEOUT),
        max_memory: Some(PREINIT_MAX_MEMORY),
        ..Limits::default()
    };
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..RuntimeConfig::default()
    })?;
    // Its own thread and current-thread runtime: a build may run inside `kiln serve --watch`'s
    // async runtime, where blocking on another one is not allowed.
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let tokio = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("failed to start the async runtime")?;
                tokio
                    .block_on(runtime.preinitialize(bytes, init_func, &limits))
                    .map_err(anyhow::Error::from)
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("pre-initialization panicked")))
    });
    result.map_err(|error| {
        let output = match error.downcast_ref::<kiln_runtime::Error>() {
            Some(kiln_runtime::Error::Preinit { output, .. }) if !output.trim().is_empty() => {
                format!("; the guest wrote:\n{}", output.trim_end())
            }
            _ => String::new(),
        };
        error.context(format!(
            "cannot pre-initialize `{name}` by calling `{init_func}`{output}"
        ))
    })
}
