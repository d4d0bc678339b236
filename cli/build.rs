//! With the `python` feature, records where the Python shared library lives
//! (`-Wl,-rpath`, from `ferrocorn-python`'s build metadata), so that the binary runs the
//! Python it was built against without `LD_LIBRARY_PATH`.

fn main() {
    if let Ok(dir) = std::env::var("DEP_FERROCORN_PYTHON_LIB_DIR") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
        println!("cargo:rustc-link-arg-examples=-Wl,-rpath,{dir}");
    }
}
