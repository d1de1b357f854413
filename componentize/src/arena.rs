//! A `cabi_realloc` for the WASI preview1 adapter that allocates from an arena the guest
//! reserved in its own data, for guests whose runtime owns all of linear memory past its
//! data (Go: `runtime.sbrk` grows memory from the end of its heap as it last knew it, so a
//! page the adapter takes with `memory.grow` ends up inside Go's heap and is overwritten).
//!
//! The guest declares a global byte array of [`ADAPTER_ARENA_SIZE`] bytes that starts with
//! [`ADAPTER_ARENA_MAGIC`] (kiln's Go glue does). [`add_arena_realloc`] finds it in the
//! module's active data segments and adds an exported `cabi_realloc` that bump-allocates
//! from the rest of it; wit-component hands that to the adapter, which allocates its state
//! and stack with it (two allocations of a 64 KiB page each). Running out traps.

use std::borrow::Cow;

use wasm_encoder::reencode::{self, Reencode};
use wasmparser::{DataKind, Operator, Parser, Payload};

use crate::Error;

/// The bytes the arena starts with (32 of them, so the arena proper stays aligned).
pub const ADAPTER_ARENA_MAGIC: &[u8; 32] = b"kiln:preview1-adapter-arena:v1\0\0";

/// The arena's size in bytes, magic included: three 64 KiB pages.
pub const ADAPTER_ARENA_SIZE: u32 = 3 * 65536;

/// Where, after the magic, the bump pointer is kept (0: nothing allocated yet).
const NEXT_OFFSET: u32 = 32;
/// Where, after the magic, allocations start.
const BASE_OFFSET: u32 = 64;

fn invalid(e: wasmparser::BinaryReaderError) -> Error {
    Error::Invalid {
        offset: e.offset(),
        message: e.message().to_string(),
    }
}

/// The linear-memory address of the arena in `core`, if one of its active data segments (at
/// a constant offset in memory 0) holds [`ADAPTER_ARENA_MAGIC`], and whether `core` already
/// exports `cabi_realloc`.
fn find(core: &[u8]) -> Result<(Option<u32>, bool), Error> {
    let mut address = None;
    let mut has_realloc = false;
    for payload in Parser::new(0).parse_all(core) {
        match payload.map_err(invalid)? {
            Payload::ExportSection(exports) => {
                for export in exports {
                    has_realloc |= export.map_err(invalid)?.name == "cabi_realloc";
                }
            }
            Payload::DataSection(data) => {
                for segment in data {
                    let segment = segment.map_err(invalid)?;
                    let DataKind::Active {
                        memory_index: 0,
                        offset_expr,
                    } = segment.kind
                    else {
                        continue;
                    };
                    let mut ops = offset_expr.get_operators_reader();
                    let Ok(Operator::I32Const { value }) = ops.read() else {
                        continue;
                    };
                    if let Some(at) = segment
                        .data
                        .windows(ADAPTER_ARENA_MAGIC.len())
                        .position(|w| w == ADAPTER_ARENA_MAGIC)
                    {
                        let at = u32::try_from(at).ok();
                        address = at.and_then(|at| (value as u32).checked_add(at));
                    }
                }
            }
            _ => {}
        }
    }
    Ok((address, has_realloc))
}

/// Adds the arena's `cabi_realloc` to `core` (see the [module docs](self)). Returns `None`
/// when `core` has no arena or already exports a `cabi_realloc`.
///
/// # Errors
///
/// [`Error::Invalid`] for a module that does not parse; an arena that would end past 4 GiB.
pub fn add_arena_realloc(core: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let (Some(address), false) = find(core)? else {
        return Ok(None);
    };
    let end = address
        .checked_add(ADAPTER_ARENA_SIZE)
        .ok_or_else(|| Error::Invalid {
            offset: 0,
            message: "the adapter arena ends past 4 GiB".into(),
        })?;
    let mut counts = Counts::default();
    for payload in Parser::new(0).parse_all(core) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(types) => {
                for group in types.into_iter() {
                    counts.types += group.map_err(invalid)?.types().len() as u32;
                }
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    if matches!(import.map_err(invalid)?.ty, wasmparser::TypeRef::Func(_)) {
                        counts.functions += 1;
                    }
                }
            }
            Payload::FunctionSection(functions) => counts.functions += functions.count(),
            _ => {}
        }
    }
    let mut adder = AddRealloc {
        address,
        end,
        type_index: counts.types,
        function_index: counts.functions,
    };
    let mut module = wasm_encoder::Module::new();
    adder
        .parse_core_module(&mut module, Parser::new(0), core)
        .map_err(|e| Error::Invalid {
            offset: 0,
            message: format!("cannot add the adapter's allocator: {e}"),
        })?;
    Ok(Some(module.finish()))
}

#[derive(Default)]
struct Counts {
    types: u32,
    functions: u32,
}

struct AddRealloc {
    address: u32,
    end: u32,
    type_index: u32,
    function_index: u32,
}

impl AddRealloc {
    fn body(&self) -> wasm_encoder::Function {
        use wasm_encoder::{BlockType, MemArg, ValType};
        let mem = MemArg {
            offset: 0,
            align: 2,
            memory_index: 0,
        };
        let next = (self.address + NEXT_OFFSET) as i32;
        let base = (self.address + BASE_OFFSET) as i32;
        let end = self.end as i32;
        // Locals: 0 old_ptr, 1 old_size, 2 align, 3 new_size; 4 p.
        let mut f = wasm_encoder::Function::new([(1, ValType::I32)]);
        let mut i = f.instructions();
        // Only fresh allocations: the adapter never reallocates.
        i.local_get(0).if_(BlockType::Empty).unreachable().end();
        // p = *next, or the base on first use.
        i.i32_const(next).i32_load(mem).local_tee(4).i32_eqz();
        i.if_(BlockType::Empty).i32_const(base).local_set(4).end();
        // p = align_up(p, align) (align is a power of two, at least 1).
        i.local_get(4).local_get(2).i32_add().i32_const(1).i32_sub();
        i.i32_const(0).local_get(2).i32_sub().i32_and().local_set(4);
        // Trap unless base <= p <= end and new_size <= end - p.
        i.local_get(4).i32_const(end).i32_gt_u();
        i.local_get(4).i32_const(base).i32_lt_u().i32_or();
        i.local_get(3)
            .i32_const(end)
            .local_get(4)
            .i32_sub()
            .i32_gt_u()
            .i32_or();
        i.if_(BlockType::Empty).unreachable().end();
        // *next = p + new_size; return p.
        i.i32_const(next)
            .local_get(4)
            .local_get(3)
            .i32_add()
            .i32_store(mem);
        i.local_get(4).end();
        f
    }
}

impl Reencode for AddRealloc {
    type Error = std::convert::Infallible;

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        use wasm_encoder::ValType::I32;
        types.ty().function([I32, I32, I32, I32], [I32]);
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_function_section(self, functions, section)?;
        functions.function(self.type_index);
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_export_section(self, exports, section)?;
        exports.export(
            "cabi_realloc",
            wasm_encoder::ExportKind::Func,
            self.function_index,
        );
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_code_section(self, code, section)?;
        code.function(&self.body());
        Ok(())
    }
}

/// `Cow` so callers can keep the input when there is nothing to add.
pub(crate) fn with_arena_realloc(core: &[u8]) -> Result<Cow<'_, [u8]>, Error> {
    Ok(match add_arena_realloc(core)? {
        Some(module) => Cow::Owned(module),
        None => Cow::Borrowed(core),
    })
}
