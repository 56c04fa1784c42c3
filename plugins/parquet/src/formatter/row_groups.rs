//! Row groups encoded one column per thread.
//!
//! Encoding (dictionaries, page compression) is most of a Parquet export's
//! work, and the `parquet` crate's `ArrowWriter` does it column after column
//! on one thread. Columns are independent until a row group is closed, so
//! each batch's columns are spread over a few threads (each takes the next
//! column not yet taken, so one heavy text column does not hold up the
//! rest), and the row group is then assembled in column order as
//! `ArrowWriter` would. The file is the same; only the time changes. The
//! row group limits are `ArrowWriter`'s: `max_rows`, and an encoded size
//! estimate of `max_bytes`, with a batch split where either is reached.

use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::SchemaRef;
use parquet::arrow::arrow_writer::{
    compute_leaves, ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn,
    ArrowRowGroupWriterFactory,
};
use parquet::arrow::ArrowWriter;
use parquet::errors::{ParquetError, Result};
use parquet::file::writer::SerializedFileWriter;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Most threads one export encodes on: past this, the loader and the host
/// need the cores more than the encoder gains from them.
const MAX_THREADS: usize = 4;

/// A Parquet file written into a `Vec` that the caller drains.
pub(super) struct RowGroupWriter {
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// The row group being filled, and its rows so far.
    in_progress: Option<(Vec<ArrowColumnWriter>, usize)>,
    max_rows: usize,
    max_bytes: usize,
    threads: usize,
}

impl RowGroupWriter {
    /// Takes over `writer`'s file (its schema checks and the Arrow schema in
    /// its metadata are done) with `max_rows` and `max_bytes` per row group.
    pub(super) fn new(
        writer: ArrowWriter<Vec<u8>>,
        schema: SchemaRef,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<RowGroupWriter> {
        let (file, factory) = writer.into_serialized_writer()?;
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, MAX_THREADS);
        Ok(RowGroupWriter {
            file,
            factory,
            schema,
            in_progress: None,
            max_rows: max_rows.max(1),
            max_bytes,
            threads,
        })
    }

    /// Encodes `batch`, closing row groups as they fill.
    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut remaining = batch.clone();
        while remaining.num_rows() > 0 {
            let (writers, rows) = match &mut self.in_progress {
                Some(in_progress) => in_progress,
                empty => empty.insert((
                    self.factory
                        .create_column_writers(self.file.flushed_row_groups().len())?,
                    0,
                )),
            };
            let mut take = remaining.num_rows().min(self.max_rows - *rows);
            // Splits where the encoded size estimate reaches max_bytes, from
            // the average row so far.
            let bytes = estimated_bytes(writers);
            if let Some(average) = bytes.checked_div(*rows) {
                let fit = self.max_bytes.saturating_sub(bytes) / average.max(1);
                if fit == 0 {
                    self.close_row_group()?;
                    continue;
                }
                take = take.min(fit);
            }
            let part = remaining.slice(0, take);
            remaining = remaining.slice(take, remaining.num_rows() - take);
            let mut leaves = Vec::with_capacity(writers.len());
            for (field, column) in self.schema.fields().iter().zip(part.columns()) {
                leaves.extend(compute_leaves(field, column)?);
            }
            if leaves.len() != writers.len() {
                return Err(ParquetError::General(format!(
                    "{} leaf columns for {} column writers",
                    leaves.len(),
                    writers.len()
                )));
            }
            let jobs: Vec<(&mut ArrowColumnWriter, ArrowLeafColumn)> =
                writers.iter_mut().zip(leaves).collect();
            on_threads(jobs, self.threads, |(writer, leaf)| writer.write(&leaf))?;
            *rows += take;
            if *rows >= self.max_rows || estimated_bytes(writers) >= self.max_bytes {
                self.close_row_group()?;
            }
        }
        Ok(())
    }

    /// Closes the row group being filled, if any, into the file.
    fn close_row_group(&mut self) -> Result<()> {
        let Some((writers, _)) = self.in_progress.take() else {
            return Ok(());
        };
        // Closing compresses each column's last page: on the threads too.
        let chunks: Vec<Mutex<Option<ArrowColumnChunk>>> =
            writers.iter().map(|_| Mutex::new(None)).collect();
        let jobs: Vec<(usize, ArrowColumnWriter)> = writers.into_iter().enumerate().collect();
        on_threads(jobs, self.threads, |(index, writer)| {
            let chunk = writer.close()?;
            *lock(&chunks[index]) = Some(chunk);
            Ok(())
        })?;
        let mut row_group = self.file.next_row_group()?;
        for chunk in chunks {
            let chunk = chunk
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .ok_or_else(|| ParquetError::General("a column chunk is missing".into()))?;
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        Ok(())
    }

    /// Moves the bytes written so far into `out`. The file writer only
    /// counts the bytes it wrote (for the footer's offsets) and never reads
    /// them back, so taking them away is safe and keeps memory flat.
    pub(super) fn drain(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.file.flush()?;
        let written = self.file.inner_mut();
        if out.is_empty() {
            std::mem::swap(out, written);
        } else {
            out.append(written);
        }
        Ok(())
    }

    /// Closes the last row group and writes the footer.
    pub(super) fn finish(&mut self) -> Result<()> {
        self.close_row_group()?;
        self.file.finish()?;
        Ok(())
    }
}

fn estimated_bytes(writers: &[ArrowColumnWriter]) -> usize {
    writers
        .iter()
        .map(ArrowColumnWriter::get_estimated_total_bytes)
        .sum()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `work` on every job, on up to `threads` threads (this one among
/// them), each taking the next job not yet taken. The first error wins; a
/// panic on a helper thread comes back as an error.
fn on_threads<J: Send>(
    jobs: Vec<J>,
    threads: usize,
    work: impl Fn(J) -> Result<()> + Sync,
) -> Result<()> {
    let threads = threads.min(jobs.len());
    if threads <= 1 {
        return jobs.into_iter().try_for_each(work);
    }
    let slots: Vec<Mutex<Option<J>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let next = AtomicUsize::new(0);
    let run = || -> Result<()> {
        loop {
            let Some(slot) = slots.get(next.fetch_add(1, Ordering::Relaxed)) else {
                return Ok(());
            };
            if let Some(job) = lock(slot).take() {
                work(job)?;
            }
        }
    };
    std::thread::scope(|scope| {
        // A thread the system refuses (a worker's memory limit) is no
        // error: the threads that did start take every job between them.
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("parquet-encode".into())
                    .spawn_scoped(scope, run)
                    .ok()
            })
            .collect();
        let mine = run();
        helpers.into_iter().fold(mine, |outcome, helper| {
            let theirs = helper.join().unwrap_or_else(|_| {
                Err(ParquetError::General(
                    "a Parquet encoding thread panicked".into(),
                ))
            });
            outcome.and(theirs)
        })
    })
}
