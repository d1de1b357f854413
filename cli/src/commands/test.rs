use std::path::PathBuf;

use crate::commands::run::GrantArgs;
use crate::settings::Environment;
use crate::shell::Shell;

/// Run the project's tests inside the sandbox they ship in: `cargo test` (or `go test`) for
/// WebAssembly, each test binary run on kiln's embedded Wasmtime.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln test                          # every test of the project here\n  \
kiln test parse                    # the tests whose names contain `parse`\n  \
kiln test --dir fixtures -- --exact parse::empty   # grant ./fixtures; libtest's --exact\n\n\
Rust: `cargo test --target wasm32-wasip2` with kiln as the target's runner, so cargo builds, \
filters and reports as it always does; each test binary (a component) gets Kiln.toml's `[run]` \
grants and limits plus the flags here, and nothing else (no directory, no variable, no network). Each \
test runs in an instance of its own, so a panic (which aborts on wasm) fails only its test; \
libtest's report is drawn by kiln from those runs (`#[should_panic]` tests cannot pass yet). \
Go: `go test` for GOOS=wasip1 GOARCH=wasm with kiln as `-exec`: each test binary is componentized \
with the preview1 adapter and run the same way. C projects have no test convention in kiln yet.\n\n\
Exit status: cargo's or go's (101 from cargo when a test fails, 1 from go); 1 when kiln fails \
before the tests run."
)]
pub struct Args {
    /// Run only the tests whose names contain FILTER (cargo's test filter; Go: `-run FILTER`).
    pub filter: Option<String>,

    #[command(flatten)]
    pub grants: GrantArgs,

    /// Build and test with the release profile.
    #[arg(short, long)]
    pub release: bool,

    /// Path to the project's Kiln.toml or Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,

    /// Arguments for the test binaries (libtest's `--exact`, `--ignored`, `--nocapture`…;
    /// Go's `-test.*` flags).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

pub fn exec(shell: &Shell, args: Args) -> anyhow::Result<i32> {
    let env = Environment::capture()?;
    let settings = crate::ops::test::TestSettings::resolve(
        args.manifest_path.as_deref(),
        args.release,
        args.grants.into_config(),
        args.filter,
        args.args,
        &env,
    )?;
    crate::ops::test::test(shell, &settings)
}

/// What cargo and go start for each test binary: `kiln test-runner BINARY [ARGS]`, with the
/// sandbox `kiln test` resolved in `KILN_TEST_SANDBOX`.
#[derive(Debug, clap::Args)]
pub struct RunnerArgs {
    /// The test binary: a component (Rust) or a WASI preview1 module (Go).
    pub binary: PathBuf,

    /// Its arguments, as cargo or go passes them.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

pub fn exec_runner(shell: &Shell, args: RunnerArgs) -> anyhow::Result<i32> {
    crate::ops::test::run_test_binary(shell, &args.binary, args.args)
}
