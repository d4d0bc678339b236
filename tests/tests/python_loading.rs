//! Black-box: finding and loading a Python application: gunicorn's `module:callable` forms,
//! `--pythonpath` and the working directory (`--chdir`) on `sys.path`, `-e KEY=VALUE`,
//! import failures (non-zero exit naming the module and the exception, `--check-config`
//! too), `--preload` (one import, in the arbiter), and new code through HUP and `--reload`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use ferrocorn_tests::python::{fixtures_dir, python_server, Record};
use ferrocorn_tests::{wait_until, Load, Response, Server, ServerBuilder, Signal, TempDir};

const WAIT: Duration = Duration::from_secs(30);
/// How long a start that must fail may take before the test kills it and fails.
const EXIT_DEADLINE: Duration = Duration::from_secs(60);

fn get_ok(server: &Server, path: &str) -> Response {
    let r = server
        .get(path)
        .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", server.stderr()));
    assert_eq!(
        r.status,
        200,
        "GET {path}: {}\n{}",
        r.text(),
        server.stderr()
    );
    r
}

/// A WSGI module answering `body` in plain text.
fn wsgi_module(body_expression: &str, prelude: &str) -> String {
    format!(
        "{prelude}\n\
         def application(environ, start_response):\n    \
             body = ({body_expression}).encode()\n    \
             start_response('200 OK', [('Content-Type', 'text/plain'), \
                                       ('Content-Length', str(len(body)))])\n    \
             return [body]\n"
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[test]
fn application_specs_take_gunicorns_forms() {
    for (spec, expected) in [
        ("edge_app", "Hello from Python"),
        ("edge_app:application", "Hello from Python"),
        ("fixture_pkg.wsgi:app", "Hello from fixture_pkg.wsgi:app"),
        ("edge_app:create_app()", "Hello from the factory"),
        ("edge_app:create_app('Bonjour')", "Bonjour"),
        ("python:hello", "Hello from the Python module named hello"),
        // The built-in keeps its name; a module named like it needs `python:`.
        ("hello", "Hello, World!\n"),
    ] {
        let server = python_server().args([spec]).start();
        let r = get_ok(&server, "/");
        assert_eq!(r.text(), expected, "{spec}");
    }
}

/// Starts a server that must fail and returns its stderr, after checking that it exited
/// non-zero without answering.
fn failed_start(builder: ServerBuilder, what: &str) -> String {
    let (status, stderr) = builder.run_to_exit(EXIT_DEADLINE);
    let status = status.unwrap_or_else(|| panic!("{what}: still running after the deadline"));
    assert!(!status.success(), "{what}: exited with {status}\n{stderr}");
    stderr
}

fn assert_names_all(stderr: &str, what: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{what}: {needle:?} not in:\n{stderr}"
        );
    }
}

#[test]
fn import_failures_exit_non_zero_naming_the_module_and_the_exception() {
    let cases: [(&str, &[&str]); 4] = [
        (
            "no_such_module_here:app",
            &["no_such_module_here", "ModuleNotFoundError"],
        ),
        (
            "edge_app:no_such_callable",
            &["edge_app", "no_such_callable"],
        ),
        (
            "broken_import",
            &[
                "broken_import",
                "RuntimeError",
                "broken_import fails at import on purpose",
                // The traceback reaches the error log.
                "Traceback",
                "broken_import.py",
            ],
        ),
        ("edge_app:create_app(", &["edge_app:create_app("]),
    ];
    for preload in [false, true] {
        for (spec, needles) in cases {
            let what = format!("{spec} (preload {preload})");
            let mut builder = python_server().args(["--workers", "2"]);
            if preload {
                builder = builder.args(["--preload"]);
            }
            let stderr = failed_start(builder.args([spec]), &what);
            assert_names_all(&stderr, &what, needles);
        }
    }
}

#[test]
fn check_config_imports_the_application() {
    let run = |spec: &str| {
        python_server()
            .no_default_bind()
            .args(["--check-config", spec])
            .run_to_exit(EXIT_DEADLINE)
    };
    let (status, stderr) = run("edge_app");
    assert!(
        status.is_some_and(|s| s.success()),
        "a valid application: {status:?}\n{stderr}"
    );
    for (spec, needles) in [
        (
            "broken_import",
            &["broken_import", "RuntimeError", "on purpose"][..],
        ),
        (
            "no_such_module_here:app",
            &["no_such_module_here", "ModuleNotFoundError"],
        ),
        (
            "edge_app:no_such_callable",
            &["edge_app", "no_such_callable"],
        ),
    ] {
        let (status, stderr) = run(spec);
        let status = status.unwrap_or_else(|| panic!("{spec}: still running"));
        assert!(!status.success(), "{spec}: {status}\n{stderr}");
        assert_names_all(&stderr, spec, needles);
        assert!(!stderr.contains("Listening at"), "{spec}: {stderr}");
    }
}

#[test]
fn env_flag_sets_os_environ_for_the_application() {
    let server = python_server()
        .args([
            "--workers",
            "2",
            "-e",
            "FIXTURE_GREETING=hello=world",
            "--env",
            "FIXTURE_OTHER=2",
            "edge_app",
        ])
        .start();
    assert_eq!(
        get_ok(&server, "/os-environ/FIXTURE_GREETING").text(),
        "hello=world"
    );
    assert_eq!(get_ok(&server, "/os-environ/FIXTURE_OTHER").text(), "2");
}

/// `--pythonpath` as gunicorn orders it (see the setting's doc): each directory is
/// inserted at the front in turn, so they come before the working directory and the last
/// one given comes first.
#[test]
fn pythonpath_comes_before_the_working_directory_last_given_first() {
    let dir = TempDir::new("pythonpath");
    for sub in ["cwd", "extra1", "extra2"] {
        std::fs::create_dir(dir.join(sub)).unwrap();
    }
    write(
        &dir.join("cwd/probe_app.py"),
        &wsgi_module(
            "which_one.WHERE + ' ' + helper.GREETING",
            "import helper\nimport which_one",
        ),
    );
    write(&dir.join("cwd/which_one.py"), "WHERE = 'cwd'\n");
    write(&dir.join("extra1/which_one.py"), "WHERE = 'extra1'\n");
    write(
        &dir.join("extra1/helper.py"),
        "GREETING = 'helper from extra1'\n",
    );
    write(&dir.join("extra2/which_one.py"), "WHERE = 'extra2'\n");
    let pythonpath = format!(
        "{},{}",
        dir.join("extra1").display(),
        dir.join("extra2").display()
    );
    let server = python_server()
        .cwd(dir.join("cwd"))
        .args(["--pythonpath", &pythonpath, "probe_app"])
        .start();
    assert_eq!(get_ok(&server, "/").text(), "extra2 helper from extra1");
    drop(server);

    // Without --pythonpath the working directory's module is found, and the helper is not.
    let stderr = failed_start(
        python_server().cwd(dir.join("cwd")).args(["probe_app"]),
        "without --pythonpath",
    );
    assert_names_all(
        &stderr,
        "without --pythonpath",
        &["helper", "ModuleNotFoundError"],
    );
}

#[test]
fn chdir_is_the_directory_the_application_is_imported_from() {
    let elsewhere = TempDir::new("chdir");
    let server = python_server()
        .cwd(elsewhere.path())
        .args(["--chdir", &fixtures_dir().display().to_string(), "edge_app"])
        .start();
    assert_eq!(get_ok(&server, "/hello").text(), "Hello from Python");
}

/// The pids in the `imported in PID` lines of `record`.
fn importers(record: &Record) -> Vec<i32> {
    record
        .lines()
        .iter()
        .filter_map(|line| line.strip_prefix("imported in ")?.parse().ok())
        .collect()
}

#[test]
fn preload_imports_once_in_the_arbiter_and_workers_never_again() {
    let record = Record::new("preload");
    let server = record
        .attach(python_server())
        .args(["--preload", "--workers", "2", "preload_app"])
        .start();
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    let workers = server.worker_pids();
    for _ in 0..10 {
        let pid: i32 = get_ok(&server, "/").text().parse().unwrap();
        assert!(
            workers.contains(&pid),
            "answered by {pid}, workers {workers:?}"
        );
    }
    assert_eq!(
        importers(&record),
        [server.pid],
        "one import, in the arbiter"
    );

    // A worker that dies is replaced by a fork of the arbiter, which has the module.
    ferrocorn_tests::send_signal(workers[0], Signal::SIGKILL);
    assert!(
        wait_until(WAIT, || {
            let now = server.worker_pids();
            now.len() == 2 && !now.contains(&workers[0])
        }),
        "{}",
        server.stderr()
    );
    for _ in 0..10 {
        get_ok(&server, "/");
    }
    assert_eq!(importers(&record), [server.pid], "still one import");
}

#[test]
fn without_preload_each_worker_imports_and_the_arbiter_never_does() {
    let record = Record::new("no-preload");
    let server = record
        .attach(python_server())
        .args(["--workers", "2", "preload_app"])
        .start();
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    get_ok(&server, "/");
    assert!(
        wait_until(WAIT, || importers(&record).len() == 2),
        "{:?}",
        record.lines()
    );
    let imported: BTreeSet<i32> = importers(&record).into_iter().collect();
    let workers: BTreeSet<i32> = server.worker_pids().into_iter().collect();
    assert_eq!(imported, workers, "each worker imported once");
    assert!(!imported.contains(&server.pid));
}

#[test]
fn hup_serves_changed_code_without_a_failed_request() {
    let dir = TempDir::new("hup-code");
    let module = dir.join("hup_app.py");
    write(&module, &wsgi_module("'v1'", ""));
    let server = python_server()
        .cwd(dir.path())
        .args(["--workers", "2", "hup_app"])
        .start();
    assert!(server.wait_for_workers(2, WAIT), "{}", server.stderr());
    assert_eq!(get_ok(&server, "/").text(), "v1");
    let load = Load::start(server.addr, "/", 3);
    assert!(load.wait_for_more(20, WAIT), "{}", server.stderr());

    write(&module, &wsgi_module("'version 2'", ""));
    server.signal(Signal::SIGHUP);
    let changed = wait_until(WAIT, || {
        server.get("/").is_ok_and(|r| r.text() == "version 2")
    });
    assert!(load.wait_for_more(20, WAIT), "the load goes on after HUP");
    let report = load.stop();
    assert!(
        changed,
        "HUP did not load the new code\n{}",
        server.stderr()
    );
    report.assert_no_failures(&server);
}

#[test]
fn reload_restarts_the_worker_when_a_source_file_changes() {
    let dir = TempDir::new("reload");
    let module = dir.join("reload_app.py");
    let helper = dir.join("reload_helper.py");
    write(
        &module,
        &wsgi_module("'app v1, ' + reload_helper.WORD", "import reload_helper"),
    );
    write(&helper, "WORD = 'helper v1'\n");
    let server = python_server()
        .cwd(dir.path())
        .args(["--workers", "1", "--reload", "reload_app"])
        .start();
    assert!(server.wait_for_workers(1, WAIT), "{}", server.stderr());
    let first = server.worker_pids();
    assert_eq!(get_ok(&server, "/").text(), "app v1, helper v1");

    write(
        &module,
        &wsgi_module("'app v2, ' + reload_helper.WORD", "import reload_helper"),
    );
    assert!(
        wait_until(WAIT, || server
            .get("/")
            .is_ok_and(|r| r.text() == "app v2, helper v1")),
        "the application's file changed\n{}",
        server.stderr()
    );
    let second = server.worker_pids();
    assert_ne!(second, first, "a new worker serves the new code");

    // A module the application imports is a source file of it too.
    write(&helper, "WORD = 'helper v2'\n");
    assert!(
        wait_until(WAIT, || server
            .get("/")
            .is_ok_and(|r| r.text() == "app v2, helper v2")),
        "a module it imports changed\n{}",
        server.stderr()
    );
}

#[test]
fn reload_extra_file_restarts_the_worker_when_it_changes() {
    let dir = TempDir::new("reload-extra");
    let message = dir.join("message.txt");
    write(&message, "first message");
    write(
        &dir.join("message_app.py"),
        &wsgi_module("MESSAGE", "MESSAGE = open('message.txt').read()"),
    );
    let server = python_server()
        .cwd(dir.path())
        .args([
            "--workers",
            "1",
            "--reload",
            "--reload-extra-file",
            &message.display().to_string(),
            "message_app",
        ])
        .start();
    assert_eq!(get_ok(&server, "/").text(), "first message");
    write(&message, "second message");
    assert!(
        wait_until(WAIT, || server
            .get("/")
            .is_ok_and(|r| r.text() == "second message")),
        "{}",
        server.stderr()
    );
}
