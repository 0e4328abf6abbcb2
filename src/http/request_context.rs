//! Per-request context: a request id (taken from a trusted proxy when well-formed, made
//! here otherwise), the client IP, and the tracing span every log line of the request is
//! written in.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use ipnet::IpNet;
use tracing::Instrument;
use tracing::field::Empty;

use super::{client_ip, with_response_headers};
use crate::request_meta::RequestMeta;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
const MAX_REQUEST_ID_LEN: usize = 64;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// A proxy's id is kept only if it is short and plain, so it is safe to log and echo;
/// anything else is replaced by a fresh one.
fn accept_or_generate(incoming: Option<&HeaderValue>) -> String {
    incoming
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
}

/// Records the workspace a request acts on in its span, once the handler knows it.
pub fn record_workspace(workspace: impl std::fmt::Display) {
    tracing::Span::current().record("workspace", tracing::field::display(workspace));
}

/// Records who is acting (a user, agent or client id, never a secret) in the span.
pub fn record_actor(actor: impl std::fmt::Display) {
    tracing::Span::current().record("actor", tracing::field::display(actor));
}

pub async fn with_request_context(
    trusted: web::Data<TrustedProxies>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let peer = req.peer_addr().map(|addr| addr.ip());
    // Audit rows carry the request id: a client must not choose it, only the proxy.
    let incoming = client_ip::from_trusted_proxy(peer, &trusted.0)
        .then(|| req.headers().get(REQUEST_ID_HEADER))
        .flatten();
    let request_id = accept_or_generate(incoming);
    let client = client_ip::resolve(peer, req.headers().get_all("x-forwarded-for"), &trusted.0);
    req.extensions_mut().insert(client);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    // The path is not logged raw: later routes carry one-time codes in it. The route
    // pattern is recorded when the response is known.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        client_ip = %client.0,
        workspace = Empty,
        actor = Empty,
    );
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let meta = RequestMeta::new(client.0, user_agent, &request_id);
    let started = Instant::now();
    let result = meta.scope(next.call(req).instrument(span.clone())).await;
    let _entered = span.enter();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &result {
        Ok(response) => {
            let status = response.status().as_u16();
            let route = response
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into());
            tracing::info!(status, route = %route, elapsed_ms, "request finished");
        }
        Err(err) => {
            let status = err.as_response_error().status_code().as_u16();
            tracing::warn!(status, elapsed_ms, "request failed before a response");
        }
    }
    let request_id = HeaderValue::from_str(&request_id).ok();
    with_response_headers(result, |headers| {
        if let Some(value) = request_id {
            headers.insert(REQUEST_ID_HEADER, value);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_kept_and_others_replaced() {
        let keep = HeaderValue::from_static("abc-123_x.y");
        assert_eq!(accept_or_generate(Some(&keep)), "abc-123_x.y");
        for bad in ["", "has space", "new\\line", &"x".repeat(65), "<script>"] {
            let value = HeaderValue::from_str(bad).unwrap();
            let id = accept_or_generate(Some(&value));
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok());
        }
        assert!(uuid::Uuid::parse_str(&accept_or_generate(None)).is_ok());
    }
}

#[cfg(test)]
mod span_tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn log_lines_carry_request_id_then_workspace_and_actor() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_span_list(true)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(TrustedProxies(vec![
                    "127.0.0.1/32".parse().unwrap(),
                ])))
                .route(
                    "/w/{id}",
                    web::get().to(|| async {
                        tracing::info!("before the workspace is known");
                        record_workspace("ws-1234");
                        record_actor("user-42");
                        tracing::info!("after");
                        HttpResponse::Ok().finish()
                    }),
                )
                .wrap(from_fn(with_request_context)),
        )
        .await;
        let request = test::TestRequest::get()
            .peer_addr("127.0.0.1:40000".parse().unwrap())
            .uri("/w/secret-looking-path-segment?token=hunter2")
            .insert_header(("x-request-id", "req-abc"))
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(
            response.headers().get(REQUEST_ID_HEADER).unwrap(),
            "req-abc"
        );

        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for line in &lines {
            assert!(line.contains("\"request_id\":\"req-abc\""), "{line}");
            assert!(
                !line.contains("hunter2") && !line.contains("secret-looking"),
                "{line}"
            );
        }
        assert!(!lines[0].contains("ws-1234"));
        for line in &lines[1..] {
            assert!(line.contains("\"workspace\":\"ws-1234\""), "{line}");
            assert!(line.contains("\"actor\":\"user-42\""), "{line}");
        }
        assert!(lines[2].contains("\"route\":\"/w/{id}\""), "{}", lines[2]);
    }
}
