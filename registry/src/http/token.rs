//! The built-in token endpoint (`auth.token.issue`), served at the realm's
//! path: `GET` with optional Basic credentials and `service`, `scope`
//! (repeated), `account`, `offline_token`; and `POST` with an OAuth2 form,
//! `grant_type=password` (`username`, `password`) or
//! `grant_type=refresh_token` (`refresh_token`), `scope` space-separated.
//! A refresh token is returned for `offline_token=true` (GET) and
//! `access_type=offline` (POST, what `docker login` sends), or when one
//! was used.

use super::query::Query;
use crate::auth::issuer::Issuer;
use crate::auth::scope::AccessEntry;
use crate::auth::{basic_credentials, Auth, Subject};
use crate::error::{Code, RegistryError, Result};
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::net::IpAddr;

const FORM_LIMIT: usize = 64 * 1024;

/// Answers one request to the token endpoint.
pub async fn serve(
    auth: &Auth,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
    client: IpAddr,
) -> Result<Response> {
    let Some(issuer) = auth.issuer.as_ref() else {
        return Err(RegistryError::new(Code::Unsupported, "no token endpoint"));
    };
    match *method {
        Method::GET => {
            let query = Query::parse(query);
            check_service(issuer, query.get("service"))?;
            let subject = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                Some(value) => {
                    let (user, password) = basic_credentials(value)
                        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
                    login(auth, issuer, &user, &password, client).await?
                }
                None => Subject::Anonymous,
            };
            let scopes = requested(query.all("scope"));
            let offline = query.get("offline_token") == Some("true");
            answer(auth, issuer, &subject, &scopes, offline, false)
        }
        Method::POST => {
            let bytes = axum::body::to_bytes(body, FORM_LIMIT)
                .await
                .map_err(|e| invalid_request(&format!("unreadable form: {e}")))?;
            let form = Query::parse_form(&String::from_utf8_lossy(&bytes));
            check_service(issuer, form.get("service"))?;
            let scopes = requested(form.all("scope"));
            match form.get("grant_type") {
                Some("password") => {
                    let (Some(user), Some(password)) = (form.get("username"), form.get("password"))
                    else {
                        return Err(invalid_request("username and password are required"));
                    };
                    let subject = login(auth, issuer, user, password, client).await?;
                    let offline = form.get("access_type") == Some("offline");
                    answer(auth, issuer, &subject, &scopes, offline, true)
                }
                Some("refresh_token") => {
                    let token = form
                        .get("refresh_token")
                        .ok_or_else(|| invalid_request("refresh_token is required"))?;
                    let user = match issuer.refresh_user(token) {
                        Ok(user) => user,
                        Err(e) => {
                            auth.refused_login(client, "", &format!("refresh token: {e}"))
                                .await;
                            return Err(unauthorized("invalid refresh token"));
                        }
                    };
                    answer(auth, issuer, &Subject::User(user), &scopes, true, true)
                }
                _ => Err(invalid_request(
                    "grant_type must be password or refresh_token",
                )),
            }
        }
        _ => Err(RegistryError::new(Code::Unsupported, "GET or POST only")),
    }
}

async fn login(
    auth: &Auth,
    issuer: &Issuer,
    user: &str,
    password: &str,
    client: IpAddr,
) -> Result<Subject> {
    if issuer.users.verify(user, password).await {
        Ok(Subject::User(user.to_string()))
    } else {
        auth.refused_login(client, user, "invalid credentials")
            .await;
        Err(unauthorized("invalid username or password"))
    }
}

fn answer(
    auth: &Auth,
    issuer: &Issuer,
    subject: &Subject,
    scopes: &[AccessEntry],
    offline: bool,
    oauth: bool,
) -> Result<Response> {
    let access = issuer.grant(auth.policy(), subject, scopes);
    let granted_scope = access
        .iter()
        .map(|a| format!("{}:{}:{}", a.kind, a.name, a.actions.join(",")))
        .collect::<Vec<_>>()
        .join(" ");
    let issued = issuer.access_token(subject, access).map_err(|e| {
        tracing::error!(error = %e, "token signing failed");
        RegistryError::new(Code::Unknown, "cannot sign a token")
    })?;
    let mut body = json!({
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": roci::time::rfc3339(i64::try_from(issued.issued_at).unwrap_or_default(), None),
        "scope": granted_scope,
    });
    if !oauth {
        body["token"] = json!(issued.token);
    }
    if let (true, Subject::User(user)) = (offline, subject) {
        let refresh = issuer.refresh_token(user).map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            RegistryError::new(Code::Unknown, "cannot sign a token")
        })?;
        body["refresh_token"] = json!(refresh);
    }
    tracing::debug!(user = subject.name(), scope = %granted_scope, "token issued");
    Ok((
        StatusCode::OK,
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        body.to_string(),
    )
        .into_response())
}

/// Every requested scope (a value may hold several, space-separated).
fn requested<'a>(values: impl Iterator<Item = &'a str>) -> Vec<AccessEntry> {
    values
        .flat_map(|v| v.split(' '))
        .filter(|s| !s.is_empty())
        .filter_map(AccessEntry::parse_scope)
        .collect()
}

fn check_service(issuer: &Issuer, service: Option<&str>) -> Result<()> {
    match service {
        Some(service) if service != issuer.service() => {
            Err(invalid_request(&format!("unknown service {service:?}")))
        }
        _ => Ok(()),
    }
}

fn unauthorized(message: &str) -> RegistryError {
    RegistryError::new(Code::Unauthorized, message)
}

fn invalid_request(message: &str) -> RegistryError {
    RegistryError::new(Code::Unsupported, message).with_status(StatusCode::BAD_REQUEST)
}
