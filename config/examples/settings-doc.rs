//! Prints `docs/settings.md`, generated from the settings declarations; `cargo xtask docs`
//! runs it (xtask links no server crate, so it cannot call the generator directly).

fn main() {
    print!("{}", ferrocorn_config::docs::settings_markdown());
}
