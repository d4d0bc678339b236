//! What a new user meets first, checked as they would meet it: the README's setup, the
//! version flag, the license files `Cargo.toml` names.

use std::process::Command;

use ferrocorn_tests::{binary, workspace_root};

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Bug: `ferrocorn -V` was an unknown flag; it prints the version as `-v` and `--version` do.
#[test]
fn bug_capital_v_prints_the_version() {
    for flag in ["-V", "-v", "--version"] {
        let out = Command::new(binary()).arg(flag).output().unwrap();
        assert!(out.status.success(), "{flag}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("ferrocorn {}\n", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
}

/// Bug: `Cargo.toml` licenses the workspace `MIT OR Apache-2.0`, but neither license file
/// existed.
#[test]
fn bug_the_license_files_cargo_toml_promises_exist() {
    assert!(read("Cargo.toml").contains("license = \"MIT OR Apache-2.0\""));
    assert!(read("LICENSE-MIT").contains("Permission is hereby granted, free of charge"));
    let apache = read("LICENSE-APACHE");
    assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
    assert!(apache.contains("END OF TERMS AND CONDITIONS"));
}
