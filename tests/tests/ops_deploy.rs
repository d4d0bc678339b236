//! The example files of `deploy/` parse and agree with each other and with ferrocorn: the
//! YAML (Kubernetes, Prometheus) with PyYAML from the test virtualenv, the systemd units
//! with a strict parser here and `systemd-analyze verify` when it is installed, and the
//! ferrocorn command lines inside them with `--check-config` and then a real start.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferrocorn_tests::python::test_venv;
use ferrocorn_tests::{binary, wait_until, workspace_root, Server, TempDir};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// gunicorn's and ferrocorn's default `graceful_timeout`.
const DEFAULT_GRACEFUL_TIMEOUT: u64 = 30;

fn deploy(path: &str) -> PathBuf {
    workspace_root().join("deploy").join(path)
}

/// Every document of each YAML file, read by PyYAML's `safe_load_all` in the test
/// virtualenv (`None`, after a loud message, when it cannot be made outside CI).
fn yaml_documents(files: &[&str]) -> Option<BTreeMap<String, Vec<Value>>> {
    let venv = test_venv()?;
    let script = "import json, sys, yaml\n\
                  out = {}\n\
                  for path in sys.argv[1:]:\n\
                  \x20   with open(path) as f:\n\
                  \x20       out[path] = list(yaml.safe_load_all(f))\n\
                  print(json.dumps(out))\n";
    let output = Command::new(venv.dir().join("bin/python"))
        .arg("-c")
        .arg(script)
        .args(files.iter().map(|f| deploy(f)))
        .output()
        .expect("run the virtualenv's python");
    assert!(
        output.status.success(),
        "PyYAML refuses the files: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: BTreeMap<String, Vec<Value>> = serde_json::from_slice(&output.stdout).unwrap();
    Some(
        parsed
            .into_iter()
            .map(|(path, docs)| {
                let name = Path::new(&path).strip_prefix(deploy("")).unwrap();
                (name.display().to_string(), docs)
            })
            .collect(),
    )
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

fn port_of(address: &str) -> u64 {
    address.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// A unit file, strictly: `[Section]` headers, `Key=Value` lines (a trailing `\` continues
/// one), `#` and `;` comments; every key must be one this test knows for its section, so
/// that a misspelt key fails here as `systemd-analyze verify` would warn of it.
fn parse_unit(path: &Path) -> BTreeMap<(String, String), String> {
    const KNOWN: &[(&str, &[&str])] = &[
        (
            "Unit",
            &["Description", "Requires", "After", "Wants", "Documentation"],
        ),
        (
            "Socket",
            &[
                "ListenStream",
                "Backlog",
                "ReusePort",
                "NoDelay",
                "SocketUser",
            ],
        ),
        (
            "Service",
            &[
                "Type",
                "NotifyAccess",
                "User",
                "Group",
                "WorkingDirectory",
                "Environment",
                "ExecStart",
                "ExecReload",
                "KillMode",
                "KillSignal",
                "TimeoutStopSec",
                "Restart",
                "RestartSec",
                "NoNewPrivileges",
                "PrivateTmp",
                "ProtectSystem",
                "ProtectHome",
                "ReadWritePaths",
            ],
        ),
        ("Install", &["WantedBy"]),
    ];
    let text = std::fs::read_to_string(path).unwrap();
    let mut entries = BTreeMap::new();
    let mut section: Option<String> = None;
    let mut pending = String::new();
    for (n, raw) in text.lines().enumerate() {
        let at = format!("{}:{}", path.display(), n + 1);
        let line = raw.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            assert!(
                pending.is_empty(),
                "{at}: a section inside a continued line"
            );
            assert!(
                KNOWN.iter().any(|(s, _)| *s == name),
                "{at}: unknown section [{name}]"
            );
            section = Some(name.to_string());
            continue;
        }
        pending.push_str(line.strip_suffix('\\').unwrap_or(line));
        if line.ends_with('\\') {
            pending.push(' ');
            continue;
        }
        let whole = std::mem::take(&mut pending);
        let section = section
            .clone()
            .unwrap_or_else(|| panic!("{at}: before any section"));
        let (key, value) = whole
            .split_once('=')
            .unwrap_or_else(|| panic!("{at}: not Key=Value: {whole:?}"));
        let key = key.trim();
        let keys = KNOWN.iter().find(|(s, _)| *s == section).unwrap().1;
        assert!(
            keys.contains(&key),
            "{at}: unknown key {key} in [{section}]"
        );
        let previous = entries.insert((section, key.to_string()), value.trim().to_string());
        assert!(previous.is_none(), "{at}: {key} given twice");
    }
    assert!(
        pending.is_empty(),
        "{}: ends inside a continued line",
        path.display()
    );
    entries
}

/// `ferrocorn --check-config` accepts `args` (the application swapped for the built-in
/// `hello`, as the example's module is not installed here); then the same command line
/// starts and serves, its addresses moved to ephemeral ports. A refusal naming settings
/// this build does not serve yet (`cli/src/pending.rs`) skips that start with a loud
/// message; any other failure fails.
fn assert_command_line_runs(what: &str, args: &[String], default_bind: bool) {
    let mut args = args.to_vec();
    let app = args.last_mut().unwrap();
    assert!(
        !app.starts_with('-'),
        "{what}: the last argument is the application"
    );
    *app = "hello".to_string();
    let output = Command::new(binary())
        .arg("--check-config")
        .args(&args)
        .env_remove("FERROCORN_CMD_ARGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{what}: --check-config {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for address_flag in ["--bind", "--metrics-bind"] {
        if let Some(i) = args.iter().position(|a| a == address_flag) {
            args[i + 1] = "127.0.0.1:0".to_string();
        }
    }
    let mut builder = Server::builder().args(&args).dont_wait_for_listening();
    if !default_bind {
        builder = builder.no_default_bind();
    }
    let server = builder.start();
    let outcome = |log: &str| log.contains("Listening at:") || log.contains("error:");
    assert!(
        wait_until(WAIT, || outcome(&server.stderr())),
        "{what}: {args:?} neither served nor failed: {}",
        server.stderr()
    );
    let log = server.stderr();
    assert!(log.contains("Listening at:"), "{what}: {args:?}:\n{log}");
}

#[test]
fn kubernetes_and_prometheus_files_parse_and_agree() {
    let Some(docs) = yaml_documents(&["kubernetes/ferrocorn.yaml", "prometheus/prometheus.yml"])
    else {
        return;
    };
    let k8s = &docs["kubernetes/ferrocorn.yaml"];
    let kinds: Vec<&str> = k8s.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Deployment", "Service"]);
    let (deployment, service) = (&k8s[0], &k8s[1]);
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let args: Vec<String> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .chain(container["args"].as_array().unwrap())
        .map(|a| a.as_str().expect("every argument is a string").to_string())
        .collect();
    assert_eq!(args[0], "ferrocorn");

    // The probes ask the --metrics-bind listener.
    let metrics_port = port_of(flag(&args, "--metrics-bind").expect("--metrics-bind"));
    let ports: BTreeMap<&str, u64> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        let port = get["port"].as_str().unwrap();
        assert_eq!(ports[port], metrics_port, "{probe} on the metrics listener");
    }
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"], metrics_port.to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(ports["http"], port_of(flag(&args, "--bind").unwrap()));

    // Kubernetes counts preStop against the grace period, then ferrocorn needs up to
    // graceful_timeout to drain: the sum must fit.
    let graceful: u64 =
        flag(&args, "--graceful-timeout").map_or(DEFAULT_GRACEFUL_TIMEOUT, |t| t.parse().unwrap());
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .expect("a preStop sleep");
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(
        pre_stop > 0 && grace > pre_stop + graceful,
        "{grace} vs {pre_stop} + {graceful}"
    );
    assert!(container["resources"]["requests"]["memory"].is_string());

    // The Service selects the pods and targets ports they name.
    let labels = &pod["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[key], value, "selector {key}");
    }
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], *labels);
    for port in service["spec"]["ports"].as_array().unwrap() {
        assert!(
            ports.contains_key(port["targetPort"].as_str().unwrap()),
            "{port}"
        );
    }

    let prometheus = &docs["prometheus/prometheus.yml"][0];
    let jobs = prometheus["scrape_configs"].as_array().unwrap();
    let static_job = jobs.iter().find(|j| j["job_name"] == "ferrocorn").unwrap();
    let target = static_job["static_configs"][0]["targets"][0]
        .as_str()
        .unwrap();
    assert_eq!(port_of(target), metrics_port);
    let pods = jobs
        .iter()
        .find(|j| j["job_name"] == "kubernetes-pods")
        .unwrap();
    let keep = &pods["relabel_configs"][0];
    assert_eq!(keep["action"], "keep");
    assert_eq!(
        keep["source_labels"][0],
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape"
    );

    assert_command_line_runs("kubernetes/ferrocorn.yaml", &args[1..], false);
}

#[test]
fn systemd_units_parse_and_match_what_ferrocorn_does() {
    let socket = parse_unit(&deploy("systemd/ferrocorn.socket"));
    let service = parse_unit(&deploy("systemd/ferrocorn.service"));
    let get = |unit: &BTreeMap<(String, String), String>, section: &str, key: &str| {
        unit.get(&(section.to_string(), key.to_string()))
            .unwrap_or_else(|| panic!("[{section}] {key}"))
            .clone()
    };
    // What arbiter/src/notify.rs sends, and the HUP it reloads on.
    assert_eq!(get(&service, "Service", "Type"), "notify");
    assert_eq!(
        get(&service, "Service", "NotifyAccess"),
        "all",
        "USR2 upgrades"
    );
    assert_eq!(
        get(&service, "Service", "ExecReload"),
        "/bin/kill -HUP $MAINPID"
    );
    assert_eq!(get(&service, "Service", "KillMode"), "mixed");
    assert!(get(&service, "Unit", "Requires").contains("ferrocorn.socket"));
    assert!(get(&socket, "Socket", "ListenStream").ends_with(":8000"));

    let exec: Vec<String> = get(&service, "Service", "ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(exec[0].ends_with("/ferrocorn"));
    assert!(
        flag(&exec, "--bind").is_none(),
        "socket activation: the sockets come from ferrocorn.socket"
    );
    let graceful: u64 =
        flag(&exec, "--graceful-timeout").map_or(DEFAULT_GRACEFUL_TIMEOUT, |t| t.parse().unwrap());
    let stop: u64 = get(&service, "Service", "TimeoutStopSec").parse().unwrap();
    assert!(
        stop > graceful,
        "TimeoutStopSec {stop} vs graceful_timeout {graceful}"
    );
    let metrics = flag(&exec, "--metrics-bind").expect("--metrics-bind");
    assert_ne!(
        port_of(metrics),
        8000,
        "the metrics listener is not activated"
    );

    verify_with_systemd(&exec[0]);
    assert_command_line_runs("systemd/ferrocorn.service", &exec[1..], true);
}

/// `systemd-analyze verify` on copies of the units whose `ExecStart` names the binary
/// under test (it checks that the program exists); it reports problems as warnings with
/// exit code 0, so any output fails.
fn verify_with_systemd(program: &str) {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        let _ = writeln!(
            std::io::stderr().lock(),
            "systemd-analyze is not installed: the units were checked by parse_unit only"
        );
        return;
    };
    assert!(version.status.success());
    let dir = TempDir::new("deploy-systemd");
    for name in ["ferrocorn.socket", "ferrocorn.service"] {
        let text = std::fs::read_to_string(deploy(&format!("systemd/{name}"))).unwrap();
        let text = text.replace(program, &binary().display().to_string());
        std::fs::write(dir.join(name), text).unwrap();
    }
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .args(["ferrocorn.socket", "ferrocorn.service"].map(|n| dir.join(n)))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}
