//! Attempt budgets on accounts, each keyed so that nobody can spend someone else's:
//! sign-in and second-factor attempts per account *and* client address (a stranger
//! guessing from elsewhere cannot lock the owner out), email links per account (no mail
//! flooding), and re-authentication per signed-in user.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter};

use super::error::AuthError;
use super::model::{Email, UserId};
use crate::config::RateLimit;

pub struct Throttles {
    sign_in: DefaultKeyedRateLimiter<String>,
    links: DefaultKeyedRateLimiter<String>,
    reauth: DefaultKeyedRateLimiter<String>,
}

impl Throttles {
    pub fn new(limit: RateLimit) -> Self {
        let quota = limit.quota();
        Self {
            sign_in: RateLimiter::keyed(quota),
            links: RateLimiter::keyed(quota),
            reauth: RateLimiter::keyed(quota),
        }
    }

    pub fn sign_in(&self, email: &Email, client_ip: &str) -> Result<(), AuthError> {
        spend(&self.sign_in, format!("{email} {client_ip}"))
    }

    pub fn links(&self, email: &Email) -> Result<(), AuthError> {
        spend(&self.links, email.to_string())
    }

    pub fn reauth(&self, user: UserId) -> Result<(), AuthError> {
        spend(&self.reauth, user.to_string())
    }

    /// Forgets keys whose budget is full again, bounding memory.
    pub fn forget_idle(&self) {
        for limiter in [&self.sign_in, &self.links, &self.reauth] {
            limiter.retain_recent();
        }
    }
}

fn spend(limiter: &DefaultKeyedRateLimiter<String>, key: String) -> Result<(), AuthError> {
    limiter.check_key(&key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        AuthError::Throttled {
            retry_after_secs: wait.as_secs().max(1),
        }
    })
}
