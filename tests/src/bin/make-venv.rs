//! Makes the test virtualenv (`tests/python/requirements.txt`) before the tests run, so that
//! CI does not depend on which test happens to make it first: `.ci/run` calls
//! `cargo run -p ferrocorn-tests --bin make-venv`. It runs the same code the tests call on
//! first use, and does nothing when the virtualenv is up to date.

use std::process::ExitCode;

fn main() -> ExitCode {
    match ferrocorn_tests::python::ensure_venv() {
        Ok(venv) => {
            eprintln!("make-venv: the test virtualenv is {}", venv.dir().display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("make-venv: error: {error}");
            ExitCode::FAILURE
        }
    }
}
