//! Retries: an opt-in [`RetryPolicy`] with exponential backoff, full jitter and
//! `Retry-After`, for idempotent requests unless told otherwise.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header};

use crate::error::{Error, ErrorKind};

/// Tries in all (the first one included) by default: 3.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;
/// The wait before the first retry: 100 ms, doubled each time.
pub const DEFAULT_RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between tries, `Retry-After` included: 30 s (judgement: longer
/// waits belong to the caller's own scheduling; the total timeout bounds it anyway).
pub const DEFAULT_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// When and how to retry a failed request. Retries happen only for idempotent
/// methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) unless
/// [`non_idempotent`](RetryPolicy::non_idempotent) is set, only when the body can be
/// sent again, and always within the request's total timeout.
///
/// ```
/// use std::time::Duration;
/// use aiox_client::RetryPolicy;
///
/// let policy = RetryPolicy::new(5)
///     .initial_backoff(Duration::from_millis(50))
///     .statuses(&[503]);
/// assert_eq!(policy.attempts(), 5);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetryPolicy {
    attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    jitter: bool,
    statuses: Vec<StatusCode>,
    on_connect_errors: bool,
    on_timeouts: bool,
    non_idempotent: bool,
    retry_after: bool,
}

impl Default for RetryPolicy {
    /// [`DEFAULT_RETRY_ATTEMPTS`] tries on connect errors, timeouts and the transient
    /// statuses curl's `--retry` uses: 408, 429, 500, 502, 503, 504.
    fn default() -> Self {
        Self::new(DEFAULT_RETRY_ATTEMPTS)
    }
}

impl RetryPolicy {
    /// A policy of `attempts` tries in all (`1`: no retry), with the default backoff,
    /// errors and statuses.
    pub fn new(attempts: u32) -> Self {
        Self {
            attempts: attempts.max(1),
            initial_backoff: DEFAULT_RETRY_INITIAL_BACKOFF,
            max_backoff: DEFAULT_RETRY_MAX_BACKOFF,
            jitter: true,
            statuses: [408, 429, 500, 502, 503, 504]
                .into_iter()
                .filter_map(|s| StatusCode::from_u16(s).ok())
                .collect(),
            on_connect_errors: true,
            on_timeouts: true,
            non_idempotent: false,
            retry_after: true,
        }
    }

    /// Tries in all, the first one included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait before the first retry ([`DEFAULT_RETRY_INITIAL_BACKOFF`]); it doubles
    /// on each retry up to [`max_backoff`](RetryPolicy::max_backoff).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The longest wait ([`DEFAULT_RETRY_MAX_BACKOFF`]), `Retry-After` included.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Full jitter: each wait is uniform in `0..=backoff` (on by default, so many
    /// clients do not retry in step).
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The response statuses that are retried.
    pub fn statuses(mut self, statuses: &[u16]) -> Self {
        self.statuses = statuses
            .iter()
            .filter_map(|s| StatusCode::from_u16(*s).ok())
            .collect();
        self
    }

    /// Whether DNS, connect, TLS handshake and proxy errors are retried (yes).
    pub fn on_connect_errors(mut self, retry: bool) -> Self {
        self.on_connect_errors = retry;
        self
    }

    /// Whether timeouts (other than the total one) are retried (yes).
    pub fn on_timeouts(mut self, retry: bool) -> Self {
        self.on_timeouts = retry;
        self
    }

    /// Retries POST and PATCH too (no by default: they may not be safe to repeat).
    pub fn non_idempotent(mut self, retry: bool) -> Self {
        self.non_idempotent = retry;
        self
    }

    /// Whether a `Retry-After` header sets the wait (yes, capped by `max_backoff`).
    pub fn honour_retry_after(mut self, honour: bool) -> Self {
        self.retry_after = honour;
        self
    }

    pub(crate) fn allows_method(&self, idempotent: bool) -> bool {
        idempotent || self.non_idempotent
    }

    pub(crate) fn retries_status(&self, status: StatusCode) -> bool {
        self.statuses.contains(&status)
    }

    pub(crate) fn retries_error(&self, error: &Error) -> bool {
        match error.kind() {
            ErrorKind::Dns | ErrorKind::Connect | ErrorKind::Tls | ErrorKind::Proxy => {
                self.on_connect_errors
            }
            ErrorKind::Request => self.on_connect_errors,
            ErrorKind::Timeout(phase) => {
                self.on_timeouts && phase != crate::error::TimeoutPhase::Total
            }
            _ => false,
        }
    }

    /// The wait before retry number `retry` (1 for the first), from the response's
    /// `Retry-After` when there is one.
    pub(crate) fn backoff(&self, retry: u32, headers: Option<&HeaderMap>) -> Duration {
        if self.retry_after {
            if let Some(wait) = headers.and_then(retry_after) {
                return wait.min(self.max_backoff);
            }
        }
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let backoff = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        if self.jitter {
            let nanos = u64::try_from(backoff.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(fastrand::u64(0..=nanos))
        } else {
            backoff
        }
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 section 10.2.3).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_without_jitter() {
        let p = RetryPolicy::new(5)
            .jitter(false)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(350));
        assert_eq!(p.backoff(1, None), Duration::from_millis(100));
        assert_eq!(p.backoff(2, None), Duration::from_millis(200));
        assert_eq!(p.backoff(3, None), Duration::from_millis(350));
        assert_eq!(p.backoff(40, None), Duration::from_millis(350));
    }

    #[test]
    fn jitter_stays_within_the_backoff() {
        let p = RetryPolicy::new(3).initial_backoff(Duration::from_millis(100));
        for _ in 0..100 {
            assert!(p.backoff(2, None) <= Duration::from_millis(200));
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let p = RetryPolicy::new(3).max_backoff(Duration::from_secs(10));
        let mut h = HeaderMap::new();
        h.insert(header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(p.backoff(1, Some(&h)), Duration::from_secs(2));
        h.insert(header::RETRY_AFTER, "99999".parse().unwrap());
        assert_eq!(p.backoff(1, Some(&h)), Duration::from_secs(10));
        h.insert(
            header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(p.backoff(1, Some(&h)), Duration::ZERO);
        h.insert(header::RETRY_AFTER, "garbage".parse().unwrap());
        assert!(p.backoff(1, Some(&h)) <= Duration::from_millis(100));
    }
}
