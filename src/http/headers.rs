//! The security header set, added to every response the app sends: successes, errors,
//! 404s and responses that middleware produced.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use url::Url;

use super::with_response_headers;

/// Self-hosted assets only, no inline script, no framing; violations are reported back.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'; \
    report-uri /api/v1/csp-reports";

/// The usual policy, with forms also allowed to go on to `targets` (origins, or schemes
/// such as `myapp:`): for a page whose form leads to another site, such as a sign-in
/// provider's page or an OAuth client's redirect URI. Nothing else is loosened.
fn policy_with_form_targets(targets: &[String]) -> String {
    if targets.is_empty() {
        return CONTENT_SECURITY_POLICY.to_string();
    }
    CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", targets.join(" ")),
    )
}

/// Gives `response` the policy of `policy_with_form_targets`.
pub fn allow_forms_to(response: &mut actix_web::HttpResponse, targets: &[String]) {
    if targets.is_empty() {
        return;
    }
    if let Ok(policy) = HeaderValue::from_str(&policy_with_form_targets(targets)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
}

pub const PERMISSIONS_POLICY: &str =
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()";

/// Two years, subdomains included, eligible for browser preload lists.
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000; includeSubDomains; preload";

#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    always: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    /// HSTS is only sent when the public URL is https: over plain http it would be ignored
    /// at best and lock people out of a misconfigured install at worst.
    pub fn for_public_url(public_url: &Url) -> Self {
        let mut always = vec![
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("strict-origin-when-cross-origin"),
            ),
            (
                HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static(PERMISSIONS_POLICY),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
            (
                HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ];
        if public_url.scheme() == "https" {
            always.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
            ));
        }
        Self { always }
    }

    fn apply(&self, headers: &mut header::HeaderMap) {
        for (name, value) in &self.always {
            // A page may carry a policy of its own, derived from this one (the OAuth consent
            // page lets its form go on to the client's redirect URI).
            if name == header::CONTENT_SECURITY_POLICY && headers.contains_key(name) {
                continue;
            }
            headers.insert(name.clone(), value.clone());
        }
        // Responses carry workspace data; nothing is cached unless a handler says so.
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

/// Outermost middleware: every response, and every error that reached it, leaves with the
/// header set.
pub async fn add_security_headers(
    security: web::Data<SecurityHeaders>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    with_response_headers(next.call(req).await, |headers| security.apply(headers))
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test};

    use super::*;
    use crate::http::ApiError;

    /// A middleware that fails instead of answering, as a broken inner layer would.
    async fn failing_layer(
        _req: ServiceRequest,
        _next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<impl MessageBody>, Error> {
        Err::<ServiceResponse, _>(ApiError::internal("inner layer failed").into())
    }

    #[actix_web::test]
    async fn internal_errors_and_escaped_errors_still_carry_the_headers() {
        let security = web::Data::new(SecurityHeaders::for_public_url(
            &"https://example.com".parse().unwrap(),
        ));
        let handler_error = test::init_service(
            App::new()
                .app_data(security.clone())
                .route(
                    "/",
                    web::get().to(|| async { Err::<HttpResponse, _>(ApiError::Internal) }),
                )
                .wrap(from_fn(add_security_headers)),
        )
        .await;
        let response =
            test::call_service(&handler_error, test::TestRequest::get().to_request()).await;
        assert_eq!(response.status(), 500);
        assert_eq!(
            response.headers().get(header::X_FRAME_OPTIONS).unwrap(),
            "DENY"
        );
        assert_eq!(
            response
                .headers()
                .get(header::STRICT_TRANSPORT_SECURITY)
                .unwrap(),
            STRICT_TRANSPORT_SECURITY
        );

        let escaped_error = test::init_service(
            App::new()
                .app_data(security)
                .route("/", web::get().to(HttpResponse::Ok))
                .wrap(from_fn(failing_layer))
                .wrap(from_fn(add_security_headers)),
        )
        .await;
        let error = test::try_call_service(&escaped_error, test::TestRequest::get().to_request())
            .await
            .err()
            .expect("the inner layer fails");
        let response = error.error_response();
        assert_eq!(response.status(), 500);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_SECURITY_POLICY)
                .unwrap(),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(
            response
                .headers()
                .get(header::X_CONTENT_TYPE_OPTIONS)
                .unwrap(),
            "nosniff"
        );
    }
}
