//! Checks of one formatter, driven through the real ABI.

use super::memory::{mib, resident_bytes};
use super::probes::{with_unknown_key, with_wrong_type};
use super::samples::{
    all_nulls, everyday_schema, one_row, promised_types, promised_types_batch, stream_batch,
    stream_schema, unicode_batch, UNICODE_SAMPLES,
};
use super::{describe, Answer, Check, ConfigDoc, Inputs};
use crate::plugins::schema::DocumentSchema;
use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::Schema;
use export_plugin_api::host::PluginLibrary;
use export_plugin_api::{ErrorKind, FormatterManifest, PluginError};
use serde_json::Value;
use std::time::Instant;

/// Rows per batch in the flat-memory stream (the host's default batch size).
const STREAM_BATCH_ROWS: usize = 8192;
/// Batches written before the baseline is taken, so buffers that a
/// formatter allocates once (and the allocator's own pools) are not counted.
const WARM_UP_BATCHES: usize = 8;

/// One formatter with the documents every check starts it with.
struct Target<'a> {
    library: &'a PluginLibrary,
    name: &'a str,
    config: &'a str,
    options: String,
}

impl Target<'_> {
    /// Starts a session for `schema`, writes `batches`, finishes; returns every byte.
    fn format_batches(
        &self,
        schema: &Schema,
        batches: &[RecordBatch],
    ) -> Result<Vec<u8>, PluginError> {
        self.format_batches_with(&self.options, schema, batches)
    }

    fn format_batches_with(
        &self,
        options: &str,
        schema: &Schema,
        batches: &[RecordBatch],
    ) -> Result<Vec<u8>, PluginError> {
        let mut session = self
            .library
            .start_formatter(self.name, self.config, options, schema)?;
        let mut out = Vec::new();
        for batch in batches {
            out.extend_from_slice(&session.write(batch)?);
        }
        out.extend_from_slice(&session.finish()?);
        while let Some(piece) = session.finish_more()? {
            out.extend_from_slice(&piece);
        }
        Ok(out)
    }
}

/// Every check of formatter `component`, and how its first call answered.
pub(crate) fn checks(
    library: &PluginLibrary,
    component: &FormatterManifest,
    config: &ConfigDoc,
    inputs: &Inputs,
) -> (Vec<Check>, Answer) {
    let name = component.name.as_str();
    let label = |what: &str| format!("formatter {name:?}: {what}");
    let options = inputs
        .options
        .get(name)
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let target = Target {
        library,
        name,
        config: config.text(),
        options: options.to_string(),
    };
    let schema = DocumentSchema::compile(&component.options_schema).ok();
    let mut checks = Vec::new();

    // The first call: does it start at all?
    let answer = library
        .start_formatter(name, target.config, &target.options, &everyday_schema())
        .map(drop);
    let skip = match (&answer, config) {
        (Err(err), ConfigDoc::Missing(why)) if err.kind == ErrorKind::InvalidInput => Some(
            format!("{why} (it did not start with {{}}: {})", err.message),
        ),
        (Err(err), _) => {
            checks.push(Check::fail(
                label("starts"),
                format!(
                    "start with options {} failed: {}; pass valid options with --options {name}=JSON",
                    target.options,
                    describe(err)
                ),
            ));
            Some("it did not start".to_owned())
        }
        (Ok(()), _) => None,
    };
    let data_checks = [
        "empty stream",
        "one row",
        "nulls in every column type",
        "every promised type",
        "Unicode",
    ];
    let memory_label = format!("{} rows in flat memory", thousands(inputs.stream_rows));
    match skip {
        Some(why) => {
            for what in data_checks.iter().copied().chain([memory_label.as_str()]) {
                checks.push(Check::not_applicable(label(what), why.clone()));
            }
        }
        None => {
            checks.extend(data(&target, component, &label));
            checks.push(flat_memory(&target, inputs, label(&memory_label)));
        }
    }
    checks.push(invalid_options(
        &target,
        schema.as_ref(),
        &component.options_schema,
        &options,
        label("invalid options refused"),
    ));
    checks.push(panic_contained(&target, inputs, label("panics contained")));
    (checks, answer)
}

/// Empty stream, one row, nulls, every type, Unicode.
fn data(
    target: &Target<'_>,
    component: &FormatterManifest,
    label: &dyn Fn(&str) -> String,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let everyday = everyday_schema();

    // An empty stream is a complete, valid export: no batch, or an empty one.
    let empty = target.format_batches(&everyday, &[]);
    let empty_batch = target.format_batches(&everyday, &[RecordBatch::new_empty(everyday.clone())]);
    checks.push(match (&empty, &empty_batch) {
        (Ok(none), Ok(zero)) => Check::pass(
            label("empty stream"),
            format!("{} bytes; {} with one empty batch", none.len(), zero.len()),
        ),
        (Err(err), _) => Check::fail(
            label("empty stream"),
            format!(
                "with no batch: {}; an empty export is valid and must succeed",
                describe(err)
            ),
        ),
        (_, Err(err)) => Check::fail(
            label("empty stream"),
            format!(
                "with one empty batch: {}; an empty batch must be accepted",
                describe(err)
            ),
        ),
    });

    checks.push(match target.format_batches(&everyday, &[one_row()]) {
        Ok(bytes) if empty.as_ref().is_ok_and(|empty| *empty == bytes) => Check::fail(
            label("one row"),
            "the output is the same as for an empty stream: the row was not written",
        ),
        Ok(bytes) => Check::pass(label("one row"), format!("{} bytes", bytes.len())),
        Err(err) => Check::fail(label("one row"), describe(&err)),
    });

    let promised = promised_types_batch();
    let schema = promised.schema();
    checks.push(
        match target.format_batches(&schema, &[all_nulls(&schema, 2)]) {
            Ok(bytes) => Check::pass(
                label("nulls in every column type"),
                format!("{} columns, {} bytes", schema.fields().len(), bytes.len()),
            ),
            Err(err) => Check::fail(label("nulls in every column type"), describe(&err)),
        },
    );

    let textual = is_textual(&component.mime_type);
    checks.push(match target.format_batches(&schema, &[promised]) {
        Ok(bytes) if textual && std::str::from_utf8(&bytes).is_err() => Check::fail(
            label("every promised type"),
            format!(
                "the output is not valid UTF-8 although the MIME type is {:?}",
                component.mime_type
            ),
        ),
        Ok(bytes) => Check::pass(
            label("every promised type"),
            format!("{} types, {} bytes", promised_types().len(), bytes.len()),
        ),
        Err(err) => Check::fail(
            label("every promised type"),
            format!(
                "{}; every type in plugin-api's \"Data types\" list must be written",
                describe(&err)
            ),
        ),
    });

    if let Some(syntax) = Syntax::of(&component.mime_type, &target.options) {
        checks.push(well_formed(target, syntax, &schema, label));
    }

    let unicode = unicode_batch();
    checks.push(match target.format_batches(&unicode.schema(), &[unicode]) {
        Err(err) => Check::fail(label("Unicode"), describe(&err)),
        Ok(bytes) if !textual => Check::pass(
            label("Unicode"),
            format!(
                "{} bytes (binary format: contents not inspected)",
                bytes.len()
            ),
        ),
        Ok(bytes) => match String::from_utf8(bytes) {
            Err(_) => Check::fail(label("Unicode"), "the output is not valid UTF-8"),
            Ok(text) => {
                let missing: Vec<&str> = UNICODE_SAMPLES
                    .iter()
                    .copied()
                    .filter(|s| {
                        !s.bytes()
                            .any(|b| b.is_ascii_control() || b"\"|,;".contains(&b))
                    })
                    .filter(|s| !text.contains(s) && !text.contains(&json_ascii_escape(s)))
                    .collect();
                if missing.is_empty() {
                    Check::pass(
                        label("Unicode"),
                        format!("{} bytes, every sample intact", text.len()),
                    )
                } else {
                    Check::fail(
                        label("Unicode"),
                        format!("these values did not come out as written: {missing:?}"),
                    )
                }
            }
        },
    });
    checks
}

/// A document syntax a MIME type promises, checked with a real parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    /// One JSON document.
    Json,
    /// One JSON document per line.
    JsonLines,
    /// CSV records of one width, with this delimiter.
    Csv(u8),
    /// One XML document.
    Xml,
}

impl Syntax {
    /// The syntax `mime_type` promises; `options` may name the CSV delimiter.
    fn of(mime_type: &str, options: &str) -> Option<Syntax> {
        let essence = mime_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence.contains("ndjson")
            || essence.contains("jsonl")
            || essence.contains("json-seq")
            || essence.ends_with("json-lines")
        {
            Some(Syntax::JsonLines)
        } else if essence.ends_with("/json") || essence.ends_with("+json") {
            Some(Syntax::Json)
        } else if essence == "text/csv" {
            let delimiter = serde_json::from_str::<Value>(options)
                .ok()
                .and_then(|options| options.get("delimiter")?.as_str().map(str::to_owned))
                .and_then(|text| match text.as_bytes() {
                    [byte] => Some(*byte),
                    _ => None,
                })
                .unwrap_or(b',');
            Some(Syntax::Csv(delimiter))
        } else if essence.ends_with("/xml") || essence.ends_with("+xml") {
            Some(Syntax::Xml)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Syntax::Json => "JSON",
            Syntax::JsonLines => "JSON Lines",
            Syntax::Csv(_) => "CSV",
            Syntax::Xml => "XML",
        }
    }

    /// Why `bytes` are not a well-formed document of this syntax.
    fn problem(self, bytes: &[u8]) -> Option<String> {
        match self {
            Syntax::Json => serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                .err()
                .map(|err| err.to_string()),
            Syntax::JsonLines => bytes
                .split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
                .find_map(|(index, line)| {
                    serde_json::from_slice::<serde::de::IgnoredAny>(line)
                        .err()
                        .map(|err| format!("line {}: {err}", index + 1))
                }),
            Syntax::Csv(delimiter) => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .delimiter(delimiter)
                    .from_reader(bytes);
                let mut record = csv::StringRecord::new();
                loop {
                    match reader.read_record(&mut record) {
                        Ok(true) => {}
                        Ok(false) => return None,
                        Err(err) => return Some(err.to_string()),
                    }
                }
            }
            Syntax::Xml => xml_problem(bytes),
        }
    }
}

/// Why `bytes` are not one well-formed XML document.
fn xml_problem(bytes: &[u8]) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut depth: usize = 0;
    let mut roots = 0;
    loop {
        let at = reader.buffer_position();
        match reader.read_event_into(&mut buf) {
            Err(err) => return Some(format!("at byte {at}: {err}")),
            Ok(Event::Eof) => break,
            Ok(Event::Start(_)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Empty(_)) if depth == 0 => roots += 1,
            Ok(Event::Text(text)) if depth == 0 => {
                let bytes = text.into_inner();
                if !bytes.trim().is_empty() {
                    return Some(format!("at byte {at}: text outside the root element"));
                }
            }
            Ok(_) => {}
        }
        buf.clear();
    }
    match (depth, roots) {
        (0, 1) => None,
        (0, 0) => Some("no root element".to_owned()),
        (0, n) => Some(format!("{n} root elements where a document has one")),
        (n, _) => Some(format!("{n} element(s) left open at the end")),
    }
}

/// Whether the formatter's output parses as the syntax its MIME type
/// promises, for every sample: a consumer's parser must read it.
fn well_formed(
    target: &Target<'_>,
    syntax: Syntax,
    promised: &Schema,
    label: &dyn Fn(&str) -> String,
) -> Check {
    let what = format!("well-formed {}", syntax.name());
    let everyday = everyday_schema();
    let samples: [(&str, &Schema, Vec<RecordBatch>); 4] = [
        ("an empty stream", &everyday, vec![]),
        ("one row", &everyday, vec![one_row()]),
        (
            "every promised type",
            promised,
            vec![promised_types_batch()],
        ),
        (
            "the Unicode samples",
            &unicode_batch().schema(),
            vec![unicode_batch()],
        ),
    ];
    let mut checked = 0;
    for (sample, schema, batches) in samples {
        // A failed run is reported by its own check.
        let Ok(bytes) = target.format_batches(schema, &batches) else {
            continue;
        };
        if let Some(problem) = syntax.problem(&bytes) {
            return Check::fail(
                label(&what),
                format!(
                    "the output for {sample} is not well-formed {}: {problem}; a reader of \
                     this MIME type cannot parse it",
                    syntax.name()
                ),
            );
        }
        checked += 1;
    }
    Check::pass(label(&what), format!("{checked} outputs parsed"))
}

/// Writes `inputs.stream_rows` rows and watches the host's resident memory.
fn flat_memory(target: &Target<'_>, inputs: &Inputs, label: String) -> Check {
    let Some(start_rss) = resident_bytes() else {
        return Check::not_applicable(label, "cannot measure this process's resident memory here");
    };
    let schema = stream_schema();
    let mut session =
        match target
            .library
            .start_formatter(target.name, target.config, &target.options, &schema)
        {
            Ok(session) => session,
            Err(err) => return Check::fail(label, describe(&err)),
        };
    let total = inputs.stream_rows;
    let batches = total.div_ceil(STREAM_BATCH_ROWS);
    let warm_up = WARM_UP_BATCHES.min(batches / 4);
    let started = Instant::now();
    let mut baseline = if warm_up == 0 { start_rss } else { 0 };
    let mut peak = baseline;
    let mut written = 0u64;
    let mut first = 0;
    for index in 1..=batches {
        let rows = STREAM_BATCH_ROWS.min(total - first);
        let batch = stream_batch(first, rows);
        first += rows;
        match session.write(&batch) {
            Ok(bytes) => written += bytes.len() as u64,
            Err(err) => return Check::fail(label, format!("at row {first}: {}", describe(&err))),
        }
        drop(batch);
        let now = resident_bytes().unwrap_or(0);
        if index == warm_up {
            baseline = now;
            peak = now;
        } else {
            peak = peak.max(now);
        }
    }
    // Measure while the closing bytes are held: a formatter that buffers
    // everything until `finish` shows its whole document here.
    let mut closing = session.finish().map(Some);
    loop {
        match closing {
            Ok(Some(bytes)) => {
                written += bytes.len() as u64;
                peak = peak.max(resident_bytes().unwrap_or(0));
            }
            Ok(None) => break,
            Err(err) => return Check::fail(label, format!("finish: {}", describe(&err))),
        }
        closing = session.finish_more();
    }
    let growth = peak.saturating_sub(baseline);
    let detail = format!(
        "resident memory grew {} (bound {}); {} bytes written in {:.1} s",
        mib(growth),
        mib(inputs.memory_bound_bytes),
        written,
        started.elapsed().as_secs_f64()
    );
    if growth > inputs.memory_bound_bytes {
        Check::fail(
            label,
            format!("{detail}: hand bytes over in every write instead of keeping rows or output"),
        )
    } else {
        Check::pass(label, detail)
    }
}

/// An unknown key and a wrongly typed field: the schema (the host's check)
/// and the plugin itself must both refuse them.
fn invalid_options(
    target: &Target<'_>,
    schema: Option<&DocumentSchema>,
    schema_value: &Value,
    options: &Value,
    label: String,
) -> Check {
    let Some(schema) = schema else {
        return Check::not_applicable(label, "the options schema does not compile");
    };
    let mut probes = vec![("an unknown key".to_owned(), with_unknown_key(Some(options)))];
    if let Some((field, doc)) = with_wrong_type(schema_value, Some(options)) {
        probes.push((format!("a wrong type for {field:?}"), doc));
    }
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (what, doc) in &probes {
        if schema.check("options", doc).is_ok() {
            problems.push(format!(
                "the options schema accepts {what} ({doc}); use #[serde(deny_unknown_fields)] and typed fields"
            ));
        }
        let started = target.library.start_formatter(
            target.name,
            target.config,
            &doc.to_string(),
            &everyday_schema(),
        );
        match started.map(drop) {
            Ok(()) => problems.push(format!("start accepted {what} ({doc})")),
            Err(err) if err.kind == ErrorKind::InvalidInput => seen.push(what.clone()),
            Err(err) => problems.push(format!(
                "start refused {what} with a {} error instead of invalid_input: {}",
                err.kind, err.message
            )),
        }
    }
    if problems.is_empty() {
        Check::pass(label, format!("refused {}", seen.join(" and ")))
    } else {
        Check::fail(label, problems.join("; "))
    }
}

/// With options the author says make it panic: the panic must come back as
/// an error, and the formatter must still work afterwards.
fn panic_contained(target: &Target<'_>, inputs: &Inputs, label: String) -> Check {
    let Some(options) = inputs.panic_options.get(target.name) else {
        return Check::not_applicable(
            label,
            format!(
                "no way to make it panic was given; pass --panic-options {}=JSON to check",
                target.name
            ),
        );
    };
    let everyday = everyday_schema();
    match target.format_batches_with(&options.to_string(), &everyday, &[one_row()]) {
        Ok(_) => Check::fail(label, format!("options {options} did not make it panic")),
        Err(err) if err.kind != ErrorKind::Panic => Check::fail(
            label,
            format!(
                "options {options} gave a {} error, not a panic: {}",
                err.kind, err.message
            ),
        ),
        Err(panic) => match target.format_batches(&everyday, &[one_row()]) {
            Ok(_) => Check::pass(label, format!("came back as an error: {}", panic.message)),
            Err(err) => Check::fail(
                label,
                format!("after the panic, a new export failed: {}", describe(&err)),
            ),
        },
    }
}

/// `1000000` as `1,000,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Whether output of `mime_type` is text a person reads.
fn is_textual(mime_type: &str) -> bool {
    let essence = mime_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("/json")
        || essence.ends_with("+json")
        || essence.ends_with("/xml")
        || essence.ends_with("+xml")
        || essence.contains("ndjson")
        || essence.contains("jsonl")
}

/// `text` as JSON writes it with every non-ASCII character escaped.
fn json_ascii_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(12_345), "12,345");
    }

    #[test]
    fn textual_mime_types() {
        for text in [
            "text/csv; charset=utf-8",
            "application/json",
            "application/x-ndjson",
            "text/html",
        ] {
            assert!(is_textual(text), "{text}");
        }
        for binary in [
            "application/pdf",
            "application/vnd.apache.parquet",
            "application/octet-stream",
        ] {
            assert!(!is_textual(binary), "{binary}");
        }
    }

    #[test]
    fn syntaxes_come_from_the_mime_type_and_parsers_judge() {
        assert_eq!(Syntax::of("application/json", "{}"), Some(Syntax::Json));
        assert_eq!(
            Syntax::of("application/x-ndjson", "{}"),
            Some(Syntax::JsonLines)
        );
        assert_eq!(
            Syntax::of("text/csv; charset=utf-8", r#"{"delimiter":";"}"#),
            Some(Syntax::Csv(b';'))
        );
        assert_eq!(Syntax::of("application/xhtml+xml", "{}"), Some(Syntax::Xml));
        assert_eq!(Syntax::of("text/html", "{}"), None);
        assert!(Syntax::Json.problem(b"[{\"a\":1}]").is_none());
        assert!(Syntax::Json.problem(b"[{\"a\":1},]").is_some());
        assert!(Syntax::JsonLines
            .problem(b"{\"a\":1}\n{\"a\":2}\n")
            .is_none());
        assert!(Syntax::JsonLines.problem(b"{\"a\":1}\n{a:2}\n").is_some());
        assert!(Syntax::Csv(b',').problem(b"a,b\n1,\"x,y\"\n").is_none());
        assert!(Syntax::Csv(b',').problem(b"a,b\n1,2,3\n").is_some());
        assert!(Syntax::Xml
            .problem(b"<?xml version=\"1.0\"?><r><a>1</a></r>")
            .is_none());
        assert!(Syntax::Xml.problem(b"<r><a>1</b></r>").is_some());
        assert!(Syntax::Xml.problem(b"<r><a>1</a>").is_some());
        assert!(Syntax::Xml.problem(b"<r/><r/>").is_some());
    }

    #[test]
    fn ascii_escapes_like_json() {
        assert_eq!(json_ascii_escape("é👋"), "\\u00e9\\ud83d\\udc4b");
        let escaped: String =
            serde_json::from_str(&format!("\"{}\"", json_ascii_escape("你好 👋🏽"))).unwrap();
        assert_eq!(escaped, "你好 👋🏽");
    }
}
