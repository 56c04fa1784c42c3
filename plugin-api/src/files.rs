//! Helpers for loaders that read files under a configured folder.
//!
//! A configured root is either one folder shared by every caller
//! (`root = "/srv/exports"`) or a folder per user: a root containing
//! [`USER_PLACEHOLDER`] (`root = "/srv/exports/{user}"`) is read with
//! `{user}` replaced by the [`Caller`]'s user id, so the same relative path
//! gives each user their own file and nobody reaches another user's folder.
//! [`resolve_for_caller`] handles both; [`user_root`] is the folder alone.

use crate::{Caller, Credential, PluginError, Result};
use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The text a configured root may contain to give every user a folder of
/// their own: it is replaced by the caller's user id.
pub const USER_PLACEHOLDER: &str = "{user}";

/// Whether `root` is a per-user root: one of its components contains
/// [`USER_PLACEHOLDER`].
///
/// ```
/// use export_plugin_api::files::is_per_user;
/// use std::path::Path;
/// assert!(is_per_user(Path::new("/srv/exports/{user}")));
/// assert!(!is_per_user(Path::new("/srv/exports")));
/// ```
pub fn is_per_user(root: &Path) -> bool {
    root.components()
        .any(|component| holds_placeholder(component.as_os_str()))
}

fn holds_placeholder(component: &OsStr) -> bool {
    // A lossy conversion never invents the placeholder's ASCII text.
    component.to_string_lossy().contains(USER_PLACEHOLDER)
}

/// The folder `caller` reads under the configured `root`: `root` itself
/// when it has no [`USER_PLACEHOLDER`], else `root` with every `{user}`
/// replaced by `caller.user`.
///
/// A per-user root is refused (nothing is read) when:
/// - there is no caller (`PermissionDenied`): the host is older than
///   plugin-api 1.2 and does not say who asks;
/// - the caller is an operator acting as an admin (`InvalidInput`): the
///   one-shot CLI without `--user` must say whose files to read;
/// - the user id cannot be one path component (`PermissionDenied`): empty,
///   `.`, `..`, or holding `/` or a NUL byte.
///
/// Any other caller, an admin calling through the API included, gets their
/// own folder. The result is not checked against the file system.
///
/// ```
/// use export_plugin_api::files::user_root;
/// use export_plugin_api::{Caller, ErrorKind};
/// use std::path::Path;
/// let root = Path::new("/srv/exports/{user}");
/// let ada = Caller::user("ada");
/// assert_eq!(user_root(root, Some(&ada)).unwrap(), Path::new("/srv/exports/ada"));
/// assert_eq!(user_root(root, None).unwrap_err().kind, ErrorKind::PermissionDenied);
/// let operator = Caller::operator();
/// assert_eq!(user_root(root, Some(&operator)).unwrap_err().kind, ErrorKind::InvalidInput);
/// let shared = Path::new("/srv/exports");
/// assert_eq!(user_root(shared, None).unwrap(), shared);
/// ```
pub fn user_root(root: &Path, caller: Option<&Caller>) -> Result<PathBuf> {
    if !is_per_user(root) {
        return Ok(root.to_owned());
    }
    let user = per_user_caller(caller)?;
    let mut folder = PathBuf::new();
    for component in root.components() {
        let part = component.as_os_str();
        if !holds_placeholder(part) {
            folder.push(part);
            continue;
        }
        let text = part.to_str().ok_or_else(|| {
            PluginError::invalid_input(format!(
                "the configured root {} cannot be used: the part holding {USER_PLACEHOLDER} \
                 must be UTF-8 text",
                root.display()
            ))
        })?;
        folder.push(text.replace(USER_PLACEHOLDER, user));
    }
    Ok(folder)
}

/// The user id whose folder a per-user root names, or why there is none.
fn per_user_caller(caller: Option<&Caller>) -> Result<&str> {
    let Some(caller) = caller else {
        return Err(PluginError::permission_denied(format!(
            "this loader reads a folder per user (its root contains {USER_PLACEHOLDER}) and \
             needs the caller; the host is older than plugin-api 1.2 and did not pass one: \
             upgrade export-host"
        )));
    };
    if caller.admin && caller.credential == Credential::Operator {
        return Err(PluginError::invalid_input(format!(
            "this loader reads a folder per user (its root contains {USER_PLACEHOLDER}): \
             say whose files to read with --user USER (export-host export --user USER ...)"
        )));
    }
    let user = caller.user.as_str();
    let unsafe_id =
        user.is_empty() || user == "." || user == ".." || user.contains('/') || user.contains('\0');
    if unsafe_id {
        return Err(PluginError::permission_denied(format!(
            "user id {user:?} cannot name a folder under a per-user root: a user id used \
             there must be one path component (not empty, not \".\" or \"..\", no \"/\" \
             or NUL byte); ask the operator to give this user another id"
        )));
    }
    Ok(user)
}

/// The regular file that the request's `path` names under the configured
/// `root`, for loaders that read files.
///
/// Refused: an empty path (`InvalidInput`), an absolute path or one whose
/// `..` climbs above the root (`PermissionDenied`, decided before the file
/// system is touched, so nothing is learnt about what exists outside), a path
/// whose symbolic links resolve outside the root (`PermissionDenied`), a
/// missing file (`NotFound`) and anything that is not a regular file.
///
/// A root containing [`USER_PLACEHOLDER`] is taken literally here: use
/// [`resolve_for_caller`] for roots that may be per user.
///
/// ```
/// use export_plugin_api::files::resolve_under_root;
/// use export_plugin_api::ErrorKind;
/// let root = std::env::temp_dir();
/// assert_eq!(resolve_under_root(&root, "../etc/passwd").unwrap_err().kind, ErrorKind::PermissionDenied);
/// assert_eq!(resolve_under_root(&root, "/etc/passwd").unwrap_err().kind, ErrorKind::PermissionDenied);
/// ```
pub fn resolve_under_root(root: &Path, path: &str) -> Result<PathBuf> {
    let relative = check_relative(path)?;
    let root = root
        .canonicalize()
        .map_err(|err| unusable_root(root, &err))?;
    resolve_in(&root, relative, path, "under the configured root")
}

/// [`resolve_under_root`] under the folder [`user_root`] gives `caller`:
/// the configured `root` itself when it is shared, the caller's own folder
/// when it contains [`USER_PLACEHOLDER`]. Every refusal of both applies;
/// a caller whose folder does not exist yet gets `NotFound` for the file,
/// and no message names a folder on the server.
///
/// ```
/// use export_plugin_api::files::resolve_for_caller;
/// use export_plugin_api::{Caller, ErrorKind};
/// let root = std::env::temp_dir().join("{user}");
/// let ada = Caller::user("ada");
/// let err = resolve_for_caller(&root, Some(&ada), "../bob/x.csv").unwrap_err();
/// assert_eq!(err.kind, ErrorKind::PermissionDenied);
/// let err = resolve_for_caller(&root, None, "x.csv").unwrap_err();
/// assert_eq!(err.kind, ErrorKind::PermissionDenied);
/// ```
pub fn resolve_for_caller(root: &Path, caller: Option<&Caller>, path: &str) -> Result<PathBuf> {
    if !is_per_user(root) {
        return resolve_under_root(root, path);
    }
    let folder = user_root(root, caller)?;
    let user = caller
        .map(|caller| caller.user.as_str())
        .unwrap_or_default();
    let relative = check_relative(path)?;
    let folder = match folder.canonicalize() {
        Ok(folder) => folder,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(if shared_part(root).is_dir() {
                PluginError::not_found(format!(
                    "file {path:?} not found: user {user:?} has no files here yet"
                ))
            } else {
                // The folders of all users are missing: the configuration
                // is wrong, not the request.
                unusable_root(root, &err)
            });
        }
        Err(err) => {
            return Err(PluginError::io(format!(
                "the folder of user {user:?} cannot be used: {err}"
            )))
        }
    };
    resolve_in(
        &folder,
        relative,
        path,
        &format!("in the files of user {user:?}"),
    )
}

/// The part of a per-user root before its first component with
/// [`USER_PLACEHOLDER`]: the folder that holds every user's folder.
fn shared_part(root: &Path) -> PathBuf {
    root.components()
        .take_while(|component| !holds_placeholder(component.as_os_str()))
        .collect()
}

fn unusable_root(root: &Path, err: &io::Error) -> PluginError {
    PluginError::io(format!(
        "the configured root {} cannot be used: {err}",
        root.display()
    ))
}

/// `path` as a relative path that stays under its root, decided before the
/// file system is touched, so nothing is learnt about what exists outside.
fn check_relative(path: &str) -> Result<&Path> {
    if path.is_empty() {
        return Err(PluginError::invalid_input(
            "path is empty: name a file under the configured root",
        ));
    }
    let relative = Path::new(path);
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth = depth.checked_sub(1).ok_or_else(|| outside(path))?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside(path)),
        }
    }
    Ok(relative)
}

fn outside(path: &str) -> PluginError {
    PluginError::permission_denied(format!("path {path:?} must be inside the configured root"))
}

/// The regular file `relative` (the request's `path`) names under the
/// canonical folder `root`; `place` says where, for messages.
fn resolve_in(root: &Path, relative: &Path, path: &str, place: &str) -> Result<PathBuf> {
    // Symbolic links are resolved here; the result must still be under root.
    let resolved = match root.join(relative).canonicalize() {
        Ok(resolved) => resolved,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(PluginError::not_found(format!(
                "file {path:?} not found {place}"
            )))
        }
        Err(err) => return Err(PluginError::from(err).context(format!("cannot open {path:?}"))),
    };
    if !resolved.starts_with(root) {
        return Err(outside(path));
    }
    let metadata = resolved
        .metadata()
        .map_err(|err| PluginError::from(err).context(format!("cannot open {path:?}")))?;
    if !metadata.is_file() {
        return Err(PluginError::invalid_input(format!(
            "{path:?} is not a regular file"
        )));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh folder under the system's temporary folder, removed on drop.
    struct TempFolder(PathBuf);

    impl TempFolder {
        fn new() -> TempFolder {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "export-plugin-api-files-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&path).unwrap();
            TempFolder(path)
        }
    }

    impl Drop for TempFolder {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// `users/{user}` under a temporary folder, with `ada/x.csv` and `bob/x.csv`.
    fn per_user() -> (TempFolder, PathBuf) {
        let dir = TempFolder::new();
        for user in ["ada", "bob"] {
            fs::create_dir_all(dir.0.join("users").join(user)).unwrap();
            fs::write(dir.0.join("users").join(user).join("x.csv"), user).unwrap();
        }
        let root = dir.0.join("users").join(USER_PLACEHOLDER);
        (dir, root)
    }

    fn token_caller(user: &str, admin: bool) -> Caller {
        Caller {
            user: user.to_owned(),
            admin,
            credential: Credential::Token {
                id: "tok_1".to_owned(),
            },
        }
    }

    #[test]
    fn each_user_reads_their_own_file() {
        let (_dir, root) = per_user();
        for user in ["ada", "bob"] {
            let caller = Caller::user(user);
            let file = resolve_for_caller(&root, Some(&caller), "x.csv").unwrap();
            assert_eq!(fs::read_to_string(file).unwrap(), user);
        }
        // An admin through the API reads their own folder too.
        let admin = token_caller("ada", true);
        let file = resolve_for_caller(&root, Some(&admin), "./x.csv").unwrap();
        assert_eq!(fs::read_to_string(file).unwrap(), "ada");
    }

    #[test]
    fn placeholder_inside_a_component_and_repeated() {
        let root = Path::new("/srv/u-{user}/{user}.d/files");
        let caller = Caller::user("ada");
        assert_eq!(
            user_root(root, Some(&caller)).unwrap(),
            Path::new("/srv/u-ada/ada.d/files")
        );
        assert_eq!(shared_part(root), Path::new("/srv"));
    }

    #[test]
    fn other_users_files_are_out_of_reach() {
        let (dir, root) = per_user();
        let ada = Caller::user("ada");
        let bob_file = dir.0.join("users/bob/x.csv");
        std::os::unix::fs::symlink(&bob_file, dir.0.join("users/ada/link.csv")).unwrap();
        std::os::unix::fs::symlink("../bob", dir.0.join("users/ada/bobdir")).unwrap();
        for path in [
            "../bob/x.csv",
            "sub/../../bob/x.csv",
            bob_file.to_str().unwrap(),
            "link.csv",
            "bobdir/x.csv",
        ] {
            let err = resolve_for_caller(&root, Some(&ada), path).unwrap_err();
            assert_eq!(err.kind, ErrorKind::PermissionDenied, "{path}: {err}");
            assert!(err.message.contains("inside the configured root"), "{err}");
        }
    }

    #[test]
    fn refused_callers() {
        let (_dir, root) = per_user();
        let err = resolve_for_caller(&root, None, "x.csv").unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
        assert!(err.message.contains("needs the caller"), "{err}");
        assert!(err.message.contains("older than plugin-api 1.2"), "{err}");

        let err = resolve_for_caller(&root, Some(&Caller::operator()), "x.csv").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("--user"), "{err}");

        for user in ["", ".", "..", "a/b", "../bob", "a\0b"] {
            let caller = token_caller(user, false);
            let err = resolve_for_caller(&root, Some(&caller), "x.csv").unwrap_err();
            assert_eq!(err.kind, ErrorKind::PermissionDenied, "{user:?}");
            assert!(err.message.contains("one path component"), "{err}");
        }
    }

    #[test]
    fn shared_roots_ignore_the_caller() {
        let (dir, _) = per_user();
        let shared = dir.0.join("users");
        for caller in [None, Some(Caller::operator()), Some(Caller::user(""))] {
            let file = resolve_for_caller(&shared, caller.as_ref(), "ada/x.csv").unwrap();
            assert_eq!(fs::read_to_string(file).unwrap(), "ada");
        }
    }

    #[test]
    fn a_user_without_a_folder_gets_not_found_without_server_paths() {
        let (dir, root) = per_user();
        let caller = Caller::user("cy");
        let err = resolve_for_caller(&root, Some(&caller), "x.csv").unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(err.message.contains("\"cy\""), "{err}");
        assert!(!err.message.contains(dir.0.to_str().unwrap()), "{err}");

        let err = resolve_for_caller(&root, Some(&Caller::user("ada")), "y.csv").unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert!(!err.message.contains(dir.0.to_str().unwrap()), "{err}");

        // Without the folder that holds every user's, the configuration is wrong.
        let broken = dir.0.join("missing").join(USER_PLACEHOLDER);
        let err = resolve_for_caller(&broken, Some(&caller), "x.csv").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Io);
        assert!(err.message.contains("configured root"), "{err}");
    }

    #[test]
    fn escapes_are_refused_before_the_caller_folder_is_looked_up() {
        let (_dir, root) = per_user();
        let caller = Caller::user("nobody-yet");
        let err = resolve_for_caller(&root, Some(&caller), "../ada/x.csv").unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
        let err = resolve_for_caller(&root, Some(&caller), "").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }
}
