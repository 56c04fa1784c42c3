//! The PDF file as a stream of objects: each is written once, handed out
//! as bytes, and only its byte offset is kept for the cross-reference
//! table at the end.
//!
//! pdf-writer's `Pdf` would hold the whole file until `finish`; here a
//! [`Chunk`] collects the objects written since the last [`PdfFile::take`]
//! (a page: its content stream and page object), and a running byte count
//! gives each object's offset. What stays in memory for the whole export:
//! one offset per object and one reference per page.

use export_plugin_api::{PluginError, Result};
use flate2::write::ZlibEncoder;
use flate2::Compression;
use pdf_writer::writers::{Catalog, DocumentInfo};
use pdf_writer::{Chunk, Ref, TextStr};
use std::io::Write as _;

/// What every file starts with: the version, then a comment of bytes
/// above 127 that tells transfer tools the file is binary.
pub(crate) const HEADER: &[u8] = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n";

/// The offset of an object not written yet.
const UNWRITTEN: u64 = u64::MAX;

/// Deflate level of content streams and fonts: zlib's default, a good
/// size for little time on text-heavy streams.
const LEVEL: u32 = 6;

/// One PDF being written.
pub(crate) struct PdfFile {
    /// The objects written since the last `take`.
    chunk: Chunk,
    /// Bytes handed out before `chunk`.
    position: u64,
    /// Where each object starts, by object number (index 0 is the free
    /// head of the table); [`UNWRITTEN`] until it is written.
    offsets: Vec<u64>,
    page_tree: Ref,
    pages: Vec<Ref>,
    /// How many of `pages` are front pages.
    front: usize,
}

impl PdfFile {
    /// A file whose [`HEADER`] has been handed out already (the first
    /// bytes of the output); the page tree's reference is the first.
    pub(crate) fn new() -> PdfFile {
        let mut file = PdfFile {
            chunk: Chunk::new(),
            position: HEADER.len() as u64,
            offsets: vec![UNWRITTEN],
            page_tree: Ref::new(1),
            pages: Vec::new(),
            front: 0,
        };
        file.page_tree = file.alloc();
        file
    }

    /// A new object number.
    pub(crate) fn alloc(&mut self) -> Ref {
        self.offsets.push(UNWRITTEN);
        // Object numbers fit i32 long before memory runs out: ~2 per page.
        Ref::new(self.offsets.len() as i32 - 1)
    }

    /// The page tree every page names as its parent.
    pub(crate) fn page_tree(&self) -> Ref {
        self.page_tree
    }

    /// Where to write object `id` next: notes its offset first.
    pub(crate) fn object(&mut self, id: Ref) -> &mut Chunk {
        let offset = self.position + self.chunk.len() as u64;
        if let Some(slot) = self.offsets.get_mut(id.get() as usize) {
            *slot = offset;
        }
        &mut self.chunk
    }

    /// Adds a page (already written) to the page tree, in order.
    pub(crate) fn add_page(&mut self, page: Ref) {
        self.pages.push(page);
    }

    /// Adds a page (already written) to the page tree after the front
    /// pages added so far and before every other: a report's summary,
    /// known only at the end, still opens the document.
    pub(crate) fn add_front_page(&mut self, page: Ref) {
        self.pages.insert(self.front.min(self.pages.len()), page);
        self.front += 1;
    }

    /// The bytes of the objects written since the last call.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        let chunk = std::mem::replace(&mut self.chunk, Chunk::new());
        let bytes = chunk.as_bytes().to_vec();
        self.position += bytes.len() as u64;
        bytes
    }

    /// Writes the page tree, catalog and document information, the
    /// cross-reference table and the trailer, and returns the bytes not
    /// handed out yet.
    pub(crate) fn finish(mut self, title: &str) -> Result<Vec<u8>> {
        let tree = self.page_tree;
        let count = i32::try_from(self.pages.len())
            .map_err(|_| PluginError::limit_exceeded("the PDF has too many pages"))?;
        let pages = std::mem::take(&mut self.pages);
        self.object(tree).pages(tree).kids(pages).count(count);

        let catalog = self.alloc();
        self.object(catalog)
            .indirect(catalog)
            .start::<Catalog>()
            .pages(tree);
        let info = self.alloc();
        self.object(info)
            .indirect(info)
            .start::<DocumentInfo>()
            .title(TextStr(title))
            .creator(TextStr("export-host pdf"))
            .producer(TextStr("export-host pdf"));

        let mut bytes = self.take();
        // `take` has counted those bytes: the table starts here.
        let xref = self.position;
        let size = self.offsets.len();
        bytes.reserve(40 + 20 * size + 120);
        // Writing into a Vec cannot fail.
        let _ = write!(bytes, "xref\n0 {size}\n0000000000 65535 f\r\n");
        for (number, offset) in self.offsets.iter().enumerate().skip(1) {
            if *offset == UNWRITTEN {
                return Err(PluginError::internal(format!(
                    "PDF object {number} was never written"
                )));
            }
            let _ = write!(bytes, "{offset:010} 00000 n\r\n");
        }
        let _ = write!(
            bytes,
            "trailer\n<< /Size {size} /Root {} 0 R /Info {} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            catalog.get(),
            info.get()
        );
        Ok(bytes)
    }
}

/// `data` compressed for a `/FlateDecode` stream.
pub(crate) fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = ZlibEncoder::new(
        Vec::with_capacity(data.len() / 3 + 64),
        Compression::new(LEVEL),
    );
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .map_err(|err| PluginError::internal(format!("compressing a PDF stream failed: {err}")))
}
