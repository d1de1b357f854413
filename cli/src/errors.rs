//! Error values the CLI adds on top of `anyhow`: hints, and the rendering of an error chain
//! into `error:`, `Caused by:` and `hint:` parts (drawn by [`crate::shell::Shell::error`]).

use std::fmt;

/// An error that carries a suggestion for what to do next. Anywhere in an `anyhow` chain,
/// its hint is shown after the causes.
#[derive(Debug)]
pub struct Hinted {
    error: Box<dyn std::error::Error + Send + Sync + 'static>,
    hint: String,
}

/// An error with `message`, suggesting `hint`.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    let message: String = message.into();
    anyhow::Error::new(Hinted {
        error: message.into(),
        hint: hint.into(),
    })
}

/// `error` as it is (its message and its causes), suggesting `hint`.
pub fn with_hint(
    error: impl std::error::Error + Send + Sync + 'static,
    hint: impl Into<String>,
) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        error: Box::new(error),
        hint: hint.into(),
    })
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Hinted {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// An error chain split into the parts the shell draws.
pub struct Rendered {
    /// The outermost message.
    pub message: String,
    /// Each underlying cause, outermost first.
    pub causes: Vec<String>,
    /// Extra detail printed verbatim after the causes (a guest's wasm backtrace).
    pub detail: Option<String>,
    /// Suggestions, in chain order.
    pub hints: Vec<String>,
}

impl From<&anyhow::Error> for Rendered {
    fn from(error: &anyhow::Error) -> Self {
        let mut chain = error.chain();
        let message = chain.next().map(ToString::to_string).unwrap_or_default();
        // Errors that print their source in their own message (`cannot read x: denied`) would
        // show it twice: a cause already said by the line above is left out.
        let mut causes: Vec<String> = Vec::new();
        for cause in chain {
            let text = cause.to_string();
            let above = causes.last().unwrap_or(&message);
            if !above.ends_with(&text) {
                causes.push(text);
            }
        }
        let mut hints = Vec::new();
        let mut detail = None;
        for cause in error.chain() {
            if let Some(hinted) = cause.downcast_ref::<Hinted>() {
                hints.push(hinted.hint.clone());
            }
            if let Some(backtrace) = cause
                .downcast_ref::<kiln_runtime::Error>()
                .and_then(kiln_runtime::Error::backtrace)
            {
                detail = Some(backtrace.trim_end().to_string());
            }
        }
        Rendered {
            message,
            causes,
            detail,
            hints,
        }
    }
}

/// The process exit code for an error: [`kiln_runtime::TRAP_EXIT_CODE`] when a guest
/// trapped, 1 otherwise. (Usage errors exit with 2 from clap before any command runs.)
pub fn exit_code(error: &anyhow::Error) -> i32 {
    error
        .chain()
        .find_map(|c| {
            c.downcast_ref::<kiln_runtime::Error>()
                .and_then(kiln_runtime::Error::exit_code)
        })
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn hints_are_collected_from_anywhere_in_the_chain() {
        let err = Err::<(), _>(hinted(
            "target missing",
            "run `rustup target add wasm32-wasip2`",
        ))
        .context("failed to build `hello`")
        .unwrap_err();
        let r = Rendered::from(&err);
        assert_eq!(r.message, "failed to build `hello`");
        assert_eq!(r.causes, ["target missing"]);
        assert_eq!(r.hints, ["run `rustup target add wasm32-wasip2`"]);
        assert_eq!(exit_code(&err), 1);
    }

    #[test]
    fn a_hint_keeps_the_causes_of_the_error_it_is_added_to() {
        let io = std::io::Error::other("disk on fire");
        let error = kiln_runtime::Error::Cache {
            path: "/cache".into(),
            source: io,
        };
        let r = Rendered::from(&with_hint(error, "set KILN_CACHE_DIR"));
        assert_eq!(r.message, "compiled-code cache at `/cache`: disk on fire");
        assert!(r.causes.is_empty(), "said once: {:?}", r.causes);
        assert_eq!(r.hints, ["set KILN_CACHE_DIR"]);
        let err = with_hint(
            kiln_runtime::Error::Compile("bad magic".into()),
            "is it wasm?",
        );
        let r = Rendered::from(&err);
        assert_eq!(r.message, "failed to compile the component");
        assert_eq!(r.causes, ["bad magic"]);
    }

    #[test]
    fn traps_have_their_own_exit_code() {
        let err = anyhow::Error::new(kiln_runtime::Error::Trap {
            trap: "boom".into(),
            backtrace: "  0: f".into(),
        })
        .context("guest failed");
        assert_eq!(exit_code(&err), kiln_runtime::TRAP_EXIT_CODE);
        assert_eq!(Rendered::from(&err).detail.as_deref(), Some("  0: f"));
    }
}
