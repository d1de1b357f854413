//! Guest toolchain drivers: each turns a project into a core module or a component.

pub mod c;
pub mod go;
pub mod rust;
