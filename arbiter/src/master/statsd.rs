//! The arbiter's statsd lines: gunicorn's `gunicorn.workers` gauge, sent when the number
//! of workers changes, and the arbiter's own error-log counts, sent once per loop turn.

use ferrocorn_config::{Settings, StatsdAddress};
use ferrocorn_worker::statsd::Statsd;

use super::Master;

/// The arbiter's client and what it last sent.
#[derive(Debug, Default)]
pub(super) struct StatsdReport {
    client: Option<Statsd>,
    /// The settings the client was made (or failed to be made) for: a reload that changes
    /// them makes a new one, and a name that did not resolve is not retried every turn.
    made_for: Option<(Option<StatsdAddress>, String, String)>,
    /// The `gunicorn.workers` value last sent.
    workers_sent: Option<usize>,
}

impl Master {
    /// Sends the worker count when it changed (gunicorn's `manage_workers`: the workers of
    /// the current generation that are neither being retired nor due for recycling) and
    /// the turn's other lines.
    pub(super) fn report_statsd(&mut self) {
        let report = &mut self.statsd;
        let wanted = statsd_settings(&self.settings);
        if report.made_for.as_ref() != Some(&wanted) {
            report.client = Statsd::from_settings(&self.settings).and_then(|made| {
                made.map_err(|e| {
                    let address = wanted.0.as_ref().map(ToString::to_string);
                    tracing::error!(
                        "statsd_host {}: {e}: no statsd from the arbiter",
                        address.unwrap_or_default()
                    )
                })
                .ok()
            });
            report.made_for = Some(wanted);
            report.workers_sent = None;
        }
        let Some(client) = &mut report.client else {
            return;
        };
        let workers = self
            .workers
            .values()
            .filter(|w| w.counts_in(self.generation))
            .count();
        if report.workers_sent != Some(workers) {
            client.gauge("gunicorn.workers", workers as u64);
            report.workers_sent = Some(workers);
        }
        client.flush();
    }
}

fn statsd_settings(settings: &Settings) -> (Option<StatsdAddress>, String, String) {
    (
        settings.statsd_host.clone(),
        settings.statsd_prefix.clone(),
        settings.dogstatsd_tags.clone(),
    )
}
