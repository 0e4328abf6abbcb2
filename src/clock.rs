//! Time as the domain sees it: whole Unix seconds from an injected clock, so expiry rules
//! are tested by moving a clock, never by sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds in UTC, laid out by a `chrono` format (`"%Y-%m-%d %H:%M UTC"`); `unknown`
/// for a time out of the calendar's range.
pub fn format_utc(unix: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map_or_else(|| "unknown".into(), |t| t.format(format).to_string())
}

pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

pub type SharedClock = Arc<dyn Clock>;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to; for tests of timeouts and expiry.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn starting_now() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(SystemClock.now())))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
