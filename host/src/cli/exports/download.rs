//! `export-host exports download ID [-o FILE]`: copies a completed export's
//! file out of storage. The bytes go to `FILE.part` first; a rerun after an
//! interruption asks storage only for the rest (a ranged read, as an HTTP
//! `Range` would), and the file takes its name once its size and SHA-256
//! match the record, so a file named FILE is always whole.

use super::InputError;
use anyhow::Context;
use export_host::records::{ExportId, Scope};
use export_host::service::{download_file_name, ExportService};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

pub async fn download(
    service: &ExportService,
    scope: &Scope,
    id: &ExportId,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    let record = service.get(scope, id).await?;
    let (Some(size), Some(sha256)) = (record.size_bytes, record.sha256.clone()) else {
        // The service names the status and why it cannot be downloaded.
        service.record_download(scope, id).await?;
        anyhow::bail!("export {id} has no file to download");
    };
    let size = u64::try_from(size).context("the record's size is negative")?;
    if output.as_deref() == Some(Path::new("-")) {
        let download = service.record_download(scope, id).await?;
        let mut stdout = std::io::stdout().lock();
        let mut stream = download.download.stream;
        while let Some(chunk) = stream.next().await {
            stdout
                .write_all(&chunk?)
                .context("writing to standard output")?;
        }
        stdout.flush().context("writing to standard output")?;
        return Ok(());
    }
    let target = match output {
        Some(path) => path,
        None => PathBuf::from(download_file_name(&record)),
    };
    let partial = part_path(&target);
    let mut have = match std::fs::metadata(&partial) {
        Ok(meta) => meta.len(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
        Err(err) => return Err(err).with_context(|| format!("reading {}", partial.display())),
    };
    if have > size {
        return Err(InputError(format!(
            "{} holds {have} bytes, more than export {id}'s {size}: it is not a part of this \
             export; remove it and run the command again",
            partial.display()
        ))
        .into());
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&partial)
        .with_context(|| format!("opening {}", partial.display()))?;
    if have < size {
        let bar = progress_bar(size, have);
        let download = service
            .record_download_range(scope, id, Some((have, size - have)))
            .await?;
        let mut stream = download.download.stream;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            file.write_all(&chunk)
                .with_context(|| format!("writing {}", partial.display()))?;
            have += chunk.len() as u64;
            bar.set_position(have);
        }
        bar.finish_and_clear();
    }
    file.sync_all()
        .with_context(|| format!("writing {}", partial.display()))?;
    drop(file);
    let actual = file_sha256(&partial)?;
    if !actual.eq_ignore_ascii_case(&sha256) {
        std::fs::remove_file(&partial).ok();
        anyhow::bail!(
            "the downloaded bytes of export {id} do not match its SHA-256 (expected {sha256}, \
             got {actual}); the partial file was removed: run the command again"
        );
    }
    std::fs::rename(&partial, &target)
        .with_context(|| format!("renaming {} to {}", partial.display(), target.display()))?;
    eprintln!("{} ({size} bytes, sha256 {sha256})", target.display());
    Ok(())
}

/// `report.csv` → `report.csv.part`, beside it.
fn part_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Bytes copied of `size`, on a terminal; nothing elsewhere.
fn progress_bar(size: u64, done: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(done);
    bar
}
