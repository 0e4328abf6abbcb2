//! What a configured provider publishes: its discovery document
//! (`/.well-known/openid-configuration`) and its signing keys (JWKS), fetched over HTTPS,
//! size-limited and cached. The keys are fetched again when a token names one not seen yet,
//! at most once a minute, so a forged `kid` cannot make this server hammer the provider.

use std::sync::Mutex;

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use url::Url;

use crate::clock::SharedClock;

/// Discovery documents and key sets are small; anything larger is refused unread.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// How long fetched keys are trusted before they are fetched again anyway.
const KEYS_MAX_AGE_SECS: i64 = 24 * 60 * 60;
/// The least time between two fetches of the keys.
const KEYS_REFETCH_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("the provider answered with HTTP {0}")]
    Status(u16),
    #[error("the provider's document is too large")]
    TooLarge,
    #[error("the provider's document is not valid")]
    BadDocument,
    #[error("the provider's discovery document names another issuer")]
    IssuerMismatch,
    #[error("the provider names an endpoint that is not HTTPS")]
    Insecure,
}

/// The parts of the discovery document Strongbox uses.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
}

/// One provider's published facts, fetched on first use and cached.
pub struct Provider {
    issuer: Url,
    http: reqwest::Client,
    clock: SharedClock,
    discovery: Mutex<Option<Discovery>>,
    keys: Mutex<Option<CachedKeys>>,
}

struct CachedKeys {
    keys: JwkSet,
    fetched_at: i64,
}

impl Provider {
    pub fn new(issuer: Url, http: reqwest::Client, clock: SharedClock) -> Self {
        Self {
            issuer,
            http,
            clock,
            discovery: Mutex::new(None),
            keys: Mutex::new(None),
        }
    }

    /// The discovery document, fetched once. Its `issuer` must be exactly the configured
    /// one (OpenID Connect Discovery §4.3), and every endpoint as secure as the issuer.
    pub async fn discovery(&self) -> Result<Discovery, ProviderError> {
        if let Some(known) = self.lock_discovery().clone() {
            return Ok(known);
        }
        let mut url = self.issuer.clone();
        let path = format!(
            "{}/.well-known/openid-configuration",
            url.path().trim_end_matches('/')
        );
        url.set_path(&path);
        let document: Discovery = self.fetch_json(url).await?;
        if document.issuer.trim_end_matches('/') != self.issuer.as_str().trim_end_matches('/') {
            return Err(ProviderError::IssuerMismatch);
        }
        for endpoint in [
            &document.authorization_endpoint,
            &document.token_endpoint,
            &document.jwks_uri,
        ] {
            if !secure_enough(endpoint, &self.issuer) {
                return Err(ProviderError::Insecure);
            }
        }
        *self.lock_discovery() = Some(document.clone());
        Ok(document)
    }

    /// The discovery document if it has been fetched, without fetching it.
    pub fn cached_discovery(&self) -> Option<Discovery> {
        self.lock_discovery().clone()
    }

    pub fn issuer(&self) -> &Url {
        &self.issuer
    }

    /// The provider's signing keys: cached ones while they are fresh, unless `refresh` asks
    /// for new ones (a token named an unknown key) and the last fetch is a minute old.
    pub async fn keys(&self, refresh: bool) -> Result<JwkSet, ProviderError> {
        let now = self.clock.now();
        if let Some(cached) = self.lock_keys().as_ref() {
            let age = now - cached.fetched_at;
            let may_refetch = age >= KEYS_REFETCH_SECS;
            if age < KEYS_MAX_AGE_SECS && !(refresh && may_refetch) {
                return Ok(cached.keys.clone());
            }
        }
        let jwks_uri = self.discovery().await?.jwks_uri;
        let keys: JwkSet = self.fetch_json(jwks_uri).await?;
        *self.lock_keys() = Some(CachedKeys {
            keys: keys.clone(),
            fetched_at: now,
        });
        Ok(keys)
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
    ) -> Result<T, ProviderError> {
        let mut response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(ProviderError::Unreachable)?;
        if !response.status().is_success() {
            return Err(ProviderError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(ProviderError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(ProviderError::Unreachable)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(ProviderError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|_| ProviderError::BadDocument)
    }

    fn lock_discovery(&self) -> std::sync::MutexGuard<'_, Option<Discovery>> {
        self.discovery.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, Option<CachedKeys>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// HTTPS, or plain HTTP only to a loopback issuer's own host (a provider on the same
/// machine, as in tests).
fn secure_enough(endpoint: &Url, issuer: &Url) -> bool {
    match endpoint.scheme() {
        "https" => true,
        "http" => {
            issuer.scheme() == "http"
                && endpoint.host() == issuer.host()
                && matches!(endpoint.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::{App, HttpResponse, HttpServer, web};
    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;

    /// A provider on loopback whose key set names a new key each time it is fetched.
    struct FakeProvider {
        issuer: Url,
        fetches: Arc<AtomicUsize>,
        server: actix_web::dev::ServerHandle,
    }

    async fn serve(discovery_issuer: Option<&str>, jwks_uri: Option<&str>) -> FakeProvider {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer: Url = format!("http://127.0.0.1:{port}/realm").parse().unwrap();
        let document = json!({
            "issuer": discovery_issuer.map_or_else(|| issuer.to_string(), String::from),
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": jwks_uri.map_or_else(|| format!("{issuer}/jwks"), String::from),
        });
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&fetches);
        let server = HttpServer::new(move || {
            let document = document.clone();
            let counter = Arc::clone(&counter);
            App::new()
                .route(
                    "/realm/.well-known/openid-configuration",
                    web::get().to(move || {
                        let document = document.clone();
                        async move { HttpResponse::Ok().json(document) }
                    }),
                )
                .route(
                    "/realm/jwks",
                    web::get().to(move || {
                        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                        async move {
                            HttpResponse::Ok().json(json!({"keys": [{
                                "kty": "EC", "crv": "P-256", "kid": format!("k{n}"),
                                "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
                                "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
                            }]}))
                        }
                    }),
                )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        FakeProvider {
            issuer,
            fetches,
            server: handle,
        }
    }

    fn client_for(issuer: &Url) -> (Provider, Arc<ManualClock>) {
        let clock = ManualClock::starting_now();
        let shared: SharedClock = clock.clone();
        (
            Provider::new(issuer.clone(), reqwest::Client::new(), shared),
            clock,
        )
    }

    fn kid(keys: &JwkSet) -> String {
        keys.keys[0].common.key_id.clone().unwrap()
    }

    #[actix_web::test]
    async fn discovery_is_read_once_and_must_name_the_configured_issuer() {
        let fake = serve(None, None).await;
        let (provider, _) = client_for(&fake.issuer);
        let found = provider.discovery().await.unwrap();
        assert_eq!(found.token_endpoint.path(), "/realm/token");
        fake.server.stop(true).await;

        let liar = serve(Some("https://someone-else.example.com"), None).await;
        let (provider, _) = client_for(&liar.issuer);
        assert!(matches!(
            provider.discovery().await,
            Err(ProviderError::IssuerMismatch)
        ));
        liar.server.stop(true).await;

        let downgrade = serve(None, Some("http://keys.example.com/jwks")).await;
        let (provider, _) = client_for(&downgrade.issuer);
        assert!(matches!(
            provider.discovery().await,
            Err(ProviderError::Insecure)
        ));
        downgrade.server.stop(true).await;
    }

    #[actix_web::test]
    async fn keys_are_cached_and_fetched_again_for_an_unknown_kid_at_most_once_a_minute() {
        let fake = serve(None, None).await;
        let (provider, clock) = client_for(&fake.issuer);
        assert_eq!(kid(&provider.keys(false).await.unwrap()), "k1");
        assert_eq!(kid(&provider.keys(false).await.unwrap()), "k1", "cached");
        // An unknown kid right away does not fetch again: a forged kid cannot flood the
        // provider.
        assert_eq!(kid(&provider.keys(true).await.unwrap()), "k1");
        clock.advance(KEYS_REFETCH_SECS);
        assert_eq!(kid(&provider.keys(true).await.unwrap()), "k2");
        clock.advance(KEYS_MAX_AGE_SECS);
        assert_eq!(
            kid(&provider.keys(false).await.unwrap()),
            "k3",
            "stale keys"
        );
        assert_eq!(fake.fetches.load(Ordering::SeqCst), 3);
        fake.server.stop(true).await;
    }

    #[test]
    fn only_https_or_the_loopback_issuers_own_host_is_secure_enough() {
        let loopback: Url = "http://127.0.0.1:9000/".parse().unwrap();
        let public: Url = "https://id.example.com/".parse().unwrap();
        let url = |s: &str| s.parse::<Url>().unwrap();
        assert!(secure_enough(&url("https://id.example.com/jwks"), &public));
        assert!(!secure_enough(&url("http://id.example.com/jwks"), &public));
        assert!(secure_enough(&url("http://127.0.0.1:9000/jwks"), &loopback));
        assert!(!secure_enough(&url("http://10.0.0.1/jwks"), &loopback));
        assert!(!secure_enough(&url("ftp://127.0.0.1/jwks"), &loopback));
    }
}
