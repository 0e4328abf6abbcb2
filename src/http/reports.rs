//! Content-Security-Policy violation reports sent by browsers (`report-uri`).
//! Only categories are logged: a report's URIs can hold tokens or personal data.

use actix_web::HttpResponse;
use serde::Deserialize;
use validator::Validate;

use super::ValidJson;

#[derive(Debug, Deserialize, Validate)]
pub struct CspReportBody {
    #[serde(rename = "csp-report")]
    #[validate(nested)]
    report: CspReport,
}

#[derive(Debug, Deserialize, Validate)]
struct CspReport {
    #[serde(rename = "effective-directive", default)]
    #[validate(length(max = 256))]
    effective_directive: String,
    #[serde(rename = "violated-directive", default)]
    #[validate(length(max = 1024))]
    violated_directive: String,
    #[serde(rename = "blocked-uri", default)]
    #[validate(length(max = 4096))]
    blocked_uri: String,
}

/// Directive names worth telling apart in the log; anything else is logged as `other`.
const KNOWN_DIRECTIVES: &[&str] = &[
    "default-src",
    "script-src",
    "script-src-elem",
    "script-src-attr",
    "style-src",
    "style-src-elem",
    "style-src-attr",
    "img-src",
    "font-src",
    "connect-src",
    "object-src",
    "base-uri",
    "frame-ancestors",
    "form-action",
    "frame-src",
    "worker-src",
    "manifest-src",
    "media-src",
];

impl CspReport {
    fn directive(&self) -> &'static str {
        let named = match self.effective_directive.as_str() {
            "" => self
                .violated_directive
                .split_whitespace()
                .next()
                .unwrap_or(""),
            name => name,
        };
        KNOWN_DIRECTIVES
            .iter()
            .find(|known| **known == named)
            .copied()
            .unwrap_or("other")
    }

    fn blocked_kind(&self) -> &'static str {
        match self.blocked_uri.as_str() {
            "inline" | "eval" | "wasm-eval" | "trusted-types-sink" => "inline-or-eval",
            "" | "self" => "self",
            uri if uri.starts_with("data:") => "data",
            uri if uri.starts_with("blob:") => "blob",
            _ => "external",
        }
    }
}

pub async fn receive_csp_report(body: ValidJson<CspReportBody>) -> HttpResponse {
    let report = &body.report;
    tracing::warn!(
        directive = report.directive(),
        blocked = report.blocked_kind(),
        "content security policy violation reported"
    );
    HttpResponse::NoContent().finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(effective: &str, violated: &str, blocked: &str) -> CspReport {
        CspReport {
            effective_directive: effective.into(),
            violated_directive: violated.into(),
            blocked_uri: blocked.into(),
        }
    }

    #[test]
    fn logs_only_allow_listed_categories() {
        let r = report("script-src-elem", "", "https://evil.example/x.js?token=abc");
        assert_eq!(
            (r.directive(), r.blocked_kind()),
            ("script-src-elem", "external")
        );
        let r = report("", "style-src 'self'", "inline");
        assert_eq!(
            (r.directive(), r.blocked_kind()),
            ("style-src", "inline-or-eval")
        );
        let r = report("<img src=x>", "", "data:text/html,hi");
        assert_eq!((r.directive(), r.blocked_kind()), ("other", "data"));
    }
}
