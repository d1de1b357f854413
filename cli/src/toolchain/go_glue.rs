//! The Go glue for library components: `//go:wasmexport` wrappers in the component model's
//! canonical ABI (<https://github.com/WebAssembly/component-model/blob/main/design/mvp/CanonicalABI.md>)
//! around the package's own Go functions, for what a world exports: its own functions and
//! the functions of the interfaces it exports.
//!
//! Names: a world-level `count-words` calls `CountWords`; `count-words` in interface `stats`
//! calls `StatsCountWords`. Types: `bool`, `s8`…`u64`, `f32`, `f64`, `char` (a `rune`),
//! `string`, `list<T>` (a slice) and records (a Go struct the glue declares, named
//! `<Interface><Record>` in UpperCamelCase, fields likewise) of those, nested. Anything else
//! (variants, options, results, resources, flags, tuples) is refused with the function's
//! name. Values handed to Go are copied out of linear memory; what a function returns is
//! kept alive (pinned) until the host calls its `cabi_post_` function.

use std::fmt::Write;

use anyhow::bail;
use wit_parser::{Function, Resolve, Type, TypeDefKind, WorldItem, WorldKey};

/// `kebab-name` → `KebabName`.
fn camel(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `value` rounded up to a multiple of `align`, saturating at `u32::MAX` (a type that large
/// is refused before any code is generated for it).
fn align_up(value: u32, align: u32) -> u32 {
    value.checked_next_multiple_of(align).unwrap_or(u32::MAX)
}

/// The largest value, in bytes of linear memory, the glue lays out: far beyond any real
/// record, and small enough that offsets in the generated Go cannot overflow.
const MAX_VALUE_SIZE: u32 = 1 << 20;

/// The most values a function's flattened parameters may have before the canonical ABI
/// passes them through memory (which the glue does not do).
const MAX_FLAT_PARAMS: usize = 16;

/// A WIT type as the glue handles it.
#[derive(Debug, Clone)]
enum Shape {
    /// A scalar: Go type, core type (`int32`, `uint32`, `int64`, `uint64`, `float32`,
    /// `float64`), size in memory.
    Scalar {
        go: &'static str,
        core: &'static str,
        size: u32,
    },
    Bool,
    String,
    List(Box<Shape>),
    Record {
        go: String,
        fields: Vec<(String, Shape)>,
    },
}

impl Shape {
    fn size_align(&self) -> (u32, u32) {
        match self {
            Shape::Scalar { size, .. } => (*size, *size),
            Shape::Bool => (1, 1),
            Shape::String | Shape::List(_) => (8, 4),
            Shape::Record { fields, .. } => {
                let mut size = 0u32;
                let mut align = 1u32;
                for (_, f) in fields {
                    let (s, a) = f.size_align();
                    size = align_up(size, a).saturating_add(s);
                    align = align.max(a);
                }
                (align_up(size, align), align)
            }
        }
    }

    /// Field offsets of a record.
    fn offsets(fields: &[(String, Shape)]) -> Vec<u32> {
        let mut at = 0u32;
        fields
            .iter()
            .map(|(_, f)| {
                let (s, a) = f.size_align();
                at = align_up(at, a);
                let here = at;
                at = at.saturating_add(s);
                here
            })
            .collect()
    }

    fn go_type(&self) -> String {
        match self {
            Shape::Scalar { go, .. } => go.to_string(),
            Shape::Bool => "bool".into(),
            Shape::String => "string".into(),
            Shape::List(of) => format!("[]{}", of.go_type()),
            Shape::Record { go, .. } => go.clone(),
        }
    }

    /// The core parameter types this flattens to.
    fn flat(&self) -> Vec<&'static str> {
        match self {
            Shape::Scalar { core, .. } => vec![core],
            Shape::Bool => vec!["uint32"],
            Shape::String | Shape::List(_) => vec!["uint32", "uint32"],
            Shape::Record { fields, .. } => fields.iter().flat_map(|(_, f)| f.flat()).collect(),
        }
    }
}

/// The generator's state: the Go source and the record types declared so far.
struct Glue<'a> {
    resolve: &'a Resolve,
    out: String,
    declared: Vec<String>,
    temp: usize,
}

impl Glue<'_> {
    fn shape(&mut self, ty: &Type, owner: &str, func: &str) -> anyhow::Result<Shape> {
        let scalar = |go, core, size| Shape::Scalar { go, core, size };
        Ok(match ty {
            Type::Bool => Shape::Bool,
            Type::U8 => scalar("uint8", "uint32", 1),
            Type::S8 => scalar("int8", "int32", 1),
            Type::U16 => scalar("uint16", "uint32", 2),
            Type::S16 => scalar("int16", "int32", 2),
            Type::U32 => scalar("uint32", "uint32", 4),
            Type::S32 => scalar("int32", "int32", 4),
            Type::U64 => scalar("uint64", "uint64", 8),
            Type::S64 => scalar("int64", "int64", 8),
            Type::F32 => scalar("float32", "float32", 4),
            Type::F64 => scalar("float64", "float64", 8),
            Type::Char => scalar("rune", "int32", 4),
            Type::String => Shape::String,
            Type::Id(id) => {
                let def = &self.resolve.types[*id];
                match &def.kind {
                    TypeDefKind::Type(inner) => self.shape(inner, owner, func)?,
                    TypeDefKind::List(inner) => {
                        Shape::List(Box::new(self.shape(inner, owner, func)?))
                    }
                    TypeDefKind::Record(record) => {
                        let go = format!("{owner}{}", camel(def.name.as_deref().unwrap_or("")));
                        let mut fields = Vec::new();
                        for field in &record.fields {
                            fields.push((camel(&field.name), self.shape(&field.ty, owner, func)?));
                        }
                        if !self.declared.contains(&go) {
                            self.declared.push(go.clone());
                            let mut decl = format!("\ntype {go} struct {{\n");
                            for (name, shape) in &fields {
                                writeln!(decl, "\t{name} {}", shape.go_type())?;
                            }
                            decl.push_str("}\n");
                            self.out.push_str(&decl);
                        }
                        let record = Shape::Record { go, fields };
                        if record.size_align().0 > MAX_VALUE_SIZE {
                            bail!("`{func}` uses a record larger than kiln's Go glue lays out");
                        }
                        record
                    }
                    other => bail!(
                        "`{func}` uses a {} (`{}`), which kiln's Go glue does not support yet \
                         (bool, integers, floats, char, string, list and record are)",
                        other.as_str(),
                        def.name.as_deref().unwrap_or("anonymous")
                    ),
                }
            }
            other => bail!(
                "`{func}` uses `{other:?}`, which kiln's Go glue does not support yet (bool, \
                 integers, floats, char, string, list and record are)"
            ),
        })
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.temp += 1;
        format!("{prefix}{}", self.temp)
    }

    /// Go statements that build a value of `shape` from flat parameters named by `params`
    /// (consumed from the front); returns the expression.
    fn lift_flat(
        &mut self,
        shape: &Shape,
        params: &mut std::collections::VecDeque<String>,
        body: &mut String,
    ) -> anyhow::Result<String> {
        Ok(match shape {
            Shape::Scalar { go, .. } => format!("{go}({})", params.pop_front().unwrap_or_default()),
            Shape::Bool => format!("({} != 0)", params.pop_front().unwrap_or_default()),
            Shape::String | Shape::List(_) => {
                let ptr = params.pop_front().unwrap_or_default();
                let len = params.pop_front().unwrap_or_default();
                self.lift_pointer(shape, &ptr, &len, body)?
            }
            Shape::Record { go, fields } => {
                let mut parts = Vec::new();
                for (name, field) in fields {
                    let value = self.lift_flat(field, params, body)?;
                    parts.push(format!("{name}: {value}"));
                }
                format!("{go}{{{}}}", parts.join(", "))
            }
        })
    }

    /// A string or list from a pointer and a length (Go expressions of type uint32).
    fn lift_pointer(
        &mut self,
        shape: &Shape,
        ptr: &str,
        len: &str,
        body: &mut String,
    ) -> anyhow::Result<String> {
        match shape {
            Shape::String => Ok(format!(
                "string(unsafe.Slice((*byte)(unsafe.Pointer(uintptr({ptr}))), {len}))"
            )),
            Shape::List(of) => {
                let v = self.fresh("v");
                let i = self.fresh("i");
                let (size, _) = of.size_align();
                writeln!(body, "\t{v} := make({}, {len})", shape.go_type())?;
                writeln!(
                    body,
                    "\tfor {i} := uint32(0); {i} < uint32({len}); {i}++ {{"
                )?;
                let mut inner = String::new();
                let at = format!("uintptr({ptr}) + uintptr({i}*{size})");
                let value = self.lift_memory(of, &at, &mut inner)?;
                body.push_str(&inner);
                writeln!(body, "\t{v}[{i}] = {value}\n\t}}")?;
                Ok(v)
            }
            _ => bail!("internal: lift_pointer on {shape:?}"),
        }
    }

    /// A value of `shape` stored in linear memory at the Go `uintptr` expression `at`.
    fn lift_memory(
        &mut self,
        shape: &Shape,
        at: &str,
        body: &mut String,
    ) -> anyhow::Result<String> {
        Ok(match shape {
            Shape::Scalar { go, .. } => format!("*(*{go})(unsafe.Pointer({at}))"),
            Shape::Bool => format!("(*(*uint8)(unsafe.Pointer({at})) != 0)"),
            Shape::String | Shape::List(_) => {
                let ptr = format!("*(*uint32)(unsafe.Pointer({at}))");
                let len = format!("*(*uint32)(unsafe.Pointer({at} + 4))");
                self.lift_pointer(shape, &ptr, &len, body)?
            }
            Shape::Record { go, fields } => {
                let offsets = Shape::offsets(fields);
                let mut parts = Vec::new();
                for ((name, field), off) in fields.iter().zip(offsets) {
                    let value = self.lift_memory(field, &format!("{at} + {off}"), body)?;
                    parts.push(format!("{name}: {value}"));
                }
                format!("{go}{{{}}}", parts.join(", "))
            }
        })
    }

    /// Statements storing the Go expression `value` of `shape` at the `uintptr` expression
    /// `at`, allocating (pinned) what strings and lists point to.
    fn lower_memory(
        &mut self,
        shape: &Shape,
        value: &str,
        at: &str,
        body: &mut String,
    ) -> anyhow::Result<()> {
        match shape {
            Shape::Scalar { go, .. } => {
                writeln!(body, "\t*(*{go})(unsafe.Pointer({at})) = {value}")?;
            }
            Shape::Bool => {
                let b = self.fresh("b");
                writeln!(
                    body,
                    "\t{b} := uint8(0)\n\tif {value} {{\n\t\t{b} = 1\n\t}}\n\t*(*uint8)(unsafe.Pointer({at})) = {b}"
                )?;
            }
            Shape::String => {
                let s = self.fresh("s");
                writeln!(
                    body,
                    "\t{s} := []byte({value})\n\tkilnPinned = append(kilnPinned, {s})\n\
                     \t*(*uint32)(unsafe.Pointer({at})) = uint32(uintptr(unsafe.Pointer(unsafe.SliceData({s}))))\n\
                     \t*(*uint32)(unsafe.Pointer({at} + 4)) = uint32(len({s}))"
                )?;
            }
            Shape::List(of) => {
                let l = self.fresh("l");
                let base = self.fresh("p");
                let i = self.fresh("i");
                let (size, align) = of.size_align();
                writeln!(
                    body,
                    "\t{l} := {value}\n\t{base} := kilnAlloc(uint32(len({l}))*{size}, {align})\n\
                     \tfor {i} := range {l} {{"
                )?;
                let mut inner = String::new();
                self.lower_memory(
                    of,
                    &format!("{l}[{i}]"),
                    &format!("{base} + uintptr({i}*{size})"),
                    &mut inner,
                )?;
                body.push_str(&inner);
                writeln!(
                    body,
                    "\t}}\n\t*(*uint32)(unsafe.Pointer({at})) = uint32({base})\n\
                     \t*(*uint32)(unsafe.Pointer({at} + 4)) = uint32(len({l}))"
                )?;
            }
            Shape::Record { fields, .. } => {
                let r = self.fresh("r");
                writeln!(body, "\t{r} := {value}")?;
                for ((name, field), off) in fields.iter().zip(Shape::offsets(fields)) {
                    self.lower_memory(
                        field,
                        &format!("{r}.{name}"),
                        &format!("{at} + {off}"),
                        body,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// The wrapper for one function: core name `export`, Go function `go_name`.
    fn function(
        &mut self,
        export: &str,
        go_name: &str,
        owner: &str,
        func: &Function,
    ) -> anyhow::Result<()> {
        let mut body = String::new();
        let mut params = Vec::new();
        let mut args = Vec::new();
        let mut flat_count = 0;
        for param in &func.params {
            let shape = self.shape(&param.ty, owner, &func.name)?;
            let flat = shape.flat();
            let mut names = std::collections::VecDeque::new();
            for core in &flat {
                let name = format!("a{flat_count}");
                params.push(format!("{name} {core}"));
                names.push_back(name);
                flat_count += 1;
            }
            args.push(self.lift_flat(&shape, &mut names, &mut body)?);
        }
        if flat_count > MAX_FLAT_PARAMS {
            bail!(
                "`{}` takes more than {MAX_FLAT_PARAMS} values once flattened, which kiln's Go glue does not support yet",
                func.name
            );
        }
        let call = format!("{go_name}({})", args.join(", "));
        let result = match &func.result {
            None => {
                writeln!(body, "\t{call}")?;
                String::new()
            }
            Some(ty) => match self.shape(ty, owner, &func.name)? {
                Shape::Scalar { go, core, .. } => {
                    writeln!(body, "\treturn {core}({call})")?;
                    let _ = go;
                    format!(" {core}")
                }
                Shape::Bool => {
                    writeln!(body, "\tif {call} {{\n\t\treturn 1\n\t}}\n\treturn 0")?;
                    " uint32".into()
                }
                shape => {
                    let (size, align) = shape.size_align();
                    let area = self.fresh("ret");
                    writeln!(body, "\t{area} := kilnAlloc({size}, {align})")?;
                    self.lower_memory(&shape, &call, &area, &mut body)?;
                    writeln!(body, "\treturn uint32({area})")?;
                    " uint32".into()
                }
            },
        };
        writeln!(
            self.out,
            "\n//go:wasmexport {export}\nfunc kilnExport{}({}){result} {{\n{body}}}",
            self.temp_name(export),
            params.join(", ")
        )?;
        writeln!(
            self.out,
            "\n//go:wasmexport cabi_post_{export}\nfunc kilnPost{}({}) {{ kilnPinned = kilnPinned[:0] }}",
            self.temp_name(export),
            if result.is_empty() {
                String::new()
            } else {
                format!("_{result}")
            }
        )?;
        Ok(())
    }

    /// A Go identifier for an export name (`a:b/c@1.0.0#f` → `A_b_c_1_0_0_f`), unique per name.
    fn temp_name(&self, export: &str) -> String {
        export
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    }
}

/// The Go source of the glue for `world` in `resolve`.
///
/// # Errors
///
/// A function whose types the glue does not support, named.
pub fn generate(resolve: &Resolve, world: wit_parser::WorldId) -> anyhow::Result<String> {
    // The adapter's arena (see kiln_componentize::add_arena_realloc): Go owns every byte of
    // linear memory past its data, so the adapter's state lives in a Go global instead.
    let magic: String = kiln_componentize::ADAPTER_ARENA_MAGIC
        .iter()
        .map(|b| format!("{b}, "))
        .collect();
    let arena = format!(
        "// kilnAdapterArena holds the WASI adapter's state: kiln gives the adapter a\n\
         // cabi_realloc over it, since memory the adapter grew would end up in Go's heap.\n\
         var kilnAdapterArena = [{}]byte{{{}}}\n\n",
        kiln_componentize::ADAPTER_ARENA_SIZE,
        magic.trim_end_matches(", ")
    );
    let mut glue = Glue {
        resolve,
        out: String::from(
            "// Generated by kiln from the world in Kiln.toml's `[build] world`. DO NOT EDIT.\n\
             package main\n\nimport \"unsafe\"\n\n",
        ) + &arena
            + "var kilnPinned [][]byte\n\n\
             // kilnAlloc returns memory on Go's (non-moving) heap, kept until the next post-return.\n\
             func kilnAlloc(size, align uint32) uintptr {\n\
             \tbuf := make([]byte, size+align)\n\
             \tkilnPinned = append(kilnPinned, buf)\n\
             \tp := uintptr(unsafe.Pointer(&buf[0]))\n\
             \treturn (p + uintptr(align) - 1) &^ (uintptr(align) - 1)\n}\n\n\
             //go:wasmexport cabi_export_realloc\n\
             func kilnCabiRealloc(ptr, oldSize, align, newSize uint32) uint32 {\n\
             \tif kilnAdapterArena[0] != 'k' {\n\t\tpanic(\"kiln: the WASI adapter's arena was overwritten\")\n\t}\n\
             \tif newSize == 0 {\n\t\treturn align\n\t}\n\
             \tp := kilnAlloc(newSize, align)\n\
             \tif oldSize > 0 {\n\t\tcopy(unsafe.Slice((*byte)(unsafe.Pointer(p)), newSize), unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), oldSize))\n\t}\n\
             \treturn uint32(p)\n}\n",
        declared: Vec::new(),
        temp: 0,
    };
    for (key, item) in &resolve.worlds[world].exports {
        match (key, item) {
            (WorldKey::Name(name), WorldItem::Function(func)) => {
                glue.function(name, &camel(name), "", func)?;
            }
            (key, WorldItem::Interface { id, .. }) => {
                let interface = &resolve.interfaces[*id];
                let owner = match key {
                    WorldKey::Name(name) => camel(name),
                    WorldKey::Interface(_) => camel(interface.name.as_deref().unwrap_or("")),
                };
                let prefix = resolve.name_world_key(key);
                for (name, func) in &interface.functions {
                    let export = format!("{prefix}#{name}");
                    glue.function(&export, &format!("{owner}{}", camel(name)), &owner, func)?;
                }
            }
            (WorldKey::Name(name), WorldItem::Type { .. }) => {
                bail!("`[build] world`: kiln's Go glue does not export types (`{name}`)")
            }
            _ => bail!("`[build] world`: an export kiln's Go glue does not support"),
        }
    }
    Ok(glue.out)
}
