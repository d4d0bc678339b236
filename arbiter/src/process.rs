//! Process setup after binding: `chdir` in the arbiter, and the identity (`user`, `group`)
//! that the workers take after `fork`. The arbiter keeps its own identity, as gunicorn's
//! does, so that it can still write `<pidfile>.2` on USR2, remove its pidfile and sockets
//! on exit, and open log files wherever it could at start; it hands the log files to the
//! workers' user. The `umask` setting is not applied to the process: it gives the mode of
//! the Unix socket files (`listeners`) and of the files ferrocorn creates
//! (`Settings::created_file_mode`).

use std::ffi::CString;
use std::io;
use std::path::Path;

use ferrocorn_config::Settings;
use nix::unistd::{Gid, Group, Uid, User};

use crate::error::ArbiterError;

fn setup_error(what: String, source: impl Into<io::Error>) -> ArbiterError {
    ArbiterError::ProcessSetup {
        what,
        source: source.into(),
    }
}

/// Applies `chdir` (relative to the current directory). Fails naming the directory.
pub fn chdir(settings: &Settings) -> Result<(), ArbiterError> {
    if let Some(dir) = &settings.chdir {
        nix::unistd::chdir(dir)
            .map_err(|e| setup_error(format!("chdir to {}", dir.display()), e))?;
    }
    Ok(())
}

/// Who the workers run as: resolved in the arbiter (names are looked up there, once),
/// applied in each worker after `fork` with plain system calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    uid: Option<Uid>,
    gid: Option<Gid>,
    /// The supplementary groups to set (the user's, from the group database), when the
    /// groups change.
    groups: Option<Vec<Gid>>,
}

impl Identity {
    /// The identity `user` and `group` name (names or numbers; a number without an entry
    /// in the password database is taken as is, as gunicorn does), or `None` when neither
    /// is set. Fails naming the user or group that cannot be found.
    pub fn resolve(settings: &Settings) -> Result<Option<Identity>, ArbiterError> {
        let (uid, user) = match &settings.user {
            Some(name) => {
                let (uid, user) = lookup_user(name)?;
                (Some(uid), user)
            }
            None => (None, None),
        };
        let gid = match &settings.group {
            Some(name) => Some(lookup_group(name)?),
            None => user.as_ref().map(|user| user.gid),
        };
        if uid.is_none() && gid.is_none() {
            return Ok(None);
        }
        let root = Uid::effective().is_root();
        let groups = match gid {
            Some(gid) if gid != nix::unistd::getegid() || root => match &user {
                Some(user) => {
                    let name = CString::new(user.name.as_str()).map_err(|e| {
                        setup_error(
                            format!("look up the groups of {}", user.name),
                            io::Error::other(e),
                        )
                    })?;
                    Some(nix::unistd::getgrouplist(&name, gid).map_err(|e| {
                        setup_error(format!("look up the groups of user {}", user.name), e)
                    })?)
                }
                // No user entry to take groups from: keep none of root's.
                None if root => Some(vec![gid]),
                None => None,
            },
            _ => None,
        };
        Ok(Some(Identity { uid, gid, groups }))
    }

    /// Takes this identity: supplementary groups, then group, then user. Runs in a worker
    /// right after `fork` (system calls only). Fails naming the step.
    pub fn apply(&self) -> Result<(), String> {
        if let Some(groups) = &self.groups {
            nix::unistd::setgroups(groups)
                .map_err(|e| format!("cannot set the supplementary groups: {e}"))?;
        }
        if let Some(gid) = self.gid {
            if gid != nix::unistd::getegid() {
                nix::unistd::setgid(gid)
                    .map_err(|e| format!("cannot switch to group {gid}: {e}"))?;
            }
        }
        if let Some(uid) = self.uid {
            if uid != nix::unistd::geteuid() {
                nix::unistd::setuid(uid)
                    .map_err(|e| format!("cannot switch to user {uid}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Gives `path` to the workers' user and group, so that they can reopen a log file
    /// (or remove a socket file) the arbiter created. A failure is logged: the file stays
    /// usable by the arbiter.
    pub fn hand_over(&self, path: &Path) {
        if let Err(e) = nix::unistd::chown(path, self.uid, self.gid) {
            tracing::warn!("cannot hand {} to the workers' user: {e}", path.display());
        }
    }
}

/// The uid for `name` (a user name or a number), with its password entry when it has
/// one. A number without an entry is taken as is.
fn lookup_user(name: &str) -> Result<(Uid, Option<User>), ArbiterError> {
    let found = match name.parse::<u32>() {
        Ok(uid) => {
            return match User::from_uid(Uid::from_raw(uid)) {
                Ok(user) => Ok((Uid::from_raw(uid), user)),
                Err(e) => Err(setup_error(format!("look up user {name:?}"), e)),
            }
        }
        Err(_) => User::from_name(name),
    };
    match found {
        Ok(Some(user)) => Ok((user.uid, Some(user))),
        Ok(None) => Err(setup_error(
            format!("switch to user {name:?}"),
            io::Error::new(io::ErrorKind::NotFound, "no such user"),
        )),
        Err(e) => Err(setup_error(format!("look up user {name:?}"), e)),
    }
}

fn lookup_group(name: &str) -> Result<Gid, ArbiterError> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(Gid::from_raw(gid));
    }
    match Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid),
        Ok(None) => Err(setup_error(
            format!("switch to group {name:?}"),
            io::Error::new(io::ErrorKind::NotFound, "no such group"),
        )),
        Err(e) => Err(setup_error(format!("look up group {name:?}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_is_named() {
        let settings = Settings {
            user: Some("no-such-user-ferrocorn".to_string()),
            ..Settings::default()
        };
        let error = Identity::resolve(&settings).unwrap_err().to_string();
        assert_eq!(
            error,
            "cannot switch to user \"no-such-user-ferrocorn\": no such user"
        );
    }

    #[test]
    fn nothing_to_switch_to_is_no_identity() {
        assert_eq!(Identity::resolve(&Settings::default()).unwrap(), None);
    }

    /// Resolving only looks up: this process keeps its user and groups (applying is done
    /// in forked workers, never in a test process).
    #[test]
    fn the_current_user_resolves_without_privileges() {
        let me = nix::unistd::geteuid();
        let settings = Settings {
            user: Some(me.as_raw().to_string()),
            ..Settings::default()
        };
        let identity = Identity::resolve(&settings).unwrap().unwrap();
        assert_eq!(identity.uid, Some(me));
        assert_eq!(nix::unistd::geteuid(), me);
    }
}
