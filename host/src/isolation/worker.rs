//! The child side: `export-host __plugin-worker`, one plugin library in a
//! process of its own, serving the host over the socket it got as stdin.
//!
//! Before anything is loaded the worker takes its socket out of fd 0 (and
//! puts /dev/null there), asks the kernel to kill it when the host dies, and
//! caps its address space. Then it runs the same trust checks as the host
//! on the library the hello names, enters its sandbox ([`super::sandbox`]:
//! from here on no file, socket or process outside it is reachable), loads
//! the verified copy, and answers one request at a time until the host
//! closes the socket.

use super::handle::Formatted;
use super::protocol::{self, Refusal, Reply, Request, PROTOCOL_VERSION};
use super::sandbox::{self, Policy};
use crate::library::{open_verified, trust, FailureCause};
use anyhow::Context;
use export_plugin_api::host::{FormatterSession, LoaderStream, PluginLibrary};
use export_plugin_api::PluginError;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Arguments of the hidden `__plugin-worker` subcommand (set by the host).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// The plugin's name in plugins.toml (for logs).
    #[arg(long)]
    plugin: String,
    /// RLIMIT_AS in bytes.
    #[arg(long)]
    memory_limit: u64,
    /// The host's process id: the worker exits if it is already gone.
    #[arg(long)]
    parent: u32,
    /// The largest request payload accepted, in bytes (`max_frame`).
    #[arg(long, default_value_t = protocol::DEFAULT_MAX_PAYLOAD_BYTES)]
    max_frame: u64,
    /// The sandbox to enter before the library is loaded, as JSON
    /// ([`Policy`]); without it the worker runs unconfined.
    #[arg(long)]
    sandbox: Option<String>,
    /// Probe mode: load this (verified) library, print how it went, exit
    /// (see [`super::probe`]).
    #[arg(long)]
    probe: Option<std::path::PathBuf>,
}

/// Runs the worker until the host closes the socket.
pub fn run(args: WorkerArgs) -> anyhow::Result<()> {
    if let Some(library) = &args.probe {
        die_with_host(args.parent)?;
        limit_memory(args.memory_limit)?;
        return super::probe::run(library);
    }
    let mut socket = take_socket().context("the worker's socket (its stdin) is unusable")?;
    die_with_host(args.parent)?;
    limit_memory(args.memory_limit)?;
    let sandbox: Option<Policy> = match &args.sandbox {
        Some(json) => Some(serde_json::from_str(json).context("unreadable --sandbox")?),
        None => None,
    };
    let Some(library) = handshake(&mut socket, &args.plugin, sandbox.as_ref())? else {
        return Ok(());
    };
    tracing::debug!(plugin = %args.plugin, "plugin worker ready");
    serve(&mut socket, &library, args.max_frame)
}

/// Moves the socket out of fd 0 and leaves /dev/null there, so a plugin
/// reading stdin cannot steal protocol bytes.
fn take_socket() -> anyhow::Result<UnixStream> {
    let socket: OwnedFd = std::io::stdin().as_fd().try_clone_to_owned()?;
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(null.as_fd())?;
    Ok(UnixStream::from(socket))
}

fn die_with_host(parent: u32) -> anyhow::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .context("cannot ask to be killed with the host")?;
    // The host may have died between the fork and the prctl.
    if nix::unistd::getppid().as_raw() as u32 != parent {
        anyhow::bail!("the host process {parent} is gone");
    }
    Ok(())
}

fn limit_memory(bytes: u64) -> anyhow::Result<()> {
    use nix::sys::resource::{setrlimit, Resource};
    setrlimit(Resource::RLIMIT_AS, bytes, bytes)
        .with_context(|| format!("cannot cap the worker's memory at {bytes} bytes"))
}

/// Answers the hello: verify, load, send the manifest. `None` when refused.
fn handshake(
    socket: &mut UnixStream,
    plugin: &str,
    sandbox: Option<&Policy>,
) -> anyhow::Result<Option<PluginLibrary>> {
    let Some((request, _)) = protocol::read_frame::<_, Request>(socket)? else {
        return Ok(None);
    };
    let Request::Hello {
        protocol,
        library,
        sha256,
    } = request
    else {
        let reply = Reply::Refused {
            refusal: Refusal::Protocol,
            message: "the first message must be hello".to_owned(),
        };
        protocol::write_frame(socket, &reply, &[])?;
        return Ok(None);
    };
    if protocol != PROTOCOL_VERSION {
        let reply = Reply::Refused {
            refusal: Refusal::Protocol,
            message: format!(
                "the host speaks worker protocol {protocol}, this worker {PROTOCOL_VERSION}; run the same export-host binary"
            ),
        };
        protocol::write_frame(socket, &reply, &[])?;
        return Ok(None);
    }
    match open_sandboxed(plugin, &library, sha256.as_deref(), sandbox) {
        Ok((plugin, sha256)) => {
            let reply = Reply::Ready {
                protocol: PROTOCOL_VERSION,
                manifest: plugin.manifest().clone(),
                sha256,
            };
            protocol::write_frame(socket, &reply, &[])?;
            Ok(Some(plugin))
        }
        Err((cause, message)) => {
            let refusal = match cause {
                FailureCause::Trust => Refusal::Trust,
                _ => Refusal::Load,
            };
            protocol::write_frame(socket, &Reply::Refused { refusal, message }, &[])?;
            Ok(None)
        }
    }
}

/// Verifies and copies the library (host code only), enters the sandbox,
/// and only then loads the copy: no plugin code runs outside the sandbox.
fn open_sandboxed(
    plugin: &str,
    library: &std::path::Path,
    sha256: Option<&str>,
    sandbox: Option<&Policy>,
) -> Result<(PluginLibrary, String), (FailureCause, String)> {
    let Some(policy) = sandbox else {
        return open_verified(library, sha256, &|_| Ok(()));
    };
    let verified = trust::verify(library, sha256)
        .map_err(|err: trust::TrustError| (FailureCause::Trust, err.to_string()))?;
    let mut policy = policy.clone();
    policy.read.push(verified.copy.to_path_buf());
    let entered = sandbox::enter(&policy).map_err(|err| {
        (
            FailureCause::Load,
            format!("cannot enter the worker sandbox: {err}"),
        )
    })?;
    tracing::debug!(plugin, level = %entered.level, sandbox = %entered.summary, "worker sandbox entered");
    // SAFETY: the bytes passed the trust checks (regular ELF shared object
    // whose segments fit the file, not writable by others, checksum when
    // pinned) and are loaded from a private copy that nobody else can
    // change, in a disposable, sandboxed process.
    let loaded = unsafe { PluginLibrary::load(&verified.copy) }
        .map_err(|err| (FailureCause::Load, err.to_string()))?;
    Ok((loaded, verified.sha256))
}

/// What the worker has open between requests.
enum Session {
    Idle,
    Loader(LoaderStream),
    Formatter(FormatterSession),
}

fn serve(socket: &mut UnixStream, library: &PluginLibrary, max_frame: u64) -> anyhow::Result<()> {
    let mut session = Session::Idle;
    while let Some((request, payload)) =
        protocol::read_frame_within::<_, Request>(socket, max_frame)?
    {
        let (reply, bytes) = answer(library, &mut session, request, &payload);
        protocol::write_frame(socket, &reply, &bytes)?;
    }
    Ok(())
}

fn answer(
    library: &PluginLibrary,
    session: &mut Session,
    request: Request,
    payload: &[u8],
) -> (Reply, Formatted) {
    let none = || Formatted::Owned(Vec::new());
    let failed = |error: PluginError| (Reply::failed(error), Formatted::Owned(Vec::new()));
    match request {
        Request::Hello { .. } => failed(PluginError::internal("hello was already answered")),
        Request::ValidateLoader {
            name,
            config,
            selector,
            caller,
        } => {
            *session = Session::Idle;
            match library.validate_loader(&name, &config, &selector, caller.as_ref()) {
                Ok(()) => (Reply::Validated, none()),
                Err(error) => failed(error),
            }
        }
        Request::OpenLoader {
            name,
            config,
            selector,
            limits,
            caller,
        } => {
            *session = Session::Idle;
            match library.open_loader_for(&name, &config, &selector, &limits, caller.as_ref()) {
                Ok(stream) => match protocol::encode_schema(&stream.schema()) {
                    Ok(schema) => {
                        *session = Session::Loader(stream);
                        (Reply::LoaderOpened, Formatted::Owned(schema))
                    }
                    Err(err) => failed(PluginError::unsupported(format!(
                        "the loader's schema cannot be sent to the host: {err}"
                    ))),
                },
                Err(error) => failed(error),
            }
        }
        Request::NextBatch => {
            let Session::Loader(stream) = session else {
                return failed(PluginError::internal("next_batch without an open loader"));
            };
            let next = stream.next();
            match next {
                Some(Ok(batch)) => match protocol::encode_batch(&batch) {
                    Ok(bytes) => (
                        Reply::Batch {
                            rows: batch.num_rows() as u64,
                            fraction: stream.fraction(),
                        },
                        Formatted::Owned(bytes),
                    ),
                    Err(err) => {
                        *session = Session::Idle;
                        failed(PluginError::unsupported(format!(
                            "a batch cannot be sent to the host: {err}"
                        )))
                    }
                },
                Some(Err(error)) => {
                    *session = Session::Idle;
                    failed(error)
                }
                None => {
                    // The daemon decodes and checks the notes again itself.
                    let notes = stream
                        .notes()
                        .and_then(|notes| serde_json::to_string(notes).ok());
                    // Dropped before answering: a crash in the plugin's drop
                    // shows as this export's fault.
                    *session = Session::Idle;
                    (Reply::End { notes }, none())
                }
            }
        }
        Request::StartFormatter {
            name,
            config,
            options,
        } => {
            *session = Session::Idle;
            let schema = match protocol::decode_schema(payload) {
                Ok(schema) => schema,
                Err(err) => {
                    return failed(PluginError::internal(format!("unreadable schema: {err}")))
                }
            };
            match library.start_formatter(&name, &config, &options, &schema) {
                Ok(formatter) => {
                    *session = Session::Formatter(formatter);
                    (Reply::FormatterStarted, none())
                }
                Err(error) => failed(error),
            }
        }
        Request::Write => {
            let Session::Formatter(formatter) = session else {
                return failed(PluginError::internal("write without a started formatter"));
            };
            let written = protocol::decode_batch(payload)
                .map_err(|err| PluginError::internal(format!("unreadable batch: {err}")))
                .and_then(|batch| formatter.write(&batch).map(Formatted::Plugin));
            match written {
                Ok(bytes) => (Reply::Bytes, bytes),
                Err(error) => {
                    *session = Session::Idle;
                    failed(error)
                }
            }
        }
        Request::Finish => {
            let Session::Formatter(formatter) = session else {
                return failed(PluginError::internal("finish without a started formatter"));
            };
            match formatter.finish() {
                Ok(bytes) => (Reply::Bytes, Formatted::Plugin(bytes)),
                Err(error) => {
                    *session = Session::Idle;
                    failed(error)
                }
            }
        }
        Request::FinishMore => {
            let Session::Formatter(formatter) = session else {
                return failed(PluginError::internal(
                    "finish_more without a finished formatter",
                ));
            };
            match formatter.finish_more() {
                Ok(Some(bytes)) => (Reply::Bytes, Formatted::Plugin(bytes)),
                Ok(None) => {
                    *session = Session::Idle;
                    (Reply::Bytes, none())
                }
                Err(error) => {
                    *session = Session::Idle;
                    failed(error)
                }
            }
        }
        Request::Close => {
            *session = Session::Idle;
            (Reply::Closed, none())
        }
    }
}
