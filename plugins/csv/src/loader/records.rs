//! Splits a CSV byte stream into records, one at a time, without copying
//! plain fields and without validating text (the loader validates whole
//! column buffers once per batch instead).
//!
//! `csv-core` defines the parse: every record it would not split exactly as
//! the fast path below does is handed to it. The fast path covers the shapes
//! that make up nearly every real file, a record ended by `\n`, `\r\n` or
//! `\r` whose fields are unquoted (anything but the delimiter, `\r` and
//! `\n`) or quoted with `""` escapes and closed right before a delimiter or
//! line break; it finds field ends with `memchr` instead of
//! stepping `csv-core`'s state machine over every byte. Anything else (text
//! after a closing quote, a record longer than the read buffer, the end of
//! the file, the first record with its possible byte order mark) goes to
//! `csv-core`, whose line count this reader keeps in step with.
//!
//! Two things `csv-core` accepts are refused here: a file that ends inside a
//! quoted field (`csv-core` ends the record there, so a truncated file
//! would read as a success whose last value swallowed the rest), and a
//! field longer than the configured cap (`csv-core` would have it held in
//! memory whole, however large).

use csv_core::ReadRecordResult;
use memchr::memchr;
use std::io::{self, Read};

/// Bytes read from the source at a time; a record longer than this is parsed
/// by `csv-core` in pieces.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// Initial room for the fields `csv-core` unescapes; it grows as needed.
const CORE_OUTPUT_BYTES: usize = 4 * 1024;
/// Initial room for field ends from `csv-core`; it grows as needed.
const CORE_ENDS: usize = 64;
/// Bytes in a UTF-8 byte order mark.
const UTF8_BOM_LEN: usize = 3;

/// Why a record could not be read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// Reading the source failed.
    Io(io::Error),
    /// The input ends inside a quoted field: field `field` (from 0) of the
    /// current record, whose opening quote is on line `line`.
    UnterminatedQuote { line: u64, field: usize },
    /// Field `field` (from 0) of the current record is longer than the cap.
    FieldTooLarge { field: usize },
}

impl From<io::Error> for ReadError {
    fn from(err: io::Error) -> Self {
        ReadError::Io(err)
    }
}

/// Where a byte stands in CSV's quoting, as `csv-core` (with its default
/// settings) decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// Before the first byte of a field.
    FieldStart,
    /// In a field that did not start with a quote (quotes there are text).
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: the field's end, or the
    /// first half of a `""`.
    QuoteInQuoted,
}

/// Follows the quoting of the bytes `csv-core` consumes for one record, so
/// that a record ended by the end of the input inside a quoted field is
/// told from a complete one, and the opening quote's line can be named.
struct QuoteTracker {
    state: Quoting,
    /// The line of the next byte.
    line: u64,
    /// The field of the next byte, from 0.
    field: usize,
    /// Where the last quoted field opened: its line and field.
    opened: (u64, usize),
}

impl QuoteTracker {
    fn new(line: u64) -> Self {
        Self {
            state: Quoting::FieldStart,
            line,
            field: 0,
            opened: (line, 0),
        }
    }

    fn feed(&mut self, bytes: &[u8], delimiter: u8) {
        let mut at = 0;
        while at < bytes.len() {
            if self.state == Quoting::Quoted {
                // Only a quote ends this state: jump to it.
                let rest = &bytes[at..];
                match memchr(b'"', rest) {
                    None => {
                        self.line += count_newlines(rest);
                        return;
                    }
                    Some(offset) => {
                        self.line += count_newlines(&rest[..offset]);
                        at += offset + 1;
                        self.state = Quoting::QuoteInQuoted;
                    }
                }
                continue;
            }
            let byte = bytes[at];
            at += 1;
            self.state = match (self.state, byte) {
                (_, byte) if byte == delimiter => {
                    self.field += 1;
                    Quoting::FieldStart
                }
                (_, b'\n' | b'\r') => {
                    self.line += u64::from(byte == b'\n');
                    self.field = 0;
                    Quoting::FieldStart
                }
                (Quoting::FieldStart, b'"') => {
                    self.opened = (self.line, self.field);
                    Quoting::Quoted
                }
                (Quoting::QuoteInQuoted, b'"') => Quoting::Quoted,
                _ => Quoting::Unquoted,
            };
        }
    }
}

/// Finds the bytes that end a run of field text: the first delimiter, `\n`
/// or `\r` (the end of an unquoted field), or the first quote (in a quoted one).
///
/// On x86-64 it keeps memchr's SSE2 searchers, built once: fields are short,
/// and `memchr::memchr3` / `memchr::memchr` would pick an implementation and
/// set up their needles again for each one.
struct FieldEndFinder {
    delimiter: u8,
    #[cfg(target_arch = "x86_64")]
    sse2: Option<(
        memchr::arch::x86_64::sse2::memchr::Three,
        memchr::arch::x86_64::sse2::memchr::One,
    )>,
}

impl FieldEndFinder {
    fn new(delimiter: u8) -> Self {
        #[cfg(target_arch = "x86_64")]
        use memchr::arch::x86_64::sse2::memchr::{One, Three};
        Self {
            delimiter,
            #[cfg(target_arch = "x86_64")]
            sse2: Three::new(delimiter, b'\n', b'\r').zip(One::new(b'"')),
        }
    }

    /// The first delimiter, `\n` or `\r` in `haystack`.
    #[inline]
    fn unquoted_end(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some((searcher, _)) = &self.sse2 {
            return searcher.find(haystack);
        }
        memchr::memchr3(self.delimiter, b'\n', b'\r', haystack)
    }

    /// The first `"` in `haystack`.
    #[inline]
    fn quote(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some((_, searcher)) = &self.sse2 {
            return searcher.find(haystack);
        }
        memchr(b'"', haystack)
    }
}

/// Where the bytes of one field of the current record are.
#[derive(Debug, Clone, Copy)]
enum Span {
    /// Verbatim in the read buffer.
    Input(usize, usize),
    /// In `scratch` (a field with `""` escapes, from the fast path).
    Scratch(usize, usize),
    /// In `core_out` (a record parsed by `csv-core`).
    Core(usize, usize),
}

/// What the fast path made of the bytes at the read position.
enum Fast {
    /// A whole record, now in `fields`.
    Record,
    /// The buffer ends before the record does.
    NeedInput,
    /// A shape the fast path leaves to `csv-core`.
    Fallback,
}

/// Reads records from `source`; after [`RecordReader::read_record`] returns
/// `true`, [`RecordReader::len`] and [`RecordReader::field`] describe the record.
pub(super) struct RecordReader<R> {
    source: R,
    /// Input bytes; `buf[pos..end]` is not parsed yet.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    core: csv_core::Reader,
    /// Whether `csv-core` has seen input (it strips a byte order mark first).
    core_started: bool,
    core_out: Vec<u8>,
    core_ends: Vec<usize>,
    delimiter: u8,
    field_end: FieldEndFinder,
    /// Lines seen (`\n` count + 1), counted as `csv-core` counts them.
    line: u64,
    /// `line` when the current record was started, as the `csv` crate reports it.
    record_line: u64,
    scratch: Vec<u8>,
    fields: Vec<Span>,
    /// Bytes the current record took in the input (or in fields, for
    /// records `csv-core` parsed).
    record_bytes: usize,
    /// The longest field read; a longer one is a [`ReadError::FieldTooLarge`].
    max_field: usize,
}

impl<R: Read> RecordReader<R> {
    /// A reader of `source` whose fields hold at most `max_field` bytes.
    pub(super) fn new(source: R, delimiter: u8, max_field: usize) -> Self {
        Self {
            source,
            buf: vec![0; READ_BUFFER_BYTES],
            pos: 0,
            end: 0,
            eof: false,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            core_started: false,
            core_out: vec![0; CORE_OUTPUT_BYTES],
            core_ends: vec![0; CORE_ENDS],
            delimiter,
            field_end: FieldEndFinder::new(delimiter),
            line: 1,
            record_line: 1,
            scratch: Vec::new(),
            fields: Vec::new(),
            record_bytes: 0,
            max_field,
        }
    }

    /// Reads the next record; `false` at the end of the input.
    pub(super) fn read_record(&mut self) -> Result<bool, ReadError> {
        self.record_line = self.line;
        if !self.core_started {
            self.core_started = true;
            // csv-core strips a byte order mark only when its first input
            // holds all of it, and takes input that is only the mark for
            // the end of the file: give it more than that.
            while self.end - self.pos <= UTF8_BOM_LEN && !self.eof {
                self.refill_keeping_unparsed()?;
            }
            let bom = self.buf[self.pos..self.end].starts_with(&[0xEF, 0xBB, 0xBF]);
            return self.read_with_core(if bom { UTF8_BOM_LEN } else { 0 });
        }
        loop {
            match self.read_fast() {
                Fast::Record => {
                    // Fast-path fields lie within the record's input bytes.
                    if self.record_bytes > self.max_field {
                        if let Some(field) =
                            (0..self.len()).find(|&i| self.field(i).len() > self.max_field)
                        {
                            return Err(ReadError::FieldTooLarge { field });
                        }
                    }
                    return Ok(true);
                }
                Fast::Fallback => return self.read_with_core(0),
                Fast::NeedInput => {
                    if self.eof || !self.refill_keeping_unparsed()? {
                        return self.read_with_core(0);
                    }
                }
            }
        }
    }

    /// Fields in the current record.
    pub(super) fn len(&self) -> usize {
        self.fields.len()
    }

    /// The bytes of field `index` (< `len()`) of the current record.
    #[inline]
    pub(super) fn field(&self, index: usize) -> &[u8] {
        match self.fields[index] {
            Span::Input(start, end) => &self.buf[start..end],
            Span::Scratch(start, end) => &self.scratch[start..end],
            Span::Core(start, end) => &self.core_out[start..end],
        }
    }

    /// About the bytes the current record holds: what it took in the input.
    pub(super) fn record_bytes(&self) -> usize {
        self.record_bytes
    }

    /// What the records are read from.
    pub(super) fn source(&self) -> &R {
        &self.source
    }

    /// Bytes taken from the source and not parsed yet: how far the
    /// source's position is ahead of the records read.
    pub(super) fn unparsed(&self) -> usize {
        self.end - self.pos
    }

    /// The line the current record was reported at: the line after the
    /// previous record's terminator, as the `csv` crate counts it.
    pub(super) fn record_line(&self) -> u64 {
        self.record_line
    }

    /// Parses one record from `buf[pos..end]` if it has a plain shape; moves
    /// `pos` and `line` only when it returns [`Fast::Record`].
    fn read_fast(&mut self) -> Fast {
        self.fields.clear();
        self.scratch.clear();
        let buf = &self.buf[..self.end];
        let delimiter = self.delimiter;
        let mut p = self.pos;
        let mut line = self.line;
        // Line breaks before a record are skipped, as csv-core skips them:
        // blank lines, and the `\n` of a `\r\n` that ended the last record.
        loop {
            match buf.get(p) {
                None => return Fast::NeedInput,
                Some(b'\n') => {
                    p += 1;
                    line += 1;
                }
                Some(b'\r') => p += 1,
                Some(_) => break,
            }
        }
        loop {
            let Some(&first) = buf.get(p) else {
                return Fast::NeedInput;
            };
            if first == b'"' {
                // A quoted field: runs of text up to each quote; `""` is one quote.
                let mut from = p + 1;
                let mut escaped = false;
                let scratch_start = self.scratch.len();
                loop {
                    let Some(offset) = self.field_end.quote(&buf[from..]) else {
                        return Fast::NeedInput;
                    };
                    let quote = from + offset;
                    line += count_newlines(&buf[from..quote]);
                    match buf.get(quote + 1) {
                        None => return Fast::NeedInput,
                        Some(b'"') => {
                            // Keep the text and one quote of the pair.
                            self.scratch.extend_from_slice(&buf[from..=quote]);
                            escaped = true;
                            from = quote + 2;
                        }
                        Some(&next) if next == delimiter || next == b'\n' || next == b'\r' => {
                            let span = if escaped {
                                self.scratch.extend_from_slice(&buf[from..quote]);
                                Span::Scratch(scratch_start, self.scratch.len())
                            } else {
                                Span::Input(p + 1, quote)
                            };
                            self.fields.push(span);
                            p = quote + 1;
                            break;
                        }
                        Some(_) => return Fast::Fallback,
                    }
                }
            } else {
                let Some(offset) = self.field_end.unquoted_end(&buf[p..]) else {
                    return Fast::NeedInput;
                };
                let stop = p + offset;
                self.fields.push(Span::Input(p, stop));
                p = stop;
            }
            // `buf[p]` is the delimiter, `\n` or `\r`. Like csv-core, a `\r`
            // ends the record by itself; a `\n` after it is skipped (and
            // counted) with the next record.
            let end = buf[p];
            if end == b'\n' || end == b'\r' {
                self.record_bytes = p + 1 - self.pos;
                self.pos = p + 1;
                self.line = line + u64::from(end == b'\n');
                return Fast::Record;
            }
            p += 1;
        }
    }

    /// Parses one record with `csv-core`, reading more input as it needs;
    /// `bom` is the length of a byte order mark `csv-core` strips first.
    fn read_with_core(&mut self, mut bom: usize) -> Result<bool, ReadError> {
        self.fields.clear();
        self.scratch.clear();
        self.core.set_line(self.line);
        let mut quoting = QuoteTracker::new(self.line);
        let (mut out_len, mut ends_len) = (0, 0);
        loop {
            if self.pos == self.end && !self.eof {
                self.refill_keeping_unparsed()?;
            }
            let (result, read, written, ended) = self.core.read_record(
                &self.buf[self.pos..self.end],
                &mut self.core_out[out_len..],
                &mut self.core_ends[ends_len..],
            );
            let skipped = bom.min(read);
            bom -= skipped;
            quoting.feed(
                &self.buf[self.pos + skipped..self.pos + read],
                self.delimiter,
            );
            self.pos += read;
            // Every field ended by this call, and the one still open, must
            // fit the cap.
            let mut field_start = match ends_len {
                0 => 0,
                n => self.core_ends[n - 1],
            };
            for (index, &end) in self.core_ends[ends_len..ends_len + ended]
                .iter()
                .enumerate()
            {
                if end - field_start > self.max_field {
                    return Err(ReadError::FieldTooLarge {
                        field: ends_len + index,
                    });
                }
                field_start = end;
            }
            out_len += written;
            ends_len += ended;
            if out_len - field_start > self.max_field {
                return Err(ReadError::FieldTooLarge { field: ends_len });
            }
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    // Room for one byte past the cap at most, so an
                    // oversized field is refused before it is held whole.
                    let len = self.core_out.len();
                    let limit = field_start.saturating_add(self.max_field).saturating_add(1);
                    let grown = len.saturating_mul(2).min(limit).max(len + 1);
                    self.core_out.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = self.core_ends.len() * 2;
                    self.core_ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    if quoting.state == Quoting::Quoted {
                        // Only the end of the input ends a record inside quotes.
                        let (line, field) = quoting.opened;
                        return Err(ReadError::UnterminatedQuote { line, field });
                    }
                    self.line = self.core.line();
                    self.record_bytes = out_len;
                    let mut start = 0;
                    for &end in &self.core_ends[..ends_len] {
                        self.fields.push(Span::Core(start, end));
                        start = end;
                    }
                    return Ok(true);
                }
                ReadRecordResult::End => {
                    self.line = self.core.line();
                    return Ok(false);
                }
            }
        }
    }

    /// Moves the unparsed bytes to the front of the buffer and reads more
    /// after them; `false` when the buffer is already full of unparsed bytes.
    /// Sets `eof` when the source has no more.
    fn refill_keeping_unparsed(&mut self) -> io::Result<bool> {
        if self.pos == 0 && self.end == self.buf.len() {
            return Ok(false);
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        loop {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(true);
                }
                Ok(read) => {
                    self.end += read;
                    return Ok(true);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&byte| byte == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record as `csv-core` alone splits `input` (through the `csv`
    /// crate), with the line each is reported at.
    fn reference(input: &[u8], delimiter: u8) -> Vec<(u64, Vec<Vec<u8>>)> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut record = csv::ByteRecord::new();
        let mut records = Vec::new();
        loop {
            let line = reader.position().line();
            if !reader.read_byte_record(&mut record).unwrap() {
                return records;
            }
            records.push((line, record.iter().map(<[u8]>::to_vec).collect()));
        }
    }

    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    type Records = Vec<(u64, Vec<Vec<u8>>)>;

    /// Every record this reader reads from `input` (`chunk` bytes at a
    /// time, fields of at most `max_field` bytes) up to the end or the
    /// first error, and that error with the line of the record it stopped at.
    fn read_all(
        input: &[u8],
        delimiter: u8,
        chunk: usize,
        max_field: usize,
    ) -> (Records, Option<(u64, ReadError)>) {
        let mut reader = RecordReader::new(Trickle(input, chunk), delimiter, max_field);
        let mut records = Vec::new();
        loop {
            match reader.read_record() {
                Ok(false) => return (records, None),
                Ok(true) => {
                    let fields = (0..reader.len())
                        .map(|i| reader.field(i).to_vec())
                        .collect();
                    records.push((reader.record_line(), fields));
                }
                Err(err) => return (records, Some((reader.record_line(), err))),
            }
        }
    }

    /// Every record as this reader splits `input`, read `chunk` bytes at a time.
    fn ours(input: &[u8], delimiter: u8, chunk: usize) -> Records {
        let (records, err) = read_all(input, delimiter, chunk, usize::MAX);
        assert!(err.is_none(), "{err:?}");
        records
    }

    const CASES: &[&[u8]] = &[
        b"",
        b"\n\n",
        b"a",
        b"a,b\n1,2\n",
        b"a,b\n1,2",
        b"a,b\r\n1,2\r\n\r\n3,4\r\n",
        b"a,b\n\n\n1,2\n\r\n3,4\n",
        b"\xEF\xBB\xBFa,b\n1,2\n",
        b"a,b\n\"x\ny\",2\n3\n",
        b"\"\",\"\"\"\",\"a\"\"b\"\"\"\n,,\n",
        b"\"ab\"cd,e\n\"x\"\r\ny,\"z\"\n",
        b"\"lone\ronly\",\"crlf\r\ninside\"\n x , y \n",
        b"1,2,\n,\n,,,,\n\"\"\n",
        b"last,\"no final newline\"",
        b"trailing,\"quote\"",
        b"\r\r\n\ra,b\rc,d\n",
        b"a,b\r\n\"q\"\r\n\r\n\n\"x\",\r\n,\"\"\r\r\n1\r",
        b"\"a\"\rb\r\n\rc\n\r\"d\r\ne\"\r\n",
    ];

    #[test]
    fn splits_exactly_as_csv_core_does() {
        for case in CASES {
            for chunk in [1, 2, 3, 7, 1 << 20] {
                assert_eq!(
                    ours(case, b',', chunk),
                    reference(case, b','),
                    "{:?} read {chunk} bytes at a time",
                    String::from_utf8_lossy(case)
                );
            }
        }
    }

    /// The line and field of the quote a file ends inside, read every way.
    fn unterminated(input: &[u8]) -> (u64, usize) {
        let mut seen = None;
        for chunk in [1, 2, 3, 7, 1 << 20] {
            let (records, err) = read_all(input, b',', chunk, usize::MAX);
            // Every record before the open quote's is read as csv-core reads it.
            let mut want = reference(input, b',');
            want.pop();
            assert_eq!(records, want, "{:?}", String::from_utf8_lossy(input));
            match err {
                Some((_, ReadError::UnterminatedQuote { line, field })) => {
                    assert!(seen.is_none_or(|seen| seen == (line, field)));
                    seen = Some((line, field));
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
            }
        }
        seen.unwrap()
    }

    #[test]
    fn a_file_ending_inside_quotes_names_the_opening_line() {
        assert_eq!(unterminated(b"a,b\n1,\"unterminated\n2,3\n"), (2, 1));
        assert_eq!(unterminated(b"\"open"), (1, 0));
        assert_eq!(unterminated(b"a\"b,c\"\n\"open at end"), (2, 0));
        assert_eq!(unterminated(b"\xEF\xBB\xBF\"x"), (1, 0));
        assert_eq!(unterminated(b"a,b\r\n\n\"x\ny\",\"\"\"q\nr\n"), (4, 1));
        let long = "x".repeat(READ_BUFFER_BYTES * 2);
        let file = format!("a\n\n{long}\n\"{long}\n{long}");
        assert_eq!(unterminated(file.as_bytes()), (4, 0));
        // Closed quotes, quotes inside unquoted text, a quote closed at the
        // very end: complete files.
        for complete in [&b"a,\"b\""[..], b"a\"b,\"c\"\"\"", b"\"x\"y\"z\n", b"\"\""] {
            assert_eq!(ours(complete, b',', 1), reference(complete, b','));
        }
    }

    #[test]
    fn a_field_over_the_cap_is_refused_with_its_place() {
        let cases: &[(&[u8], usize, u64, usize)] = &[
            // (input, cap, line of the record, field)
            (b"a,b\n1,12345\n", 4, 2, 1),
            (b"a,b\n1,\"12\"\"45\"\n", 4, 2, 1),
            (b"a,b\n1,\"12\n45\"\n", 4, 2, 1),
            (b"abcde,b\n", 4, 1, 0),
            // The blank line is counted with the previous record, as the csv
            // crate reports lines.
            (b"a,b\n\n1,2,\"1234\"x\n", 4, 2, 2),
        ];
        for &(input, cap, line, field) in cases {
            for chunk in [1, 3, 1 << 20] {
                let (_, err) = read_all(input, b',', chunk, cap);
                match err {
                    Some((at, ReadError::FieldTooLarge { field: got })) => {
                        assert_eq!((at, got), (line, field), "{input:?} by {chunk}")
                    }
                    other => panic!("{input:?} by {chunk}: {other:?}"),
                }
            }
            // One byte more of room reads it all.
            let (records, err) = read_all(input, b',', 2, cap + 1);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(records, reference(input, b','));
        }
    }

    #[test]
    fn a_huge_field_is_refused_without_holding_it() {
        let cap = 1024 * 1024;
        let mut file = b"a,b\n1,\"".to_vec();
        file.resize(file.len() + 16 * cap, b'x');
        file.extend_from_slice(b"\"\n");
        let mut reader = RecordReader::new(&file[..], b',', cap);
        assert!(reader.read_record().unwrap());
        match reader.read_record() {
            Err(ReadError::FieldTooLarge { field: 1 }) => {}
            other => panic!("{other:?}"),
        }
        assert!(
            // The field's bytes up to one past the cap, after the first
            // field's one byte.
            reader.core_out.len() <= cap + 2,
            "held {} bytes",
            reader.core_out.len()
        );
    }

    #[test]
    fn other_delimiters_and_long_records() {
        let semi = b"a;b\n1,5;\"x;y\"\n\"\";\"q\"\"\"\n";
        assert_eq!(ours(semi, b';', 4), reference(semi, b';'));
        let tab = b"a\tb\n1,5\t\"x\ty\"\n, \t;\n";
        assert_eq!(ours(tab, b'\t', 3), reference(tab, b'\t'));

        // Records longer than the read buffer, quoted and not.
        let long = "x".repeat(READ_BUFFER_BYTES + 10);
        let mut file = format!("a,b\n{long},\"{long}\"\"{long}\"\n1,2\n").into_bytes();
        file.extend_from_slice(format!("\"{long}\n{long}\",{long}\n").as_bytes());
        assert_eq!(ours(&file, b',', 1 << 20), reference(&file, b','));
        assert_eq!(ours(&file, b',', 4096), reference(&file, b','));
    }

    #[test]
    fn mixed_records_across_buffer_refills() {
        let mut file = b"id,text,note\n".to_vec();
        for n in 0..20_000 {
            let row = match n % 5 {
                0 => format!("{n},plain,\n"),
                1 => format!("{n},\"quoted, \"\"with\"\" quotes\",x\n"),
                2 => format!("{n},\"two\nlines\",\r\n"),
                3 => format!("{n},\"\",\"\"\n"),
                _ => format!("{n},caf\u{e9} \u{1F30D},end\n\n"),
            };
            file.extend_from_slice(row.as_bytes());
        }
        assert_eq!(ours(&file, b',', 1 << 20), reference(&file, b','));
        assert_eq!(ours(&file, b',', 1000), reference(&file, b','));
    }
}
