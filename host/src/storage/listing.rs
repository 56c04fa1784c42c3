//! An object store's listing, as the host's stored objects: what both
//! backends' `list_keys` hand back.

use super::{StorageError, StorageKey, StoredObject};
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::ObjectMeta;
use std::time::SystemTime;

/// The objects of `listing` that `key_of` names as host keys (anything else
/// in the store, such as uploads in progress, is left out). A failed
/// listing step becomes a [`StorageError::Backend`] saying `what` was done.
pub(super) fn stored_objects(
    listing: BoxStream<'static, object_store::Result<ObjectMeta>>,
    what: String,
    key_of: impl Fn(&ObjectPath) -> Option<StorageKey> + Send + 'static,
) -> BoxStream<'static, Result<StoredObject, StorageError>> {
    listing
        .filter_map(move |item| {
            let item = match item {
                Ok(meta) => key_of(&meta.location).map(|key| {
                    Ok(StoredObject {
                        key,
                        size: meta.size,
                        last_modified: SystemTime::from(meta.last_modified),
                    })
                }),
                Err(source) => Some(Err(StorageError::Backend {
                    what: what.clone(),
                    source,
                })),
            };
            futures::future::ready(item)
        })
        .boxed()
}
