//! `/.well-known/security.txt` (RFC 9116): where to report a vulnerability, from
//! `[security_txt]` in the config. Without a contact there is no file, and the path is a 404.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use url::Url;

use super::ApiError;
use crate::clock::{Clock, SystemClock, format_utc};
use crate::config;

/// RFC 9116 asks for an `Expires` under a year away; the file is made fresh on each request,
/// so it never lapses while the server runs with a contact configured.
const EXPIRES_AFTER_SECS: i64 = 180 * 86_400;

/// The file's lines but `Expires`, prepared at start.
pub struct SecurityTxt {
    fields: String,
}

impl SecurityTxt {
    /// `None` when no contact is configured.
    pub fn new(settings: &config::SecurityTxt, public_url: &Url) -> Option<Self> {
        if settings.contact.is_empty() {
            return None;
        }
        let mut fields = String::new();
        for contact in &settings.contact {
            fields.push_str(&format!("Contact: {contact}\n"));
        }
        if let Some(policy) = &settings.policy {
            fields.push_str(&format!("Policy: {policy}\n"));
        }
        if let Some(languages) = &settings.preferred_languages {
            fields.push_str(&format!("Preferred-Languages: {languages}\n"));
        }
        let canonical = public_url
            .join("/.well-known/security.txt")
            .expect("a fixed path joins any base URL");
        fields.push_str(&format!("Canonical: {canonical}\n"));
        Some(Self { fields })
    }

    fn render(&self, now: i64) -> String {
        let expires = format_utc(now + EXPIRES_AFTER_SECS, "%Y-%m-%dT%H:%M:%SZ");
        format!("{}Expires: {expires}\n", self.fields)
    }
}

pub async fn serve(txt: web::Data<Option<SecurityTxt>>) -> Result<HttpResponse, ApiError> {
    let txt = txt.as_ref().as_ref().ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(txt.render(SystemClock.now())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_has_each_contact_the_policy_a_canonical_url_and_an_expiry_under_a_year() {
        let settings = config::SecurityTxt {
            contact: vec![
                "mailto:security@example.com".parse().unwrap(),
                "https://example.com/report".parse().unwrap(),
            ],
            policy: Some("https://example.com/SECURITY.md".parse().unwrap()),
            preferred_languages: Some("en, de".into()),
        };
        let public_url = "https://box.example.com".parse().unwrap();
        let txt = SecurityTxt::new(&settings, &public_url).unwrap();
        assert_eq!(
            txt.render(1_767_225_600), // 2026-01-01T00:00:00Z
            "Contact: mailto:security@example.com\n\
             Contact: https://example.com/report\n\
             Policy: https://example.com/SECURITY.md\n\
             Preferred-Languages: en, de\n\
             Canonical: https://box.example.com/.well-known/security.txt\n\
             Expires: 2026-06-30T00:00:00Z\n"
        );
        let none = config::SecurityTxt::default();
        assert!(SecurityTxt::new(&none, &public_url).is_none());
    }
}
