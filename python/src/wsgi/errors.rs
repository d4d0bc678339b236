//! `wsgi.errors`: a text stream whose complete lines go to the error log.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyString;

/// The error stream. One per worker, shared by every request (as gunicorn shares its
/// `WSGIErrorsWrapper`); a partial line waits for its end or for `flush()`.
#[pyclass(frozen, module = "ferrocorn", name = "ErrorStream")]
#[derive(Debug, Default)]
pub(crate) struct ErrorStream {
    partial: Mutex<String>,
}

impl ErrorStream {
    /// Appends `text`, returning the complete lines it ended.
    fn push(&self, text: &str) -> Vec<String> {
        let mut partial = self.partial.lock().unwrap_or_else(|p| p.into_inner());
        partial.push_str(text);
        let Some(end) = partial.rfind('\n') else {
            return Vec::new();
        };
        let rest = partial.split_off(end + 1);
        let done = std::mem::replace(&mut *partial, rest);
        done.lines().map(str::to_owned).collect()
    }
}

fn emit(lines: Vec<String>) {
    for line in lines {
        tracing::error!(target: "wsgi.errors", "{line}");
    }
}

#[pymethods]
impl ErrorStream {
    /// Writes `text` (a `str`, or bytes taken as UTF-8) and returns its length.
    fn write(&self, text: &Bound<'_, PyAny>) -> PyResult<usize> {
        let (lines, len) = if let Ok(s) = text.cast::<PyString>() {
            let s = s.to_cow()?;
            (self.push(&s), s.chars().count())
        } else if let Ok(b) = text.cast::<pyo3::types::PyBytes>() {
            let b = b.as_bytes();
            (self.push(&String::from_utf8_lossy(b)), b.len())
        } else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "wsgi.errors.write() takes a str, not {}",
                crate::loader::type_name(text)
            )));
        };
        emit(lines);
        Ok(len)
    }

    /// Writes each string of `lines`.
    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?)?;
        }
        Ok(())
    }

    /// Logs a pending partial line.
    fn flush(&self) {
        let rest = std::mem::take(&mut *self.partial.lock().unwrap_or_else(|p| p.into_inner()));
        if !rest.is_empty() {
            emit(vec![rest]);
        }
    }

    fn writable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_newlines_and_a_partial_one_waits() {
        let s = ErrorStream::default();
        assert!(s.push("abc").is_empty());
        assert_eq!(s.push("def\nghi\n\nj"), ["abcdef", "ghi", ""]);
        assert_eq!(*s.partial.lock().unwrap(), "j");
    }
}
