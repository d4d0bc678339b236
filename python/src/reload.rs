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
///
/// `since` is when this worker began loading the application. The files loaded so far are
/// listed here, before the worker serves, and one written after `since` (during the import)
/// counts as changed, so that an edit made while the worker started is not mistaken for
/// the version it runs.
pub(crate) fn start(extra_files: Vec<PathBuf>, since: SystemTime) -> Result<(), String> {
    let mut seen = HashMap::new();
    let mut files = interp::attach(module_files);
    files.extend_from_slice(&extra_files);
    let early = first_change(&mut seen, files, Some(since));
    std::thread::Builder::new()
        .name("py-reloader".into())
        .spawn(move || watch(seen, early, &extra_files))
        .map(drop)
        .map_err(|e| format!("cannot start the reloader thread: {e}"))
}

fn watch(mut seen: HashMap<PathBuf, SystemTime>, early: Option<PathBuf>, extra_files: &[PathBuf]) {
    let mut changed = early;
    loop {
        if let Some(changed) = changed {
            tracing::info!("Worker reloading: {} modified", changed.display());
            interp::terminate_self();
            return;
        }
        std::thread::sleep(INTERVAL);
        let mut files = interp::attach(module_files);
        files.extend_from_slice(extra_files);
        // A module imported later was read after `since`: its first time is its baseline.
        changed = first_change(&mut seen, files, None);
    }
}

/// Records the times of files seen for the first time; returns a file whose time moved
/// since it was first seen (either way: a restored older version is a change too), or,
/// with `since`, one first seen with a time after `since` (and not in the future, so that
/// a skewed clock cannot restart workers forever). Files that cannot be read are skipped
/// (as gunicorn skips them).
fn first_change(
    seen: &mut HashMap<PathBuf, SystemTime>,
    files: Vec<PathBuf>,
    since: Option<SystemTime>,
) -> Option<PathBuf> {
    let now = SystemTime::now();
    let mut changed = None;
    for file in files {
        let Ok(mtime) = std::fs::metadata(&file).and_then(|m| m.modified()) else {
            continue;
        };
        match seen.get(&file) {
            None => {
                if since.is_some_and(|since| mtime > since && mtime <= now) {
                    changed.get_or_insert_with(|| file.clone());
                }
                seen.insert(file, mtime);
            }
            Some(old) if mtime != *old => return Some(file),
            Some(_) => {}
        }
    }
    changed
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
    fn a_moved_time_is_a_change_and_so_is_one_written_during_the_import() {
        let dir = std::env::temp_dir().join(format!("ferrocorn-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        let set_time = |t: SystemTime| {
            std::fs::File::options()
                .write(true)
                .open(&file)
                .unwrap()
                .set_modified(t)
                .unwrap()
        };
        let now = SystemTime::now();
        set_time(now - Duration::from_secs(60));
        let mut seen = HashMap::new();
        let files = || vec![file.clone()];
        assert_eq!(
            first_change(&mut seen, vec![file.clone(), dir.join("gone.py")], None),
            None
        );
        assert_eq!(first_change(&mut seen, files(), None), None);
        set_time(now - Duration::from_secs(30));
        assert_eq!(first_change(&mut seen, files(), None), Some(file.clone()));
        // Restored to an older version: a change as well.
        let mut seen = HashMap::new();
        first_change(&mut seen, files(), None);
        set_time(now - Duration::from_secs(90));
        assert_eq!(first_change(&mut seen, files(), None), Some(file.clone()));
        // Written while the worker was importing (after `since`): changed on first sight;
        // a time in the future (a skewed clock) is not.
        let mut seen = HashMap::new();
        set_time(now - Duration::from_secs(1));
        let since = Some(now - Duration::from_secs(5));
        assert_eq!(first_change(&mut seen, files(), since), Some(file.clone()));
        let mut seen = HashMap::new();
        set_time(now + Duration::from_secs(3600));
        assert_eq!(first_change(&mut seen, files(), since), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
