//! Sign-in with the configured OpenID Connect providers, from the button to the session: the
//! start (a login stored for the browser that asked, then the provider's page) and the
//! return (the login spent, the code exchanged, the ID token checked, and the identity
//! handed to `auth`, which signs in or links).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Transaction;
use secrecy::SecretString;
use url::Url;

use super::flow::{FlowError, Registration};
use super::id_token::{self, Expected, IdTokenError};
use super::provider::{Provider, ProviderError};
use super::repo::{self, LoginStart};
use crate::audit::{Action, Actor, AuditLog, Chain, Entry};
use crate::auth::{AuthError, AuthService, Device, Email, NewSession, ProviderIdentity, UserId};
use crate::clock::SharedClock;
use crate::config::OidcProvider;
use crate::crypto::token::SecretHash;
use crate::store::{BlockingPool, Store, StoreError};

/// How long a person has at the provider's page before the sign-in must start again.
const LOGIN_TTL_SECS: i64 = 10 * 60;
/// States this server makes are 43 characters; anything much longer is not one.
const MAX_STATE_CHARS: usize = 128;
/// Codes are opaque, but no provider needs more than this.
const MAX_CODE_CHARS: usize = 2048;
/// The longest wait for a provider's discovery document, keys or token endpoint.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("there is no such sign-in provider")]
    UnknownProvider,
    #[error("this sign-in has expired or was already used; start again")]
    LoginInvalid,
    #[error("sign-in was cancelled at the provider")]
    Cancelled,
    #[error("the sign-in provider could not be reached; try again later")]
    ProviderUnavailable,
    #[error("the sign-in provider refused the sign-in")]
    Refused,
    #[error("the sign-in provider's answer could not be trusted")]
    TokenRejected(#[from] IdTokenError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("storage error")]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for OidcError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(e))
    }
}

/// A configured provider, as pages offer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderChoice {
    pub name: String,
    pub label: String,
}

/// What the browser came to the provider for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    SignIn,
    /// The signed-in person adding this provider to their account.
    Link(UserId),
}

/// What the provider's return did.
pub enum Completed {
    SignedIn { session: NewSession, next: String },
    Linked { label: String },
}

/// The query the provider sends the browser back with.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Callback {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub code: String,
    /// Set when the person (or the provider) turned the sign-in down.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct OidcService {
    inner: Arc<Inner>,
}

struct Inner {
    providers: BTreeMap<String, Configured>,
    http: reqwest::Client,
    store: Arc<Store>,
    pool: BlockingPool,
    clock: SharedClock,
    auth: AuthService,
    audit: AuditLog,
}

/// One provider: the operator's registration and what the provider publishes.
struct Configured {
    label: String,
    client_id: String,
    client_secret: Option<SecretString>,
    redirect_uri: Url,
    published: Provider,
}

impl Configured {
    fn registration(&self) -> Registration<'_> {
        Registration {
            client_id: &self.client_id,
            client_secret: self.client_secret.as_ref(),
            redirect_uri: &self.redirect_uri,
        }
    }
}

/// Where a provider sends the browser back: one fixed path per provider, registered there.
fn redirect_uri(public_url: &Url, name: &str) -> Url {
    let mut url = public_url.clone();
    url.set_path(&format!("/sign-in/oidc/{name}/callback"));
    url.set_query(None);
    url
}

impl OidcService {
    pub fn new(
        config: &BTreeMap<String, OidcProvider>,
        public_url: &Url,
        store: Arc<Store>,
        pool: BlockingPool,
        clock: SharedClock,
        auth: AuthService,
        audit: AuditLog,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("strongbox/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let providers = config
            .iter()
            .map(|(name, provider)| {
                let configured = Configured {
                    label: provider.label.clone(),
                    client_id: provider.client_id.clone(),
                    client_secret: provider.client_secret.clone(),
                    redirect_uri: redirect_uri(public_url, name),
                    published: Provider::new(provider.issuer.clone(), http.clone(), clock.clone()),
                };
                (name.clone(), configured)
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                providers,
                http,
                store,
                pool,
                clock,
                auth,
                audit,
            }),
        })
    }

    /// Every configured provider, by name.
    pub fn providers(&self) -> Vec<ProviderChoice> {
        self.inner
            .providers
            .iter()
            .map(|(name, p)| ProviderChoice {
                name: name.clone(),
                label: p.label.clone(),
            })
            .collect()
    }

    /// The origins of the providers' sign-in pages, for the pages whose forms go there
    /// (`form-action`): each issuer's, and its authorization endpoint's once discovery has
    /// been read (it almost always shares the issuer's). Nothing is fetched here, so a
    /// provider that is down never slows the sign-in page.
    pub fn form_targets(&self) -> Vec<String> {
        let mut targets: Vec<String> = self
            .inner
            .providers
            .values()
            .flat_map(|p| {
                let endpoint = p
                    .published
                    .cached_discovery()
                    .map(|d| d.authorization_endpoint.origin().ascii_serialization());
                [
                    Some(p.published.issuer().origin().ascii_serialization()),
                    endpoint,
                ]
            })
            .flatten()
            .collect();
        targets.sort();
        targets.dedup();
        targets
    }

    /// Reads every provider's discovery document, so the first sign-in page already allows
    /// its forms to go to the right place. A provider that cannot be reached is logged and
    /// tried again when someone signs in with it.
    pub async fn warm_up(&self) {
        for (name, provider) in &self.inner.providers {
            if let Err(e) = provider.published.discovery().await {
                let error = crate::telemetry::error_chain(&e);
                tracing::warn!(provider = %name, error = %error, "sign-in provider unavailable");
            }
        }
    }

    /// Starts a sign-in (or a link) at provider `name` for the browser `browser` names;
    /// returns the provider's page to send it to.
    pub async fn begin(
        &self,
        name: &str,
        browser: SecretHash,
        purpose: Purpose,
        next: String,
    ) -> Result<Url, OidcError> {
        let provider = self.provider(name)?;
        let discovery = provider.published.discovery().await.map_err(unavailable)?;
        let authorization = provider.registration().authorization(&discovery);
        let login = LoginStart {
            state: SecretHash::of(&authorization.state),
            provider: name.to_string(),
            nonce: authorization.nonce,
            pkce_verifier: authorization.pkce_verifier,
            browser,
            link_user: match purpose {
                Purpose::SignIn => None,
                Purpose::Link(user) => Some(user),
            },
            next,
        };
        self.write(move |_, tx, now| Ok(repo::insert_login(tx, &login, now, LOGIN_TTL_SECS)?))
            .await?;
        Ok(authorization.url)
    }

    /// Finishes what `begin` started, when the browser comes back from provider `name`: the
    /// login is spent (once, by the browser that started it, in time), the code exchanged
    /// and the ID token checked; then the person is signed in, or the identity linked.
    pub async fn complete(
        &self,
        name: &str,
        callback: Callback,
        browser: SecretHash,
        device: Device,
    ) -> Result<Completed, OidcError> {
        let provider = self.provider(name)?;
        let pending = self.take_login(name, &callback.state, browser).await?;
        let Some(pending) = pending else {
            self.refused(name, "oidc_state").await?;
            return Err(OidcError::LoginInvalid);
        };
        if callback.error.is_some() {
            return Err(OidcError::Cancelled);
        }
        if callback.code.is_empty() || callback.code.len() > MAX_CODE_CHARS {
            return Err(OidcError::Refused);
        }
        let discovery = provider.published.discovery().await.map_err(unavailable)?;
        let token = provider
            .registration()
            .exchange(
                &self.inner.http,
                &discovery,
                &callback.code,
                &pending.pkce_verifier,
            )
            .await
            .map_err(|e| match e {
                FlowError::Refused | FlowError::BadResponse => OidcError::Refused,
                FlowError::Unreachable => OidcError::ProviderUnavailable,
            })?;
        let expected = Expected {
            issuer: &discovery.issuer,
            client_id: &provider.client_id,
            nonce: &pending.nonce,
        };
        let claims = match self.verify(provider, &token, expected).await? {
            Ok(claims) => claims,
            Err(e) => {
                tracing::warn!(provider = name, error = %e, "provider ID token refused");
                self.refused(name, "oidc_token").await?;
                return Err(e.into());
            }
        };
        let identity = ProviderIdentity {
            provider: name.to_string(),
            label: provider.label.clone(),
            subject: claims.sub,
            email: claims.email.as_deref().and_then(Email::parse),
            email_verified: claims.email_verified,
        };
        let auth = &self.inner.auth;
        Ok(match pending.link_user {
            Some(user) => {
                auth.link_provider(user, identity).await?;
                Completed::Linked {
                    label: provider.label.clone(),
                }
            }
            None => Completed::SignedIn {
                session: auth.sign_in_with_provider(identity, device).await?,
                next: pending.next,
            },
        })
    }

    fn provider(&self, name: &str) -> Result<&Configured, OidcError> {
        self.inner
            .providers
            .get(name)
            .ok_or(OidcError::UnknownProvider)
    }

    async fn take_login(
        &self,
        name: &str,
        state: &str,
        browser: SecretHash,
    ) -> Result<Option<repo::PendingLogin>, OidcError> {
        if state.is_empty() || state.len() > MAX_STATE_CHARS {
            return Ok(None);
        }
        let state = SecretHash::of(state);
        let name = name.to_string();
        self.write(move |_, tx, now| Ok(repo::take_login(tx, &state, &name, &browser, now)?))
            .await
    }

    /// Checks the ID token against the provider's keys; a key it does not know yet sends
    /// for the keys again, once.
    async fn verify(
        &self,
        provider: &Configured,
        token: &str,
        expected: Expected<'_>,
    ) -> Result<Result<id_token::IdClaims, IdTokenError>, OidcError> {
        let now = self.inner.clock.now();
        let keys = provider.published.keys(false).await.map_err(unavailable)?;
        match id_token::verify(token, &keys, expected, now) {
            Err(IdTokenError::UnknownKey) => {
                let keys = provider.published.keys(true).await.map_err(unavailable)?;
                Ok(id_token::verify(token, &keys, expected, now))
            }
            checked => Ok(checked),
        }
    }

    /// Audits a provider sign-in refused before any account was looked at.
    async fn refused(&self, name: &str, reason: &'static str) -> Result<(), OidcError> {
        let entry = Entry::new(Actor::anonymous(), Action::SignInFailed)
            .detail("reason", reason)
            .detail("provider", name);
        self.write(move |inner, tx, _| Ok(inner.audit.append(tx, Chain::System, entry)?))
            .await
    }

    /// Runs `f` in a write transaction on the control database, on the blocking pool.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner, &Transaction<'_>, i64) -> Result<T, OidcError> + Send + 'static,
    ) -> Result<T, OidcError> {
        let inner = Arc::clone(&self.inner);
        self.inner
            .pool
            .run(move || {
                let now = inner.clock.now();
                inner.store.control().write(|tx| f(&inner, tx, now))
            })
            .await
    }
}

fn unavailable(e: ProviderError) -> OidcError {
    let error = crate::telemetry::error_chain(&e);
    tracing::warn!(error = %error, "sign-in provider unavailable");
    OidcError::ProviderUnavailable
}
