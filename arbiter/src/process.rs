//! Process setup after binding (`chdir`, `umask`, `user`/`group`) and the helpers that
//! describe how a child ended.

use std::io;
use std::path::Path;

use ferrocorn_config::Settings;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{Gid, Group, Uid, User};

use crate::error::ArbiterError;

fn setup_error(what: String, source: impl Into<io::Error>) -> ArbiterError {
    ArbiterError::ProcessSetup {
        what,
        source: source.into(),
    }
}

/// Applies `chdir`, then `umask`, then drops to `group` and `user` (names or numbers).
/// Unix socket files in `owned_paths` are handed to the new owner first, so the workers can
/// still remove them. Fails naming the setting that could not be applied.
pub fn setup(settings: &Settings, owned_paths: &[&Path]) -> Result<(), ArbiterError> {
    if let Some(dir) = &settings.chdir {
        nix::unistd::chdir(dir)
            .map_err(|e| setup_error(format!("chdir to {}", dir.display()), e))?;
    }
    umask(Mode::from_bits_truncate(settings.umask as _));

    // A numeric id may have no entry in the password database (gunicorn takes it as is):
    // then there is no name for initgroups and no default group.
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
        return Ok(());
    }
    for path in owned_paths {
        if let Err(e) = nix::unistd::chown(*path, uid, gid) {
            tracing::warn!("cannot hand {} to the new owner: {e}", path.display());
        }
    }
    if let Some(gid) = gid {
        if gid != nix::unistd::getegid() || Uid::effective().is_root() {
            if let Some(user) = &user {
                let name = std::ffi::CString::new(user.name.as_str()).map_err(|e| {
                    setup_error(format!("initgroups for {}", user.name), io::Error::other(e))
                })?;
                nix::unistd::initgroups(&name, gid)
                    .map_err(|e| setup_error(format!("set the groups of user {}", user.name), e))?;
            } else if Uid::effective().is_root() {
                // No user entry to take groups from: keep none of root's.
                nix::unistd::setgroups(&[gid])
                    .map_err(|e| setup_error(format!("set the groups to {gid}"), e))?;
            }
            nix::unistd::setgid(gid)
                .map_err(|e| setup_error(format!("switch to group {gid}"), e))?;
        }
    }
    if let Some(uid) = uid {
        if uid != nix::unistd::geteuid() {
            nix::unistd::setuid(uid)
                .map_err(|e| setup_error(format!("switch to user {uid}"), e))?;
        }
    }
    Ok(())
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
        // `setup` sets the process's umask: in a child, not under the other tests.
        ferrocorn_tests::in_child_process!(unknown_user_is_named, setup_names_an_unknown_user);
    }

    fn setup_names_an_unknown_user() {
        let settings = Settings {
            user: Some("no-such-user-ferrocorn".to_string()),
            ..Settings::default()
        };
        let error = setup(&settings, &[]).unwrap_err().to_string();
        assert_eq!(
            error,
            "cannot switch to user \"no-such-user-ferrocorn\": no such user"
        );
    }

    #[test]
    fn current_user_is_accepted_without_privileges() {
        // `setup` sets the process's umask (and would switch users): in a child.
        ferrocorn_tests::in_child_process!(
            current_user_is_accepted_without_privileges,
            setup_accepts_the_current_user
        );
    }

    fn setup_accepts_the_current_user() {
        let me = nix::unistd::geteuid().as_raw().to_string();
        let settings = Settings {
            user: Some(me),
            umask: 0o022,
            ..Settings::default()
        };
        setup(&settings, &[]).unwrap();
    }
}
