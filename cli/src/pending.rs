//! Settings that are declared (so that `--help`, the docs and the config file know them) but
//! not served yet: giving one is refused rather than silently ignored. Each line goes away
//! with the work that makes its setting real (issues 14, 15 and 16).

use ferrocorn_config::Settings;

/// The settings given that this build does not act on yet, by name.
pub(crate) fn unbuilt(settings: &Settings) -> Vec<&'static str> {
    let mut names = Vec::new();
    let mut check = |set: bool, name: &'static str| {
        if set {
            names.push(name);
        }
    };
    check(settings.metrics_bind.is_some(), "metrics_bind");
    check(settings.limit_concurrency != 0, "limit_concurrency");
    names
}
