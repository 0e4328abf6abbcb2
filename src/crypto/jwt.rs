//! Access tokens for paired desktop agents: HS256 JWTs signed with a key derived from the
//! master key, named by `kid`, fifteen minutes long. Verification pins the algorithm and
//! the key id and requires every claim; expiry is judged against the injected clock.

use std::fmt;

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};

use super::{DerivedKey, KeyPurpose, random_bytes};

pub const ISSUER: &str = "strongbox";
pub const AUDIENCE: &str = "strongbox-agent-api";
pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;
/// Clock skew tolerated between issuing and checking `iat`.
const IAT_SKEW_SECS: i64 = 60;

/// The claims of an agent access token. Every field is required: a token without one does
/// not parse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentClaims {
    pub iss: String,
    pub aud: String,
    /// The agent id.
    pub sub: String,
    /// The workspace the agent is paired with.
    pub workspace: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is signed with a key or algorithm this server does not accept")]
    WrongKey,
    #[error("the token is not valid for this server")]
    Invalid,
    #[error("the token has expired")]
    Expired,
}

/// Issues and verifies agent tokens with one derived key.
pub struct AgentTokens {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for AgentTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentTokens")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AgentTokens {
    pub fn new(key: &DerivedKey, version: u32) -> Self {
        Self {
            kid: KeyPurpose::AgentJwt.key_id(version),
            encoding: EncodingKey::from_secret(key.expose()),
            decoding: DecodingKey::from_secret(key.expose()),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A fresh access token for `agent` in `workspace`, valid for fifteen minutes.
    pub fn issue(
        &self,
        agent: &str,
        workspace: &str,
        now: i64,
    ) -> Result<(String, AgentClaims), JwtError> {
        let claims = AgentClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: agent.into(),
            workspace: workspace.into(),
            iat: now,
            exp: now + ACCESS_TOKEN_TTL_SECS,
            jti: hex::encode(*random_bytes::<16>()),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let token = encode(&header, &claims, &self.encoding).map_err(|_| JwtError::Malformed)?;
        Ok((token, claims))
    }

    /// Accepts only HS256 under this key id, with the right issuer and audience, every claim
    /// present, and `now` within its lifetime.
    pub fn verify(&self, token: &str, now: i64) -> Result<AgentClaims, JwtError> {
        let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.alg != Algorithm::HS256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(JwtError::WrongKey);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
        // Expiry is checked below against the server's clock, not the library's.
        validation.validate_exp = false;
        let claims = decode::<AgentClaims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature
                | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => JwtError::WrongKey,
                jsonwebtoken::errors::ErrorKind::InvalidIssuer
                | jsonwebtoken::errors::ErrorKind::InvalidAudience
                | jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => JwtError::Invalid,
                _ => JwtError::Malformed,
            })?
            .claims;
        if now >= claims.exp {
            return Err(JwtError::Expired);
        }
        if claims.iat > now + IAT_SKEW_SECS || claims.exp - claims.iat > ACCESS_TOKEN_TTL_SECS {
            return Err(JwtError::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::crypto::{KeyRing, MasterKey};

    const NOW: i64 = 1_800_000_000;

    fn tokens(master: u8) -> AgentTokens {
        let ring = KeyRing::new(MasterKey::from_bytes([master; 32]), [5; 32]);
        AgentTokens::new(&ring.derive(KeyPurpose::AgentJwt, 1), 1)
    }

    fn b64(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    /// Signs arbitrary claims with the real key but a chosen header, as an attacker who
    /// somehow knew the key would, to test each rule on its own.
    fn forge(header: Header, claims: &serde_json::Value, tokens: &AgentTokens) -> String {
        encode(&header, claims, &tokens.encoding).unwrap()
    }

    fn claims_json(t: &AgentTokens) -> serde_json::Value {
        let (_, claims) = t.issue("agent-1", "ws-1", NOW).unwrap();
        serde_json::to_value(claims).unwrap()
    }

    fn hs256(kid: &str) -> Header {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.into());
        header
    }

    #[test]
    fn issued_tokens_verify_and_carry_every_claim() {
        let t = tokens(1);
        let (token, claims) = t.issue("agent-1", "ws-1", NOW).unwrap();
        let verified = t.verify(&token, NOW + 60).unwrap();
        assert_eq!(verified, claims);
        assert_eq!(
            (verified.sub.as_str(), verified.workspace.as_str()),
            ("agent-1", "ws-1")
        );
        assert_eq!(verified.exp - verified.iat, 15 * 60);
        assert_eq!(verified.jti.len(), 32);
        assert!(
            !format!("{t:?}").contains("encoding"),
            "no key material in Debug"
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let t = tokens(1);
        let header = serde_json::json!({"alg": "none", "typ": "JWT", "kid": t.kid()});
        let token = format!("{}.{}.", b64(&header), b64(&claims_json(&t)));
        assert!(t.verify(&token, NOW).is_err());
    }

    #[test]
    fn switching_the_algorithm_is_refused() {
        let t = tokens(1);
        let (token, _) = t.issue("agent-1", "ws-1", NOW).unwrap();
        let signature = token.rsplit('.').next().unwrap();
        for alg in ["RS256", "ES256", "HS512"] {
            let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": t.kid()});
            let forged = format!("{}.{}.{signature}", b64(&header), b64(&claims_json(&t)));
            assert_eq!(t.verify(&forged, NOW), Err(JwtError::WrongKey), "{alg}");
        }
        let hs512 = Header {
            kid: Some(t.kid().into()),
            ..Header::new(Algorithm::HS512)
        };
        assert_eq!(
            t.verify(&forge(hs512, &claims_json(&t), &t), NOW),
            Err(JwtError::WrongKey)
        );
    }

    #[test]
    fn wrong_kid_and_another_installs_key_are_refused() {
        let t = tokens(1);
        let forged = forge(
            hs256("strongbox/agent-jwt/signing/v2"),
            &claims_json(&t),
            &t,
        );
        assert_eq!(t.verify(&forged, NOW), Err(JwtError::WrongKey));
        let other_install = tokens(2);
        let (theirs, _) = other_install.issue("agent-1", "ws-1", NOW).unwrap();
        assert_eq!(t.verify(&theirs, NOW), Err(JwtError::WrongKey));
    }

    #[test]
    fn expired_tokens_and_wrong_audience_or_issuer_are_refused() {
        let t = tokens(1);
        let (token, _) = t.issue("agent-1", "ws-1", NOW).unwrap();
        assert_eq!(t.verify(&token, NOW + 15 * 60), Err(JwtError::Expired));
        for (field, value) in [("aud", "someone-else"), ("iss", "not-strongbox")] {
            let mut claims = claims_json(&t);
            claims[field] = serde_json::json!(value);
            assert_eq!(
                t.verify(&forge(hs256(t.kid()), &claims, &t), NOW),
                Err(JwtError::Invalid),
                "{field}"
            );
        }
        let mut long_lived = claims_json(&t);
        long_lived["exp"] = serde_json::json!(NOW + 24 * 3600);
        assert_eq!(
            t.verify(&forge(hs256(t.kid()), &long_lived, &t), NOW),
            Err(JwtError::Invalid)
        );
    }

    #[test]
    fn every_claim_is_required() {
        let t = tokens(1);
        for missing in ["jti", "iat", "sub", "workspace", "exp", "aud", "iss"] {
            let mut claims = claims_json(&t);
            claims.as_object_mut().unwrap().remove(missing);
            assert!(
                t.verify(&forge(hs256(t.kid()), &claims, &t), NOW).is_err(),
                "{missing}"
            );
        }
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let t = tokens(1);
        let (token, _) = t.issue("agent-1", "ws-1", NOW).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut claims = claims_json(&t);
        claims["workspace"] = serde_json::json!("ws-2");
        parts[1] = b64(&claims);
        assert_eq!(t.verify(&parts.join("."), NOW), Err(JwtError::WrongKey));
    }
}
