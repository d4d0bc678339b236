//! `--reload`: a thread that restarts the worker when a source file of the application
//! changes (gunicorn's polling reloader). Every second it lists the files of the modules
//! loaded so far (`__file__` of `sys.modules`, `.pyc` read as its `.py`) plus the extra
//! files, and compares their modification times with the ones it saw first.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::interp;

/// How often the files are checked.
const INTERVAL: Duration = Duration::from_secs(1);

/// Starts the watcher. On a change it logs `Worker reloading: PATH modified` and sends
/// this process `SIGTERM`: the worker stops gracefully and the arbiter starts a fresh one,
/// which imports the new code.
pub(crate) fn start(extra_files: Vec<PathBuf>) -> Result<(), String> {
    std::thread::Builder::new()
        .name("py-reloader".into())
        .spawn(move || watch(&extra_files))
        .map(drop)
        .map_err(|e| format!("cannot start the reloader thread: {e}"))
}

fn watch(extra_files: &[PathBuf]) {
    let mut seen: HashMap<PathBuf, SystemTime> = HashMap::new();
    loop {
        let mut files = interp::attach(module_files);
        files.extend_from_slice(extra_files);
        if let Some(changed) = first_change(&mut seen, files) {
            tracing::info!("Worker reloading: {} modified", changed.display());
            interp::terminate_self();
            return;
        }
        std::thread::sleep(INTERVAL);
    }
}

/// Records the times of files seen for the first time; returns a file newer than when it
/// was first seen. Files that cannot be read are skipped (as gunicorn skips them).
fn first_change(seen: &mut HashMap<PathBuf, SystemTime>, files: Vec<PathBuf>) -> Option<PathBuf> {
    for file in files {
        let Ok(mtime) = std::fs::metadata(&file).and_then(|m| m.modified()) else {
            continue;
        };
        match seen.get(&file) {
            None => {
                seen.insert(file, mtime);
            }
            Some(old) if mtime > *old => return Some(file),
            Some(_) => {}
        }
    }
    None
}

/// The source files of the loaded modules.
fn module_files(py: Python<'_>) -> Vec<PathBuf> {
    let Ok(modules) = py
        .import("sys")
        .and_then(|sys| sys.getattr("modules"))
        .and_then(|m| m.call_method0("values"))
        .and_then(|v| py.get_type::<pyo3::types::PyList>().call1((v,)))
    else {
        return Vec::new();
    };
    let Ok(modules) = modules.try_iter() else {
        return Vec::new();
    };
    modules
        .flatten()
        .filter_map(|module| module.getattr_opt("__file__").ok().flatten())
        .filter_map(|file| file.cast::<PyString>().ok()?.to_str().ok().map(source_of))
        .collect()
}

/// `x.pyc`/`x.pyo` → `x.py`.
fn source_of(file: &str) -> PathBuf {
    match file.strip_suffix('c').or_else(|| file.strip_suffix('o')) {
        Some(stem) if stem.ends_with(".py") => PathBuf::from(stem),
        _ => PathBuf::from(file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_files_are_watched_as_their_source() {
        assert_eq!(source_of("/a/b.pyc"), PathBuf::from("/a/b.py"));
        assert_eq!(source_of("/a/b.py"), PathBuf::from("/a/b.py"));
        assert_eq!(source_of("/a/b.so"), PathBuf::from("/a/b.so"));
    }

    #[test]
    fn a_newer_file_is_a_change_a_new_one_is_not() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        let mut seen = HashMap::new();
        assert_eq!(
            first_change(&mut seen, vec![file.clone(), dir.join("gone.py")]),
            None
        );
        assert_eq!(first_change(&mut seen, vec![file.clone()]), None);
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(first_change(&mut seen, vec![file.clone()]), Some(file));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
