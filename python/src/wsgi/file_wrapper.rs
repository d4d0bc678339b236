//! `wsgi.file_wrapper(filelike, blksize=8192)`: an iterable over a file. When the
//! application returns one around a regular file with a working `fileno()`, the response
//! body is that file sent with `sendfile(2)` (see `body.rs`); otherwise it is read in
//! `blksize` pieces like any iterable.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The wrapper. `close()` closes the file (PEP 3333, "Optional Platform-Specific File
/// Handling").
#[pyclass(frozen, module = "ferrocorn", name = "FileWrapper")]
#[derive(Debug)]
pub(crate) struct FileWrapper {
    pub(crate) filelike: Py<PyAny>,
    pub(crate) blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize = 8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> FileWrapper {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    #[getter]
    fn filelike(&self, py: Python<'_>) -> Py<PyAny> {
        self.filelike.clone_ref(py)
    }

    #[getter]
    fn blksize(&self) -> usize {
        self.blksize
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let piece = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        let empty = match piece.cast::<PyBytes>() {
            Ok(b) => b.as_bytes().is_empty(),
            Err(_) => !piece.is_truthy()?,
        };
        Ok((!empty).then_some(piece))
    }

    /// Closes the file, when it has a `close()`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let file = self.filelike.bind(py);
        if let Some(close) = file.getattr_opt("close")? {
            close.call0()?;
        }
        Ok(())
    }
}
