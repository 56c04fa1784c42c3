//! Sandbox-escape attempts: what an isolated worker must not be able to
//! reach (files, sockets, its parent). Each mode answers what it managed,
//! or fails with the operating system's error, so a test can tell a wall
//! from a broken attempt.
//!
//! Modes (`arg` in brackets):
//! - `read_file` [path]: the file's text (its first 64 KiB);
//! - `read_parent_environ`: `/proc/<parent>/environ`, one variable a line;
//! - `environ`: its own environment, `NAME=value` a line;
//! - `connect` [host:port]: a TCP connection (3 s timeout);
//! - `connect_unix` [path]: a connection to a unix socket file;
//! - `signal_parent`: `kill(getppid(), SIGTERM)`;
//! - `forge_frame` [bytes, default 4 GiB]: finds the worker's socket among
//!   its descriptors and writes a reply frame whose header claims a payload
//!   of that size, then streams up to 512 MiB of it (so a host that trusts
//!   the length and buffers it grows by that much).

use export_plugin_api::{PluginError, Result};
use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Runs escape mode `mode` with its argument (a path, an address, a pid...),
/// answering the text it found or did; `None` when `mode` is not an escape
/// mode, so the data-plane modes take it. The loader serves the text as one
/// row of column `s`; the formatter writes it as its output.
pub fn run(mode: &str, arg: Option<&str>) -> Option<Result<String>> {
    let result = match mode {
        "read_file" => arg_of(mode, arg).and_then(read_file),
        "read_parent_environ" => read_parent_environ(),
        "environ" => Ok(std::env::vars_os()
            .map(|(name, value)| {
                format!("{}={}\n", name.to_string_lossy(), value.to_string_lossy())
            })
            .collect()),
        "connect" => arg_of(mode, arg).and_then(connect),
        "connect_unix" => arg_of(mode, arg).and_then(|path| {
            UnixStream::connect(path)
                .map(|_| format!("connected to {path}"))
                .map_err(|err| denied(format!("connect_unix {path}"), err))
        }),
        "signal_parent" => signal_parent(),
        "forge_frame" => forge_frame(arg),
        _ => return None,
    };
    Some(result)
}

fn arg_of<'a>(mode: &str, arg: Option<&'a str>) -> Result<&'a str> {
    arg.ok_or_else(|| PluginError::invalid_input(format!("escape mode {mode} needs an \"arg\"")))
}

/// The OS error of an attempt, with what was attempted.
fn denied(what: String, err: std::io::Error) -> PluginError {
    PluginError::permission_denied(format!("{what}: {err}"))
}

fn read_file(path: &str) -> Result<String> {
    let file = std::fs::File::open(path).map_err(|err| denied(format!("read_file {path}"), err))?;
    let mut bytes = Vec::new();
    file.take(64 << 10)
        .read_to_end(&mut bytes)
        .map_err(|err| denied(format!("read_file {path}"), err))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn read_parent_environ() -> Result<String> {
    let parent = std::os::unix::process::parent_id();
    let path = format!("/proc/{parent}/environ");
    let bytes = std::fs::read(&path).map_err(|err| denied(format!("read {path}"), err))?;
    Ok(String::from_utf8_lossy(&bytes).replace('\0', "\n"))
}

fn connect(address: &str) -> Result<String> {
    let target = address
        .to_socket_addrs()
        .map_err(|err| denied(format!("resolve {address}"), err))?
        .next()
        .ok_or_else(|| PluginError::not_found(format!("{address} resolves to nothing")))?;
    TcpStream::connect_timeout(&target, Duration::from_secs(3))
        .map_err(|err| denied(format!("connect {address}"), err))?;
    Ok(format!("connected to {address}"))
}

extern "C" {
    // libc's kill(2); the plugin links the C library through std anyway.
    fn kill(pid: i32, signal: i32) -> i32;
}

const SIGTERM: i32 = 15;

fn signal_parent() -> Result<String> {
    let parent = std::os::unix::process::parent_id();
    let pid = i32::try_from(parent)
        .map_err(|_| PluginError::internal(format!("parent pid {parent} out of range")))?;
    // SAFETY: kill takes two integers and touches no memory.
    if unsafe { kill(pid, SIGTERM) } != 0 {
        return Err(denied(
            format!("kill({parent}, SIGTERM)"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(format!("sent SIGTERM to {parent}"))
}

/// The worker's connected unix stream socket: the one descriptor that is a
/// unix socket with a peer.
fn worker_socket() -> Option<ManuallyDrop<UnixStream>> {
    (3..1024).find_map(|fd| {
        // SAFETY: the stream is never dropped (ManuallyDrop), so the
        // descriptor is only borrowed; on a non-socket the calls just fail.
        let stream = ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(fd) });
        (stream.local_addr().is_ok() && stream.peer_addr().is_ok()).then_some(stream)
    })
}

fn forge_frame(arg: Option<&str>) -> Result<String> {
    let claimed: u64 = match arg {
        Some(text) => text.parse().map_err(|_| {
            PluginError::invalid_input(format!("forge_frame: {text:?} is not a byte count"))
        })?,
        None => 4 << 30,
    };
    let socket = worker_socket().ok_or_else(|| {
        PluginError::not_found("forge_frame: no connected unix socket among the descriptors")
    })?;
    let header = br#"{"type":"batch","rows":1}"#;
    let mut frame = Vec::with_capacity(12 + header.len());
    frame.extend_from_slice(&(header.len() as u32).to_le_bytes());
    frame.extend_from_slice(&claimed.to_le_bytes());
    frame.extend_from_slice(header);
    let mut out: &UnixStream = &socket;
    out.write_all(&frame)
        .map_err(|err| denied("forge_frame: write the header".to_owned(), err))?;
    let chunk = vec![0u8; 1 << 20];
    let mut sent = 0u64;
    let stream = claimed.min(512 << 20);
    while sent < stream {
        let n = chunk.len().min((stream - sent) as usize);
        out.write_all(&chunk[..n]).map_err(|err| {
            denied(
                format!("forge_frame: the host stopped reading after {sent} payload bytes"),
                err,
            )
        })?;
        sent += n as u64;
    }
    Ok(format!(
        "forged a frame claiming {claimed} bytes and sent {sent}"
    ))
}
