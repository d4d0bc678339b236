//! Black-box tests of how the binary starts and refuses to start: exit codes and the one
//! line of error on stderr.

use std::net::TcpListener;
use std::time::Duration;

use ferrocorn_tests::{Server, TempDir};

const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `ferrocorn: error:` lines of a run.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.starts_with("ferrocorn: error:"))
        .collect()
}

#[test]
fn port_in_use_stops_the_start_naming_the_address() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = held.local_addr().unwrap().to_string();
    let (status, stderr) = Server::builder()
        .no_default_bind()
        .args(["--bind", &address, "hello"])
        .run_to_exit(EXIT_TIMEOUT);
    let status = status.expect("ferrocorn exits when its port is taken");
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "exactly one error line:\n{stderr}");
    assert!(
        errors[0].contains(&address) && errors[0].contains("address already in use"),
        "{stderr}"
    );
}

/// Bug: an application that cannot be loaded was found only after the sockets were bound
/// (`Listening at` printed, exit code 1). What can be judged without loading it is now a
/// configuration error before anything is bound.
#[test]
fn bug_missing_static_directory_stops_the_start_before_binding() {
    let dir = TempDir::new("missing-static");
    let missing = dir.join("no-such-dir");
    let socket = dir.join("never.sock");
    let app = format!("static:{}", missing.display());
    let bind = format!("unix:{}", socket.display());
    let (status, stderr) = Server::builder()
        .args(["--bind", &bind, &app])
        .run_to_exit(EXIT_TIMEOUT);
    let status = status.expect("ferrocorn exits when the static directory is missing");
    assert_eq!(status.code(), Some(2), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "exactly one error line:\n{stderr}");
    let line = errors[0].to_ascii_lowercase();
    assert!(line.contains(&missing.display().to_string()), "{stderr}");
    assert!(
        line.contains("exist") || line.contains("no such") || line.contains("not found"),
        "the error says the directory is missing: {stderr}"
    );
    assert!(!stderr.contains("Listening at"), "{stderr}");
    assert!(!socket.exists(), "nothing was bound");
}

/// A malformed application spec is refused the same way, before binding.
#[test]
fn a_malformed_app_spec_stops_the_start_before_binding() {
    let (status, stderr) = Server::builder()
        .args(["pkg..mod:app"])
        .run_to_exit(EXIT_TIMEOUT);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "exactly one error line:\n{stderr}");
    assert!(
        errors[0].contains("application spec \"pkg..mod:app\"")
            && errors[0].contains("is not a module name"),
        "{stderr}"
    );
    assert!(!stderr.contains("Listening at"), "{stderr}");
}

#[test]
fn usage_errors_exit_with_code_2() {
    let (status, stderr) = Server::builder()
        .args(["--no-such-flag"])
        .run_to_exit(EXIT_TIMEOUT);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    assert!(!stderr.trim().is_empty(), "the error is reported on stderr");
}

#[test]
fn version_is_printed() {
    let output = std::process::Command::new(ferrocorn_tests::binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "--version prints the version: {stdout}"
    );
}

/// The arbiter opens the access log for its workers (which may run as another user): a
/// file it cannot open stops the start, naming it, before any worker is forked.
#[test]
fn an_access_log_that_cannot_be_opened_stops_the_start() {
    let dir = TempDir::new("access-log");
    let log = dir.join("no-such-dir/access.log");
    let (status, stderr) = Server::builder()
        .args(["--access-logfile", &log.display().to_string(), "hello"])
        .run_to_exit(EXIT_TIMEOUT);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "exactly one error line:\n{stderr}");
    assert!(
        errors[0].contains(&format!("cannot open access log {}", log.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("Booting worker"), "{stderr}");
    assert!(!stderr.contains("Listening at"), "{stderr}");
}

/// Bug: `--bind fd://3 --bind fd://3` gave the descriptor two owners; the server started,
/// and on TERM aborted with "IO Safety violation: owned file descriptor already closed".
#[test]
fn bug_the_same_descriptor_bound_twice_is_a_configuration_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (status, stderr) = Server::builder()
        .no_default_bind()
        .fd3(listener)
        .args(["--bind", "fd://3", "--bind", "fd://3", "hello"])
        .run_to_exit(EXIT_TIMEOUT);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "exactly one error line:\n{stderr}");
    assert!(errors[0].contains("\"fd://3\" is given twice"), "{stderr}");
    assert!(!stderr.contains("Listening at"), "{stderr}");
}

/// A Python module is only found when a worker imports it (without `--preload`): a worker
/// that fails to import it before anything served stops the arbiter with the worker's message, and
/// the server never says it listens.
#[test]
fn a_python_app_that_cannot_be_imported_stops_the_start_with_its_message() {
    let (status, stderr) = Server::builder()
        .args(["no_such_module_ferrocorn:app"])
        .run_to_exit(EXIT_TIMEOUT);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr}");
    let errors = error_lines(&stderr);
    assert_eq!(errors.len(), 1, "exactly one error line:\n{stderr}");
    assert!(
        errors[0].contains("failed to boot")
            && errors[0].contains("No module named 'no_such_module_ferrocorn'"),
        "{stderr}"
    );
    assert!(!stderr.contains("Listening at"), "{stderr}");
}
