//! When a failed delivery is tried again: the base wait doubles with each
//! failed attempt up to a cap, less up to a quarter at random so that many
//! deliveries failing together (a receiver restarting) do not all come
//! back at the same instant.

use std::time::Duration;

/// The wait after `failed` failed attempts (1 after the first).
pub fn delay(failed: u32, base: Duration, cap: Duration) -> Duration {
    let doublings = failed.saturating_sub(1).min(32);
    let full = base.saturating_mul(1u32 << doublings.min(31)).min(cap);
    full.mul_f64(1.0 - 0.25 * rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_below_a_quarter() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(3600);
        for (failed, full) in [(1, 1), (2, 2), (3, 4), (10, 512), (13, 3600), (200, 3600)] {
            let wait = delay(failed, base, cap);
            let full = Duration::from_secs(full);
            assert!(
                wait <= full && wait >= full.mul_f64(0.75),
                "{failed}: {wait:?}"
            );
        }
    }
}
