//! What a new user meets first, checked as they would meet it: the README's setup, the
//! version flag, the license files `Cargo.toml` names.

use std::process::Command;

use ferrocorn_tests::{binary, workspace_root};

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Bug: the README did not say how to put `ferrocorn` on `PATH`, nor that the first build
/// takes minutes, nor where the operator's guide is; its two setup commands stay as they are.
#[test]
fn bug_the_readme_says_how_to_install_and_where_to_read_on() {
    let readme = read("README.md");
    for needle in [
        "cargo install --path cli",
        "takes a few minutes",
        "(docs/operations.md)",
        "cargo run --release --bin ferrocorn -- --bind 127.0.0.1:8000 static:.",
        "cargo xtask ci ",
    ] {
        assert!(readme.contains(needle), "README.md lacks {needle:?}");
    }
    assert!(workspace_root().join("docs/operations.md").is_file());
    assert!(workspace_root().join("cli/Cargo.toml").is_file());
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
