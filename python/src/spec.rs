//! The application spec in gunicorn's syntax (`pkg.mod:app`, `mod`, `mod:obj.app`,
//! `mod:create_app("x", debug=True)`), checked without starting Python so that the arbiter
//! can refuse a malformed one before it forks.

use std::fmt;

/// A parsed `MODULE[:OBJECT]` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// The module to import (`pkg.mod`).
    pub module: String,
    /// The attribute path inside it (`app`, `obj.app`); `application` when the spec names
    /// only a module, as in gunicorn.
    pub attrs: Vec<String>,
    /// For a factory (`create_app(...)`): the text between the parentheses, evaluated as
    /// literals with Python's `ast` when the application is imported.
    pub call_args: Option<String>,
}

impl AppSpec {
    /// Parses `spec`. The module and the attribute path must be dotted Python identifiers;
    /// a factory call must end the object part with `(...)`. The call's arguments are judged
    /// by Python's parser at import time.
    pub fn parse(spec: &str) -> Result<AppSpec, String> {
        let (module, object) = match spec.split_once(':') {
            Some((m, o)) => (m, o.trim()),
            None => (spec, "application"),
        };
        let module = module.trim();
        if module.is_empty() {
            return Err(format!("application spec {spec:?} names no module"));
        }
        if !is_dotted_name(module) {
            return Err(format!(
                "application spec {spec:?}: {module:?} is not a module name"
            ));
        }
        if object.is_empty() {
            return Err(format!(
                "application spec {spec:?} names no object after ':' (write MODULE:NAME)"
            ));
        }
        let (path, call_args) = match object.find('(') {
            Some(open) => {
                let Some(args) = object[open + 1..].strip_suffix(')') else {
                    return Err(format!(
                        "application spec {spec:?}: {object:?} is neither a name nor a call \
                         like create_app(...)"
                    ));
                };
                (object[..open].trim_end(), Some(args.to_owned()))
            }
            None => (object, None),
        };
        if !is_dotted_name(path) {
            return Err(format!(
                "application spec {spec:?}: {path:?} is not an attribute name"
            ));
        }
        Ok(AppSpec {
            module: module.to_owned(),
            attrs: path.split('.').map(str::to_owned).collect(),
            call_args,
        })
    }

    /// The object part as written back (`obj.app`, `create_app(...)`).
    pub fn object(&self) -> String {
        let path = self.attrs.join(".");
        match &self.call_args {
            Some(args) => format!("{path}({args})"),
            None => path,
        }
    }
}

impl fmt::Display for AppSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module, self.object())
    }
}

/// `a.b.c` where each part is a Python identifier (letters, digits and `_`, not starting
/// with a digit; Python's full identifier rules are applied by the import itself).
fn is_dotted_name(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_identifier)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(spec: &str) -> (String, Vec<String>, Option<String>) {
        let s = AppSpec::parse(spec).unwrap();
        (s.module, s.attrs, s.call_args)
    }

    #[test]
    fn gunicorn_forms_parse() {
        assert_eq!(
            ok("pkg.mod:app"),
            ("pkg.mod".into(), vec!["app".into()], None)
        );
        assert_eq!(ok("mod"), ("mod".into(), vec!["application".into()], None));
        assert_eq!(
            ok("mod:obj.app"),
            ("mod".into(), vec!["obj".into(), "app".into()], None)
        );
        assert_eq!(
            ok("mod:create_app()"),
            ("mod".into(), vec!["create_app".into()], Some(String::new()))
        );
        assert_eq!(
            ok(r#"mod:create_app("x", debug=True)"#),
            (
                "mod".into(),
                vec!["create_app".into()],
                Some(r#""x", debug=True"#.into())
            )
        );
        // The arguments may hold a colon: only the first one splits.
        assert_eq!(ok("m:f('a:b')").2, Some("'a:b'".into()));
        assert_eq!(AppSpec::parse("m:f(1)").unwrap().to_string(), "m:f(1)");
    }

    #[test]
    fn malformed_specs_are_refused_with_the_reason() {
        for (spec, needle) in [
            ("", "names no module"),
            (":app", "names no module"),
            ("mod:", "names no object"),
            ("my-app:app", "is not a module name"),
            ("app/x.py:api", "is not a module name"),
            ("mod:1app", "is not an attribute name"),
            ("mod:create_app(", "neither a name nor a call"),
            ("mod:a b", "is not an attribute name"),
            ("mod:obj[0]", "is not an attribute name"),
        ] {
            let err = AppSpec::parse(spec).unwrap_err();
            assert!(err.contains(needle), "{spec:?}: {err}");
        }
    }
}
