//! The only module that calls CPython's C API directly: starting the interpreter from a
//! `PyConfig`, attaching a thread cheaply, holding the interpreter's locks across `fork`,
//! and the few object constructors the hot path wants without pyo3's generic layers.
//! Everything else in the crate uses safe pyo3 and attaches through [`attach`].

use std::cell::Cell;
use std::ffi::{CString, OsString};
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Whether this process started the interpreter (a forked worker inherits the flag with
/// the interpreter itself).
static STARTED: AtomicBool = AtomicBool::new(false);
/// Serialises [`start`] (a `--check-config` run and the tests may race to it).
static START_LOCK: Mutex<()> = Mutex::new(());

/// Whether the interpreter runs in this process.
pub(crate) fn is_started() -> bool {
    STARTED.load(Ordering::Acquire)
}

/// Starts CPython in this process, once: `program` becomes `sys.executable` (a virtualenv's
/// `bin/python`, whose `pyvenv.cfg` then gives `sys.prefix` and site-packages), `argv`
/// becomes `sys.argv`, and CPython installs no signal handlers (the worker owns signals)
/// and parses no command line. The calling thread becomes Python's main thread; the GIL
/// is released before returning so that any thread may attach. Returns `false` when the
/// interpreter was already running.
pub(crate) fn start(program: &Path, argv: &[OsString]) -> Result<bool, String> {
    let _guard = START_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if is_started() {
        return Ok(false);
    }
    let program_c = CString::new(program.as_os_str().as_bytes())
        .map_err(|_| format!("python program path {} holds a NUL", program.display()))?;
    let argv_c: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    // SAFETY: `PyConfig_InitPythonConfig` fully initialises the zeroed struct; every string
    // set afterwards is copied by `PyConfig_SetBytesString`/`SetBytesArgv`, so the CStrings
    // may drop after the calls; `PyConfig_Clear` frees what the config owns on every path.
    // Nothing else in this process has touched the C API yet (guarded by START_LOCK and
    // STARTED), which `Py_InitializeFromConfig` requires.
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            // Someone else embedded Python in this process; use it as it is.
            STARTED.store(true, Ordering::Release);
            return Ok(false);
        }
        let mut config = MaybeUninit::<ffi::PyConfig>::zeroed();
        let config = config.as_mut_ptr();
        ffi::PyConfig_InitPythonConfig(config);
        (*config).install_signal_handlers = 0;
        (*config).parse_argv = 0;
        let result = (|| {
            status(ffi::PyConfig_SetBytesString(
                config,
                &raw mut (*config).program_name,
                program_c.as_ptr(),
            ))?;
            status(ffi::PyConfig_SetBytesString(
                config,
                &raw mut (*config).executable,
                program_c.as_ptr(),
            ))?;
            let mut ptrs: Vec<*const std::ffi::c_char> =
                argv_c.iter().map(|a| a.as_ptr()).collect();
            status(ffi::PyConfig_SetBytesArgv(
                config,
                ptrs.len() as ffi::Py_ssize_t,
                ptrs.as_mut_ptr(),
            ))?;
            status(ffi::Py_InitializeFromConfig(config))
        })();
        ffi::PyConfig_Clear(config);
        result.map_err(|e| {
            let home = std::env::var_os("PYTHONHOME")
                .map(|h| format!("; PYTHONHOME is set to {}", Path::new(&h).display()))
                .unwrap_or_default();
            format!(
                "cannot start Python ({}): {e} (ferrocorn runs the Python it was built \
                 against, {}: its standard library must be where that build installed \
                 it{home})",
                program.display(),
                crate::venv::BUILD_PYTHON
            )
        })?;
        // Import `threading` here so that it records this thread as the main thread, not
        // whichever thread happens to import it first.
        let threading = ffi::PyImport_ImportModule(c"threading".as_ptr());
        if threading.is_null() {
            ffi::PyErr_Clear();
        } else {
            ffi::Py_DecRef(threading);
        }
        // This thread keeps its thread state (attaching again is cheap) but lets go of the
        // interpreter so that any thread may attach.
        ffi::PyEval_SaveThread();
        PINNED.set(true);
    }
    STARTED.store(true, Ordering::Release);
    Ok(true)
}

/// Turns a failed `PyStatus` into its message.
fn status(status: ffi::PyStatus) -> Result<(), String> {
    // SAFETY: `err_msg` is a static C string or NULL, as CPython documents for PyStatus.
    unsafe {
        if ffi::PyStatus_Exception(status) == 0 {
            return Ok(());
        }
        if status.err_msg.is_null() {
            return Err(format!("exit code {}", status.exitcode));
        }
        Err(std::ffi::CStr::from_ptr(status.err_msg)
            .to_string_lossy()
            .into_owned())
    }
}

thread_local! {
    /// This thread has a thread state of its own that outlives each attach.
    static PINNED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` attached to the interpreter (holding the GIL on a GIL build).
///
/// The first call on a thread gives it a thread state that lives as long as the thread, so
/// that later attaches only take the interpreter back (`PyGILState_Ensure` would otherwise
/// create and destroy a thread state on every call). Callers must not be attached already
/// on their first call on a thread (they never are: every entry point of this crate is a
/// worker thread outside Python).
pub(crate) fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    if !PINNED.get() {
        pin_thread();
    }
    Python::attach(f)
}

#[cold]
fn pin_thread() {
    // SAFETY: the interpreter is running (callers attach only after `start`).
    // PyGILState_Check is 1 only while this thread holds the GIL: then it is inside some
    // attach already and must not let go of the interpreter here. Otherwise Ensure creates
    // (or finds) the thread state and counts one use that is never released, and
    // SaveThread lets go of the interpreter while keeping the state.
    unsafe {
        if ffi::PyGILState_Check() == 1 {
            return;
        }
        let _ = ffi::PyGILState_Ensure();
        ffi::PyEval_SaveThread();
    }
    PINNED.set(true);
}

/// The interpreter's state held from [`before_fork`] to the matching after-fork call.
static FORK_HOLD: Mutex<Option<ffi::PyGILState_STATE>> = Mutex::new(None);

/// Takes the interpreter and its internal locks (import lock, allocator) before `fork`, so
/// that the child does not inherit them held by a thread that does not exist there.
/// Does nothing unless the interpreter runs in this process.
pub(crate) fn before_fork() {
    if !is_started() {
        return;
    }
    // SAFETY: the interpreter runs; the state is released by exactly one of the after-fork
    // calls on this thread (the arbiter forks from the thread that called this).
    let state = unsafe {
        let state = ffi::PyGILState_Ensure();
        ffi::PyOS_BeforeFork();
        state
    };
    *FORK_HOLD.lock().unwrap_or_else(|p| p.into_inner()) = Some(state);
}

/// In the parent after `fork` (or after a failed one): releases what [`before_fork`] took.
pub(crate) fn after_fork_parent() {
    if let Some(state) = FORK_HOLD.lock().unwrap_or_else(|p| p.into_inner()).take() {
        // SAFETY: pairs with the Ensure and PyOS_BeforeFork of `before_fork`.
        unsafe {
            ffi::PyOS_AfterFork_Parent();
            ffi::PyGILState_Release(state);
        }
    }
}

/// In the child after `fork`: makes this thread the interpreter's main (and only) thread,
/// resets the locks, and releases the interpreter.
pub(crate) fn after_fork_child() {
    if let Some(state) = FORK_HOLD.lock().unwrap_or_else(|p| p.into_inner()).take() {
        // SAFETY: pairs with `before_fork` in the parent, whose thread is this one.
        unsafe {
            ffi::PyOS_AfterFork_Child();
            ffi::PyGILState_Release(state);
        }
    }
}

/// A `str` from bytes taken as latin-1 (PEP 3333's "bytes-as-str" for request data).
pub(crate) fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: the pointer and length describe `bytes`; the result is a new reference or
    // NULL with an exception set, which `from_owned_ptr_or_err` turns into the error.
    unsafe {
        let ptr = ffi::PyUnicode_DecodeLatin1(
            bytes.as_ptr().cast(),
            bytes.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// A new descriptor for the open file `fd` (close-on-exec), owned by the caller: the
/// response body keeps the file after the application's object closes its own.
pub(crate) fn dup_fd(fd: std::os::fd::RawFd) -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC reads no memory and fails cleanly (EBADF) on a descriptor
    // that is not open; on success the new descriptor is ours alone, so the File owns it.
    unsafe {
        let new = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0);
        if new < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(std::fs::File::from_raw_fd(new))
    }
}

/// A new non-blocking, close-on-exec eventfd: the wake-up of the ASGI event loop thread
/// (written and read as 8-byte counters through the `File`).
pub(crate) fn eventfd() -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: eventfd(2) reads no memory; on success the new descriptor is ours alone, so
    // the File owns it.
    unsafe {
        let fd = libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(std::fs::File::from_raw_fd(fd))
    }
}

/// Asks this process to stop gracefully (`SIGTERM` to itself), as the worker's signal
/// handling expects of a restart.
pub(crate) fn terminate_self() {
    // SAFETY: kill(2) with our own pid and a valid signal number touches no memory.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
}
