//! `kiln run --invoke`: call one export of a library component with arguments in WAVE and
//! report what it returned. The component is located, built and loaded as `kiln run` does
//! (a project, a `.wasm` file or a registry reference), with the same grants and limits.

use anyhow::Context;
use kiln_runtime::invoke::CallError;

use crate::errors::with_hint;
use crate::messages::Invoked;
use crate::ops::run::{Prepared, capabilities, prepare};
use crate::settings::RunSettings;
use crate::shell::Shell;

/// Calls `call` (`name(arguments)`) on the component `settings` names; returns the exit code
/// (0 once the function has returned, whatever it returned).
///
/// # Errors
///
/// What `kiln run` fails with before the guest runs; an unknown function, a wrong number of
/// arguments or an argument that is not a value of its parameter's type (listing the
/// exports); a trap or a limit (with its own exit code).
pub fn invoke(shell: &Shell, settings: &RunSettings, call: &str) -> anyhow::Result<i32> {
    let Prepared {
        runtime,
        loaded,
        shown,
        config,
        program_name,
    } = prepare(
        shell,
        settings,
        "`kiln run --invoke` calls the exports of components",
        false,
    )?;
    let prepared = runtime
        .prepare_call(&loaded, call)
        .map_err(|error| call_error(&shown, error))?;
    let function = prepared.function().clone();
    let capabilities = capabilities(&config, settings, program_name)?;
    shell.verbose_status(
        "Calling",
        format_args!("`{}` in `{shown}`", function.qualified()),
    );

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let returned = tokio
        .block_on(runtime.invoke(&loaded, &prepared, &capabilities, &config.limits()))
        .with_context(|| format!("failed to call `{}` in `{shown}`", function.qualified()))?;
    shell.emit(Invoked {
        function: function.qualified(),
        signature: function.signature.clone(),
        result: returned.wave,
        value: returned.json,
    });
    Ok(0)
}

/// A call that does not fit the component, with a hint listing its exports (or the
/// function called, with its signature).
fn call_error(shown: &str, error: CallError) -> anyhow::Error {
    let exports = error.exports();
    let hint = match (&error, exports.as_slice()) {
        (CallError::Syntax { .. }, _) => {
            "write the call in WAVE, as `wasmtime run --invoke` takes it: `add(40, 2)`, \
             `greet(\"wasm\")`, `acme:math/ops#area({width: 2, height: 3})`"
                .to_string()
        }
        (CallError::Ambiguous { .. }, _) => {
            "qualify the name with its interface: `<interface>#<function>`".to_string()
        }
        (CallError::UnknownFunction { .. }, []) => {
            format!("`{shown}` exports no functions")
        }
        (CallError::UnknownFunction { .. }, exports) => format!(
            "`{shown}` exports:\n{}",
            exports
                .iter()
                .map(|f| format!("  {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        (_, exports) => exports
            .iter()
            .map(|f| format!("it is `{f}`"))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    with_hint(error, hint)
}
