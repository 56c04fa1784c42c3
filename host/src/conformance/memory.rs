//! The host process's resident memory, for the flat-memory check.

/// Resident set size of this process in bytes (`memory-stats`, which reads
/// `/proc/self/statm` on Linux); `None` where it cannot be measured.
pub fn resident_bytes() -> Option<u64> {
    let stats = memory_stats::memory_stats()?;
    u64::try_from(stats.physical_mem).ok()
}

/// Bytes as MiB with one decimal, for reports.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure is the kernel's `VmRSS`, the one `/proc/self/status`
    /// shows (both count the same pages), within what moves between reads.
    #[test]
    fn is_the_kernels_resident_set_size() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kib: u64 = line["VmRSS:".len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        let ours = resident_bytes().expect("Linux reports resident memory");
        let diff = ours.abs_diff(kib * 1024);
        assert!(diff < 8 * 1024 * 1024, "{ours} vs VmRSS {kib} kB");
    }

    #[test]
    fn grows_when_memory_is_touched() {
        let before = resident_bytes().expect("Linux reports resident memory");
        let block = std::hint::black_box(vec![1u8; 32 * 1024 * 1024]);
        let after = resident_bytes().unwrap();
        assert!(after >= before + 16 * 1024 * 1024, "{before} -> {after}");
        assert_eq!(std::hint::black_box(&block)[12345], 1);
    }
}
