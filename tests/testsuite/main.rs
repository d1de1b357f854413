//! kiln's integration tests: each drives the real `kiln` binary, building real guests with
//! the real Rust toolchain and running them on the real Wasmtime.

mod support;

mod build;
mod bundle;
mod c;
mod capabilities;
mod cli_reference;
mod compose;
mod custom;
mod cxx;
mod errors;
mod example;
mod exe;
mod go;
mod hostile;
mod inspect;
mod invoke;
mod json_reference;
mod kiln_test;
mod limits;
mod new;
mod optimize;
mod p3;
mod preinit;
mod registry;
mod run;
mod sbom;
mod serve;
mod settings;
mod signals;
mod signing;
mod watch;
