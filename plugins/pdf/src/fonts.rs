//! The fonts embedded in the plugin, which of them draws each character,
//! and how wide text is.
//!
//! - DejaVu Sans (regular and bold): Latin, Greek, Cyrillic, Armenian,
//!   Georgian, Hebrew, Arabic, and many symbols.
//! - Droid Sans Fallback: Chinese and Japanese (Han ideographs, kana, CJK
//!   punctuation and full-width forms). It has no Hangul syllables, so
//!   Korean is not covered.
//!
//! Both ship in `fonts/` next to their licences and are compiled into the
//! library; nothing is read or fetched at run time. Characters that neither
//! covers (Korean, most emoji) are drawn as an empty box; their text is not
//! reliably extracted.

use export_plugin_api::{PluginError, Result};
use skrifa::instance::{LocationRef, Size};
use skrifa::{FontRef, MetadataProvider};
use std::collections::HashMap;
use std::sync::Arc;

static REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");
static FALLBACK: &[u8] = include_bytes!("../fonts/DroidSansFallbackFull.ttf");

/// Which face a run of text uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Face {
    Regular,
    Bold,
    Fallback,
}

/// One embedded font: its PDF handle and what it covers.
struct Loaded {
    pdf: krilla::text::Font,
    font: FontRef<'static>,
    /// Advance widths in em, by glyph.
    metrics: skrifa::metrics::GlyphMetrics<'static>,
    units_per_em: f32,
}

impl Loaded {
    fn new(name: &str, bytes: &'static [u8]) -> Result<Loaded> {
        let broken = || PluginError::internal(format!("the embedded font {name} cannot be read"));
        let font = FontRef::new(bytes).map_err(|_| broken())?;
        let data: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(bytes);
        let pdf = krilla::text::Font::new(data.into(), 0).ok_or_else(broken)?;
        let units_per_em = f32::from(
            font.metrics(Size::unscaled(), LocationRef::default())
                .units_per_em,
        );
        Ok(Loaded {
            pdf,
            metrics: font.glyph_metrics(Size::unscaled(), LocationRef::default()),
            font,
            units_per_em,
        })
    }

    /// The advance of `ch` in em, or `None` when the font has no glyph for it.
    fn advance(&self, ch: char) -> Option<f32> {
        let glyph = self.font.charmap().map(ch)?;
        Some(self.metrics.advance_width(glyph).unwrap_or(0.0) / self.units_per_em)
    }
}

/// The fonts of one export, with a cache of character widths.
pub(crate) struct Fonts {
    regular: Loaded,
    bold: Loaded,
    fallback: Loaded,
    /// Ascent of the main face in em: from a line's top to its baseline.
    pub(crate) ascent: f32,
    widths: HashMap<(char, bool), (Face, f32)>,
}

impl Fonts {
    pub(crate) fn load() -> Result<Fonts> {
        let regular = Loaded::new("DejaVu Sans", REGULAR)?;
        let metrics = regular
            .font
            .metrics(Size::unscaled(), LocationRef::default());
        Ok(Fonts {
            ascent: metrics.ascent / regular.units_per_em,
            regular,
            bold: Loaded::new("DejaVu Sans Bold", BOLD)?,
            fallback: Loaded::new("Droid Sans Fallback", FALLBACK)?,
            widths: HashMap::new(),
        })
    }

    /// The face that draws `ch` and its advance in em. Bold text falls
    /// back to the regular fallback face (it has no bold).
    pub(crate) fn glyph(&mut self, ch: char, bold: bool) -> (Face, f32) {
        if let Some(known) = self.widths.get(&(ch, bold)) {
            return *known;
        }
        let main = if bold { &self.bold } else { &self.regular };
        let main_face = if bold { Face::Bold } else { Face::Regular };
        // CJK text is drawn by one face throughout, even where DejaVu has a
        // few of its characters, so it looks even and extracts cleanly.
        let in_main = main.advance(ch).map(|advance| (main_face, advance));
        let in_fallback = self
            .fallback
            .advance(ch)
            .map(|advance| (Face::Fallback, advance));
        let found = if is_cjk(ch) {
            in_fallback.or(in_main)
        } else {
            in_main.or(in_fallback)
        }
        // Neither has it: drawn as the main face's empty box.
        .unwrap_or_else(|| (main_face, main.advance('\u{FFFD}').unwrap_or(0.6)));
        self.widths.insert((ch, bold), found);
        found
    }

    /// The width of `text` in em.
    pub(crate) fn width(&mut self, text: &str, bold: bool) -> f32 {
        text.chars().map(|ch| self.glyph(ch, bold).1).sum()
    }

    /// The PDF font of a face.
    pub(crate) fn pdf(&self, face: Face) -> krilla::text::Font {
        match face {
            Face::Regular => self.regular.pdf.clone(),
            Face::Bold => self.bold.pdf.clone(),
            Face::Fallback => self.fallback.pdf.clone(),
        }
    }

    /// Splits a line into runs that one face draws in one direction.
    /// Combining marks, joiners and variation selectors stay with the
    /// character before them, so a cluster is never split across fonts;
    /// spaces, digits and punctuation keep the direction of the run they
    /// are in. Runs are in logical order (no bidi reordering between runs).
    pub(crate) fn runs<'t>(&mut self, text: &'t str, bold: bool) -> Vec<Run<'t>> {
        let mut runs: Vec<Run<'t>> = Vec::new();
        let mut start = 0;
        let mut current: Option<(Face, bool)> = None;
        let mut width = 0.0;
        for (index, ch) in text.char_indices() {
            let (face, advance) = self.glyph(ch, bold);
            let key = match current {
                Some(previous) if joins_previous(ch) => previous,
                Some((_, rtl)) if !is_strong(ch) => (face, rtl),
                _ => (face, is_rtl(ch)),
            };
            if let Some((face, rtl)) = current.filter(|c| *c != key) {
                runs.push(Run {
                    face,
                    text: &text[start..index],
                    width,
                    rtl,
                });
                start = index;
                width = 0.0;
            }
            current = Some(key);
            width += advance;
        }
        if let Some((face, rtl)) = current {
            runs.push(Run {
                face,
                text: &text[start..],
                width,
                rtl,
            });
        }
        runs
    }
}

/// A piece of a line drawn by one face in one direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Run<'t> {
    pub(crate) face: Face,
    pub(crate) text: &'t str,
    /// Width in em.
    pub(crate) width: f32,
    /// Whether it is written right to left.
    pub(crate) rtl: bool,
}

/// Whether `ch` sets a direction (a letter), rather than taking the
/// direction of its neighbours (spaces, digits, punctuation).
fn is_strong(ch: char) -> bool {
    ch.is_alphabetic()
}

/// Whether `ch` is a letter of a right-to-left script (Hebrew, Arabic,
/// Syriac, Thaana, N'Ko and their presentation forms).
fn is_rtl(ch: char) -> bool {
    matches!(ch,
        '\u{0590}'..='\u{08FF}'
        | '\u{FB1D}'..='\u{FDFF}'
        | '\u{FE70}'..='\u{FEFF}'
        | '\u{10800}'..='\u{10FFF}'
        | '\u{1E800}'..='\u{1EFFF}')
}

/// Whether `ch` is Chinese, Japanese or Korean (ideographs, kana, Hangul,
/// CJK punctuation and full-width forms).
fn is_cjk(ch: char) -> bool {
    matches!(ch,
        '\u{1100}'..='\u{11FF}'
        | '\u{2E80}'..='\u{2FDF}'
        | '\u{3000}'..='\u{33FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{A960}'..='\u{A97F}'
        | '\u{AC00}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FF00}'..='\u{FFEF}'
        | '\u{20000}'..='\u{2FA1F}')
}

/// Whether `ch` belongs to the cluster of the character before it.
pub(crate) fn joins_previous(ch: char) -> bool {
    matches!(ch,
        '\u{0300}'..='\u{036F}'
        | '\u{0483}'..='\u{0489}'
        | '\u{0591}'..='\u{05BD}'
        | '\u{064B}'..='\u{065F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200C}'..='\u{200D}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{1F3FB}'..='\u{1F3FF}'
        | '\u{E0100}'..='\u{E01EF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage() {
        let mut fonts = Fonts::load().unwrap();
        for ch in ['a', 'é', 'Ω', 'Ж', 'ש', 'م', '€'] {
            assert_eq!(fonts.glyph(ch, false).0, Face::Regular, "{ch}");
            assert_eq!(fonts.glyph(ch, true).0, Face::Bold, "{ch}");
        }
        for ch in ['你', '日', 'も', 'カ', '，'] {
            assert_eq!(fonts.glyph(ch, false).0, Face::Fallback, "{ch}");
            assert_eq!(fonts.glyph(ch, true).0, Face::Fallback, "{ch}");
        }
        // Not covered: Hangul syllables and most emoji.
        for ch in ['한', '🎉'] {
            assert!(fonts.regular.advance(ch).is_none() && fonts.fallback.advance(ch).is_none());
        }
        assert!(fonts.width("mmmm", false) > fonts.width("iiii", false));
        assert!(fonts.width("abc", true) > 0.0);
    }

    #[test]
    fn runs_split_by_face_and_direction_and_keep_clusters() {
        let mut fonts = Fonts::load().unwrap();
        let split = |fonts: &mut Fonts, text: &str| -> Vec<(Face, String, bool)> {
            fonts
                .runs(text, false)
                .iter()
                .map(|run| (run.face, run.text.to_owned(), run.rtl))
                .collect()
        };
        assert_eq!(
            split(&mut fonts, "Café 日本語 ok"),
            vec![
                (Face::Regular, "Café ".into(), false),
                (Face::Fallback, "日本語".into(), false),
                (Face::Regular, " ok".into(), false)
            ]
        );
        assert_eq!(
            split(&mut fonts, "مرحبا بالعالم — שלום 12 ok"),
            vec![
                (Face::Regular, "مرحبا بالعالم — שלום 12 ".into(), true),
                (Face::Regular, "ok".into(), false)
            ]
        );
        // A combining mark after a CJK character stays in its run.
        assert_eq!(fonts.runs("日\u{301}a", false)[0].text, "日\u{301}");
        assert!(fonts.runs("", false).is_empty());
        let width: f32 = fonts.runs("ab日c", false).iter().map(|r| r.width).sum();
        assert!((width - fonts.width("ab日c", false)).abs() < 1e-4);
    }
}
