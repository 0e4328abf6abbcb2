//! Second-factor primitives: RFC 6238 codes with one step of drift, the enrolment QR code,
//! and backup codes.

use qrcode::QrCode;
use qrcode::render::svg;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};
use zeroize::Zeroizing;

use crate::crypto::random_bytes;
use crate::crypto::token::SecretHash;

/// 160 bits, the size RFC 4226 recommends for HMAC-SHA1.
pub const SECRET_BYTES: usize = 20;
const STEP_SECS: i64 = 30;
const DIGITS: usize = 6;
pub const BACKUP_CODE_COUNT: usize = 10;

pub fn new_secret() -> Zeroizing<Vec<u8>> {
    Zeroizing::new(random_bytes::<SECRET_BYTES>().to_vec())
}

fn totp(secret: &[u8]) -> Option<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECS as u64,
        secret.to_vec(),
    )
    .ok()
}

/// The code an authenticator shows at `unix` seconds (tests use it to act as the app).
pub fn code_at(secret: &[u8], unix: i64) -> Option<String> {
    Some(totp(secret)?.generate(u64::try_from(unix).ok()?))
}

/// The time step `code` belongs to, accepting the current step and one on either side.
/// The caller refuses steps at or before the last one used, so a code works once.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret)?;
    let current = now.div_euclid(STEP_SECS);
    (current - 1..=current + 1).find(|step| {
        let expected = totp.generate(u64::try_from(step * STEP_SECS).unwrap_or(0));
        bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
    })
}

pub fn secret_base32(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(Secret::Raw(secret.to_vec()).to_encoded().to_string())
}

/// The `otpauth://` URI authenticator apps scan.
pub fn otpauth_uri(secret: &[u8], account: &str) -> Zeroizing<String> {
    let mut uri = url::Url::parse("otpauth://totp/").expect("static URL");
    uri.set_path(&format!("Strongbox:{account}"));
    uri.query_pairs_mut()
        .append_pair("secret", &secret_base32(secret))
        .append_pair("issuer", "Strongbox")
        .append_pair("algorithm", "SHA1")
        .append_pair("digits", "6")
        .append_pair("period", "30");
    Zeroizing::new(uri.to_string())
}

/// The QR code as an inline SVG element (attributes only, no style, so the CSP holds).
pub fn qr_svg(data: &str) -> Option<String> {
    let code = QrCode::new(data.as_bytes()).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Drop the XML declaration: the SVG goes inside an HTML page.
    Some(
        image
            .split_once("?>")
            .map_or(image.clone(), |(_, svg)| svg.to_string()),
    )
}

/// A backup code as shown to the person: 128 random bits in base32, grouped by four.
/// Stored as the SHA-256 of its normalised form, like every other one-way secret.
pub struct BackupCode {
    pub text: Zeroizing<String>,
    pub hash: SecretHash,
}

pub fn new_backup_codes() -> Vec<BackupCode> {
    (0..BACKUP_CODE_COUNT)
        .map(|_| {
            let raw = Secret::Raw(random_bytes::<16>().to_vec())
                .to_encoded()
                .to_string();
            let grouped: Vec<String> = raw
                .as_bytes()
                .chunks(4)
                .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                .collect();
            let text = Zeroizing::new(grouped.join("-"));
            let hash = backup_code_hash(&text);
            BackupCode { text, hash }
        })
        .collect()
}

/// Spaces, hyphens and case do not matter when a backup code is typed back.
pub fn backup_code_hash(typed: &str) -> SecretHash {
    let normalised: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    SecretHash::of(&normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_within_one_step_only() {
        let secret = new_secret();
        let now = 1_800_000_015;
        let code = code_at(&secret, now).unwrap();
        assert_eq!(matching_step(&secret, &code, now), Some(now / 30));
        assert_eq!(
            matching_step(&secret, &code, now + 30),
            Some(now / 30),
            "one step late"
        );
        assert_eq!(
            matching_step(&secret, &code, now - 30),
            Some(now / 30),
            "one step early"
        );
        assert_eq!(matching_step(&secret, &code, now + 90), None);
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(
            matching_step(&new_secret(), &code, now),
            None,
            "another secret"
        );
    }

    #[test]
    fn rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59: 94287082 (8 digits); six digits: 287082.
        assert_eq!(code_at(b"12345678901234567890", 59).unwrap(), "287082");
    }

    #[test]
    fn backup_codes_are_unique_and_typed_back_loosely() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), 10);
        let first = &codes[0];
        assert!(
            backup_code_hash(&first.text.to_lowercase().replace('-', " ")).matches(&first.hash)
        );
        let mut hashes: Vec<[u8; 32]> = codes.iter().map(|c| c.hash.0).collect();
        hashes.dedup();
        assert_eq!(hashes.len(), 10);
    }

    #[test]
    fn enrolment_uri_and_qr_code() {
        let secret = new_secret();
        let uri = otpauth_uri(&secret, "ada@example.com");
        assert!(
            uri.starts_with("otpauth://totp/Strongbox:ada@example.com?secret="),
            "{}",
            *uri
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.trim_start().starts_with("<svg"), "{svg}");
        assert!(!svg.contains("style="));
    }
}
