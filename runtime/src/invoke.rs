//! Calling a library component's exports from the host: `kiln run --invoke 'add(40, 2)'`.
//!
//! A call is written as Wasmtime's `--invoke` writes it: a function name and its arguments in
//! [WAVE](https://github.com/bytecodealliance/wasm-tools/tree/main/crates/wasm-wave), the
//! WebAssembly Value Encoding. The name is one of
//!
//! - `add`: a function the component exports itself, or else the one function of that name
//!   among its exported interfaces (an error when several interfaces have one);
//! - `acme:math/ops#add`: WIT's form, an interface and one of its functions; the interface's
//!   version may be left out (`acme:math/ops@1.0.0#add` names it);
//! - `acme:math/ops.add` or `acme:math/ops.add@1.0.0`: Wasmtime's form of the same.
//!
//! [`Runtime::prepare_call`] resolves the name and type-checks the arguments against the
//! export's signature without running anything; [`Runtime::invoke`] instantiates the
//! component with the given capabilities and limits, calls the function once, and returns
//! its results in WAVE and as JSON.

use std::fmt;

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
use wasmtime::component::wasm_wave::wasm::{DisplayFuncResults, DisplayType};
use wasmtime::component::wasm_wave::wasm::{WasmType, WasmTypeKind};
use wasmtime::component::{ComponentExportIndex, Type, Val};

use crate::{Capabilities, Error, Limits, LoadedComponent, Runtime, with_timeout};

/// One function a component exports, directly or in an exported interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFunc {
    /// The exported interface it belongs to (`acme:math/ops@1.0.0`), or `None` for a
    /// function the component exports itself.
    pub interface: Option<String>,
    /// The function's name (`add`).
    pub name: String,
    /// Its signature in WIT's notation: `func(a: s32, b: s32) -> s32`.
    pub signature: String,
}

impl ExportedFunc {
    /// The name that calls it from anywhere: `add` or `acme:math/ops@1.0.0#add`.
    pub fn qualified(&self) -> String {
        match &self.interface {
            Some(interface) => format!("{interface}#{}", self.name),
            None => self.name.clone(),
        }
    }
}

impl fmt::Display for ExportedFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.qualified(), self.signature)
    }
}

/// Why a call could not be prepared. Nothing has run when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call is not `name(arguments)` in WAVE.
    #[error("cannot parse `{call}` as a call: {why}")]
    Syntax {
        /// The call as given.
        call: String,
        /// What is wrong.
        why: String,
    },
    /// No exported function has this name.
    #[error("the component exports no function `{name}`")]
    UnknownFunction {
        /// The name as given.
        name: String,
        /// Every function the component exports.
        exports: Vec<ExportedFunc>,
    },
    /// A bare name matches functions in more than one interface (or version).
    #[error("`{name}` is ambiguous: it could be {}", list(candidates))]
    Ambiguous {
        /// The name as given.
        name: String,
        /// The qualified names it matches.
        candidates: Vec<String>,
    },
    /// The call has too many or too few arguments.
    #[error(
        "`{}` takes {} but {given} {} given",
        function.qualified(),
        arguments(*required, *expected),
        if *given == 1 { "was" } else { "were" }
    )]
    Arity {
        /// The function called.
        function: Box<ExportedFunc>,
        /// How many arguments the call has.
        given: usize,
        /// How many parameters the function has.
        expected: usize,
        /// How many of them must be given (trailing `option` parameters may be left out).
        required: usize,
    },
    /// An argument is not a WAVE value of its parameter's type.
    #[error("argument {} of `{}` (`{param}: {ty}`): {why}", index + 1, function.qualified())]
    Argument {
        /// The function called.
        function: Box<ExportedFunc>,
        /// The argument's position, from 0.
        index: usize,
        /// The parameter's name.
        param: String,
        /// The parameter's type, in WIT's notation.
        ty: String,
        /// What is wrong with the value.
        why: String,
    },
}

impl CallError {
    /// The exported functions worth listing with this error (all of them when the name was
    /// not found, the one called otherwise), empty when there is nothing to add.
    pub fn exports(&self) -> Vec<ExportedFunc> {
        match self {
            CallError::UnknownFunction { exports, .. } => exports.clone(),
            CallError::Arity { function, .. } | CallError::Argument { function, .. } => {
                vec![function.as_ref().clone()]
            }
            CallError::Syntax { .. } | CallError::Ambiguous { .. } => Vec::new(),
        }
    }
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn arguments(required: usize, expected: usize) -> String {
    let range = if required == expected {
        expected.to_string()
    } else {
        format!("{required} to {expected}")
    };
    match (required, expected) {
        (0, 0) => "no arguments".to_string(),
        (1, 1) => "1 argument".to_string(),
        _ => format!("{range} arguments"),
    }
}

/// A call resolved to an export and type-checked, ready for [`Runtime::invoke`].
pub struct Call {
    function: ExportedFunc,
    export: ComponentExportIndex,
    params: Vec<Val>,
    results: usize,
}

impl Call {
    /// The function it calls.
    pub fn function(&self) -> &ExportedFunc {
        &self.function
    }
}

/// What a call returned.
#[derive(Debug, Clone)]
pub struct Returned {
    /// The results in WAVE, as `wasmtime run --invoke` prints them: the value for one
    /// result, a tuple `(a, b)` for several, `()` for none.
    pub wave: String,
    /// The results as JSON: the value for one result, an array for several, `null` for none.
    /// Records are objects, lists and tuples arrays, `option` `null` or the value, `result`
    /// `{"ok": …}` or `{"err": …}`, variants `{"<case>": payload}` (payload `null` when it
    /// has none), enums their case's name, flags an array of the names set.
    pub json: serde_json::Value,
}

impl Runtime {
    /// Every function `loaded` exports, directly or in an exported interface, in
    /// declaration order.
    pub fn exported_funcs(&self, loaded: &LoadedComponent) -> Vec<ExportedFunc> {
        self.funcs(loaded)
            .into_iter()
            .map(|(func, _)| func)
            .collect()
    }

    fn funcs(&self, loaded: &LoadedComponent) -> Vec<(ExportedFunc, ComponentFunc)> {
        let engine = &self.engine;
        let mut funcs = Vec::new();
        for (name, item) in loaded.component.component_type().exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(func) => funcs.push((
                    ExportedFunc {
                        interface: None,
                        name: name.to_string(),
                        signature: signature(&func),
                    },
                    func,
                )),
                ComponentItem::ComponentInstance(instance) => {
                    for (leaf, item) in instance.exports(engine) {
                        if let ComponentItem::ComponentFunc(func) = item.ty {
                            funcs.push((
                                ExportedFunc {
                                    interface: Some(name.to_string()),
                                    name: leaf.to_string(),
                                    signature: signature(&func),
                                },
                                func,
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        funcs
    }

    /// Parses `call` (`name(arguments)`, arguments in WAVE), finds the export it names and
    /// type-checks the arguments against its parameters. Trailing `option` parameters may
    /// be left out (they are `none`), as in WAVE.
    ///
    /// # Errors
    ///
    /// A [`CallError`] saying what does not fit.
    pub fn prepare_call(&self, loaded: &LoadedComponent, call: &str) -> Result<Call, CallError> {
        let syntax = |why: String| CallError::Syntax {
            call: call.to_string(),
            why,
        };
        let trimmed = call.trim();
        let Some(open) = trimmed.find('(') else {
            let name = trimmed.split_whitespace().next().unwrap_or("name");
            return Err(syntax(format!(
                "expected a function name followed by its arguments in parentheses, such as `{name}()`"
            )));
        };
        let name = trimmed[..open].trim();
        if name.is_empty() {
            return Err(syntax("the function name is missing".to_string()));
        }
        // WAVE's own call parser reads the arguments; its name lexer knows Wasmtime's form
        // only, so the name is swapped for a placeholder of one character.
        let rest = &trimmed[open..];
        let source = format!("f{rest}");
        let parsed = UntypedFuncCall::parse(&source)
            .map_err(|e| syntax(wave_error(&e, &source, "f".len())))?;

        let funcs = self.funcs(loaded);
        let (function, ty) = resolve(name, &funcs)?;
        let params: Vec<(String, Type)> = ty.params().map(|(n, t)| (n.to_string(), t)).collect();
        let nodes: Vec<_> = match parsed.params_node() {
            Some(node) => node
                .as_tuple()
                .map_err(|e| syntax(wave_error(&e, &source, 1)))?
                .collect(),
            None => Vec::new(),
        };
        let required = params.len()
            - params
                .iter()
                .rev()
                .take_while(|(_, t)| t.kind() == WasmTypeKind::Option)
                .count();
        if nodes.len() > params.len() || nodes.len() < required {
            return Err(CallError::Arity {
                function: Box::new(function.clone()),
                given: nodes.len(),
                expected: params.len(),
                required,
            });
        }
        let mut values = Vec::with_capacity(params.len());
        for (index, (param, ty)) in params.iter().enumerate() {
            let value = match nodes.get(index) {
                Some(node) => {
                    node.to_wasm_value::<Val>(ty, &source)
                        .map_err(|e| CallError::Argument {
                            function: Box::new(function.clone()),
                            index,
                            param: param.clone(),
                            ty: DisplayType(ty).to_string(),
                            why: wave_error(&e, &source, 1),
                        })?
                }
                None => Val::Option(None),
            };
            values.push(value);
        }

        let export = export_index(loaded, function);
        Ok(Call {
            export,
            params: values,
            results: ty.results().len(),
            function: function.clone(),
        })
    }

    /// Instantiates `loaded` with `caps` (WASI 0.2 and 0.3 linked, as for a command) and
    /// calls `call`'s function once, bounded by `limits`.
    ///
    /// # Errors
    ///
    /// [`Error::Preopen`] when a granted directory cannot be opened,
    /// [`Error::Instantiate`] when the host cannot satisfy the component's imports,
    /// [`Error::Trap`] when the guest traps, and the limits' own errors when one stops it.
    pub async fn invoke(
        &self,
        loaded: &LoadedComponent,
        call: &Call,
        caps: &Capabilities,
        limits: &Limits,
    ) -> Result<Returned, Error> {
        let mut store = self.new_store(caps, limits)?;
        self.arm_timeout(&mut store, limits.timeout);
        let linker = self.wasi_linker(Some(&loaded.component))?;
        let instance = match linker
            .instantiate_async(&mut store, &loaded.component)
            .await
        {
            Ok(instance) => instance,
            Err(e) => {
                return Err(store
                    .data()
                    .limiter
                    .limit_error(limits)
                    .unwrap_or_else(|| instantiate(e)));
            }
        };
        let func = instance.get_func(&mut store, call.export).ok_or_else(|| {
            instantiate(format!(
                "`{}` is not an exported function",
                call.function.qualified()
            ))
        })?;
        let mut results = vec![Val::Bool(false); call.results];
        let outcome = with_timeout(
            limits.timeout,
            func.call_async(&mut store, &call.params, &mut results),
        )
        .await?;
        if let Err(error) = outcome {
            return Err(self.guest_error(&error, limits, store.data()));
        }
        Ok(Returned {
            wave: DisplayFuncResults(&results).to_string(),
            json: match results.as_slice() {
                [] => serde_json::Value::Null,
                [one] => to_json(one),
                many => many.iter().map(to_json).collect(),
            },
        })
    }
}

/// [`Error::Instantiate`] from Wasmtime's error (its causes on one line) or a message.
#[allow(
    clippy::useless_conversion,
    reason = "`Error::Instantiate` holds a `String` or a boxed error, as the error refactor goes"
)]
fn instantiate(error: impl std::fmt::Display) -> Error {
    Error::Instantiate(format!("{error:#}").into())
}

/// `func(a: s32, b: s32) -> s32`, with the parameters' names (WAVE's own `DisplayFunc`
/// leaves them out for component functions).
fn signature(func: &ComponentFunc) -> String {
    let params: Vec<String> = func
        .params()
        .map(|(name, ty)| format!("{name}: {}", DisplayType(&ty)))
        .collect();
    let results: Vec<String> = func
        .results()
        .map(|ty| DisplayType(&ty).to_string())
        .collect();
    let mut text = format!("func({})", params.join(", "));
    match results.as_slice() {
        [] => {}
        [one] => text.push_str(&format!(" -> {one}")),
        many => text.push_str(&format!(" -> ({})", many.join(", "))),
    }
    text
}

/// The export `function` is, by its path in `loaded`.
fn export_index(loaded: &LoadedComponent, function: &ExportedFunc) -> ComponentExportIndex {
    let component = &loaded.component;
    let found = match &function.interface {
        None => component.get_export_index(None, &function.name),
        Some(interface) => component
            .get_export_index(None, interface)
            .and_then(|instance| component.get_export_index(Some(&instance), &function.name)),
    };
    // `function` was found among this component's exports.
    found.expect("an exported function has an export index")
}

/// Finds the function `name` names among `funcs` (see the module's documentation).
fn resolve<'a>(
    name: &str,
    funcs: &'a [(ExportedFunc, ComponentFunc)],
) -> Result<&'a (ExportedFunc, ComponentFunc), CallError> {
    let unknown = || CallError::UnknownFunction {
        name: name.to_string(),
        exports: funcs.iter().map(|(f, _)| f.clone()).collect(),
    };
    let (interface, func) = split_name(name);
    let matches: Vec<_> = match interface.as_deref() {
        Some(interface) => funcs
            .iter()
            .filter(|(f, _)| {
                f.name == func
                    && f.interface.as_deref().is_some_and(|i| {
                        i == interface
                            || (!interface.contains('@')
                                && i.split_once('@').map(|(base, _)| base) == Some(interface))
                    })
            })
            .collect(),
        None => {
            let root: Vec<_> = funcs
                .iter()
                .filter(|(f, _)| f.interface.is_none() && f.name == func)
                .collect();
            if root.is_empty() {
                funcs.iter().filter(|(f, _)| f.name == func).collect()
            } else {
                root
            }
        }
    };
    match matches.as_slice() {
        [] => Err(unknown()),
        [one] => Ok(one),
        many => Err(CallError::Ambiguous {
            name: name.to_string(),
            candidates: many.iter().map(|(f, _)| f.qualified()).collect(),
        }),
    }
}

/// `(interface, function)` from `iface#func`, Wasmtime's `iface.func[@version]`, or `func`.
fn split_name(name: &str) -> (Option<String>, &str) {
    if let Some((interface, func)) = name.rsplit_once('#') {
        return (Some(interface.to_string()), func);
    }
    let (base, version) = match name.split_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (name, None),
    };
    match base.rsplit_once('.') {
        Some((interface, func)) => {
            let interface = match version {
                Some(version) => format!("{interface}@{version}"),
                None => interface.to_string(),
            };
            (Some(interface), func)
        }
        None => (None, name),
    }
}

/// A WAVE error as one line: what is wrong and the text it is about, from `source` whose
/// first `skip` bytes are a placeholder.
fn wave_error(
    error: &wasmtime::component::wasm_wave::parser::ParserError,
    source: &str,
    skip: usize,
) -> String {
    let span = error.span();
    let mut text = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    if let Some(source) = std::error::Error::source(error) {
        text.push_str(&format!(": {source}"));
    }
    if let Some(at) = source.get(span.start.max(skip)..span.end)
        && !at.is_empty()
    {
        text.push_str(&format!(" at `{at}`"));
    }
    text
}

/// A value as JSON (see [`Returned::json`]).
fn to_json(val: &Val) -> serde_json::Value {
    use serde_json::{Value, json};
    match val {
        Val::Bool(b) => json!(b),
        Val::S8(n) => json!(n),
        Val::U8(n) => json!(n),
        Val::S16(n) => json!(n),
        Val::U16(n) => json!(n),
        Val::S32(n) => json!(n),
        Val::U32(n) => json!(n),
        Val::S64(n) => json!(n),
        Val::U64(n) => json!(n),
        Val::Float32(n) => json!(n),
        Val::Float64(n) => json!(n),
        Val::Char(c) => json!(c.to_string()),
        Val::String(s) => json!(s),
        Val::List(items) | Val::Tuple(items) => items.iter().map(to_json).collect(),
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), to_json(value)))
                .collect(),
        ),
        Val::Variant(case, payload) => {
            json!({ case.clone(): payload.as_deref().map(to_json).unwrap_or(Value::Null) })
        }
        Val::Enum(case) => json!(case),
        Val::Option(value) => value.as_deref().map(to_json).unwrap_or(Value::Null),
        Val::Result(Ok(value)) => {
            json!({ "ok": value.as_deref().map(to_json).unwrap_or(Value::Null) })
        }
        Val::Result(Err(value)) => {
            json!({ "err": value.as_deref().map(to_json).unwrap_or(Value::Null) })
        }
        Val::Flags(names) => json!(names),
        // Handles (resources, futures, streams) have no value to show.
        other => json!(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_each_form() {
        assert_eq!(split_name("add"), (None, "add"));
        assert_eq!(
            split_name("acme:math/ops#add"),
            (Some("acme:math/ops".into()), "add")
        );
        assert_eq!(
            split_name("acme:math/ops@1.0.0#add"),
            (Some("acme:math/ops@1.0.0".into()), "add")
        );
        assert_eq!(
            split_name("acme:math/ops.add"),
            (Some("acme:math/ops".into()), "add")
        );
        assert_eq!(
            split_name("acme:math/ops.add@1.0.0"),
            (Some("acme:math/ops@1.0.0".into()), "add")
        );
        assert_eq!(split_name("ops.add"), (Some("ops".into()), "add"));
    }

    #[test]
    fn argument_counts() {
        assert_eq!(arguments(0, 0), "no arguments");
        assert_eq!(arguments(1, 1), "1 argument");
        assert_eq!(arguments(2, 2), "2 arguments");
        assert_eq!(arguments(1, 3), "1 to 3 arguments");
    }
}
