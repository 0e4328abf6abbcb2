//! OAuth clients and their redirect URIs, checked when built.

use std::fmt;
use std::str::FromStr;

use url::{Host, Url};

/// A client's public id: `sbx_client_` and 32 hex characters for a registered client, or
/// the https URL of its metadata document (`client_metadata::document_url`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(String);

const CLIENT_ID_PREFIX: &str = "sbx_client_";

impl ClientId {
    pub fn new_random() -> Self {
        Self(format!(
            "{CLIENT_ID_PREFIX}{}",
            hex::encode(*crate::crypto::random_bytes::<16>())
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The metadata document this client is named by, if it is not a registered one.
    pub fn document_url(&self) -> Option<Url> {
        super::client_metadata::document_url(&self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ClientId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let registered = s.strip_prefix(CLIENT_ID_PREFIX).is_some_and(|hex| {
            hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        let named_by_document = super::client_metadata::document_url(s).is_some();
        (registered || named_by_document)
            .then(|| Self(s.to_string()))
            .ok_or(())
    }
}

pub const MAX_REDIRECT_URI_BYTES: usize = 2000;
/// Schemes that run or read content instead of handing a code to an app.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "blob",
    "about",
    "vbscript",
    "ftp",
    "ws",
    "wss",
];

/// A redirect URI a client may register: https; http only to a loopback address (any port,
/// as native apps pick one at run time); or an app's own scheme such as `cursor://` or
/// `vscode://`. Never a fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectUri(Url);

impl RedirectUri {
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() > MAX_REDIRECT_URI_BYTES {
            return None;
        }
        let url = Url::parse(raw).ok()?;
        if url.fragment().is_some() || url.username() != "" || url.password().is_some() {
            return None;
        }
        let ok = match url.scheme() {
            "https" => url.host().is_some(),
            "http" => is_loopback(&url),
            scheme => !FORBIDDEN_SCHEMES.contains(&scheme),
        };
        ok.then_some(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether `presented` is this URI: exactly, except that a loopback URI matches on any
    /// port (RFC 8252 section 7.3).
    pub fn matches(&self, presented: &Url) -> bool {
        if is_loopback(&self.0) && is_loopback(presented) {
            let mut registered = self.0.clone();
            let mut asked = presented.clone();
            // Clearing the port cannot fail on an http URL with a host.
            let _ = registered.set_port(None);
            let _ = asked.set_port(None);
            return registered == asked;
        }
        self.0 == *presented
    }

    /// The host people see on the consent page (or the scheme, for an app's own).
    pub fn display_host(&self) -> String {
        match self.0.host_str() {
            Some(host) if !host.is_empty() => host.to_string(),
            _ => format!("{}:", self.0.scheme()),
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(name)) => name == "localhost",
            None => false,
        }
}

/// What a person granted a client: one workspace, a scope, the MCP resource.
#[derive(Clone, Debug)]
pub struct Grant {
    pub id: String,
    pub client: ClientId,
    pub client_name: String,
    pub user: crate::auth::UserId,
    pub workspace: crate::ids::WorkspaceId,
    /// The membership its person granted it in; `None` once that membership ended. The
    /// grant is live only while this is the person's current membership.
    pub membership: Option<crate::ids::MembershipId>,
    pub scope: String,
    pub resource: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A code about to be stored.
pub struct NewCode<'a> {
    pub hash: &'a crate::crypto::token::SecretHash,
    pub grant: &'a str,
    pub redirect_uri: &'a str,
    pub challenge: &'a str,
    pub expires_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

impl FromStr for TokenKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "access" => Ok(Self::Access),
            "refresh" => Ok(Self::Refresh),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub id: ClientId,
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub scope: String,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_loopback_http_or_an_apps_own_scheme() {
        for ok in [
            "https://claude.ai/api/mcp/auth_callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost/cb",
            "http://[::1]:8080/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
            "vscode://vscode.github-authentication/did-authenticate",
        ] {
            assert!(RedirectUri::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "http://example.com/cb",
            "https://example.com/cb#frag",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "https://user:pw@example.com/cb",
            "not a url",
            "",
        ] {
            assert!(RedirectUri::parse(bad).is_none(), "{bad}");
        }
        assert!(RedirectUri::parse(&format!("https://e.com/{}", "a".repeat(2000))).is_none());
    }

    #[test]
    fn loopback_matches_any_port_and_everything_else_matches_exactly() {
        let loopback = RedirectUri::parse("http://127.0.0.1:1234/callback").unwrap();
        assert!(loopback.matches(&"http://127.0.0.1:5555/callback".parse().unwrap()));
        assert!(!loopback.matches(&"http://127.0.0.1:5555/other".parse().unwrap()));
        assert!(!loopback.matches(&"http://localhost:1234/callback".parse().unwrap()));
        let https = RedirectUri::parse("https://app.example.com/cb").unwrap();
        assert!(https.matches(&"https://app.example.com/cb".parse().unwrap()));
        assert!(!https.matches(&"https://app.example.com:8443/cb".parse().unwrap()));
        assert!(!https.matches(&"https://app.example.com/cb?x=1".parse().unwrap()));
    }

    #[test]
    fn client_ids_parse_only_in_their_own_shape() {
        let id = ClientId::new_random();
        assert_eq!(id.as_str().parse::<ClientId>().unwrap(), id);
        assert!(id.document_url().is_none());
        assert!("sbx_client_XYZ".parse::<ClientId>().is_err());
        assert!("other".parse::<ClientId>().is_err());
        let named: ClientId = "https://app.example.com/client.json".parse().unwrap();
        assert!(named.document_url().is_some());
        assert!(
            "http://app.example.com/client.json"
                .parse::<ClientId>()
                .is_err()
        );
    }
}
