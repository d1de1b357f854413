//! docs/cli.md is generated from kiln's own `--help`; this test fails when they drift.
//! Regenerate with `KILN_BLESS=1 cargo test --test testsuite cli_reference`.

use crate::support::{Env, repo};

const COMMANDS: &[&str] = &[
    "new",
    "templates",
    "build",
    "run",
    "test",
    "serve",
    "publish",
    "pull",
    "login",
    "logout",
    "inspect",
    "doctor",
];

fn generate(env: &Env) -> String {
    let mut doc = String::from(
        "# kiln command-line reference\n\n\
         <!-- Generated from `kiln --help`; do not edit. Regenerate: KILN_BLESS=1 cargo test --test testsuite cli_reference -->\n\n",
    );
    let help = |args: &[&str]| env.kiln(args).env("COLUMNS", "100").run().success().stdout;
    doc.push_str(&format!("## kiln\n\n```text\n{}```\n", help(&["--help"])));
    for command in COMMANDS {
        doc.push_str(&format!(
            "\n## kiln {command}\n\n```text\n{}```\n",
            help(&[command, "--help"])
        ));
    }
    doc
}

#[test]
fn cli_reference_is_up_to_date() {
    let env = Env::new();
    let generated = generate(&env);
    let path = repo().join("docs/cli.md");
    if std::env::var_os("KILN_BLESS").is_some() {
        fs_err::write(&path, &generated).unwrap();
        return;
    }
    let current = fs_err::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "docs/cli.md is out of date; regenerate it with `KILN_BLESS=1 cargo test --test testsuite cli_reference`"
    );
}
