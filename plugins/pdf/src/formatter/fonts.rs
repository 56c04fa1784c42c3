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
//! covers (Korean, most emoji) are drawn as the main face's empty box (its
//! `.notdef` glyph), their text kept as the box's `ActualText`.

use export_plugin_api::{PluginError, Result};
use rustc_hash::FxHashMap;
use skrifa::charmap::Charmap;
use skrifa::instance::{LocationRef, Size};
use skrifa::metrics::GlyphMetrics;
use skrifa::{FontRef, GlyphId, MetadataProvider};

static REGULAR: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");
static FALLBACK: &[u8] = include_bytes!("../../fonts/DroidSansFallbackFull.ttf");

/// Which face a run of text uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Face {
    Regular,
    Bold,
    Fallback,
}

impl Face {
    pub(crate) const ALL: [Face; 3] = [Face::Regular, Face::Bold, Face::Fallback];

    /// Its position in [`Face::ALL`], for per-face tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The TrueType file, as compiled in.
    pub(crate) fn data(self) -> &'static [u8] {
        match self {
            Face::Regular => REGULAR,
            Face::Bold => BOLD,
            Face::Fallback => FALLBACK,
        }
    }

    /// Its PostScript name, the base of the embedded font's name.
    pub(crate) fn postscript_name(self) -> &'static str {
        match self {
            Face::Regular => "DejaVuSans",
            Face::Bold => "DejaVuSans-Bold",
            Face::Fallback => "DroidSansFallback",
        }
    }

    fn display_name(self) -> &'static str {
        match self {
            Face::Regular => "DejaVu Sans",
            Face::Bold => "DejaVu Sans Bold",
            Face::Fallback => "Droid Sans Fallback",
        }
    }
}

/// A character as drawn: the face, its glyph there and its advance in em.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Glyph {
    pub(crate) face: Face,
    pub(crate) id: u16,
    pub(crate) advance: f32,
}

/// One embedded font: what it covers and how wide its glyphs are.
pub(crate) struct Loaded {
    pub(crate) font: FontRef<'static>,
    charmap: Charmap<'static>,
    /// Advance widths in font units, by glyph.
    metrics: GlyphMetrics<'static>,
    pub(crate) units_per_em: f32,
}

impl Loaded {
    fn new(face: Face) -> Result<Loaded> {
        let font = FontRef::new(face.data()).map_err(|_| {
            PluginError::internal(format!(
                "the embedded font {} cannot be read",
                face.display_name()
            ))
        })?;
        let units_per_em = f32::from(
            font.metrics(Size::unscaled(), LocationRef::default())
                .units_per_em,
        );
        Ok(Loaded {
            charmap: font.charmap(),
            metrics: font.glyph_metrics(Size::unscaled(), LocationRef::default()),
            font,
            units_per_em,
        })
    }

    /// The glyph of `ch`, or `None` when the font has none.
    pub(crate) fn glyph_id(&self, ch: char) -> Option<u16> {
        let glyph = self.charmap.map(ch)?;
        u16::try_from(glyph.to_u32()).ok()
    }

    /// The advance of a glyph in font units.
    pub(crate) fn advance_units(&self, glyph: u16) -> f32 {
        self.metrics
            .advance_width(GlyphId::new(u32::from(glyph)))
            .unwrap_or(0.0)
    }

    /// The glyph of `ch` and its advance in em, or `None` when the font has none.
    fn lookup(&self, face: Face, ch: char) -> Option<Glyph> {
        let id = self.glyph_id(ch)?;
        Some(Glyph {
            face,
            id,
            advance: self.advance_units(id) / self.units_per_em,
        })
    }
}

/// The fonts of one export, with a cache of what draws each character.
pub(crate) struct Fonts {
    regular: Loaded,
    bold: Loaded,
    fallback: Loaded,
    /// Ascent of the main face in em: from a line's top to its baseline.
    pub(crate) ascent: f32,
    /// ASCII, regular then bold: looked up once at load.
    ascii: [[Glyph; 128]; 2],
    other: FxHashMap<(char, bool), Glyph>,
}

impl Fonts {
    pub(crate) fn load() -> Result<Fonts> {
        let regular = Loaded::new(Face::Regular)?;
        let metrics = regular
            .font
            .metrics(Size::unscaled(), LocationRef::default());
        let placeholder = Glyph {
            face: Face::Regular,
            id: 0,
            advance: 0.0,
        };
        let mut fonts = Fonts {
            ascent: metrics.ascent / regular.units_per_em,
            regular,
            bold: Loaded::new(Face::Bold)?,
            fallback: Loaded::new(Face::Fallback)?,
            ascii: [[placeholder; 128]; 2],
            other: FxHashMap::default(),
        };
        for (style, bold) in [false, true].into_iter().enumerate() {
            for code in 0..128u8 {
                fonts.ascii[style][usize::from(code)] = fonts.find(char::from(code), bold);
            }
        }
        Ok(fonts)
    }

    /// The loaded font of a face.
    pub(crate) fn loaded(&self, face: Face) -> &Loaded {
        match face {
            Face::Regular => &self.regular,
            Face::Bold => &self.bold,
            Face::Fallback => &self.fallback,
        }
    }

    /// Which face draws `ch`, with which glyph, and its advance in em.
    /// Bold text falls back to the regular fallback face (it has no bold).
    pub(crate) fn lookup(&mut self, ch: char, bold: bool) -> Glyph {
        if ch.is_ascii() {
            return self.ascii[usize::from(bold)][ch as usize];
        }
        if let Some(known) = self.other.get(&(ch, bold)) {
            return *known;
        }
        let found = self.find(ch, bold);
        self.other.insert((ch, bold), found);
        found
    }

    fn find(&self, ch: char, bold: bool) -> Glyph {
        let main_face = if bold { Face::Bold } else { Face::Regular };
        let main = self.loaded(main_face);
        // CJK text is drawn by one face throughout, even where DejaVu has a
        // few of its characters, so it looks even and extracts cleanly.
        let in_main = || main.lookup(main_face, ch);
        let in_fallback = || self.fallback.lookup(Face::Fallback, ch);
        let found = if is_cjk(ch) {
            in_fallback().or_else(in_main)
        } else {
            in_main().or_else(in_fallback)
        };
        // Neither has it: drawn as the main face's empty box (`.notdef`),
        // as wide as its replacement character.
        found.unwrap_or_else(|| Glyph {
            face: main_face,
            id: 0,
            advance: main
                .lookup(main_face, '\u{FFFD}')
                .map_or(0.6, |replacement| replacement.advance),
        })
    }

    /// The face that draws `ch` and its advance in em.
    pub(crate) fn glyph(&mut self, ch: char, bold: bool) -> (Face, f32) {
        let glyph = self.lookup(ch, bold);
        (glyph.face, glyph.advance)
    }

    /// The width of `text` in em.
    pub(crate) fn width(&mut self, text: &str, bold: bool) -> f32 {
        text.chars().map(|ch| self.lookup(ch, bold).advance).sum()
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
        // Not covered: Hangul syllables and most emoji, drawn as .notdef.
        for ch in ['한', '🎉'] {
            assert!(fonts.regular.glyph_id(ch).is_none() && fonts.fallback.glyph_id(ch).is_none());
            let glyph = fonts.lookup(ch, false);
            assert_eq!((glyph.face, glyph.id), (Face::Regular, 0));
            assert!(glyph.advance > 0.0);
        }
        assert!(fonts.width("mmmm", false) > fonts.width("iiii", false));
        assert!(fonts.width("abc", true) > 0.0);
        // The ASCII table and the lookup agree.
        let a = fonts.lookup('a', true);
        assert_eq!(Some(a.id), fonts.bold.glyph_id('a'));
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
