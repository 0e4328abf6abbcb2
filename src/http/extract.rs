//! Request extractors shared by every API route.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use validator::Validate;

use super::ApiError;

/// Largest form body accepted: the dashboard's forms are small.
pub const FORM_BODY_BYTES: usize = 16 * 1024;

/// A JSON body that parsed within the size limit and passed its `validator` rules.
/// Parse failures are mapped by the app's `JsonConfig` error handler.
pub struct ValidJson<T>(pub T);

impl<T> Deref for ValidJson<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + Validate + 'static> FromRequest for ValidJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<T>::from_request(req, payload);
        Box::pin(async move {
            let body = json.await?.into_inner();
            body.validate().map_err(ApiError::from)?;
            Ok(ValidJson(body))
        })
    }
}

/// A form body (`application/x-www-form-urlencoded`) of at most `FORM_BODY_BYTES` whose
/// names and values are all UTF-8 once decoded. Anything else is refused before the
/// handler runs: a `%FF` is a 400, never quietly saved as U+FFFD.
pub struct Form<T>(pub T);

impl<T> Form<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Form<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_form = matches!(
            req.mime_type(),
            Ok(Some(mime)) if mime.essence_str() == "application/x-www-form-urlencoded"
        );
        let declared = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_form {
                return Err(ApiError::UnsupportedMediaType);
            }
            if declared.is_some_and(|n| n > FORM_BODY_BYTES) {
                return Err(ApiError::PayloadTooLarge);
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| ApiError::InvalidBody)?;
                if body.len() + chunk.len() > FORM_BODY_BYTES {
                    return Err(ApiError::PayloadTooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            if !decodes_as_utf8(&body) {
                return Err(ApiError::InvalidBody);
            }
            serde_urlencoded::from_bytes(&body)
                .map(Form)
                .map_err(|_| ApiError::InvalidBody)
        })
    }
}

/// A query string parsed into `T`, refused with 400 (like one that does not fit `T`) unless
/// every name and value is UTF-8 once decoded.
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Query<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let query = req.query_string();
        let parsed = match decodes_as_utf8(query.as_bytes()) {
            true => serde_urlencoded::from_str(query).map_err(|_| ApiError::InvalidQuery),
            false => Err(ApiError::InvalidQuery),
        };
        std::future::ready(parsed.map(Query))
    }
}

/// Whether every percent-escape in a form body decodes to UTF-8. Checking the whole body
/// at once is the same as checking each name and value: they are split only at ASCII `&`
/// and `=`, which can neither begin nor end inside a multi-byte character.
pub(super) fn decodes_as_utf8(body: &[u8]) -> bool {
    percent_encoding::percent_decode(body).decode_utf8().is_ok()
}

/// The token in an `Authorization: Bearer …` header, or 401.
pub fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_credential)
        .map(str::to_string)
        .ok_or(ApiError::Unauthorized)
}

/// The credential of an `Authorization` value in the Bearer scheme. The scheme name is
/// case-insensitive (RFC 7235 section 2.1, RFC 6750 section 2.1): `bearer` and `BEARER`
/// are `Bearer`.
fn bearer_credential(value: &str) -> Option<&str> {
    let (scheme, credential) = value.trim_start().split_once([' ', '\t'])?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

#[cfg(test)]
mod tests {
    use super::{bearer_credential, decodes_as_utf8};

    #[test]
    fn form_bodies_must_decode_to_utf8() {
        for good in ["name=Zo%C3%AB", "a=1&b=%E2%82%AC+x", "", "q=plain"] {
            assert!(decodes_as_utf8(good.as_bytes()), "{good}");
        }
        let bad: [&[u8]; 5] = [
            b"name=%FF%FE",
            b"a=%C3",
            b"a=%C3&b=%A9",
            b"a=%ED%A0%80",
            b"a=\xff",
        ];
        for body in bad {
            assert!(!decodes_as_utf8(body), "{body:?}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for value in [
            "Bearer abc",
            "bearer abc",
            "BEARER abc",
            "bEaReR   abc ",
            "Bearer\tabc",
        ] {
            assert_eq!(bearer_credential(value), Some("abc"), "{value:?}");
        }
        for value in [
            "Basic abc",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Bearers abc",
            "",
        ] {
            assert_eq!(bearer_credential(value), None, "{value:?}");
        }
    }
}
