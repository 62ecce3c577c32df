//! Delay before a step's next attempt.

use std::time::Duration;

/// The delay before attempt `failed_attempt + 1`, from the step's retry policy:
/// `none` → 0; `linear` → base × n; `exponential` → base × 2^(n-1);
/// `fibonacci` → base × fib(n); capped at `max_ms`, where n is the number of the
/// attempt that failed. `jitter` in [0, 1) spreads the delay by up to ±10%.
pub fn delay(kind: &str, base_ms: u64, max_ms: u64, failed_attempt: u32, jitter: f64) -> Duration {
    let n = failed_attempt.max(1) as u64;
    let raw = match kind {
        "none" => 0,
        "linear" => base_ms.saturating_mul(n),
        "fibonacci" => base_ms.saturating_mul(fibonacci(n)),
        _ => base_ms.saturating_mul(1u64.checked_shl((n - 1).min(62) as u32).unwrap_or(u64::MAX)),
    };
    let capped = raw.min(max_ms) as f64;
    let spread = capped * 0.1 * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
    Duration::from_millis((capped + spread).max(0.0).min(max_ms as f64).round() as u64)
}

fn fibonacci(n: u64) -> u64 {
    let (mut a, mut b) = (1u64, 1u64);
    for _ in 1..n {
        (a, b) = (b, a.saturating_add(b));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(kind: &str, n: u32) -> u128 {
        delay(kind, 100, 10_000, n, 0.5).as_millis()
    }

    #[test]
    fn policies() {
        assert_eq!([ms("none", 1), ms("none", 5)], [0, 0]);
        assert_eq!(
            [ms("linear", 1), ms("linear", 2), ms("linear", 3)],
            [100, 200, 300]
        );
        assert_eq!(
            [
                ms("exponential", 1),
                ms("exponential", 2),
                ms("exponential", 4)
            ],
            [100, 200, 800]
        );
        assert_eq!(
            (1..=6).map(|n| ms("fibonacci", n)).collect::<Vec<_>>(),
            [100, 100, 200, 300, 500, 800]
        );
        assert_eq!(ms("exponential", 40), 10_000);
        assert_eq!(ms("exponential", 200), 10_000);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_the_cap() {
        assert_eq!(delay("linear", 1000, 60_000, 1, 0.0).as_millis(), 900);
        assert_eq!(
            delay("linear", 1000, 60_000, 1, 0.999_999).as_millis(),
            1100
        );
        assert_eq!(delay("linear", 1000, 1000, 5, 0.999_999).as_millis(), 1000);
    }
}
