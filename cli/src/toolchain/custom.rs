//! The custom driver (`language = "custom"`): a toolchain kiln does not drive itself, as
//! Spin's and wash's `[component.build] command`. kiln runs `[build] command` in the project
//! directory with these variables set, then takes `[build] output`:
//!
//! | variable | value |
//! |---|---|
//! | `KILN_PROFILE` | `debug` or `release` |
//! | `KILN_OUT_DIR` | a scratch directory of kiln's for this build (absolute, created) |
//! | `KILN_PROJECT_DIR` | the project directory (absolute) |
//! | `KILN_COMPONENT_NAME` | the component name |
//!
//! A core module is componentized with the preview1 adapter (with `[build] world` for a
//! library); a component is taken as it is. kiln's own pipeline (strip, optimize, bundle,
//! metadata, `--exe`) follows as for every driver. With `[build] inputs`, the command runs
//! only when one of those files changed (size or modification time), the command itself
//! changed, or the output is gone.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::driver::Profile;
use crate::errors::hinted;
use crate::manifest::Build;
use crate::shell::Shell;

/// Runs the custom build; returns the component it made (or found fresh).
///
/// # Errors
///
/// The command cannot be started or fails (its output is shown as it printed it), it wrote
/// no `output`, or the output is not WebAssembly.
pub fn build(
    shell: &Shell,
    root: &Path,
    name: &str,
    build: &Build,
    profile: Profile,
) -> anyhow::Result<PathBuf> {
    let (Some(command), Some(output)) = (&build.command, &build.output) else {
        bail!("`language = \"custom\"` needs `[build] command` and `[build] output`");
    };
    let command = command.get_ref();
    let Some((program, args)) = command.split_first() else {
        bail!("`[build] command` is empty");
    };
    let output = root.join(output.get_ref());
    let work = crate::driver::work_dir(root, profile, "custom", name)?;
    let stamp_path = work.join("inputs.stamp");
    let stamp = inputs_stamp(root, &build.inputs, command, profile)?;
    let fresh =
        stamp.is_some() && output.is_file() && std::fs::read_to_string(&stamp_path).ok() == stamp;
    if fresh {
        shell.verbose_status("Fresh", format_args!("{name} (no input changed)"));
    } else {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(root)
            .env("KILN_PROFILE", profile.dir_name())
            .env("KILN_OUT_DIR", &work)
            .env("KILN_PROJECT_DIR", root)
            .env("KILN_COMPONENT_NAME", name);
        shell.status(
            "Running",
            format_args!("`{}` for {name}", command.join(" ")),
        );
        let out = crate::signals::output(&mut cmd).map_err(|e| {
            hinted(
                format!("cannot run `{program}` (`[build] command`): {e}"),
                "the command is run as given, without a shell: name the program first, \
                 such as `[\"sh\", \"build.sh\"]`",
            )
        })?;
        for text in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(text);
            if !text.trim().is_empty() {
                shell.forward_stderr_always(&text);
            }
        }
        if !out.status.success() {
            bail!(
                "the build command `{}` failed ({})",
                command.join(" "),
                out.status
            );
        }
        if !output.is_file() {
            bail!(
                "the build command `{}` did not write `{}` (`[build] output`)",
                command.join(" "),
                output.display()
            );
        }
        if let Some(stamp) = &stamp {
            crate::fsutil::write_atomic(&stamp_path, stamp.as_bytes())?;
        }
    }
    let mut preamble = [0u8; 8];
    {
        use std::io::Read;
        let mut file = fs_err::File::open(&output)?;
        let read = file.read(&mut preamble)?;
        if read < preamble.len() {
            bail!("`{}` is not WebAssembly: it is too short", output.display());
        }
    }
    match kiln_componentize::detect(&preamble) {
        kiln_componentize::WasmKind::Component => Ok(output),
        kiln_componentize::WasmKind::CoreModule => {
            let component = work.join(format!("{name}.component.wasm"));
            let world = build.world.as_ref().map(|w| root.join(w));
            super::componentize(shell, name, &output, world.as_deref(), &component)?;
            Ok(component)
        }
        kiln_componentize::WasmKind::NotWasm => bail!(
            "`{}` (`[build] output`) is not WebAssembly",
            output.display()
        ),
    }
}

/// A digest of the inputs' sizes and modification times, the command and the profile; `None`
/// when there are no `inputs` (the command then runs on every build).
fn inputs_stamp(
    root: &Path,
    inputs: &[String],
    command: &[String],
    profile: Profile,
) -> anyhow::Result<Option<String>> {
    if inputs.is_empty() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for pattern in inputs {
        let full = root.join(pattern);
        let matches = glob::glob(&full.to_string_lossy())
            .with_context(|| format!("`[build] inputs`: `{pattern}` is not a valid glob"))?;
        for path in matches.flatten() {
            if path.is_file() && path.starts_with(root) {
                files.push(path);
            }
        }
    }
    files.sort();
    files.dedup();
    let mut hasher = Sha256::new();
    hasher.update(format!("{profile:?}\0{}\0", command.join("\0")));
    for file in &files {
        let meta = fs_err::metadata(file)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        hasher.update(format!("{}\0{}\0{mtime}\0", file.display(), meta.len()));
    }
    Ok(Some(hex::encode(hasher.finalize())))
}
