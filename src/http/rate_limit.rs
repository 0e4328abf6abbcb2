//! Per-IP request budgets per endpoint class (governor), answered with `429` and
//! `Retry-After` when spent.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{Error, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter};

use super::{ApiError, ClientIp};
use crate::config::{RateLimit, RateLimits};

/// Endpoint classes, each with its own budget. A path picks its class in `RateClass::of`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateClass {
    General,
    Reports,
    Auth,
    /// Machine token endpoints: OAuth token and registration, agent token rotation.
    Tokens,
}

impl RateClass {
    /// Classifies by the request path as the router will see it (percent-decoded where
    /// safe); the first matching prefix wins, so list longer prefixes first. Only posts
    /// count as sign-in attempts: loading a form is not one.
    pub fn of(method: &Method, path: &str) -> Self {
        const CLASSES: &[(&str, RateClass)] = &[
            ("/api/v1/csp-reports", RateClass::Reports),
            ("/setup", RateClass::Auth),
            ("/sign-in", RateClass::Auth),
            ("/sign-up", RateClass::Auth),
            ("/verify", RateClass::Auth),
            ("/forgot-password", RateClass::Auth),
            ("/reset-password", RateClass::Auth),
            ("/magic-link", RateClass::Auth),
            ("/api/agent/v1/pair", RateClass::Auth),
            ("/api/agent/v1/token", RateClass::Tokens),
            ("/oauth/register", RateClass::Tokens),
            ("/oauth/token", RateClass::Tokens),
        ];
        let class = CLASSES
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map_or(Self::General, |(_, class)| *class);
        match class {
            Self::Auth | Self::Tokens if method != Method::POST => Self::General,
            other => other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::General => "general",
            Self::Reports => "reports",
            Self::Auth => "auth",
            Self::Tokens => "tokens",
        }
    }
}

pub struct RateLimiters {
    general: DefaultKeyedRateLimiter<IpAddr>,
    reports: DefaultKeyedRateLimiter<IpAddr>,
    auth: DefaultKeyedRateLimiter<IpAddr>,
    tokens: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimiters {
    pub fn new(config: &RateLimits) -> Self {
        Self {
            general: keyed(config.general),
            reports: keyed(config.reports),
            auth: keyed(config.auth),
            tokens: keyed(config.tokens),
        }
    }

    /// Spends one request of `ip`'s budget in `class`, or says how long until one is free.
    pub fn check(&self, class: RateClass, ip: IpAddr) -> Result<(), Duration> {
        let limiter = match class {
            RateClass::General => &self.general,
            RateClass::Reports => &self.reports,
            RateClass::Auth => &self.auth,
            RateClass::Tokens => &self.tokens,
        };
        limiter
            .check_key(&bucket(ip))
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets clients whose budget is full again, bounding memory.
    pub fn forget_idle_clients(&self) {
        for limiter in [&self.general, &self.reports, &self.auth, &self.tokens] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn keyed(limit: RateLimit) -> DefaultKeyedRateLimiter<IpAddr> {
    RateLimiter::keyed(limit.quota())
}

/// One IPv6 subscriber usually holds a whole /64, so budgets are per /64 there.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

pub async fn enforce_rate_limit(
    limiters: web::Data<RateLimiters>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let class = RateClass::of(req.method(), req.match_info().as_str());
    let ip = ClientIp::of(&req)?.0;
    if let Err(wait) = limiters.check(class, ip) {
        tracing::warn!(class = class.as_str(), "rate limit exceeded");
        // Whole seconds, rounded up: a client that waits exactly this long gets through.
        let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let error = ApiError::RateLimited {
            retry_after_secs: retry_after_secs.max(1),
        };
        return Ok(req.error_response(error).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_a_wait_then_other_clients_unaffected() {
        let limits = RateLimits {
            general: RateLimit {
                per_minute: 2,
                burst: 2,
            },
            reports: RateLimit {
                per_minute: 1,
                burst: 1,
            },
            auth: RateLimit {
                per_minute: 1,
                burst: 1,
            },
            tokens: RateLimit {
                per_minute: 1,
                burst: 1,
            },
            account: RateLimit {
                per_minute: 1,
                burst: 1,
            },
        };
        let limiters = RateLimiters::new(&limits);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiters.check(RateClass::General, a).is_ok());
        assert!(limiters.check(RateClass::General, a).is_ok());
        let wait = limiters.check(RateClass::General, a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30));
        assert!(limiters.check(RateClass::General, b).is_ok());
        // Classes have separate budgets: a spent sign-in budget leaves token requests be.
        assert!(limiters.check(RateClass::Reports, a).is_ok());
        assert!(limiters.check(RateClass::Auth, a).is_ok());
        assert!(limiters.check(RateClass::Auth, a).is_err());
        assert!(limiters.check(RateClass::Tokens, a).is_ok());
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_slash_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(bucket(a), bucket(b));
        assert_ne!(bucket(a), bucket(c));
    }

    #[test]
    fn paths_pick_their_class() {
        let (get, post) = (Method::GET, Method::POST);
        assert_eq!(
            RateClass::of(&post, "/api/v1/csp-reports"),
            RateClass::Reports
        );
        assert_eq!(RateClass::of(&get, "/healthz"), RateClass::General);
        assert_eq!(RateClass::of(&get, "/no/such/page"), RateClass::General);
        assert_eq!(RateClass::of(&post, "/sign-in"), RateClass::Auth);
        assert_eq!(RateClass::of(&get, "/sign-in"), RateClass::General);
        assert_eq!(RateClass::of(&post, "/api/agent/v1/pair"), RateClass::Auth);
        for machine in ["/oauth/token", "/oauth/register", "/api/agent/v1/token"] {
            assert_eq!(
                RateClass::of(&post, machine),
                RateClass::Tokens,
                "{machine}"
            );
        }
    }
}
