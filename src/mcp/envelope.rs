//! The 2026-07-28 request envelope: a stateless request names its protocol version and
//! client capabilities in `params._meta`, and over HTTP repeats its version, method and
//! (for tools and resources) name in headers. The checks run in the specification's order,
//! the first failure deciding the error.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Revisions served through the `initialize` handshake and a session, oldest first.
pub const HANDSHAKE_VERSIONS: &[&str] = &["2025-06-18", "2025-11-25"];
/// Revisions served statelessly, each request carrying its own envelope.
pub const STATELESS_VERSIONS: &[&str] = &["2026-07-28"];

pub const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
pub const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
pub const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";

/// JSON-RPC error codes the envelope checks answer with.
pub const INVALID_PARAMS: i64 = -32602;
pub const HEADER_MISMATCH: i64 = -32020;
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Every revision this server speaks, oldest first: what `server/discover` and a refused
/// version name.
pub fn supported_versions() -> Vec<&'static str> {
    HANDSHAKE_VERSIONS
        .iter()
        .chain(STATELESS_VERSIONS)
        .copied()
        .collect()
}

/// The routing headers of one HTTP request, each `None` when absent. A header given twice
/// is refused by the transport before these are read.
#[derive(Debug, Default)]
pub struct RoutingHeaders<'a> {
    pub protocol_version: Option<&'a str>,
    pub method: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Why a request's envelope was refused: a JSON-RPC error code, message and data.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub code: i64,
    pub message: &'static str,
    pub data: Option<Value>,
}

impl Refusal {
    fn new(code: i64, message: &'static str) -> Self {
        Self {
            code,
            message,
            data: None,
        }
    }

    /// The JSON-RPC error message answering request `id` with this refusal.
    pub fn into_message(self, id: Value) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = self.data {
            error["data"] = data;
        }
        json!({"jsonrpc": "2.0", "id": id, "error": error})
    }

    /// A routing header given more than once (readers would disagree on it) or not as text.
    pub fn unreadable_header() -> Self {
        Self::new(HEADER_MISMATCH, "a routing header is repeated or not text")
    }

    /// The refusal of a version this server does not speak, naming the ones it does.
    pub fn unsupported_version(requested: &str) -> Self {
        Self {
            code: UNSUPPORTED_PROTOCOL_VERSION,
            message: "unsupported protocol version",
            data: Some(json!({"supported": supported_versions(), "requested": requested})),
        }
    }
}

/// Whether a request body asks for a stateless revision in its `_meta`.
pub fn names_a_version(params: &Value) -> bool {
    params
        .get("_meta")
        .is_some_and(|meta| meta.get(PROTOCOL_VERSION_KEY).is_some())
}

/// The params field whose value the `Mcp-Name` header repeats, for the methods that have one.
fn named_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// A header value as sent: plain, or wrapped as `=?base64?…?=` when it is not plain
/// printable ASCII. `None` for a wrapper that does not decode to UTF-8.
fn header_value(raw: &str) -> Option<String> {
    let Some(payload) = raw
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Some(raw.to_string());
    };
    let bytes = STANDARD.decode(payload).ok()?;
    String::from_utf8(bytes).ok()
}

/// Checks a stateless request's envelope against its headers; the protocol version it
/// names when every check holds.
pub fn check(
    method: &str,
    params: &Value,
    headers: &RoutingHeaders<'_>,
) -> Result<&'static str, Refusal> {
    let Some(meta) = params.get("_meta").and_then(Value::as_object) else {
        return Err(Refusal::new(
            INVALID_PARAMS,
            "params._meta must carry the protocol version and client capabilities",
        ));
    };
    let (Some(version), Some(_)) = (
        meta.get(PROTOCOL_VERSION_KEY),
        meta.get(CLIENT_CAPABILITIES_KEY),
    ) else {
        return Err(Refusal::new(
            INVALID_PARAMS,
            "params._meta is missing the protocol version or client capabilities",
        ));
    };
    if headers.protocol_version.is_none() || version.as_str() != headers.protocol_version {
        return Err(Refusal::new(
            HEADER_MISMATCH,
            "the MCP-Protocol-Version header does not match the request's protocol version",
        ));
    }
    if headers.method != Some(method) {
        return Err(Refusal::new(
            HEADER_MISMATCH,
            "the Mcp-Method header does not match the request's method",
        ));
    }
    if let Some(field) = named_param(method)
        && let Some(named) = params.get(field).filter(|v| !v.is_null())
        && headers.name.and_then(header_value).as_deref() != named.as_str()
    {
        return Err(Refusal::new(
            HEADER_MISMATCH,
            "the Mcp-Name header does not match the request",
        ));
    }
    let version = version.as_str().expect("equal to a header, so a string");
    STATELESS_VERSIONS
        .iter()
        .find(|v| **v == version)
        .copied()
        .ok_or_else(|| Refusal::unsupported_version(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(version: &str) -> Value {
        json!({"name": "search", "_meta": {
            PROTOCOL_VERSION_KEY: version, CLIENT_CAPABILITIES_KEY: {}
        }})
    }

    fn headers<'a>(version: &'a str, method: &'a str, name: Option<&'a str>) -> RoutingHeaders<'a> {
        RoutingHeaders {
            protocol_version: Some(version),
            method: Some(method),
            name,
        }
    }

    #[test]
    fn a_request_whose_headers_repeat_its_envelope_is_served() {
        let asked = check(
            "tools/call",
            &params("2026-07-28"),
            &headers("2026-07-28", "tools/call", Some("search")),
        );
        assert_eq!(asked, Ok("2026-07-28"));
        let wrapped = format!("=?base64?{}?=", STANDARD.encode("search"));
        let asked = check(
            "tools/call",
            &params("2026-07-28"),
            &headers("2026-07-28", "tools/call", Some(&wrapped)),
        );
        assert_eq!(asked, Ok("2026-07-28"));
    }

    #[test]
    fn a_missing_envelope_is_invalid_params() {
        for params in [
            json!({}),
            json!({"_meta": {}}),
            json!({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}),
            json!({"_meta": "2026-07-28"}),
        ] {
            let refused = check(
                "tools/list",
                &params,
                &headers("2026-07-28", "tools/list", None),
            );
            assert_eq!(refused.unwrap_err().code, INVALID_PARAMS, "{params}");
        }
    }

    #[test]
    fn headers_that_disagree_with_the_body_are_a_mismatch() {
        let cases = [
            ("2025-11-25", "tools/call", Some("search")),
            ("2026-07-28", "tools/list", Some("search")),
            ("2026-07-28", "tools/call", Some("query")),
            ("2026-07-28", "tools/call", None),
            ("2026-07-28", "tools/call", Some("=?base64?!!?=")),
        ];
        for (version, method, name) in cases {
            let refused = check(
                "tools/call",
                &params("2026-07-28"),
                &headers(version, method, name),
            );
            assert_eq!(
                refused.unwrap_err().code,
                HEADER_MISMATCH,
                "{version} {method} {name:?}"
            );
        }
        let no_version = RoutingHeaders {
            method: Some("tools/call"),
            name: Some("search"),
            ..RoutingHeaders::default()
        };
        let refused = check("tools/call", &params("2026-07-28"), &no_version);
        assert_eq!(refused.unwrap_err().code, HEADER_MISMATCH);
    }

    #[test]
    fn a_version_not_spoken_statelessly_is_refused_naming_those_that_are() {
        let refused = check(
            "tools/call",
            &params("2099-01-01"),
            &headers("2099-01-01", "tools/call", Some("search")),
        )
        .unwrap_err();
        assert_eq!(refused.code, UNSUPPORTED_PROTOCOL_VERSION);
        let data = refused.data.unwrap();
        assert_eq!(data["requested"], "2099-01-01");
        assert_eq!(
            data["supported"],
            json!(["2025-06-18", "2025-11-25", "2026-07-28"])
        );
    }
}
