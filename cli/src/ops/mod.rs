//! The work behind each command. Commands resolve their arguments into an options struct and
//! call one function here.

pub mod build;
pub mod bundle;
pub mod compose;
pub mod doctor;
pub mod exe;
pub mod inspect;
pub mod invoke;
pub mod login;
pub mod new;
pub mod preinit;
pub mod provenance;
pub mod publish;
pub mod pull;
pub mod registry;
pub mod run;
pub mod sbom;
pub mod serve;
pub mod sign;
pub mod test;
pub mod watch;
pub mod wit_deps;
