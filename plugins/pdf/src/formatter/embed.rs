//! The glyphs each face has drawn so far, and the subset font written from
//! them at the end.
//!
//! Content streams address glyphs by CID. A [`GlyphRemapper`] hands out
//! the subset's glyph ids in the order glyphs are first drawn (`.notdef`
//! is 0), so a page can use a glyph's final id as soon as it draws it, long
//! before the subset exists; the subset keeps that numbering, so the
//! CID-to-glyph map is the identity. What is kept per glyph: its width and
//! the text it stands for (for `ToUnicode`), so memory grows with the
//! distinct glyphs used, never with rows.
//!
//! Each face is written as a Type 0 font (`Identity-H`, two bytes a CID)
//! over a CIDFontType2 with its `W` widths, a FontDescriptor, the subset
//! TrueType program (FontFile2) and a ToUnicode CMap, so text can be
//! searched, copied and extracted.

use super::document::{deflate, PdfFile};
use super::fonts::{Face, Fonts};
use export_plugin_api::{PluginError, Result};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Filter, Finish, Name, Rect, Ref, Str};
use skrifa::instance::{LocationRef, Size};
use skrifa::MetadataProvider;
use subsetter::GlyphRemapper;

const SYSTEM_INFO: SystemInfo = SystemInfo {
    registry: Str(b"Adobe"),
    ordering: Str(b"Identity"),
    supplement: 0,
};

/// The glyphs one face has drawn, by CID.
pub(crate) struct GlyphSet {
    face: Face,
    remapper: GlyphRemapper,
    /// Advance of each CID in PDF glyph units (1/1000 em).
    widths: Vec<f32>,
    /// The text each CID stands for, as first drawn (empty: none). Where a
    /// glyph stands for other text later (a base letter with a mark
    /// shaped into it), the page says so with `ActualText`.
    text: Vec<Box<str>>,
}

impl GlyphSet {
    pub(crate) fn new(fonts: &Fonts, face: Face) -> GlyphSet {
        let loaded = fonts.loaded(face);
        GlyphSet {
            face,
            remapper: GlyphRemapper::new(),
            widths: vec![loaded.advance_units(0) * 1000.0 / loaded.units_per_em],
            text: vec![Box::from("")],
        }
    }

    /// The CID of glyph `id`, added if new; `text` is what it stands for.
    pub(crate) fn cid(&mut self, fonts: &Fonts, id: u16, text: &str) -> u16 {
        let cid = self.remapper.remap(id);
        let index = usize::from(cid);
        if index == self.widths.len() {
            let loaded = fonts.loaded(self.face);
            self.widths
                .push(loaded.advance_units(id) * 1000.0 / loaded.units_per_em);
            self.text.push(Box::from(text));
        }
        cid
    }

    /// The text a CID stands for in the ToUnicode map (empty: none).
    pub(crate) fn text(&self, cid: u16) -> &str {
        self.text.get(usize::from(cid)).map_or("", |text| text)
    }

    /// The width of a CID in PDF glyph units.
    pub(crate) fn width(&self, cid: u16) -> f32 {
        self.widths.get(usize::from(cid)).copied().unwrap_or(0.0)
    }

    /// Writes the font: the Type 0 font at `type0` (the reference the
    /// pages name), then the CID font, descriptor, ToUnicode CMap and
    /// subset program.
    pub(crate) fn write(&self, fonts: &Fonts, file: &mut PdfFile, type0: Ref) -> Result<()> {
        let loaded = fonts.loaded(self.face);
        let subset = subsetter::subset(self.face.data(), 0, &self.remapper).map_err(|err| {
            PluginError::internal(format!(
                "subsetting the embedded font {} failed: {err}",
                self.face.postscript_name()
            ))
        })?;
        let program = deflate(&subset)?;

        let cid_ref = file.alloc();
        let descriptor_ref = file.alloc();
        let cmap_ref = file.alloc();
        let program_ref = file.alloc();
        let name = format!("{}+{}", self.subset_tag(), self.face.postscript_name());

        file.object(type0)
            .type0_font(type0)
            .base_font(Name(name.as_bytes()))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid_ref)
            .to_unicode(cmap_ref);

        let mut cid = file.object(cid_ref).cid_font(cid_ref);
        cid.subtype(CidFontType::Type2)
            .base_font(Name(name.as_bytes()))
            .system_info(SYSTEM_INFO)
            .font_descriptor(descriptor_ref)
            .default_width(0.0)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        write_widths(&mut cid.widths(), &self.widths);
        cid.finish();

        let metrics = loaded
            .font
            .metrics(Size::unscaled(), LocationRef::default());
        let scale = 1000.0 / loaded.units_per_em;
        let bbox = metrics.bounds.map_or(
            Rect::new(0.0, metrics.descent * scale, 1000.0, metrics.ascent * scale),
            |b| {
                Rect::new(
                    b.x_min * scale,
                    b.y_min * scale,
                    b.x_max * scale,
                    b.y_max * scale,
                )
            },
        );
        let weight = loaded.font.attributes().weight.value();
        let mut flags = FontFlags::SYMBOLIC;
        flags.set(FontFlags::FIXED_PITCH, metrics.is_monospace);
        file.object(descriptor_ref)
            .font_descriptor(descriptor_ref)
            .name(Name(name.as_bytes()))
            .flags(flags)
            .bbox(bbox)
            .italic_angle(metrics.italic_angle)
            .ascent(metrics.ascent * scale)
            .descent(metrics.descent * scale)
            .cap_height(metrics.cap_height.unwrap_or(metrics.ascent) * scale)
            .stem_v(10.0 + 0.244 * (weight - 50.0))
            .font_file2(program_ref);

        let mut cmap = UnicodeCmap::new(Name(b"Custom"), SYSTEM_INFO);
        for (cid, text) in self.text.iter().enumerate().skip(1) {
            if !text.is_empty() {
                // CIDs are u16 by construction (the remapper's ids).
                cmap.pair_with_multiple(cid as u16, text.chars());
            }
        }
        let cmap = deflate(&cmap.finish())?;
        file.object(cmap_ref)
            .cmap(cmap_ref, &cmap)
            .filter(Filter::FlateDecode);

        file.object(program_ref)
            .stream(program_ref, &program)
            .filter(Filter::FlateDecode)
            .pair(Name(b"Length1"), subset.len() as i32);
        Ok(())
    }

    /// Six capital letters that name this subset (from its glyphs).
    fn subset_tag(&self) -> String {
        // FNV-1a over the subset's glyph ids.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for glyph in self.remapper.remapped_gids() {
            for byte in glyph.to_be_bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        (0..6)
            .map(|_| {
                let letter = char::from(b'A' + (hash % 26) as u8);
                hash /= 26;
                letter
            })
            .collect()
    }
}

/// The `W` array: runs of equal widths as `first last width`, the rest as
/// `first [w w w]`.
fn write_widths(writer: &mut pdf_writer::writers::Widths<'_>, widths: &[f32]) {
    let mut start = 0;
    let mut pending: Vec<f32> = Vec::new();
    let mut pending_start = 0;
    while start < widths.len() {
        let width = widths[start];
        let mut end = start + 1;
        while end < widths.len() && widths[end] == width {
            end += 1;
        }
        if end - start >= 3 {
            if !pending.is_empty() {
                writer.consecutive(pending_start as u16, pending.drain(..));
            }
            writer.same(start as u16, (end - 1) as u16, width);
        } else {
            if pending.is_empty() {
                pending_start = start;
            }
            pending.extend(&widths[start..end]);
        }
        start = end;
    }
    if !pending.is_empty() {
        writer.consecutive(pending_start as u16, pending.drain(..));
    }
}
