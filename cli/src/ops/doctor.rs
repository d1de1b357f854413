//! `kiln doctor`: what each guest toolchain kiln drives looks like on this machine.

use crate::driver::{Check, Driver};
use crate::shell::Shell;

/// Runs every check.
pub fn checks() -> Vec<Check> {
    let mut checks = Vec::new();

    for driver in Driver::ALL {
        checks.extend(driver.probe());
    }

    // Built in, and the runner beside kiln.
    checks.push(Check {
        name: "wasm-opt".into(),
        path: None,
        detail: "built in (binaryen version_116)".into(),
        ok: true,
        fix: None,
    });
    let (path, found) = match crate::ops::exe::find_runner() {
        Ok(crate::ops::exe::Runner::File(path)) => (Some(path), true),
        Ok(crate::ops::exe::Runner::Builtin) => (None, true),
        Err(_) => (None, false),
    };
    checks.push(Check {
        name: "kiln-runner".into(),
        detail: match (&path, found) {
            (_, false) => "KILN_RUNNER names a file that does not exist".into(),
            (Some(_), true) => "from KILN_RUNNER (for `kiln build --exe`)".into(),
            (None, true) => format!(
                "built in ({}, runtime only; for `kiln build --exe`)",
                crate::shell::human_size(crate::ops::exe::builtin_runner_size())
            ),
        },
        path,
        ok: found,
        fix: (!found).then(|| "unset KILN_RUNNER, or point it at a kiln-runner".into()),
    });
    checks
}

/// Prints the report. Never fails: a missing toolchain is a finding, not an error.
pub fn doctor(shell: &Shell) {
    for check in checks() {
        shell.emit(crate::messages::Toolchain {
            name: check.name,
            ok: check.ok,
            path: check.path,
            detail: check.detail,
            fix: check.fix,
        });
    }
}
