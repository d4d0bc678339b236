//! Which Python program the interpreter takes its paths from: a virtual environment's
//! `bin/python` (so that `site` reads its `pyvenv.cfg` and adds its site-packages), else
//! the interpreter ferrocorn was built against.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The interpreter the build linked against (`sys.executable` when no virtualenv is used).
pub(crate) const BUILD_PYTHON: &str = env!("FERROCORN_PYTHON_EXECUTABLE");
/// Its `major.minor` version.
pub(crate) const BUILD_VERSION: &str = env!("FERROCORN_PYTHON_VERSION");

/// Finds the virtual environment to use: `explicit` (`--virtualenv`), else `VIRTUAL_ENV`,
/// else the first `PATH` entry whose parent holds a `pyvenv.cfg` (an environment whose
/// `bin/` was put first on `PATH` without `activate`). `None` when there is none.
pub(crate) fn find(
    explicit: Option<&Path>,
    virtual_env: Option<&OsStr>,
    path: Option<&OsStr>,
) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_path_buf());
    }
    if let Some(dir) = virtual_env.filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let path = path?;
    std::env::split_paths(path)
        .filter(|entry| !entry.as_os_str().is_empty())
        .find_map(|entry| {
            let parent = entry.parent()?;
            parent
                .join("pyvenv.cfg")
                .is_file()
                .then(|| parent.to_path_buf())
        })
}

/// Checks that `venv` is a virtual environment made for this Python (`major.minor` of
/// `version`/`version_info` in its `pyvenv.cfg`) and returns its `bin/python`.
pub(crate) fn program(venv: &Path) -> Result<PathBuf, String> {
    let cfg = venv.join("pyvenv.cfg");
    let text = std::fs::read_to_string(&cfg).map_err(|e| {
        format!(
            "virtualenv {}: cannot read {}: {e} (is it a virtual environment?)",
            venv.display(),
            cfg.display()
        )
    })?;
    if let Some(version) = cfg_version(&text) {
        if major_minor(&version) != major_minor(BUILD_VERSION) {
            return Err(format!(
                "virtualenv {} was made for Python {version}, but this ferrocorn embeds Python \
                 {BUILD_VERSION}: recreate it with python{BUILD_VERSION} -m venv, or build \
                 ferrocorn against Python {} (PYO3_PYTHON)",
                venv.display(),
                major_minor(&version),
            ));
        }
    }
    let bin = venv.join("bin");
    let program = ["python", "python3"]
        .iter()
        .map(|name| bin.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| bin.join("python"));
    Ok(program)
}

/// The Python version a `pyvenv.cfg` records (`version` from venv and virtualenv,
/// `version_info` from uv and virtualenv 20).
fn cfg_version(text: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "version" | "version_info" => found = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    found
}

/// `3.11` of `3.11.7` (or `3.11.7.final.0`).
fn major_minor(version: &str) -> &str {
    let mut dots = version.match_indices('.');
    match (dots.next(), dots.next()) {
        (Some(_), Some((second, _))) => &version[..second],
        _ => version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ferrocorn-venv-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        dir
    }

    #[test]
    fn explicit_then_virtual_env_then_path() {
        let venv = scratch("path");
        std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        let path =
            std::env::join_paths([Path::new("/nonexistent/bin"), &venv.join("bin")]).unwrap();
        assert_eq!(find(None, None, Some(&path)), Some(venv.clone()));
        assert_eq!(
            find(None, Some(OsStr::new("/v")), Some(&path)),
            Some(PathBuf::from("/v"))
        );
        assert_eq!(
            find(Some(Path::new("/e")), Some(OsStr::new("/v")), Some(&path)),
            Some(PathBuf::from("/e"))
        );
        assert_eq!(
            find(None, Some(OsStr::new("")), Some(OsStr::new("/usr/bin"))),
            None
        );
        std::fs::remove_dir_all(venv).unwrap();
    }

    #[test]
    fn a_venv_of_another_python_is_refused_naming_both_versions() {
        let venv = scratch("other");
        std::fs::write(
            venv.join("pyvenv.cfg"),
            "home = /usr/bin\nversion_info = 2.7.18.final.0\n",
        )
        .unwrap();
        let err = program(&venv).unwrap_err();
        assert!(err.contains("made for Python 2.7.18"), "{err}");
        assert!(err.contains(BUILD_VERSION), "{err}");

        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!("home = /usr/bin\nversion = {BUILD_VERSION}.99\n"),
        )
        .unwrap();
        assert_eq!(program(&venv).unwrap(), venv.join("bin/python"));
        std::fs::remove_dir_all(venv).unwrap();
    }

    #[test]
    fn a_directory_without_pyvenv_cfg_is_no_venv() {
        let err = program(Path::new("/nonexistent-venv")).unwrap_err();
        assert!(err.contains("is it a virtual environment?"), "{err}");
    }

    #[test]
    fn versions_compare_on_major_minor() {
        assert_eq!(major_minor("3.11.7"), "3.11");
        assert_eq!(major_minor("3.11.7.final.0"), "3.11");
        assert_eq!(major_minor("3.11"), "3.11");
    }
}
