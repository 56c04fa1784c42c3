//! `export-host export`: one export now, without the daemon.

use super::exports::watch::Display;
use super::{load_registry, load_registry_for, open_service, runtime, BadSetting, InputError};
use anyhow::Context;
use clap::Args;
use export_host::config::HostSettings;
use export_host::pipeline::{self, ExportRequest, ExportRun, ExportRunError};
use export_host::records::{ExportId, ExportRecord, Scope, Status};
use export_host::service::ExportService;
use export_host::storage::EarlyWriteback;
use export_plugin_api::Caller;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::NamedTempFile;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Loader: `name`, or `plugin/name` when several plugins offer it.
    #[arg(long)]
    loader: String,
    /// Format: `name`, or `plugin/name`.
    #[arg(long)]
    format: String,
    /// The loader's selector as a JSON object.
    #[arg(long, conflicts_with = "set")]
    selector: Option<String>,
    /// One selector field, `key=value` (repeatable); the value is read as JSON
    /// when it parses (`limit=10`, `has_header=false`), else as text.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Formatter options as a JSON object; `compression` ("gzip" or "zstd") is the host's.
    #[arg(long)]
    options: Option<String>,
    /// Where to write: a file (given its name only once complete, so a
    /// failed or killed export leaves nothing) or `-` for standard output
    /// [default: -].
    #[arg(short, long, conflicts_with = "record")]
    output: Option<PathBuf>,
    /// Run through the export service: record the export, store its file in
    /// STORAGE, and print its id, status, size, rows and sha256.
    #[arg(long)]
    record: bool,
    /// Export as this user: the loader sees only what the user may see
    /// (caller-bound query parameters, `{user}` roots), and a recorded
    /// export belongs to them. Without it the operator acts as an admin,
    /// and a recorded export belongs to the current login ($USER or
    /// $LOGNAME, else "local").
    #[arg(long)]
    user: Option<String>,
}

pub fn export_now(settings: &HostSettings, args: ExportArgs) -> anyhow::Result<()> {
    let request = request(&args)?;
    if args.record {
        let caller = match &args.user {
            Some(user) => Caller::user(user),
            None => Caller {
                user: current_login(),
                ..Caller::operator()
            },
        };
        return run_recorded(settings, &caller, &request);
    }
    let caller = args
        .user
        .as_deref()
        .map_or_else(Caller::operator, Caller::user);
    one_shot(
        settings,
        &request,
        caller,
        args.output.as_deref().unwrap_or(Path::new("-")),
    )
}

fn request(args: &ExportArgs) -> anyhow::Result<ExportRequest> {
    Ok(ExportRequest {
        loader: args.loader.clone(),
        format: args.format.clone(),
        selector: selector(args.selector.as_deref(), &args.set)?,
        options: match args.options.as_deref() {
            Some(text) => json_object("--options", text)?,
            None => Value::Object(Map::new()),
        },
        callback_url: None,
    })
}

/// The login name of whoever runs the command: `$USER`, else `$LOGNAME`,
/// else `local`.
fn current_login() -> String {
    ["USER", "LOGNAME"]
        .into_iter()
        .filter_map(|var| std::env::var(var).ok())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "local".to_owned())
}

/// An [`ExportRunError`] for the user: a failed last write names where the
/// output was going; the rest keep their own words (and a [`RunError`] stays
/// in the chain, for the exit code).
fn with_output_context(err: ExportRunError, output: &dyn std::fmt::Display) -> anyhow::Error {
    match err {
        ExportRunError::Finish(err) => anyhow::Error::new(err).context(format!("writing {output}")),
        ExportRunError::Start(err) => err.into(),
        ExportRunError::Run(err) => err.into(),
    }
}

/// The export ended `failed` (or was cancelled) while run with `--record`.
#[derive(Debug, thiserror::Error)]
#[error("export {id} {status}: {reason}")]
struct RecordedExportFailed {
    id: ExportId,
    status: Status,
    reason: String,
}

/// `export --record`: create the export through the service, run it now in
/// this process, print the record's summary.
fn run_recorded(
    settings: &HostSettings,
    caller: &Caller,
    request: &ExportRequest,
) -> anyhow::Result<()> {
    let registry = load_registry(settings)?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let service = open_service(settings, registry).await?;
        let outcome = create_and_run(&service, caller, request).await;
        service.records().close().await;
        let (record, reused) = outcome?;
        print_summary(&record, reused);
        match record.status {
            Status::Completed => Ok(()),
            status => Err(RecordedExportFailed {
                id: record.id.clone(),
                status,
                reason: record
                    .error
                    .clone()
                    .unwrap_or_else(|| "no reason recorded".to_owned()),
            }
            .into()),
        }
    })
}

async fn create_and_run(
    service: &ExportService,
    caller: &Caller,
    request: &ExportRequest,
) -> anyhow::Result<(ExportRecord, bool)> {
    let created = service.create_for(caller, request).await?;
    if created.status != Status::Pending {
        // An identical export within CACHE_TTL_MINUTES.
        return Ok((created, true));
    }
    let worker = format!("cli-{}", std::process::id());
    // A bar on a terminal only: elsewhere the output stays the summary alone.
    let mut display = Display::new(false);
    let ran = if display.is_shown() {
        // The bar reads the record in a task of its own: the run must never
        // wait on it (nor it on a database connection the run holds).
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let reader = service.clone();
        let id = created.id.clone();
        let watcher = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(WATCH_EVERY) => {
                        // The bar is a nicety: a failed read only skips a frame.
                        if let Ok(record) = reader.get(&Scope::Admin, &id).await {
                            display.update(&record);
                        }
                    }
                }
            }
            display
        });
        let ran = service.run_export(&created.id, &worker).await;
        let _ = stop.send(true);
        display = match watcher.await {
            Ok(display) => display,
            Err(err) => {
                tracing::warn!(error = %err, "the progress bar stopped");
                Display::new(false)
            }
        };
        ran
    } else {
        service.run_export(&created.id, &worker).await
    };
    let ran = ran.inspect_err(|_| display.finish())?;
    if let Some(done) = ran {
        display.finish();
        return Ok((done, false));
    }
    // A daemon on the same database claimed it first: wait for its outcome.
    loop {
        let record = service.get(&Scope::Admin, &created.id).await?;
        display.update(&record);
        if !record.status.is_active() {
            display.finish();
            return Ok((record, false));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How often the bar of `export --record` re-reads the record while this
/// process runs the export.
const WATCH_EVERY: Duration = Duration::from_millis(500);

fn print_summary(record: &ExportRecord, reused: bool) {
    let optional = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    println!("id: {}", record.id);
    println!("status: {}", record.status);
    if reused {
        println!("reused: true (an identical export within CACHE_TTL_MINUTES)");
    }
    println!("user: {}", record.user_id);
    println!(
        "rows: {}",
        optional(record.row_count.map(|n| n.to_string()))
    );
    println!(
        "size: {}",
        optional(record.size_bytes.map(|n| n.to_string()))
    );
    println!("sha256: {}", optional(record.sha256.clone()));
    println!("mime_type: {}", optional(record.mime_type.clone()));
    println!(
        "expires_at: {}",
        optional(record.expires_at.map(|t| t.to_rfc3339()))
    );
    if let Some(error) = &record.error {
        println!("error: {error}");
    }
}

/// One export now, to a file or standard output, with no record.
fn one_shot(
    settings: &HostSettings,
    request: &ExportRequest,
    caller: Caller,
    output: &Path,
) -> anyhow::Result<()> {
    // Before any plugin is loaded: what a plugin prints must never land in
    // the export, so the export keeps its own copy of standard output and
    // descriptor 1 becomes standard error.
    let export_stdout = private_stdout()?;
    let registry = load_registry_for(settings, &[&request.loader, &request.format])?;
    // Plugins that failed to load were already reported, one log line each.
    let prepared = pipeline::prepare(&registry, request, Some(caller))?;
    let limits = export_host::service::ServiceSettings::from_host(settings)
        .map_err(BadSetting)?
        .run_limits();
    let progress = progress_bar();
    let started = std::time::Instant::now();
    let mut report = |now: pipeline::RunProgress| {
        let (rows, bytes) = (now.rows, now.bytes);
        let seconds = started.elapsed().as_secs_f64().max(1e-3);
        progress.set_message(format!(
            "{rows} rows, {} ({:.0} rows/s, {}/s)",
            HumanBytes(bytes),
            rows as f64 / seconds,
            HumanBytes((bytes as f64 / seconds) as u64)
        ));
    };

    let run = ExportRun::new(&prepared, limits);
    let summary = if output == Path::new("-") {
        let (_, summary) = run
            .into_writer(export_stdout, &mut report)
            .map_err(|err| with_output_context(err, &"to standard output"))?;
        summary
    } else {
        drop(export_stdout);
        let target = output;
        let folder = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let file = OutputFile::create(folder)?;
        let (writer, summary) = run
            .into_writer(EarlyWriteback::new(file), &mut report)
            .map_err(|err| with_output_context(err, &target.display()))?;
        writer.into_inner().commit(folder, target)?;
        summary
    };
    progress.finish_and_clear();
    if let Some(notes) = &summary.loader_notes {
        // Such as values a typed read turned into nulls: worth seeing even
        // when nobody watches the terminal.
        eprintln!("the loader notes: {}", Value::Object(notes.clone()));
    }
    if std::io::stderr().is_terminal() {
        let seconds = summary.elapsed.as_secs_f64();
        eprintln!(
            "exported {} rows, {} in {:.2}s ({:.0} rows/s)",
            summary.rows,
            HumanBytes(summary.output.stored_bytes),
            seconds,
            summary.rows as f64 / seconds.max(1e-9)
        );
    }
    Ok(())
}

/// A private copy of standard output for the export; descriptor 1 then
/// points at standard error, where whatever a plugin prints goes.
fn private_stdout() -> anyhow::Result<File> {
    std::io::stdout()
        .flush()
        .context("flushing standard output")?;
    // SAFETY: plain descriptor calls; the copy is owned by the File below.
    let copy = unsafe { libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(std::io::Error::last_os_error())
            .context("standard output is not open; run with -o FILE or give it a standard output");
    }
    // SAFETY: `copy` is a new descriptor nobody else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(copy) });
    // SAFETY: descriptor 2 stays open; 1 is replaced atomically.
    if unsafe { libc::dup2(2, 1) } < 0 {
        return Err(std::io::Error::last_os_error())
            .context("cannot point standard output at standard error");
    }
    Ok(file)
}

/// The file being written: unnamed until complete where the filesystem
/// allows (`O_TMPFILE`), so a crash or a kill leaves nothing behind; else a
/// hidden temporary file renamed into place.
enum OutputFile {
    Unnamed(File),
    Named(NamedTempFile),
}

impl OutputFile {
    fn create(folder: &Path) -> anyhow::Result<OutputFile> {
        match OpenOptions::new()
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_TMPFILE)
            .open(folder)
        {
            Ok(file) => return Ok(OutputFile::Unnamed(file)),
            // Filesystems or kernels without O_TMPFILE answer one of these.
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOENT)
                ) && folder.is_dir() => {}
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot create a file in {}", folder.display()))
            }
        }
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(std::fs::Permissions::from_mode(0o644))
            .tempfile_in(folder)
            .with_context(|| format!("cannot create a file in {}", folder.display()))?;
        Ok(OutputFile::Named(temp))
    }

    /// Gives the complete file its name, replacing any file there.
    fn commit(self, folder: &Path, target: &Path) -> anyhow::Result<()> {
        let placed = || format!("cannot move the export into place at {}", target.display());
        match self {
            OutputFile::Named(temp) => {
                temp.as_file().sync_all()?;
                temp.persist(target).with_context(placed)?;
            }
            OutputFile::Unnamed(file) => {
                file.sync_all()?;
                let source = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
                match link_named(&source, target) {
                    Ok(()) => {}
                    // linkat never replaces: link under a hidden name, then
                    // rename over the old file (atomic for readers).
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                        let aside = aside_name(folder);
                        link_named(&source, &aside).with_context(placed)?;
                        if let Err(err) = std::fs::rename(&aside, target) {
                            let _ = std::fs::remove_file(&aside);
                            return Err(err).with_context(placed);
                        }
                    }
                    Err(err) => return Err(err).with_context(placed),
                }
            }
        }
        Ok(())
    }
}

const TEMP_PREFIX: &str = ".export-host-";

/// A name no file has yet in `folder`, hidden.
fn aside_name(folder: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    folder.join(format!("{TEMP_PREFIX}{}-{nanos}", std::process::id()))
}

/// Links the unnamed file behind `source` (a /proc/self/fd path) at `target`.
fn link_named(source: &Path, target: &Path) -> std::io::Result<()> {
    let source = CString::new(source.as_os_str().as_bytes())?;
    let target = CString::new(target.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths that outlive the call.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            source.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if linked == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            OutputFile::Unnamed(file) => file.write(buf),
            OutputFile::Named(temp) => temp.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            OutputFile::Unnamed(file) => file.flush(),
            OutputFile::Named(temp) => temp.flush(),
        }
    }
}

impl AsFd for OutputFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            OutputFile::Unnamed(file) => file.as_fd(),
            OutputFile::Named(temp) => temp.as_file().as_fd(),
        }
    }
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn json_object(flag: &str, text: &str) -> anyhow::Result<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(InputError(format!("{flag} must be a JSON object, not {other}")).into()),
        Err(err) => Err(InputError(format!("{flag} is not valid JSON: {err}")).into()),
    }
}

/// The selector from `--selector JSON` or the `--set key=value` pairs.
fn selector(json: Option<&str>, pairs: &[String]) -> anyhow::Result<Value> {
    if let Some(text) = json {
        return json_object("--selector", text);
    }
    let mut object = Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(InputError(format!("--set {pair:?} must be key=value")).into());
        };
        if key.is_empty() {
            return Err(InputError(format!("--set {pair:?} has an empty key")).into());
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        object.insert(key.to_owned(), value);
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_pairs_read_json_values_and_keep_text() {
        let value = selector(
            None,
            &["path=a.csv".into(), "limit=10".into(), "id=007".into()],
        )
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!({"path": "a.csv", "limit": 10, "id": "007"})
        );
        assert!(selector(None, &["novalue".into()]).is_err());
        assert!(selector(Some("[1]"), &[]).is_err());
    }
}
