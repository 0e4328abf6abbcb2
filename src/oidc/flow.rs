//! The authorization code flow with PKCE against one provider, through the `oauth2` crate:
//! the authorization URL (a 256-bit `state` and `nonce`, an S256 challenge, scopes
//! `openid email`) and the code exchange, which returns the ID token for `id_token::verify`.

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::provider::Discovery;

/// What the provider returns from the token endpoint besides the OAuth fields.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct IdTokenField {
    pub id_token: String,
}

impl ExtraTokenFields for IdTokenField {}

type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

type OidcClient<HasAuthUrl, HasTokenUrl> = Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuthUrl,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    HasTokenUrl,
>;

/// Where to send the browser, and what to keep until it comes back.
pub struct Authorization {
    pub url: Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("the provider refused the code")]
    Refused,
    #[error("the provider could not be reached")]
    Unreachable,
    #[error("the provider's answer was not valid")]
    BadResponse,
}

/// Sends one of the `oauth2` crate's requests with `http` and hands back the answer, as the
/// crate's `request_async` wants.
pub async fn send(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let response = http
        .request(request.method().clone(), request.uri().to_string())
        .headers(request.headers().clone())
        .body(request.body().clone())
        .send()
        .await?;
    let mut answer = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(answer.body(body).unwrap_or_default())
}

/// The client registration at one provider: its id, secret (none for a public client) and
/// the redirect URI registered there.
pub struct Registration<'a> {
    pub client_id: &'a str,
    pub client_secret: Option<&'a SecretString>,
    pub redirect_uri: &'a Url,
}

impl Registration<'_> {
    fn client(&self) -> OidcClient<EndpointNotSet, EndpointNotSet> {
        let client = OidcClient::new(ClientId::new(self.client_id.to_string()))
            .set_redirect_uri(RedirectUrl::from_url(self.redirect_uri.clone()));
        match self.client_secret {
            Some(secret) => {
                client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()))
            }
            None => client,
        }
    }

    /// A fresh authorization request.
    pub fn authorization(&self, discovery: &Discovery) -> Authorization {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        // 256-bit state and nonce, as every other secret this server makes.
        let nonce = CsrfToken::new_random_len(32).secret().clone();
        let (url, state) = self
            .client()
            .set_auth_uri(AuthUrl::from_url(discovery.authorization_endpoint.clone()))
            .authorize_url(|| CsrfToken::new_random_len(32))
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .add_extra_param("nonce", &nonce)
            .set_pkce_challenge(challenge)
            .url();
        Authorization {
            url,
            state: state.secret().clone(),
            nonce,
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges the code (with the PKCE verifier) for tokens; returns the ID token.
    pub async fn exchange(
        &self,
        http: &reqwest::Client,
        discovery: &Discovery,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<String, FlowError> {
        let send = |request| send(http, request);
        let tokens = self
            .client()
            .set_token_uri(TokenUrl::from_url(discovery.token_endpoint.clone()))
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&send)
            .await
            .map_err(|e| match e {
                oauth2::RequestTokenError::ServerResponse(_) => FlowError::Refused,
                oauth2::RequestTokenError::Request(_) => FlowError::Unreachable,
                _ => FlowError::BadResponse,
            })?;
        Ok(tokens.extra_fields().id_token.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use actix_web::{App, HttpResponse, HttpServer, web};
    use serde_json::json;

    use super::*;

    fn discovery(base: &str) -> Discovery {
        Discovery {
            issuer: base.into(),
            authorization_endpoint: format!("{base}/authorize").parse().unwrap(),
            token_endpoint: format!("{base}/token").parse().unwrap(),
            jwks_uri: format!("{base}/jwks").parse().unwrap(),
        }
    }

    #[test]
    fn the_authorization_request_carries_state_nonce_and_an_s256_challenge() {
        let redirect: Url = "https://strongbox.example.com/sign-in/oidc/google/callback"
            .parse()
            .unwrap();
        let registration = Registration {
            client_id: "client-1",
            client_secret: None,
            redirect_uri: &redirect,
        };
        let first = registration.authorization(&discovery("https://id.example.com"));
        let second = registration.authorization(&discovery("https://id.example.com"));
        let query: HashMap<String, String> = first.url.query_pairs().into_owned().collect();
        assert_eq!(first.url.path(), "/authorize");
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "client-1");
        assert_eq!(query["redirect_uri"], redirect.as_str());
        assert_eq!(query["scope"], "openid email");
        assert_eq!(query["state"], first.state);
        assert_eq!(query["nonce"], first.nonce);
        assert_eq!(query["code_challenge_method"], "S256");
        assert!(!first.url.as_str().contains(&first.pkce_verifier));
        for (a, b) in [
            (&first.state, &second.state),
            (&first.nonce, &second.nonce),
            (&first.pkce_verifier, &second.pkce_verifier),
        ] {
            assert_ne!(a, b);
            assert!(a.len() >= 32, "{a}");
        }
    }

    #[actix_web::test]
    async fn the_code_is_exchanged_with_its_verifier_for_the_id_token() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(|| {
            App::new().route(
                "/token",
                web::post().to(|form: web::Form<HashMap<String, String>>| async move {
                    let ok = form.get("grant_type").map(String::as_str)
                        == Some("authorization_code")
                        && form.get("code").map(String::as_str) == Some("the-code")
                        && form.get("code_verifier").map(String::as_str) == Some("the-verifier");
                    if ok {
                        HttpResponse::Ok().json(json!({
                            "access_token": "at", "token_type": "Bearer",
                            "id_token": "header.payload.signature",
                        }))
                    } else {
                        HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}))
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

        let redirect: Url = "http://127.0.0.1/callback".parse().unwrap();
        let registration = Registration {
            client_id: "client-1",
            client_secret: None,
            redirect_uri: &redirect,
        };
        let http = reqwest::Client::new();
        let found = discovery(&base);
        let id_token = registration
            .exchange(&http, &found, "the-code", "the-verifier")
            .await
            .unwrap();
        assert_eq!(id_token, "header.payload.signature");
        let wrong = registration
            .exchange(&http, &found, "the-code", "another-verifier")
            .await;
        assert!(matches!(wrong, Err(FlowError::Refused)));
        handle.stop(true).await;
    }
}
