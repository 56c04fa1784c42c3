//! The host process's resident memory, for the flat-memory check.

/// Resident set size of this process in bytes, from `/proc/self/status`
/// (`VmRSS`); `None` where that file does not exist (not Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Bytes as MiB with one decimal, for reports.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t   2048 kB\nThreads: 1\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn grows_when_memory_is_touched() {
        let before = resident_bytes().expect("Linux has /proc/self/status");
        let block = std::hint::black_box(vec![1u8; 32 * 1024 * 1024]);
        let after = resident_bytes().unwrap();
        assert!(after >= before + 16 * 1024 * 1024, "{before} -> {after}");
        assert_eq!(std::hint::black_box(&block)[12345], 1);
    }
}
