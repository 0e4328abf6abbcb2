//! People get pages, programs get JSON: an error answered to a browser on a dashboard path
//! is re-rendered as an HTML page with the same status and headers (`Retry-After`,
//! `Allow`, cookies).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use askama::Template;

use super::pages::Chrome;
use super::session::{Csrf, CurrentSession};

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: &'static str,
    text: &'static str,
}

fn wants_page(req: &ServiceRequest) -> bool {
    let accepts_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    accepts_html && !super::is_machine_path(req.path())
}

fn words(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        403 => (
            "Not allowed",
            "The request was refused. If a form was open for long, reload it and try again.",
        ),
        404 => (
            "Not found",
            "There is nothing here, or you do not have access to it.",
        ),
        405 => (
            "Not allowed",
            "That page does not accept this kind of request.",
        ),
        413 => ("Too large", "What was sent is larger than allowed."),
        429 => ("Too many requests", "Please wait a little and try again."),
        400..=499 => (
            "Something is wrong with the request",
            "Go back and try again.",
        ),
        _ => (
            "Something went wrong",
            "The error was logged. Please try again later.",
        ),
    }
}

pub async fn render_for_browsers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let wants_page = wants_page(&req);
    let response = next.call(req).await?.map_into_boxed_body();
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !wants_page || !is_json || !(status.is_client_error() || status.is_server_error()) {
        return Ok(response);
    }
    let (heading, text) = words(status);
    let request = response.request();
    let current = request.extensions().get::<CurrentSession>().cloned();
    let chrome = match (request.app_data::<web::Data<Csrf>>(), current) {
        (Some(csrf), Some(current)) => Chrome::new(request, csrf, &current),
        // Refused before the session was resolved (rate limit): an anonymous frame.
        _ => Chrome {
            signed_in: None,
            csrf: String::new(),
            notice: None,
            error: None,
        },
    };
    let Ok(html) = (ErrorPage {
        chrome,
        heading,
        text,
    })
    .render() else {
        return Ok(response);
    };
    Ok(response.map_body(|head, _| {
        head.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        BoxBody::new(html)
    }))
}
