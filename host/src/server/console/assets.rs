//! The console's files, compiled in, each with its content type and ETag.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// One file of the console.
pub struct Asset {
    /// The name under `/console/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    etag: OnceLock<String>,
}

impl Asset {
    const fn new(name: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Asset {
        Asset {
            name,
            content_type,
            bytes,
            etag: OnceLock::new(),
        }
    }

    /// A strong ETag from the content, computed once.
    pub fn etag(&self) -> &str {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.bytes);
            format!("\"{}\"", hex::encode(&digest[..12]))
        })
    }
}

static INDEX: Asset = Asset::new(
    "index.html",
    "text/html; charset=utf-8",
    include_bytes!("assets/index.html"),
);

static FILES: [Asset; 4] = [
    Asset::new(
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/console.css"),
    ),
    Asset::new(
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/console.js"),
    ),
    Asset::new(
        "schema-form.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/schema-form.js"),
    ),
    Asset::new(
        "icon.svg",
        "image/svg+xml",
        include_bytes!("assets/icon.svg"),
    ),
];

/// The page served at `/`.
pub fn index() -> &'static Asset {
    &INDEX
}

/// A file under `/console/` by name.
pub fn find(name: &str) -> Option<&'static Asset> {
    if name == INDEX.name {
        return Some(&INDEX);
    }
    FILES.iter().find(|asset| asset.name == name)
}
