//! Test fixture: a plugin written the way an outside author (or an attacker)
//! would, against plugin-api alone, misbehaving as a request asks. Each
//! misbehaviour is one small function, so tests can prove the host never
//! takes a malformed, cut-short or noisy export for a good one.
//!
//! The loader `redteam` takes `{"mode": "...", "at": "open" | "next"}`; the
//! formatter `redteam` takes the same as options. Modes:
//! `normal`, `lying_length`, `offsets_past_buffer`, `invalid_utf8`,
//! `exit0_midstream`, `print_stdout`, `spin`, `panic`, and the escape modes
//! of [`escape`].
//!
//! A slow initialiser: with [`LOAD_SLEEP_ENV`] set to a number of
//! milliseconds, building the plugin (the first thing loading the library
//! runs, in a probe, a worker or a host) sleeps that long. The plugin's
//! `[config]` only reaches it per call, so the switch is the environment.

mod escape;

use arrow_buffer::Buffer;
use arrow_data::ArrayData;
use export_plugin_api::arrow_array::{make_array, ArrayRef, Int64Array, RecordBatch, StringArray};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use export_plugin_api::rows::Rows;
use export_plugin_api::{
    export_plugin, BatchReader, FormatWriter, Formatter, IterReader, JsonSchema, Limits, Loader,
    NoConfig, Plugin, PluginBuilder, PluginError, Result,
};
use serde::Deserialize;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Milliseconds building the plugin sleeps for (unset: none).
pub const LOAD_SLEEP_ENV: &str = "EXPORT_TEST_REDTEAM_LOAD_SLEEP_MS";

/// Where the misbehaviour happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
enum At {
    /// The loader's `open` / the formatter's `start`.
    Open,
    /// After one good batch: the second batch / the second write.
    #[default]
    Next,
}

/// The loader's selector and the formatter's options.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
#[schemars(crate = "export_plugin_api::schemars")]
struct Request {
    /// What to do: `normal`, `lying_length`, `offsets_past_buffer`,
    /// `invalid_utf8`, `exit0_midstream`, `print_stdout`, `spin`, `panic`,
    /// or an escape mode.
    mode: String,
    /// Where (data-plane modes).
    at: At,
    /// The escape mode's argument (a path, an address...).
    arg: Option<String>,
}

impl Request {
    fn mode(&self) -> &str {
        if self.mode.is_empty() {
            "normal"
        } else {
            &self.mode
        }
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]))
}

fn batch(numbers: &[i64], texts: &[&str]) -> Result<RecordBatch> {
    let n: ArrayRef = Arc::new(Int64Array::from(numbers.to_vec()));
    let s: ArrayRef = Arc::new(StringArray::from(texts.to_vec()));
    Ok(RecordBatch::try_new(schema(), vec![n, s])?)
}

/// Two good rows.
fn good_batch() -> Result<RecordBatch> {
    batch(&[1, 2], &["one", "two"])
}

/// A batch claiming 1,000,000 rows over columns of 2 (the stream hands the
/// host a struct of that length; Arrow's own constructor would refuse it).
fn lying_length() -> Result<RecordBatch> {
    let good = batch(&[3, 4], &["three", "four"])?;
    // SAFETY: none; the lie is the point. Nothing in this process reads the
    // missing rows: the batch is only exported over the C data interface.
    Ok(unsafe { RecordBatch::new_unchecked(schema(), good.columns().to_vec(), 1_000_000) })
}

/// Strings whose last offset points 4 KiB past their 6-byte buffer: a reader
/// trusting the offsets reads whatever memory follows.
fn offsets_past_buffer() -> Result<RecordBatch> {
    let offsets = Buffer::from_slice_ref([0i32, 3, 6 + 4096]);
    let values = Buffer::from_slice_ref(b"abcdef");
    // SAFETY: none; the bad offset is the point.
    let data = unsafe {
        ArrayData::new_unchecked(
            DataType::Utf8,
            2,
            None,
            None,
            0,
            vec![offsets, values],
            vec![],
        )
    };
    with_strings(make_array(data))
}

/// Strings that are not UTF-8.
fn invalid_utf8() -> Result<RecordBatch> {
    let offsets = Buffer::from_slice_ref([0i32, 2, 4]);
    let values = Buffer::from_slice_ref([0xffu8, 0xfe, 0xc3, 0x28]);
    // SAFETY: none; the bad bytes are the point (Utf8 promises UTF-8).
    let data = unsafe {
        ArrayData::new_unchecked(
            DataType::Utf8,
            2,
            None,
            None,
            0,
            vec![offsets, values],
            vec![],
        )
    };
    with_strings(make_array(data))
}

fn with_strings(strings: ArrayRef) -> Result<RecordBatch> {
    let n: ArrayRef = Arc::new(Int64Array::from(vec![3i64, 4]));
    // SAFETY: both columns have two rows of the schema's types; only the
    // strings' contents lie.
    Ok(unsafe { RecordBatch::new_unchecked(schema(), vec![n, strings], 2) })
}

/// Ends the whole process with status 0, as a careless plugin might.
fn exit0() -> ! {
    std::process::exit(0)
}

/// A thousand lines on standard output.
fn print_stdout(place: &str) {
    let mut stdout = std::io::stdout().lock();
    for line in 0..1000 {
        let _ = writeln!(stdout, "redteam noise {line} from {place}");
    }
    let _ = stdout.flush();
}

/// Never returns, and never sleeps.
fn spin() -> ! {
    let mut turns: u64 = 0;
    loop {
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
}

fn panic(place: &str) -> ! {
    panic!("redteam panics in {place}, as asked")
}

fn unknown(mode: &str) -> PluginError {
    PluginError::invalid_input(format!(
        "unknown redteam mode {mode:?}; use normal, lying_length, offsets_past_buffer, \
         invalid_utf8, exit0_midstream, print_stdout, spin, panic, notes or huge_notes"
    ))
}

/// The misbehaviours that happen where the data is not involved.
fn act(mode: &str, place: &str) -> Result<()> {
    match mode {
        "exit0_midstream" => exit0(),
        "print_stdout" => {
            print_stdout(place);
            Ok(())
        }
        "spin" => spin(),
        "panic" => panic(place),
        _ => Ok(()),
    }
}

struct RedteamLoader;

impl Loader for RedteamLoader {
    type Config = NoConfig;
    type Selector = Request;
    const NAME: &'static str = "redteam";
    const DESCRIPTION: &'static str = "Two good rows, then the misbehaviour asked for";

    fn open(&self, _: NoConfig, request: Request, _: &Limits) -> Result<Box<dyn BatchReader>> {
        if let Some(found) = escape::run(request.mode(), request.arg.as_deref()) {
            let text = found?;
            let batch = batch(&[1], &[text.as_str()])?;
            return Ok(Box::new(IterReader::new(
                schema(),
                std::iter::once(Ok(batch)),
            )));
        }
        let mode = request.mode().to_owned();
        if !matches!(
            mode.as_str(),
            "normal"
                | "lying_length"
                | "offsets_past_buffer"
                | "invalid_utf8"
                | "exit0_midstream"
                | "print_stdout"
                | "spin"
                | "panic"
                | "notes"
                | "huge_notes"
        ) {
            return Err(unknown(&mode));
        }
        if request.at == At::Open {
            act(&mode, "open")?;
        }
        Ok(Box::new(RedteamReader {
            mode,
            at: request.at,
            served: 0,
        }))
    }
}

struct RedteamReader {
    mode: String,
    at: At,
    served: usize,
}

impl BatchReader for RedteamReader {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        self.served += 1;
        match self.served {
            1 => good_batch().map(Some),
            2 => {
                let batch = match self.mode.as_str() {
                    "lying_length" => lying_length()?,
                    "offsets_past_buffer" => offsets_past_buffer()?,
                    "invalid_utf8" => invalid_utf8()?,
                    mode => {
                        if self.at == At::Next {
                            act(mode, "next")?;
                        }
                        batch(&[3], &["three"])?
                    }
                };
                Ok(Some(batch))
            }
            _ => Ok(None),
        }
    }

    /// `notes`: a small note the record should keep; `huge_notes`: more
    /// than any record keeps, which must fail the export.
    fn notes(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let text = match self.mode.as_str() {
            "notes" => "noted".to_owned(),
            "huge_notes" => "x".repeat(64 * 1024),
            _ => return None,
        };
        Some(serde_json::Map::from_iter([(
            "redteam".to_owned(),
            serde_json::Value::String(text),
        )]))
    }
}

struct RedteamFormat;

impl Formatter for RedteamFormat {
    type Config = NoConfig;
    type Options = Request;
    const NAME: &'static str = "redteam";
    const DESCRIPTION: &'static str = "`n,s` lines, misbehaving as asked";
    const MIME_TYPE: &'static str = "text/plain; charset=utf-8";
    const EXTENSION: &'static str = "txt";

    fn start(&self, _: NoConfig, options: Request, _: SchemaRef) -> Result<Box<dyn FormatWriter>> {
        let found = escape::run(options.mode(), options.arg.as_deref()).transpose()?;
        let mode = options.mode().to_owned();
        if found.is_none() && options.at == At::Open {
            act(&mode, "start")?;
        }
        Ok(Box::new(RedteamWriter {
            mode,
            at: options.at,
            found,
            writes: 0,
        }))
    }
}

struct RedteamWriter {
    mode: String,
    at: At,
    /// What an escape mode found, written instead of the data.
    found: Option<String>,
    writes: usize,
}

impl FormatWriter for RedteamWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        self.writes += 1;
        if self.found.is_none() && self.at == At::Next && self.writes == 2 {
            act(&self.mode, "write")?;
        }
        let rows = Rows::new(batch)?;
        for row in rows.iter() {
            let cells: Vec<String> = row.cells().map(|cell| cell.to_string()).collect();
            out.extend_from_slice(cells.join(",").as_bytes());
            out.push(b'\n');
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if let Some(found) = self.found.take() {
            out.extend_from_slice(found.as_bytes());
        }
        Ok(())
    }
}

fn plugin() -> Plugin {
    if let Some(ms) = std::env::var(LOAD_SLEEP_ENV)
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
    PluginBuilder::new("redteam", env!("CARGO_PKG_VERSION"))
        .description("Test fixture that misbehaves as an attacker would")
        .loader(RedteamLoader)
        .formatter(RedteamFormat)
        .build()
}

export_plugin!(plugin());
