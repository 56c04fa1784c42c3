//! From a run of text to the glyphs that draw it.
//!
//! Most runs (Latin, Greek, Cyrillic, Hebrew letters, CJK) need no shaping:
//! one character is one glyph, found in the font's `cmap`, advanced by its
//! width. Runs of scripts whose letters change shape or stack (Arabic and
//! its neighbours, Indic and South-East Asian scripts) or that carry
//! combining marks are shaped with rustybuzz, which picks the joining forms
//! and ligatures and places the marks.

use super::fonts::{joins_previous, Face, Fonts};
use export_plugin_api::{PluginError, Result};
use rustybuzz::{Direction, UnicodeBuffer};
use std::ops::Range;

/// One glyph of a run, in drawing order (left to right on the page).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Placed {
    pub(crate) id: u16,
    /// How far the pen moves after it, in em.
    pub(crate) advance: f32,
    /// Where it sits relative to the pen, in em (marks).
    pub(crate) x_offset: f32,
    pub(crate) y_offset: f32,
    /// The bytes of the run's text it stands for: the whole cluster for its
    /// first glyph, nothing for the others.
    pub(crate) text: Range<usize>,
}

/// Shapes runs into glyphs; holds the shaping faces of one export.
pub(crate) struct Shaper {
    faces: Vec<rustybuzz::Face<'static>>,
    buffer: Option<UnicodeBuffer>,
}

impl Shaper {
    pub(crate) fn new() -> Result<Shaper> {
        let faces = Face::ALL
            .iter()
            .map(|face| {
                rustybuzz::Face::from_slice(face.data(), 0).ok_or_else(|| {
                    PluginError::internal(format!(
                        "the embedded font {} cannot be read for shaping",
                        face.postscript_name()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Shaper {
            faces,
            buffer: Some(UnicodeBuffer::new()),
        })
    }

    /// The glyphs of `text` in `face`, in drawing order, into `out`
    /// (cleared first). Right-to-left runs come out reversed, as they are
    /// drawn.
    pub(crate) fn place(
        &mut self,
        fonts: &mut Fonts,
        face: Face,
        bold: bool,
        text: &str,
        rtl: bool,
        out: &mut Vec<Placed>,
    ) {
        out.clear();
        if text.chars().any(needs_shaping) {
            self.shape(fonts, face, text, rtl, out);
            return;
        }
        let loaded_face = fonts.loaded(face);
        let units_per_em = loaded_face.units_per_em;
        for (index, ch) in text.char_indices() {
            let glyph = fonts.lookup(ch, bold);
            let (id, advance) = if glyph.face == face {
                (glyph.id, glyph.advance)
            } else {
                let loaded = fonts.loaded(face);
                let id = loaded.glyph_id(ch).unwrap_or(0);
                (id, loaded.advance_units(id) / units_per_em)
            };
            out.push(Placed {
                id,
                advance,
                x_offset: 0.0,
                y_offset: 0.0,
                text: index..index + ch.len_utf8(),
            });
        }
        if rtl {
            out.reverse();
        }
    }

    fn shape(&mut self, fonts: &Fonts, face: Face, text: &str, rtl: bool, out: &mut Vec<Placed>) {
        let mut buffer = self.buffer.take().unwrap_or_default();
        buffer.push_str(text);
        buffer.set_direction(if rtl {
            Direction::RightToLeft
        } else {
            Direction::LeftToRight
        });
        let shaped = rustybuzz::shape(&self.faces[face.index()], &[], buffer);
        let units_per_em = fonts.loaded(face).units_per_em;
        // Where each cluster starts, so its end is the next start.
        let mut starts: Vec<usize> = shaped
            .glyph_infos()
            .iter()
            .map(|info| info.cluster as usize)
            .collect();
        starts.sort_unstable();
        starts.dedup();
        let mut previous = None;
        for (info, position) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
            let start = info.cluster as usize;
            let range = if previous == Some(start) {
                start..start
            } else {
                let end = match starts.binary_search(&start) {
                    Ok(at) => starts.get(at + 1).copied().unwrap_or(text.len()),
                    Err(_) => text.len(),
                };
                start..end.min(text.len())
            };
            previous = Some(start);
            out.push(Placed {
                id: u16::try_from(info.glyph_id).unwrap_or(0),
                advance: position.x_advance as f32 / units_per_em,
                x_offset: position.x_offset as f32 / units_per_em,
                y_offset: position.y_offset as f32 / units_per_em,
                text: range,
            });
        }
        self.buffer = Some(shaped.clear());
    }
}

/// Whether `ch` needs shaping: letters that join or stack, and marks.
fn needs_shaping(ch: char) -> bool {
    joins_previous(ch)
        || matches!(ch,
            // Hebrew points and cantillation.
            '\u{0591}'..='\u{05C7}'
            // Arabic, Syriac, Thaana, N'Ko, Samaritan, Mandaic, Arabic extensions.
            | '\u{0600}'..='\u{08FF}'
            // Indic scripts, Sinhala, Thai, Lao, Tibetan, Myanmar.
            | '\u{0900}'..='\u{109F}'
            // Khmer, Mongolian.
            | '\u{1780}'..='\u{18AF}'
            // Zero-width joiners and direction marks.
            | '\u{200C}'..='\u{200F}'
            // Arabic presentation forms.
            | '\u{FB50}'..='\u{FDFF}'
            | '\u{FE70}'..='\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(text: &str, rtl: bool) -> Vec<Placed> {
        let mut fonts = Fonts::load().unwrap();
        let mut shaper = Shaper::new().unwrap();
        let mut out = Vec::new();
        shaper.place(&mut fonts, Face::Regular, false, text, rtl, &mut out);
        out
    }

    #[test]
    fn simple_runs_are_one_glyph_a_character() {
        let mut fonts = Fonts::load().unwrap();
        let glyphs = place("Café", false);
        assert_eq!(glyphs.len(), 4);
        assert_eq!(glyphs[3].text, 3..5, "é is two bytes");
        let width: f32 = glyphs.iter().map(|g| g.advance).sum();
        assert!((width - fonts.width("Café", false)).abs() < 1e-4);
        // Hebrew is drawn reversed, letter by letter.
        let hebrew = place("שלום", true);
        assert_eq!(hebrew.len(), 4);
        assert_eq!(hebrew[0].text, 6..8, "the last letter comes first");
    }

    #[test]
    fn arabic_is_shaped_into_joining_forms() {
        let mut fonts = Fonts::load().unwrap();
        let text = "سلام";
        let glyphs = place(text, true);
        assert!(!glyphs.is_empty());
        // Joined forms are other glyphs than the isolated letters.
        let isolated: Vec<u16> = text
            .chars()
            .rev()
            .map(|ch| fonts.lookup(ch, false).id)
            .collect();
        let shaped: Vec<u16> = glyphs.iter().map(|g| g.id).collect();
        assert_ne!(shaped, isolated);
        // Every byte of the text is some glyph's, once.
        let mut covered: Vec<Range<usize>> = glyphs.iter().map(|g| g.text.clone()).collect();
        covered.sort_by_key(|r| r.start);
        let total: usize = covered.iter().map(|r| r.len()).sum();
        assert_eq!(total, text.len());
    }

    #[test]
    fn marks_stay_with_their_base() {
        let glyphs = place("e\u{301}", false);
        assert!(!glyphs.is_empty());
        assert_eq!(glyphs[0].text, 0..3, "one cluster: {glyphs:?}");
    }
}
