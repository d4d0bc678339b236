//! What each worker gets from the arbiter besides its listeners: the identity it takes
//! after `fork` (`user`, `group`), and the access log file the arbiter opened for it. The
//! arbiter keeps its own identity; the log files it creates are handed to the workers'
//! user, so that a worker can reopen them by path after a rotation (SIGUSR1: the arbiter
//! reopens first, creating the new files, then tells the workers).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ferrocorn_config::Settings;
use ferrocorn_worker::TlsConfig;

use crate::error::ArbiterError;
use crate::process::Identity;

/// The access log file of the settings, open for appending.
#[derive(Debug)]
struct AccessLogFile {
    /// As configured (relative to the work directory, like the worker's own reopening).
    path: PathBuf,
    file: File,
}

/// Everything a worker of one configuration (generation) is handed, besides listeners.
#[derive(Debug)]
pub struct WorkerSetup {
    identity: Option<Identity>,
    access_log: Option<AccessLogFile>,
    /// Built here, before the workers are forked, so that they share its session ticket
    /// keys: a session one worker began resumes on another.
    tls: Option<TlsConfig>,
}

impl WorkerSetup {
    /// Resolves the workers' identity, reads and checks the TLS certificate and key, and
    /// opens the access log (a file path; `-` is left to the workers), in the work directory
    /// of `settings`. Fails naming the user, group, certificate file or access log at fault.
    /// Changes no file: see [`WorkerSetup::hand_over_logs`].
    pub fn prepare(settings: &Settings) -> Result<WorkerSetup, ArbiterError> {
        let identity = Identity::resolve(settings)?;
        let tls = TlsConfig::from_settings(settings).map_err(ArbiterError::Tls)?;
        if let Some(version) = settings.ssl_version.as_deref().filter(|_| tls.is_some()) {
            tracing::warn!(
                "ssl_version ({version}) is ignored, as gunicorn deprecated it: TLS 1.2 and 1.3 \
                 are offered; set tls_min_version to refuse 1.2"
            );
        }
        let access_log = match settings.accesslog.as_deref() {
            None | Some("-") => None,
            Some(path) => {
                let path = PathBuf::from(path);
                let file = open_log(&path, settings.created_file_mode()).map_err(|source| {
                    ArbiterError::ProcessSetup {
                        what: format!("open access log {}", path.display()),
                        source,
                    }
                })?;
                Some(AccessLogFile { path, file })
            }
        };
        Ok(WorkerSetup {
            identity,
            access_log,
            tls,
        })
    }

    /// SIGUSR1, in the arbiter, after its own error log was reopened and before the workers
    /// are told: opens the access log again (creating the file a rotation moved away) and
    /// hands both logs to the workers' user.
    pub fn reopen_logs(&mut self, settings: &Settings, start_dir: &Path) {
        if let Some(log) = &mut self.access_log {
            match open_log(&log.path, settings.created_file_mode()) {
                Ok(file) => log.file = file,
                Err(e) => tracing::error!("cannot reopen {}: {e}", log.path.display()),
            }
        }
        self.hand_over_logs(settings, start_dir);
    }

    /// Gives a file the arbiter created (a Unix socket, a log) to the workers' user.
    pub fn hand_over(&self, path: &Path) {
        if let Some(identity) = &self.identity {
            identity.hand_over(path);
        }
    }

    /// Gives the log files of `settings` (the error log relative to `start_dir`, where the
    /// binary opened it) to the workers' user, so that they can reopen them.
    pub fn hand_over_logs(&self, settings: &Settings, start_dir: &Path) {
        if let Some(log) = &self.access_log {
            self.hand_over(&log.path);
        }
        if settings.errorlog != "-" {
            self.hand_over(&start_dir.join(&settings.errorlog));
        }
    }

    /// The TLS configuration of these workers' listeners (`None`: plain TCP).
    pub fn tls(&self) -> Option<TlsConfig> {
        self.tls.clone()
    }

    /// In a worker, right after `fork`: takes the workers' identity and returns its copy of
    /// the access log. Fails naming the step.
    pub fn enter(&self) -> Result<Option<File>, String> {
        if let Some(identity) = &self.identity {
            identity.apply()?;
        }
        self.access_log
            .as_ref()
            .map(|log| log.file.try_clone())
            .transpose()
            .map_err(|e| format!("cannot duplicate the access log: {e}"))
    }
}

/// Opens a log file for appending, created with `mode`.
fn open_log(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .open(path)
}
