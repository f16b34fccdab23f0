use std::future::Future;
use std::time::Duration;

/// Exponential backoff with jitter: how many attempts an operation gets and how long to wait between them.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the second attempt.
    pub base: Duration,
    /// Longest delay between two attempts.
    pub max: Duration,
}

impl Backoff {
    /// The wait before attempt `attempt + 1` (attempt counts from 1): doubling from `base`, capped at `max`,
    /// with "equal jitter" (half fixed, half random) so that many clients retrying do not move in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let full = self.base.saturating_mul(factor).min(self.max);
        let half = full / 2;
        let jitter_ms = fastrand::u64(0..=u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
        half + Duration::from_millis(jitter_ms)
    }

    /// Runs `op` until it succeeds, fails permanently (`is_transient` says no), or runs out of attempts.
    /// Returns the last error and the number of attempts made.
    pub async fn run<T, E, F, Fut>(&self, what: &str, op: F, is_transient: impl Fn(&E) -> bool) -> Result<T, (E, u32)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        self.run_observed(what, op, is_transient, |_| {}).await
    }

    /// Like [`Backoff::run`], calling `on_retry(attempt)` before each wait, so retries can be counted as
    /// they happen (an outage shows in the metrics while it lasts, and a success after retries counts too).
    pub async fn run_observed<T, E, F, Fut>(
        &self,
        what: &str,
        mut op: F,
        is_transient: impl Fn(&E) -> bool,
        mut on_retry: impl FnMut(u32),
    ) -> Result<T, (E, u32)>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(error) if attempt < self.attempts && is_transient(&error) => {
                    let wait = self.delay(attempt);
                    tracing::warn!(%error, attempt, wait_ms = wait.as_millis() as u64, "{what} failed; retrying");
                    on_retry(attempt);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(error) => return Err((error, attempt)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stay_capped() {
        let backoff = Backoff { attempts: 10, base: Duration::from_millis(100), max: Duration::from_secs(1) };
        for attempt in 1..=10 {
            let full = (Duration::from_millis(100) * 2u32.pow(attempt - 1)).min(Duration::from_secs(1));
            let delay = backoff.delay(attempt);
            assert!(
                delay >= full / 2 && delay <= full,
                "attempt {attempt}: {delay:?} not in [{:?}, {full:?}]",
                full / 2
            );
        }
    }

    /// Runs `backoff` over an operation whose n-th call (from 1) answers `outcome(n)`; returns the result and
    /// the number of calls.
    async fn count_calls(
        backoff: &Backoff,
        outcome: impl Fn(u32) -> Result<u32, String>,
        transient: bool,
    ) -> (Result<u32, (String, u32)>, u32) {
        let mut calls = 0;
        let result = backoff
            .run(
                "op",
                || {
                    calls += 1;
                    let answer = outcome(calls);
                    async move { answer }
                },
                |_| transient,
            )
            .await;
        (result, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_only() {
        let backoff = Backoff { attempts: 4, base: Duration::from_millis(10), max: Duration::from_millis(50) };
        let (result, calls) = count_calls(&backoff, |_| Err("flaky".to_owned()), true).await;
        assert_eq!((result.err().map(|(_, attempts)| attempts), calls), (Some(4), 4));

        let (result, calls) = count_calls(&backoff, |_| Err("fatal".to_owned()), false).await;
        assert_eq!((result.err().map(|(_, attempts)| attempts), calls), (Some(1), 1));

        let (result, calls) =
            count_calls(&backoff, |n| if n < 3 { Err("flaky".to_owned()) } else { Ok(n) }, true).await;
        assert_eq!((result.ok(), calls), (Some(3), 3));
    }
}
