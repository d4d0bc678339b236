//! Records where the Python shared library lives: as `-Wl,-rpath` for this crate's test
//! binaries, and as `lib_dir` metadata (`DEP_FERROCORN_PYTHON_LIB_DIR`) for the binary's
//! build script, so that programs run the Python they were built against without
//! `LD_LIBRARY_PATH`. Also exports that interpreter's path and version to the crate
//! (`FERROCORN_PYTHON_EXECUTABLE`, `FERROCORN_PYTHON_VERSION`): the embedded interpreter
//! takes its `sys.executable` and standard library location from it when no virtualenv
//! is in use.

fn main() {
    let config = pyo3_build_config::get();
    if let Some(dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:lib_dir={dir}");
    }
    let executable = config.executable().unwrap_or("python3");
    println!("cargo:rustc-env=FERROCORN_PYTHON_EXECUTABLE={executable}");
    let version = config.version();
    println!(
        "cargo:rustc-env=FERROCORN_PYTHON_VERSION={}.{}",
        version.major, version.minor
    );
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
