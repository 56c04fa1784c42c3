//! Helpers for loaders that read files under a configured folder.

use crate::{PluginError, Result};
use std::io;
use std::path::{Component, Path, PathBuf};

/// The regular file that the request's `path` names under the configured
/// `root`, for loaders that read files.
///
/// Refused: an empty path (`InvalidInput`), an absolute path or one whose
/// `..` climbs above the root (`PermissionDenied`, decided before the file
/// system is touched, so nothing is learnt about what exists outside), a path
/// whose symbolic links resolve outside the root (`PermissionDenied`), a
/// missing file (`NotFound`) and anything that is not a regular file.
///
/// ```
/// use export_plugin_api::files::resolve_under_root;
/// use export_plugin_api::ErrorKind;
/// let root = std::env::temp_dir();
/// assert_eq!(resolve_under_root(&root, "../etc/passwd").unwrap_err().kind, ErrorKind::PermissionDenied);
/// assert_eq!(resolve_under_root(&root, "/etc/passwd").unwrap_err().kind, ErrorKind::PermissionDenied);
/// ```
pub fn resolve_under_root(root: &Path, path: &str) -> Result<PathBuf> {
    let outside = || {
        PluginError::permission_denied(format!("path {path:?} must be inside the configured root"))
    };
    if path.is_empty() {
        return Err(PluginError::invalid_input(
            "path is empty: name a file under the configured root",
        ));
    }
    // Refuse escapes before touching the file system, so nothing is learnt
    // about what exists outside the root.
    let relative = Path::new(path);
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth = depth.checked_sub(1).ok_or_else(outside)?,
            Component::RootDir | Component::Prefix(_) => return Err(outside()),
        }
    }
    let root = root.canonicalize().map_err(|err| {
        PluginError::io(format!(
            "the configured root {} cannot be used: {err}",
            root.display()
        ))
    })?;
    // Symbolic links are resolved here; the result must still be under root.
    let resolved = match root.join(relative).canonicalize() {
        Ok(resolved) => resolved,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(PluginError::not_found(format!(
                "file {path:?} not found under the configured root"
            )))
        }
        Err(err) => return Err(PluginError::from(err).context(format!("cannot open {path:?}"))),
    };
    if !resolved.starts_with(&root) {
        return Err(outside());
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
