//! The discovery documents: authorization-server metadata (RFC 8414) and the MCP
//! resource's protected-resource metadata (RFC 9728), built from the public URL.

use serde_json::{Value, json};
use url::Url;

/// What an access token may be granted for. `offline_access` asks for a refresh token.
pub const SCOPES_SUPPORTED: &[&str] = &["mcp:read", "offline_access"];

/// The server's public addresses, all derived from the configured public URL.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The public URL without a trailing slash: the issuer, exactly.
    pub issuer: String,
    /// The MCP endpoint, the one resource tokens are issued for.
    pub resource: String,
}

impl Endpoints {
    pub fn new(public_url: &Url) -> Self {
        let issuer = public_url.as_str().trim_end_matches('/').to_string();
        let resource = format!("{issuer}/mcp");
        Self { issuer, resource }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    pub fn authorization_server(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": self.at("/oauth/authorize"),
            "token_endpoint": self.at("/oauth/token"),
            "registration_endpoint": self.at("/oauth/register"),
            "revocation_endpoint": self.at("/oauth/revoke"),
            "scopes_supported": SCOPES_SUPPORTED,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            // A client may name itself by the https URL of its metadata document instead
            // of registering.
            "client_id_metadata_document_supported": true,
        })
    }

    pub fn protected_resource(&self) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "scopes_supported": SCOPES_SUPPORTED,
            "bearer_methods_supported": ["header"],
            "resource_name": "Strongbox",
        })
    }

    /// Where the protected-resource metadata lives, for `WWW-Authenticate` challenges.
    pub fn resource_metadata_url(&self) -> String {
        self.at("/.well-known/oauth-protected-resource/mcp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_is_the_public_url_exactly_and_the_resource_has_no_trailing_slash() {
        let endpoints = Endpoints::new(&"https://box.example.com/".parse().unwrap());
        assert_eq!(endpoints.issuer, "https://box.example.com");
        assert_eq!(endpoints.resource, "https://box.example.com/mcp");
        let doc = endpoints.authorization_server();
        assert_eq!(doc["issuer"], "https://box.example.com");
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        let under_a_path = Endpoints::new(&"https://example.com/strongbox".parse().unwrap());
        assert_eq!(under_a_path.resource, "https://example.com/strongbox/mcp");
    }
}
