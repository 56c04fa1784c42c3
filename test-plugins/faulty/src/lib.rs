//! Test fixture: misbehaves the way a request asks, in the loader or the
//! formatter, so tests can prove that process isolation contains every kind
//! of failure a plugin can have. Never load it in-process with a fault that
//! kills processes (abort, segfault, exit, oom) unless that is the point.

use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, StringArray, UInt32Array};
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

/// What to do wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
enum Fault {
    /// Behave.
    #[default]
    None,
    /// `std::process::abort()`.
    Abort,
    /// Write through an invalid pointer.
    Segfault,
    /// Sleep forever.
    Hang,
    /// Allocate until the allocator fails.
    Oom,
    /// Print to stdout and stderr, then behave.
    Stdout,
    /// `panic!`.
    Panic,
    /// Return an error value.
    Error,
    /// `std::process::exit(7)`.
    Exit,
}

fn misbehave(fault: Fault, place: &str) -> Result<()> {
    match fault {
        Fault::None => Ok(()),
        Fault::Abort => std::process::abort(),
        Fault::Segfault => {
            // SAFETY: none; the point is to fault. Page zero is never mapped.
            unsafe { std::ptr::without_provenance_mut::<u8>(8).write_volatile(1) };
            Ok(())
        }
        Fault::Hang => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        Fault::Oom => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                hog.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&hog);
            }
        }
        Fault::Stdout => {
            let mut stdout = std::io::stdout().lock();
            for n in 0..200 {
                let _ = writeln!(stdout, "faulty plugin noise on stdout {n} {place}");
            }
            let _ = stdout.flush();
            eprintln!("faulty plugin noise on stderr at {place}");
            Ok(())
        }
        Fault::Panic => panic!("faulty plugin panics at {place}, as asked"),
        Fault::Error => Err(PluginError::io(format!(
            "faulty plugin fails at {place}, as asked"
        ))),
        Fault::Exit => std::process::exit(7),
    }
}

/// Which entry point misbehaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
enum At {
    /// `open` / `start`.
    Open,
    /// The second batch / the first write.
    #[default]
    Next,
    /// The end of the data / `finish`.
    Finish,
}

/// The loader's selector.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
struct Selector {
    /// What to do wrong.
    #[serde(default)]
    fault: Fault,
    /// Where.
    #[serde(default)]
    at: At,
}

fn rows_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Utf8, false)]))
}

fn rows(values: &[&str]) -> Result<RecordBatch> {
    let column: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
    Ok(RecordBatch::try_new(rows_schema(), vec![column])?)
}

struct FaultyLoader;

impl Loader for FaultyLoader {
    type Config = NoConfig;
    type Selector = Selector;
    const NAME: &'static str = "faulty";
    const DESCRIPTION: &'static str = "Three rows in two batches, misbehaving where told";

    fn open(&self, _: NoConfig, selector: Selector, _: &Limits) -> Result<Box<dyn BatchReader>> {
        if selector.at == At::Open {
            misbehave(selector.fault, "open")?;
        }
        Ok(Box::new(FaultyReader {
            selector,
            served: 0,
        }))
    }
}

struct FaultyReader {
    selector: Selector,
    served: usize,
}

impl BatchReader for FaultyReader {
    fn schema(&self) -> SchemaRef {
        rows_schema()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        self.served += 1;
        match self.served {
            1 => Ok(Some(rows(&["1", "2"])?)),
            2 => {
                if self.selector.at == At::Next {
                    misbehave(self.selector.fault, "next")?;
                }
                Ok(Some(rows(&["3"])?))
            }
            _ => {
                if self.selector.at == At::Finish {
                    misbehave(self.selector.fault, "end")?;
                }
                Ok(None)
            }
        }
    }
}

/// The `whoami` selector: no fields.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
struct Nothing {}

/// One row: the process id of whoever runs the plugin (the host, or a worker).
struct WhoAmI;

impl Loader for WhoAmI {
    type Config = NoConfig;
    type Selector = Nothing;
    const NAME: &'static str = "whoami";
    const DESCRIPTION: &'static str = "The process id the plugin runs in";

    fn open(&self, _: NoConfig, _: Nothing, _: &Limits) -> Result<Box<dyn BatchReader>> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "pid",
            DataType::UInt32,
            false,
        )]));
        let column: ArrayRef = Arc::new(UInt32Array::from(vec![std::process::id()]));
        let batch = RecordBatch::try_new(schema.clone(), vec![column])?;
        Ok(Box::new(IterReader::new(
            schema,
            std::iter::once(Ok(batch)),
        )))
    }
}

/// The formatter's options.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
#[schemars(crate = "export_plugin_api::schemars")]
struct Options {
    /// What to do wrong.
    fault: Fault,
    /// Where.
    at: At,
}

struct FaultyFormat;

impl Formatter for FaultyFormat {
    type Config = NoConfig;
    type Options = Options;
    const NAME: &'static str = "faulty";
    const DESCRIPTION: &'static str = "Every cell on a line of its own, misbehaving where told";
    const MIME_TYPE: &'static str = "text/plain; charset=utf-8";
    const EXTENSION: &'static str = "txt";

    fn start(&self, _: NoConfig, options: Options, _: SchemaRef) -> Result<Box<dyn FormatWriter>> {
        if options.at == At::Open {
            misbehave(options.fault, "start")?;
        }
        Ok(Box::new(FaultyWriter { options }))
    }
}

struct FaultyWriter {
    options: Options,
}

impl FormatWriter for FaultyWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        if self.options.at == At::Next {
            misbehave(self.options.fault, "write")?;
        }
        let rows = Rows::new(batch)?;
        for row in rows.iter() {
            for cell in row.cells() {
                out.extend_from_slice(cell.to_string().as_bytes());
                out.push(b'\n');
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.options.at == At::Finish {
            misbehave(self.options.fault, "finish")?;
        }
        out.extend_from_slice(b"end\n");
        Ok(())
    }
}

fn plugin() -> Plugin {
    PluginBuilder::new("faulty", env!("CARGO_PKG_VERSION"))
        .description("Test fixture that misbehaves on request")
        .loader(FaultyLoader)
        .loader(WhoAmI)
        .formatter(FaultyFormat)
        .build()
}

export_plugin!(plugin());
