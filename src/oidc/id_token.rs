//! ID tokens from an OpenID Connect provider, checked as OpenID Connect Core 1.0 §3.1.3.7
//! asks: signed with an asymmetric algorithm by a key the provider publishes (never `none`,
//! never a shared secret), issued by the configured issuer for this client (`aud`, and
//! `azp` when there are several audiences), bound to this sign-in by `nonce`, and within its
//! lifetime on the injected clock.

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// Algorithms a provider may sign with. HMAC is left out: with it, anyone holding the client
/// secret could mint tokens.
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
/// Clock skew tolerated between the provider and this server.
const SKEW_SECS: i64 = 60;
/// The longest lifetime accepted, however long the provider says.
const MAX_LIFETIME_SECS: i64 = 24 * 60 * 60;

/// What this sign-in expects of the token.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
}

/// The claims Strongbox uses. `email_verified` is read as the provider sends it: some send
/// the string `"true"`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "flexible_bool")]
    pub email_verified: bool,
    #[serde(default)]
    aud: Audience,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
enum Audience {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn len(&self) -> usize {
        match self {
            Self::None => 0,
            Self::One(_) => 1,
            Self::Many(all) => all.len(),
        }
    }
}

fn flexible_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flexible {
        Bool(bool),
        Text(String),
    }
    Ok(match Flexible::deserialize(d)? {
        Flexible::Bool(b) => b,
        Flexible::Text(t) => t.eq_ignore_ascii_case("true"),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is malformed")]
    Malformed,
    /// No published key has the token's `kid`: the caller may fetch the keys again, once.
    #[error("the ID token is signed with a key the provider does not publish")]
    UnknownKey,
    #[error("the ID token's signature or algorithm is not acceptable")]
    BadSignature,
    #[error("the ID token is not for this sign-in")]
    Invalid,
    #[error("the ID token has expired")]
    Expired,
}

/// Checks `token` against the provider's keys and what this sign-in expects.
pub fn verify(
    token: &str,
    keys: &JwkSet,
    expected: Expected<'_>,
    now: i64,
) -> Result<IdClaims, IdTokenError> {
    let header = decode_header(token).map_err(|_| IdTokenError::Malformed)?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(IdTokenError::BadSignature);
    }
    let jwk = signing_key(keys, header.kid.as_deref(), header.alg)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| IdTokenError::BadSignature)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
    // Expiry is judged below on the server's clock, not the library's.
    validation.validate_exp = false;
    let claims = decode::<IdClaims>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidKeyFormat => IdTokenError::BadSignature,
            jsonwebtoken::errors::ErrorKind::InvalidIssuer
            | jsonwebtoken::errors::ErrorKind::InvalidAudience
            | jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => IdTokenError::Invalid,
            _ => IdTokenError::Malformed,
        })?
        .claims;
    if now >= claims.exp + SKEW_SECS {
        return Err(IdTokenError::Expired);
    }
    if claims.iat > now + SKEW_SECS || claims.exp - claims.iat > MAX_LIFETIME_SECS {
        return Err(IdTokenError::Invalid);
    }
    // Several audiences: the token must say it was issued to this client (`azp`).
    let azp_ok = match (&claims.azp, claims.aud.len()) {
        (Some(azp), _) => azp == expected.client_id,
        (None, n) => n == 1,
    };
    let nonce_ok = claims
        .nonce
        .as_deref()
        .is_some_and(|nonce| bool::from(nonce.as_bytes().ct_eq(expected.nonce.as_bytes())));
    if !azp_ok || !nonce_ok {
        return Err(IdTokenError::Invalid);
    }
    Ok(claims)
}

/// The published key the header names. Without a `kid`, only a provider with a single key
/// for the algorithm's family is unambiguous.
fn signing_key<'a>(
    keys: &'a JwkSet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<&'a Jwk, IdTokenError> {
    let jwk = match kid {
        Some(kid) => keys.find(kid).ok_or(IdTokenError::UnknownKey)?,
        None => match keys.keys.as_slice() {
            [only] => only,
            _ => return Err(IdTokenError::UnknownKey),
        },
    };
    // A key published for one algorithm is not used with another.
    if let Some(published) = jwk.common.key_algorithm
        && published != KeyAlgorithm::from(alg)
    {
        return Err(IdTokenError::BadSignature);
    }
    Ok(jwk)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::EncodePrivateKey;
    use serde_json::{Value, json};

    use super::*;

    const ISSUER: &str = "https://id.example.com";
    const CLIENT: &str = "strongbox-client";
    const NONCE: &str = "n-0S6_WzA2Mj";
    const NOW: i64 = 1_800_000_000;

    /// A provider's ES256 key pair: the signing half and the published JWK set.
    struct Provider {
        signing: EncodingKey,
        keys: JwkSet,
    }

    impl Provider {
        fn new(kid: &str) -> Self {
            let secret = loop {
                let bytes = crate::crypto::random_bytes::<32>();
                if let Ok(secret) = p256::SecretKey::from_slice(&bytes[..]) {
                    break secret;
                }
            };
            let der = secret.to_pkcs8_der().unwrap();
            let point = secret.public_key().to_encoded_point(false);
            let jwk = json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
            });
            Self {
                signing: EncodingKey::from_ec_der(der.as_bytes()),
                keys: serde_json::from_value(json!({ "keys": [jwk] })).unwrap(),
            }
        }

        fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = kid.map(String::from);
            encode(&header, claims, &self.signing).unwrap()
        }
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "sub": "248289761001", "aud": CLIENT, "nonce": NONCE,
            "iat": NOW - 10, "exp": NOW + 3600,
            "email": "ada@example.com", "email_verified": true,
        })
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: ISSUER,
            client_id: CLIENT,
            nonce: NONCE,
        }
    }

    fn with(change: impl FnOnce(&mut Value)) -> Value {
        let mut claims = claims();
        change(&mut claims);
        claims
    }

    #[test]
    fn a_token_from_the_provider_for_this_sign_in_is_accepted() {
        let provider = Provider::new("k1");
        let token = provider.sign(Some("k1"), &claims());
        let verified = verify(&token, &provider.keys, expected(), NOW).unwrap();
        assert_eq!(verified.sub, "248289761001");
        assert_eq!(verified.email.as_deref(), Some("ada@example.com"));
        assert!(verified.email_verified);
        let text = with(|c| c["email_verified"] = json!("true"));
        let token = provider.sign(Some("k1"), &text);
        assert!(
            verify(&token, &provider.keys, expected(), NOW)
                .unwrap()
                .email_verified
        );
    }

    #[test]
    fn a_tampered_signature_or_another_providers_key_is_refused() {
        let provider = Provider::new("k1");
        let token = provider.sign(Some("k1"), &claims());
        let (rest, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[0] ^= 0x01;
        let tampered = format!("{rest}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(
            verify(&tampered, &provider.keys, expected(), NOW),
            Err(IdTokenError::BadSignature)
        );
        // A changed payload under the original signature.
        let (header, _) = rest.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(with(|c| c["sub"] = json!("1")).to_string());
        let forged = format!("{header}.{forged_payload}.{signature}");
        assert_eq!(
            verify(&forged, &provider.keys, expected(), NOW),
            Err(IdTokenError::BadSignature)
        );
        let impostor = Provider::new("k1");
        let token = impostor.sign(Some("k1"), &claims());
        assert_eq!(
            verify(&token, &provider.keys, expected(), NOW),
            Err(IdTokenError::BadSignature)
        );
    }

    #[test]
    fn alg_none_and_a_shared_secret_are_refused() {
        let provider = Provider::new("k1");
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        let none = format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#)
        );
        assert!(verify(&none, &provider.keys, expected(), NOW).is_err());
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let hmac = encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(CLIENT.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            verify(&hmac, &provider.keys, expected(), NOW),
            Err(IdTokenError::BadSignature)
        );
    }

    #[test]
    fn a_key_is_used_only_with_the_algorithm_it_is_published_for() {
        let mut provider = Provider::new("k1");
        let token = provider.sign(Some("k1"), &claims());
        assert!(verify(&token, &provider.keys, expected(), NOW).is_ok());
        // The same key, published for another algorithm: its ES256 signature no longer counts.
        provider.keys.keys[0].common.key_algorithm = Some(KeyAlgorithm::ES384);
        assert_eq!(
            verify(&token, &provider.keys, expected(), NOW),
            Err(IdTokenError::BadSignature)
        );
    }

    #[test]
    fn an_unknown_kid_asks_for_the_keys_again() {
        let provider = Provider::new("k1");
        let token = provider.sign(Some("k2"), &claims());
        assert_eq!(
            verify(&token, &provider.keys, expected(), NOW),
            Err(IdTokenError::UnknownKey)
        );
    }

    #[test]
    fn issuer_audience_azp_and_nonce_must_be_this_sign_ins() {
        let provider = Provider::new("k1");
        let cases = [
            with(|c| c["iss"] = json!("https://evil.example.com")),
            with(|c| c["aud"] = json!("another-client")),
            with(|c| c["aud"] = json!([CLIENT, "another-client"])),
            with(|c| {
                c["aud"] = json!([CLIENT, "another-client"]);
                c["azp"] = json!("another-client");
            }),
            with(|c| c["nonce"] = json!("a-replayed-nonce")),
            with(|c| {
                c.as_object_mut().unwrap().remove("nonce");
            }),
            with(|c| {
                c.as_object_mut().unwrap().remove("aud");
            }),
            with(|c| c["iat"] = json!(NOW + 3600)),
        ];
        for claims in cases {
            let token = provider.sign(Some("k1"), &claims);
            assert_eq!(
                verify(&token, &provider.keys, expected(), NOW),
                Err(IdTokenError::Invalid),
                "{claims}"
            );
        }
        let several = with(|c| {
            c["aud"] = json!([CLIENT, "another-client"]);
            c["azp"] = json!(CLIENT);
        });
        let token = provider.sign(Some("k1"), &several);
        assert!(verify(&token, &provider.keys, expected(), NOW).is_ok());
    }

    #[test]
    fn an_expired_token_is_refused_on_the_servers_clock() {
        let provider = Provider::new("k1");
        let token = provider.sign(Some("k1"), &claims());
        assert!(verify(&token, &provider.keys, expected(), NOW + 3600).is_ok());
        assert_eq!(
            verify(&token, &provider.keys, expected(), NOW + 3600 + SKEW_SECS),
            Err(IdTokenError::Expired)
        );
    }
}
