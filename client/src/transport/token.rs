//! The docker token flow: asking a token endpoint for a Bearer token for a
//! scope, with Basic credentials (GET) or an identity token (OAuth2 POST
//! with `grant_type=refresh_token`), or anonymously.

use super::TransportError;
use crate::credentials::Credential;
use base64::Engine;
use serde::Deserialize;

/// A token endpoint's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    /// The token to send (`token`, else `access_token`).
    pub fn bearer(&self) -> Option<&str> {
        self.token
            .as_deref()
            .or(self.access_token.as_deref())
            .filter(|t| !t.is_empty())
    }
}

/// Basic `Authorization` header value for a user and password.
pub fn basic_header(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// Fetches a token for `scope` from `realm`.
pub async fn fetch(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scope: Option<&str>,
    credential: Option<&Credential>,
    want_refresh_token: bool,
) -> Result<TokenResponse, TransportError> {
    let fail = |message: String| TransportError::Token {
        realm: realm.to_string(),
        message,
    };
    let response = match credential {
        Some(Credential::IdentityToken { token, .. }) => {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", token.clone()),
                ("client_id", "rctl".to_string()),
            ];
            if let Some(service) = service {
                form.push(("service", service.to_string()));
            }
            if let Some(scope) = scope {
                form.push(("scope", scope.to_string()));
            }
            let body = form
                .iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            http.post(realm)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
        }
        other => {
            let mut query = Vec::new();
            if let Some(service) = service {
                query.push(("service", service.to_string()));
            }
            // Several scopes go as repeated parameters, as docker sends them.
            for scope in scope
                .into_iter()
                .flat_map(|s| s.split(' '))
                .filter(|s| !s.is_empty())
            {
                query.push(("scope", scope.to_string()));
            }
            if want_refresh_token {
                query.push(("offline_token", "true".to_string()));
                query.push(("client_id", "rctl".to_string()));
            }
            let mut request = http.get(realm).query(&query);
            if let Some(Credential::Basic { username, password }) = other {
                request = request.header("authorization", basic_header(username, password));
            }
            request.send().await
        }
    }
    .map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    if status == 401 || status == 403 {
        return Err(TransportError::Unauthorized {
            message: format!("the token endpoint refused the credentials ({status})"),
        });
    }
    if !status.is_success() {
        return Err(fail(format!("status {status}")));
    }
    let token: TokenResponse = response
        .json()
        .await
        .map_err(|e| fail(format!("bad answer: {e}")))?;
    if token.bearer().is_none() {
        return Err(fail("the answer holds no token".to_string()));
    }
    Ok(token)
}

/// Form/query percent-encoding of a value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
