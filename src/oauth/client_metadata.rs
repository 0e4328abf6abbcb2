//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, preferred by
//! MCP's 2026 authorization spec): a client names itself by an https URL, and the document
//! there gives its name and redirect URIs. The server fetches it over https only, from
//! public addresses only (unless the config allows a network), without following
//! redirects, within a size cap and a short timeout, and keeps it as its cache headers say,
//! within bounds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use lru::LruCache;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Deserialize;
use url::{Host, Url};

use super::model::RedirectUri;
use super::service::{MAX_CLIENT_NAME_CHARS, MAX_REDIRECT_URIS};
use crate::clock::SharedClock;

/// The largest document read: the draft suggests 5 KB.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// The whole fetch, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_URL_BYTES: usize = 2000;
/// How long a document is kept without cache headers, and the bounds on what they ask.
const DEFAULT_CACHE_SECS: i64 = 60 * 60;
const MIN_CACHE_SECS: i64 = 60;
const MAX_CACHE_SECS: i64 = 24 * 60 * 60;
const CACHED_DOCUMENTS: usize = 1024;

/// Why a document could not be used; each says so in category-level words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentError {
    ForbiddenAddress,
    Unreachable,
    Redirected,
    Status,
    TooLarge,
    NotJson,
    OtherClientId,
    BadRedirectUris,
    Secret,
    BadName,
}

impl DocumentError {
    /// What went wrong, for OAuth's `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            Self::ForbiddenAddress => {
                "the client's metadata document is on a private, loopback or link-local address"
            }
            Self::Unreachable => "the client's metadata document could not be fetched in time",
            Self::Redirected => {
                "the client's metadata document answered with a redirect, which is not followed"
            }
            Self::Status => "the client's metadata document was not found",
            Self::TooLarge => "the client's metadata document is larger than 5 KB",
            Self::NotJson => "the client's metadata document is not a JSON client metadata object",
            Self::OtherClientId => "the client's metadata document names another client_id",
            Self::BadRedirectUris => "the client's metadata document lists no usable redirect URIs",
            Self::Secret => {
                "the client's metadata document asks for a client secret, which public clients have not"
            }
            Self::BadName => "the client's metadata document has an unusable client_name",
        }
    }
}

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for DocumentError {}

/// A document that passed every check: what the authorization flow uses.
#[derive(Clone, Debug)]
pub struct ClientDocument {
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    /// The host serving the document, which the consent page shows.
    pub host: String,
}

/// The URL a `client_id` names as its metadata document, if it is one: https with a host
/// and a path beyond `/`, no credentials, fragment or dot segments, and written in the
/// canonical form the document must repeat.
pub fn document_url(client_id: &str) -> Option<Url> {
    if client_id.len() > MAX_URL_BYTES || !client_id.starts_with("https://") {
        return None;
    }
    let url = Url::parse(client_id).ok()?;
    let ok = url.scheme() == "https"
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none()
        && url.path() != "/"
        // Parsing removes dot segments and normalises case and escapes: a client_id that
        // is not already canonical is not one the document can name exactly.
        && url.as_str() == client_id;
    ok.then_some(url)
}

/// Whether the server may connect to `ip` for a document: public addresses, and those in
/// `allowed`.
pub fn address_allowed(ip: IpAddr, allowed: &[IpNet]) -> bool {
    allowed.iter().any(|net| net.contains(&ip)) || is_public(ip)
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x64 && ip.segments()[1] == 0xff9b)) // NAT64, which reaches IPv4 inside
}

/// A resolver that hands the HTTP client only addresses it may connect to, so the address
/// checked is the address used: a name that resolves anywhere private is refused whole.
struct PublicOnly {
    allowed: Arc<Vec<IpNet>>,
}

/// The resolver's refusal, found again in the error chain to tell it from a failed fetch.
#[derive(Debug, thiserror::Error)]
#[error("the name resolves to an address documents are not fetched from")]
struct Forbidden;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = Arc::clone(&self.allowed);
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if found.is_empty() || found.iter().any(|a| !address_allowed(a.ip(), &allowed)) {
                return Err(Box::new(Forbidden) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

fn refused_by_resolver(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<Forbidden>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The fields of a metadata document this server reads.
#[derive(Deserialize)]
struct RawDocument {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    client_secret: Option<serde_json::Value>,
}

/// Checks a fetched document against the URL it came from.
fn check_document(url: &Url, body: &[u8]) -> Result<ClientDocument, DocumentError> {
    let raw: RawDocument = serde_json::from_slice(body).map_err(|_| DocumentError::NotJson)?;
    if raw.client_id != url.as_str() {
        return Err(DocumentError::OtherClientId);
    }
    // Public clients only, as with registration: no shared secret, no key to sign with.
    if raw.client_secret.is_some()
        || raw
            .token_endpoint_auth_method
            .as_deref()
            .is_some_and(|m| m != "none")
    {
        return Err(DocumentError::Secret);
    }
    if raw.redirect_uris.is_empty() || raw.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(DocumentError::BadRedirectUris);
    }
    let redirect_uris = raw
        .redirect_uris
        .iter()
        .map(|uri| RedirectUri::parse(uri).ok_or(DocumentError::BadRedirectUris))
        .collect::<Result<Vec<_>, _>>()?;
    let host = url.host_str().unwrap_or_default().to_string();
    let name = match raw.client_name.as_deref().map(str::trim) {
        None | Some("") => host.clone(),
        Some(name) => crate::text::label(name, MAX_CLIENT_NAME_CHARS)
            .ok_or(DocumentError::BadName)?
            .to_string(),
    };
    Ok(ClientDocument {
        name,
        redirect_uris,
        host,
    })
}

/// How long the response's `Cache-Control` lets a document be kept, within bounds; `None`
/// when it may not be kept at all.
fn cache_secs(cache_control: Option<&str>) -> Option<i64> {
    let Some(header) = cache_control else {
        return Some(DEFAULT_CACHE_SECS);
    };
    let mut max_age = None;
    for directive in header.split(',').map(str::trim) {
        let directive = directive.to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return None;
        }
        if let Some(secs) = directive.strip_prefix("max-age=") {
            max_age = secs.trim_matches('"').parse::<i64>().ok();
        }
    }
    Some(max_age.map_or(DEFAULT_CACHE_SECS, |s| {
        s.clamp(MIN_CACHE_SECS, MAX_CACHE_SECS)
    }))
}

/// Fetches and keeps client metadata documents.
pub struct MetadataDocuments {
    http: reqwest::Client,
    allowed: Arc<Vec<IpNet>>,
    clock: SharedClock,
    cache: Mutex<LruCache<String, (ClientDocument, i64)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the trusted certificate for client metadata documents cannot be read")]
    Certificate(#[source] std::io::Error),
    #[error("the trusted certificate for client metadata documents is not PEM")]
    NotPem(#[source] reqwest::Error),
    #[error("the HTTP client for client metadata documents could not be built")]
    Client(#[source] reqwest::Error),
}

impl MetadataDocuments {
    pub fn new(
        allowed_networks: &[IpNet],
        trusted_certificate: Option<&Path>,
        clock: SharedClock,
    ) -> Result<Self, SetupError> {
        let allowed = Arc::new(allowed_networks.to_vec());
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("Strongbox/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(PublicOnly {
                allowed: Arc::clone(&allowed),
            }));
        if let Some(path) = trusted_certificate {
            let pem = std::fs::read(path).map_err(SetupError::Certificate)?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(SetupError::NotPem)?;
            builder = builder.tls_certs_merge([certificate]);
        }
        Ok(Self {
            http: builder.build().map_err(SetupError::Client)?,
            allowed,
            clock,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(CACHED_DOCUMENTS).expect("not zero"),
            )),
        })
    }

    /// The checked document at `url`, from the cache while it is fresh.
    pub async fn get(&self, url: &Url) -> Result<ClientDocument, DocumentError> {
        let now = self.clock.now();
        if let Some((document, expires)) = self.lock_cache().get(url.as_str())
            && *expires > now
        {
            return Ok(document.clone());
        }
        let (document, keep_secs) = self.fetch(url).await?;
        if let Some(secs) = keep_secs {
            self.lock_cache()
                .put(url.as_str().to_string(), (document.clone(), now + secs));
        }
        Ok(document)
    }

    async fn fetch(&self, url: &Url) -> Result<(ClientDocument, Option<i64>), DocumentError> {
        // A literal address never reaches the resolver, so it is checked here.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !address_allowed(ip, &self.allowed)) {
            return Err(DocumentError::ForbiddenAddress);
        }
        let mut response = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| match refused_by_resolver(&e) {
                true => DocumentError::ForbiddenAddress,
                false => DocumentError::Unreachable,
            })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(DocumentError::Redirected);
        }
        if status != reqwest::StatusCode::OK {
            return Err(DocumentError::Status);
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(DocumentError::TooLarge);
        }
        let keep_secs = cache_secs(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| DocumentError::Unreachable)?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(DocumentError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((check_document(url, &body)?, keep_secs))
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, LruCache<String, (ClientDocument, i64)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_client_id_names_a_document_only_as_a_canonical_https_url_with_a_path() {
        for ok in [
            "https://app.example.com/oauth/client.json",
            "https://app.example.com/c",
            "https://127.0.0.1:8443/client",
        ] {
            assert!(document_url(ok).is_some(), "{ok}");
        }
        for bad in [
            "http://app.example.com/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://user:pw@app.example.com/c",
            "https://app.example.com/c#frag",
            "https://app.example.com/a/../c",
            "https://app.example.com/./c",
            "https://APP.example.com/c",
            "https://app.example.com:443/c",
            "sbx_client_00000000000000000000000000000000",
            "",
        ] {
            assert!(document_url(bad).is_none(), "{bad}");
        }
        assert!(document_url(&format!("https://e.com/{}", "a".repeat(2000))).is_none());
    }

    #[test]
    fn only_public_addresses_are_allowed_unless_a_network_is_named() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!address_allowed(ip, &[]), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(address_allowed(public.parse().unwrap(), &[]), "{public}");
        }
        let tests: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        assert!(address_allowed("127.0.0.1".parse().unwrap(), &tests));
        assert!(!address_allowed("127.0.0.2".parse().unwrap(), &tests));
    }

    #[test]
    fn a_document_must_name_its_own_url_and_a_public_clients_redirects() {
        let url = document_url("https://app.example.com/client.json").unwrap();
        let good = json!({
            "client_id": "https://app.example.com/client.json",
            "client_name": "Example App",
            "redirect_uris": ["http://127.0.0.1:3030/callback", "https://app.example.com/cb"],
            "token_endpoint_auth_method": "none"
        });
        let document = check_document(&url, good.to_string().as_bytes()).unwrap();
        assert_eq!(document.name, "Example App");
        assert_eq!(document.host, "app.example.com");
        assert_eq!(document.redirect_uris.len(), 2);

        let with = |key: &str, value: serde_json::Value| {
            let mut changed = good.clone();
            changed[key] = value;
            check_document(&url, changed.to_string().as_bytes()).unwrap_err()
        };
        assert_eq!(
            with("client_id", json!("https://evil.example.com/client.json")),
            DocumentError::OtherClientId
        );
        assert_eq!(
            with("client_id", json!("https://app.example.com/client.json/")),
            DocumentError::OtherClientId
        );
        assert_eq!(
            with("redirect_uris", json!([])),
            DocumentError::BadRedirectUris
        );
        assert_eq!(
            with("redirect_uris", json!(["javascript:alert(1)"])),
            DocumentError::BadRedirectUris
        );
        assert_eq!(
            with("client_secret", json!("s3cret")),
            DocumentError::Secret
        );
        assert_eq!(
            with("token_endpoint_auth_method", json!("client_secret_basic")),
            DocumentError::Secret
        );
        assert_eq!(
            with("client_name", json!("x".repeat(201))),
            DocumentError::BadName
        );
        assert_eq!(
            check_document(&url, b"<html>").unwrap_err(),
            DocumentError::NotJson
        );
        let unnamed =
            json!({"client_id": url.as_str(), "redirect_uris": ["https://app.example.com/cb"]});
        let document = check_document(&url, unnamed.to_string().as_bytes()).unwrap();
        assert_eq!(document.name, "app.example.com");
    }

    #[test]
    fn cache_headers_are_followed_within_bounds() {
        assert_eq!(cache_secs(None), Some(DEFAULT_CACHE_SECS));
        assert_eq!(cache_secs(Some("public, max-age=600")), Some(600));
        assert_eq!(cache_secs(Some("max-age=5")), Some(MIN_CACHE_SECS));
        assert_eq!(cache_secs(Some("max-age=99999999")), Some(MAX_CACHE_SECS));
        assert_eq!(cache_secs(Some("no-store")), None);
        assert_eq!(cache_secs(Some("max-age=600, no-cache")), None);
        assert_eq!(cache_secs(Some("private")), Some(DEFAULT_CACHE_SECS));
    }
}
