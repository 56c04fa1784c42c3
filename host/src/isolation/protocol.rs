//! The wire between the host and a plugin worker: versioned, length-prefixed
//! frames over the worker's private socket.
//!
//! A frame is `u32 header length | u64 payload length` (little-endian), a
//! JSON header ([`Request`] or [`Reply`]) and an opaque payload: Arrow IPC
//! stream bytes for schemas and record batches, formatted output for bytes.
//! The conversation always starts with [`Request::Hello`]; every request gets
//! exactly one reply, and plugin errors travel as [`Reply::Failed`] values.

use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::{ArrowError, Schema, SchemaRef};
use export_plugin_api::{Caller, ErrorKind, Limits, Manifest, PluginError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// The protocol version this build speaks; a worker refuses any other.
pub const PROTOCOL_VERSION: u32 = 5;

/// Headers are small JSON documents (the largest is a manifest).
const MAX_HEADER_BYTES: u32 = 16 << 20;

/// The payload bound of [`read_frame`]: the default of a plugin's
/// `max_frame` (plugins.toml).
pub const DEFAULT_MAX_PAYLOAD_BYTES: u64 = super::settings::DEFAULT_MAX_FRAME;

/// What the host asks of a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// First message: verify and load `library` (pinned to `sha256` when
    /// given), answered by [`Reply::Ready`] or [`Reply::Refused`].
    Hello {
        /// The protocol version the host speaks.
        protocol: u32,
        /// The library file (the worker runs the trust checks on it).
        library: PathBuf,
        /// The SHA-256 the file must have.
        sha256: Option<String>,
    },
    /// Opens a loader; answered by [`Reply::LoaderOpened`] (schema payload).
    OpenLoader {
        /// The loader's name.
        name: String,
        /// The plugin's config, JSON text.
        config: String,
        /// The selector, JSON text.
        selector: String,
        /// The run's limits.
        limits: Limits,
        /// Who asked (since protocol 3).
        #[serde(default)]
        caller: Option<Caller>,
    },
    /// Runs the loader's validate check only: [`Reply::Validated`] or
    /// [`Reply::Failed`] (since protocol 3).
    ValidateLoader {
        /// The loader's name.
        name: String,
        /// The plugin's config, JSON text.
        config: String,
        /// The selector, JSON text.
        selector: String,
        /// Who asks.
        caller: Option<Caller>,
    },
    /// The open loader's next batch: [`Reply::Batch`] or [`Reply::End`].
    NextBatch,
    /// Starts a formatter for the schema in the payload: [`Reply::FormatterStarted`].
    StartFormatter {
        /// The formatter's name.
        name: String,
        /// The plugin's config, JSON text.
        config: String,
        /// The formatter's options, JSON text.
        options: String,
    },
    /// Formats the batch in the payload: [`Reply::Bytes`].
    Write,
    /// Ends the document: [`Reply::Bytes`] with the first piece of the
    /// closing bytes.
    Finish,
    /// After `Finish`: [`Reply::Bytes`] with the next piece of the closing
    /// bytes; an empty payload means there are no more, and the formatter is
    /// closed.
    FinishMore,
    /// Drops the open loader or formatter: [`Reply::Closed`].
    Close,
}

/// Why a worker refused its hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Another protocol version.
    Protocol,
    /// The file failed the trust checks.
    Trust,
    /// dlopen, the ABI check or the plugin's own start failed.
    Load,
}

/// What a worker answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// The library is loaded.
    Ready {
        /// The protocol version the worker speaks.
        protocol: u32,
        /// What the plugin declares.
        manifest: Manifest,
        /// SHA-256 of the bytes loaded.
        sha256: String,
    },
    /// The hello was refused; the worker exits.
    Refused {
        /// At which step.
        refusal: Refusal,
        /// What was wrong and what to do.
        message: String,
    },
    /// The loader is open; the payload is its schema.
    LoaderOpened,
    /// The loader accepts the selector.
    Validated,
    /// One batch in the payload.
    Batch {
        /// Its row count.
        rows: u64,
        /// How far through its input the loader was after it, from 0 to 1,
        /// when it can tell (since protocol 5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fraction: Option<f64>,
    },
    /// The loader has no more batches (and is closed).
    End {
        /// What the loader noted about the read, JSON text (since protocol 4;
        /// older workers send none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
    },
    /// The formatter is ready for batches.
    FormatterStarted,
    /// Formatted bytes in the payload.
    Bytes,
    /// The plugin returned an error (the open loader or formatter is closed).
    Failed {
        /// Its kind.
        kind: ErrorKind,
        /// Its message.
        message: String,
    },
    /// The open loader or formatter was dropped.
    Closed,
}

impl Reply {
    /// A plugin error as a reply.
    pub fn failed(error: PluginError) -> Reply {
        Reply::Failed {
            kind: error.kind,
            message: error.message,
        }
    }
}

/// A frame that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The transport failed (or the peer is gone: `UnexpectedEof`).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The bytes are not a frame of this protocol.
    #[error("{0}")]
    Malformed(String),
}

/// Writes one frame.
pub fn write_frame<W: Write>(
    out: &mut W,
    header: &impl Serialize,
    payload: &[u8],
) -> io::Result<()> {
    let header = serde_json::to_vec(header).map_err(io::Error::other)?;
    let header_len = u32::try_from(header.len())
        .ok()
        .filter(|n| *n <= MAX_HEADER_BYTES)
        .ok_or_else(|| io::Error::other("frame header too large"))?;
    let mut head = Vec::with_capacity(12 + header.len());
    head.extend_from_slice(&header_len.to_le_bytes());
    head.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    head.extend_from_slice(&header);
    out.write_all(&head)?;
    if !payload.is_empty() {
        out.write_all(payload)?;
    }
    out.flush()
}

/// Reads one frame of at most [`DEFAULT_MAX_PAYLOAD_BYTES`] of payload;
/// `Ok(None)` when the peer closed before its first byte.
pub fn read_frame<R: Read, M: DeserializeOwned>(
    input: &mut R,
) -> Result<Option<(M, Vec<u8>)>, FrameError> {
    read_frame_within(input, DEFAULT_MAX_PAYLOAD_BYTES)
}

/// Reads one frame whose payload is at most `max_payload` bytes; a frame
/// claiming more is [`FrameError::Malformed`] before anything is allocated
/// for it. `Ok(None)` when the peer closed before its first byte.
pub fn read_frame_within<R: Read, M: DeserializeOwned>(
    input: &mut R,
    max_payload: u64,
) -> Result<Option<(M, Vec<u8>)>, FrameError> {
    let mut lengths = [0u8; 12];
    let mut filled = 0;
    while filled < lengths.len() {
        match input.read(&mut lengths[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    let header_len = u32::from_le_bytes([lengths[0], lengths[1], lengths[2], lengths[3]]);
    let mut payload_len = [0u8; 8];
    payload_len.copy_from_slice(&lengths[4..]);
    let payload_len = u64::from_le_bytes(payload_len);
    if header_len > MAX_HEADER_BYTES {
        return Err(FrameError::Malformed(format!(
            "a frame claims a {header_len}-byte header, above the {MAX_HEADER_BYTES} bytes allowed"
        )));
    }
    if payload_len > max_payload {
        return Err(FrameError::Malformed(format!(
            "a frame claims a {payload_len}-byte payload, above the {max_payload} bytes allowed (max_frame in plugins.toml)"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    input.read_exact(&mut header)?;
    let mut payload = vec![0u8; payload_len as usize];
    input.read_exact(&mut payload)?;
    let message = serde_json::from_slice(&header).map_err(|err| {
        FrameError::Malformed(format!(
            "unreadable frame header ({err}): {:.200}",
            String::from_utf8_lossy(&header)
        ))
    })?;
    Ok(Some((message, payload)))
}

/// A schema as Arrow IPC stream bytes (a stream with no batches).
pub fn encode_schema(schema: &Schema) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut out, schema)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Reads the schema of Arrow IPC stream bytes.
pub fn decode_schema(bytes: &[u8]) -> Result<SchemaRef, ArrowError> {
    let reader = arrow_ipc::reader::StreamReader::try_new(bytes, None)?;
    Ok(reader.schema())
}

/// One batch as Arrow IPC stream bytes (its schema, then the batch).
pub fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Reads the one batch of Arrow IPC stream bytes.
pub fn decode_batch(bytes: &[u8]) -> Result<RecordBatch, ArrowError> {
    let mut reader = arrow_ipc::reader::StreamReader::try_new(bytes, None)?;
    match reader.next() {
        Some(batch) => batch,
        None => Err(ArrowError::IpcError(
            "a batch frame holds no record batch".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use export_plugin_api::arrow_array::{ArrayRef, Int64Array, StringArray};
    use export_plugin_api::arrow_schema::{DataType, Field};
    use std::collections::HashMap;
    use std::sync::Arc;

    #[test]
    fn frames_round_trip_and_eof_is_clean() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &Request::NextBatch, b"").unwrap();
        let batch = Reply::Batch {
            rows: 3,
            fraction: Some(0.5),
        };
        write_frame(&mut wire, &batch, b"payload").unwrap();
        let mut input = &wire[..];
        let (first, payload): (Request, Vec<u8>) = read_frame(&mut input).unwrap().unwrap();
        assert_eq!(first, Request::NextBatch);
        assert!(payload.is_empty());
        let (second, payload): (Reply, Vec<u8>) = read_frame(&mut input).unwrap().unwrap();
        assert_eq!(second, batch);
        assert_eq!(payload, b"payload");
        assert!(read_frame::<_, Reply>(&mut input).unwrap().is_none());
    }

    #[test]
    fn a_cut_or_garbled_frame_is_an_error() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &Reply::End { notes: None }, b"abc").unwrap();
        let cut = &wire[..wire.len() - 1];
        assert!(matches!(
            read_frame::<_, Reply>(&mut &cut[..]),
            Err(FrameError::Io(err)) if err.kind() == io::ErrorKind::UnexpectedEof
        ));
        let garbage = b"hello from a plugin that prints to the protocol\n".to_vec();
        assert!(read_frame::<_, Reply>(&mut &garbage[..]).is_err());
    }

    #[test]
    fn an_oversized_frame_is_refused_before_its_payload_is_read() {
        // A header claiming 4 GiB, and no payload at all: the bound, not a
        // failed read of the missing bytes, must stop it.
        let mut wire = Vec::new();
        let header = br#"{"type":"end"}"#;
        wire.extend_from_slice(&(header.len() as u32).to_le_bytes());
        wire.extend_from_slice(&(4u64 << 30).to_le_bytes());
        wire.extend_from_slice(header);
        let err = read_frame::<_, Reply>(&mut &wire[..]).unwrap_err();
        assert!(
            matches!(&err, FrameError::Malformed(m) if m.contains("4294967296-byte payload") && m.contains("max_frame")),
            "{err}"
        );
        let mut small = Vec::new();
        write_frame(&mut small, &Reply::End { notes: None }, &[0u8; 2048]).unwrap();
        assert!(matches!(
            read_frame_within::<_, Reply>(&mut &small[..], 1024),
            Err(FrameError::Malformed(_))
        ));
        assert!(read_frame_within::<_, Reply>(&mut &small[..], 2048)
            .unwrap()
            .is_some());
    }

    #[test]
    fn batches_keep_values_and_metadata() {
        let metadata = HashMap::from([("origin".to_owned(), "test".to_owned())]);
        let schema = Arc::new(Schema::new_with_metadata(
            vec![
                Field::new("id", DataType::Int64, false),
                Field::new("text", DataType::Utf8, true),
            ],
            metadata,
        ));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![Some("a\0b"), None, Some("你好")])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let sliced = batch.slice(1, 2);
        let back = decode_batch(&encode_batch(&sliced).unwrap()).unwrap();
        assert_eq!(back, sliced);
        assert_eq!(
            decode_schema(&encode_schema(&schema).unwrap()).unwrap(),
            schema
        );
    }
}
