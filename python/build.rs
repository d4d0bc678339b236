//! Records where the Python shared library lives: as `-Wl,-rpath` for this crate's test
//! binaries, and as `lib_dir` metadata (`DEP_FERROCORN_PYTHON_LIB_DIR`) for the binary's
//! build script, so that programs run the Python they were built against without
//! `LD_LIBRARY_PATH`.

fn main() {
    let config = pyo3_build_config::get();
    if let Some(dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:lib_dir={dir}");
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
