//! The agent API over HTTPS (plain HTTP only to loopback), with the access token kept in
//! memory and renewed through the rotating refresh secret.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::agent::wire::{
    API_PREFIX, Credentials, ErrorBody, Heartbeat, PairRequest, Policy, SyncBatch, SyncResult,
    TokenRequest,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server URL must be https (plain http is allowed only to this machine)")]
    InsecureUrl,
    #[error("the server could not be reached")]
    Unreachable(#[source] Box<ureq::Error>),
    #[error("the server refused the credentials; pair this device again")]
    Unauthorized,
    #[error("the server refused the request ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the server's answer could not be read")]
    BadResponse(#[source] Box<ureq::Error>),
}

impl ClientError {
    /// The server's error code, when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub struct ApiClient {
    base: Url,
    http: ureq::Agent,
}

impl ApiClient {
    /// Refuses plain HTTP to anything but loopback: credentials never cross a network in
    /// the clear.
    pub fn new(server: &Url) -> Result<Self, ClientError> {
        let loopback = match server.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        match server.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(ClientError::InsecureUrl),
        }
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        let mut base = server.clone();
        base.set_path(API_PREFIX);
        base.set_query(None);
        Ok(Self { base, http })
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/{endpoint}", self.base.as_str().trim_end_matches('/'))
    }

    pub fn pair(&self, code: &str, agent_version: &str) -> Result<Credentials, ClientError> {
        let body = PairRequest {
            code: code.to_string(),
            agent_version: agent_version.to_string(),
        };
        self.post("pair", None, &body)
    }

    pub fn refresh(
        &self,
        agent_id: &str,
        refresh_secret: &str,
    ) -> Result<Credentials, ClientError> {
        let body = TokenRequest {
            agent_id: agent_id.to_string(),
            refresh_secret: refresh_secret.to_string(),
        };
        self.post("token", None, &body)
    }

    pub fn policy(&self, access_token: &str) -> Result<Policy, ClientError> {
        let response = self
            .http
            .get(self.url("policy"))
            .header("Authorization", &format!("Bearer {access_token}"))
            .call()
            .map_err(|e| ClientError::Unreachable(Box::new(e)))?;
        read(response)
    }

    pub fn sync(&self, access_token: &str, batch: &SyncBatch) -> Result<SyncResult, ClientError> {
        self.post("sync", Some(access_token), batch)
    }

    pub fn heartbeat(&self, access_token: &str, agent_version: &str) -> Result<(), ClientError> {
        let body = Heartbeat {
            agent_version: agent_version.to_string(),
        };
        let response = self
            .http
            .post(self.url("heartbeat"))
            .header("Authorization", &format!("Bearer {access_token}"))
            .send_json(&body)
            .map_err(|e| ClientError::Unreachable(Box::new(e)))?;
        match response.status().as_u16() {
            204 => Ok(()),
            _ => read::<serde_json::Value>(response).map(drop),
        }
    }

    fn post<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        access_token: Option<&str>,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let mut request = self.http.post(self.url(endpoint));
        if let Some(token) = access_token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let response = request
            .send_json(body)
            .map_err(|e| ClientError::Unreachable(Box::new(e)))?;
        read(response)
    }
}

/// The body of a 2xx answer, or the server's error.
fn read<T: DeserializeOwned>(
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<T, ClientError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return response
            .body_mut()
            .read_json()
            .map_err(|e| ClientError::BadResponse(Box::new(e)));
    }
    if status == 401 {
        return Err(ClientError::Unauthorized);
    }
    let (code, message) = match response.body_mut().read_json::<ErrorBody>() {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => ("unknown".to_string(), "no details".to_string()),
    };
    Err(ClientError::Refused {
        status,
        code,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_only_for_loopback() {
        for ok in [
            "https://box.example.com",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(ApiClient::new(&ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "http://box.example.com",
            "ftp://127.0.0.1",
            "http://10.0.0.1",
        ] {
            assert!(
                matches!(
                    ApiClient::new(&bad.parse().unwrap()),
                    Err(ClientError::InsecureUrl)
                ),
                "{bad}"
            );
        }
        let client =
            ApiClient::new(&"https://box.example.com/ignored?x=1".parse().unwrap()).unwrap();
        assert_eq!(
            client.url("sync"),
            "https://box.example.com/api/agent/v1/sync"
        );
    }
}
