//! What a new user meets first, checked as they would meet it: the README's setup, the
//! version flag, the license files `Cargo.toml` names.

use ferrocorn_tests::workspace_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
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
