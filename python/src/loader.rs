//! Importing the application an [`AppSpec`] names, as gunicorn's `util.import_app` does,
//! with errors that name the module or attribute and the Python exception; and turning a
//! Python exception into one line or a traceback for the error log.

use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::spec::AppSpec;

/// Imports `spec.module`, follows the attribute path and, for a factory, calls it with
/// the literal arguments. The traceback of a Python exception goes to the error log; the
/// returned message says what failed.
pub(crate) fn import_app<'py>(
    py: Python<'py>,
    spec: &AppSpec,
) -> Result<Bound<'py, PyAny>, String> {
    // Files may have appeared since the interpreter cached its directory listings.
    if let Ok(importlib) = py.import("importlib") {
        let _ = importlib.call_method0("invalidate_caches");
    }
    let module = py.import(spec.module.as_str()).map_err(|e| {
        // `app.py:app` names a submodule `py` of a package `app`; a file app.py means
        // the user wrote a file name (gunicorn gives the same hint).
        let hint = spec
            .module
            .strip_suffix(".py")
            .filter(|stem| std::path::Path::new(&spec.module).is_file() && !stem.is_empty())
            .map(|stem| format!(" (did you mean '{stem}:{}'?)", spec.object()))
            .unwrap_or_default();
        fail(
            py,
            &e,
            format!(
                "cannot import module '{}': {}{hint}",
                spec.module,
                describe(py, &e)
            ),
        )
    })?;
    let mut obj = module.into_any();
    for (i, attr) in spec.attrs.iter().enumerate() {
        obj = match obj.getattr(attr.as_str()) {
            Ok(next) => next,
            Err(e) if e.is_instance_of::<PyAttributeError>(py) => {
                return Err(format!(
                    "module '{}' has no attribute '{}'",
                    spec.module,
                    spec.attrs[..=i].join(".")
                ));
            }
            Err(e) => {
                let message = format!(
                    "cannot get '{}' from module '{}': {}",
                    spec.attrs[..=i].join("."),
                    spec.module,
                    describe(py, &e)
                );
                return Err(fail(py, &e, message));
            }
        };
    }
    let name = format!("{}:{}", spec.module, spec.attrs.join("."));
    if let Some(args) = &spec.call_args {
        let (args, kwargs) = literal_args(py, args).map_err(|e| {
            format!(
                "cannot use the arguments of '{spec}': {} (they must be Python literals)",
                describe(py, &e)
            )
        })?;
        if !obj.is_callable() {
            return Err(format!(
                "'{name}' is not callable, so it cannot be a factory"
            ));
        }
        obj = obj.call(args, Some(&kwargs)).map_err(|e| {
            let message = format!("application factory '{name}' failed: {}", describe(py, &e));
            fail(py, &e, message)
        })?;
        if obj.is_none() {
            return Err(format!(
                "application factory '{spec}' returned None, not an application"
            ));
        }
    }
    if !obj.is_callable() {
        return Err(format!(
            "'{spec}' is not callable (it is {}), so it is no WSGI application",
            type_name(&obj)
        ));
    }
    Ok(obj)
}

/// Evaluates `text` as the arguments of a call, each a literal (`ast.literal_eval`).
fn literal_args<'py>(
    py: Python<'py>,
    text: &str,
) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
    let helper = PyModule::from_code(py, LITERAL_ARGS, c"<ferrocorn>", c"ferrocorn_spec")?;
    let parsed = helper.getattr("literal_args")?.call1((text,))?;
    parsed.extract()
}

const LITERAL_ARGS: &std::ffi::CStr = cr#"
import ast

def literal_args(text):
    try:
        node = ast.parse("f(" + text + ")", mode="eval").body
    except SyntaxError as e:
        raise ValueError(f"cannot parse {text!r}: {e.msg}") from None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "f"):
        raise ValueError(f"{text!r} is not an argument list")
    args = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            raise ValueError("*args is not a literal")
        args.append(ast.literal_eval(arg))
    kwargs = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise ValueError("**kwargs is not a literal")
        kwargs[kw.arg] = ast.literal_eval(kw.value)
    return tuple(args), kwargs
"#;

/// Logs the traceback of `err` and returns `message`.
fn fail(py: Python<'_>, err: &PyErr, message: String) -> String {
    tracing::error!("{message}\n{}", traceback(py, err));
    message
}

/// `Type: message` for an exception (`ModuleNotFoundError: No module named 'x'`).
pub(crate) fn describe(py: Python<'_>, err: &PyErr) -> String {
    let kind = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    match err.value(py).str() {
        Ok(text) if !text.is_empty().unwrap_or(true) => format!("{kind}: {text}"),
        _ => kind,
    }
}

/// The exception's traceback as Python prints it.
pub(crate) fn traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import("traceback").and_then(|tb| {
        // Before 3.12 the traceback is kept beside the exception, not on it.
        let lines = tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )?;
        join_lines(py, &lines)
    });
    formatted
        .map(|t| t.trim_end().to_owned())
        .unwrap_or_else(|_| describe(py, err))
}

fn join_lines(py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<String> {
    pyo3::types::PyString::new(py, "")
        .call_method1("join", (lines,))?
        .extract()
}

/// The name of an object's type, for messages.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}
