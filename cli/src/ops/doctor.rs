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
    let runner = crate::ops::exe::runner_path();
    let found = runner.as_ref().is_some_and(|r| r.is_file());
    checks.push(Check {
        name: "kiln-runner".into(),
        path: runner.filter(|_| found),
        detail: if found {
            "found (for `kiln build --exe`)".into()
        } else {
            "missing (needed by `kiln build --exe`)".into()
        },
        ok: found,
        fix: (!found).then(|| "reinstall kiln with ./install.sh, or set KILN_RUNNER".into()),
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
