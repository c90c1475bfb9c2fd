//! A small HTTP client for the checks: every request returns status,
//! headers and the whole body, with relative `Location`s resolved. Given
//! credentials, it answers a 401's challenge as clients do: `Basic` with
//! them, `Bearer` with a token fetched from the challenge's realm for
//! every scope asked so far (plus pull on the source of a cross-repository
//! mount), then sends the request again; the answer is sent with every
//! later request, so bodies go out with a token that covers them.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use roci::challenge::Challenge;

/// A response as the checks look at it.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Fails unless the status is one of `expected`.
    pub fn expect(&self, expected: &[u16]) -> Result<&Self, String> {
        if expected.contains(&self.status) {
            Ok(self)
        } else {
            Err(format!(
                "status {} (expected {}){}",
                self.status,
                expected
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" or "),
                self.error_summary()
            ))
        }
    }

    /// Fails unless the status is `status` and the body's first error code is `code`.
    pub fn expect_error(&self, statuses: &[u16], code: &str) -> Result<(), String> {
        self.expect(statuses)?;
        let body: serde_json::Value = serde_json::from_slice(&self.body).map_err(|_| {
            format!(
                "error body is not JSON: {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })?;
        let codes: Vec<&str> = body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["code"].as_str()).collect())
            .unwrap_or_default();
        if codes.contains(&code) {
            Ok(())
        } else {
            Err(format!("error codes {codes:?}, expected {code}"))
        }
    }

    pub fn require_header(&self, name: &str) -> Result<&str, String> {
        self.header(name)
            .ok_or_else(|| format!("missing {name} header"))
    }

    fn error_summary(&self) -> String {
        if self.body.is_empty() {
            String::new()
        } else {
            let text = String::from_utf8_lossy(&self.body);
            format!(": {}", text.chars().take(200).collect::<String>())
        }
    }
}

/// The registry under test.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    credentials: Option<(String, String)>,
    /// The `Authorization` value last earned, and the scopes it asked for.
    session: std::sync::Mutex<(Option<String>, Vec<String>)>,
}

impl Client {
    pub fn new(
        base: &str,
        insecure: bool,
        credentials: Option<(String, String)>,
    ) -> Result<Client, String> {
        let base = Url::parse(base).map_err(|e| format!("invalid URL {base:?}: {e}"))?;
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Client {
            http,
            base,
            credentials,
            session: Default::default(),
        })
    }

    /// Resolves a path or a `Location` (relative or absolute) against the base URL.
    pub fn url(&self, location: &str) -> Result<Url, String> {
        self.base
            .join(location)
            .map_err(|e| format!("bad location {location:?}: {e}"))
    }

    pub async fn send(
        &self,
        method: Method,
        location: &str,
        headers: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<Resp, String> {
        let current = self.session().0.clone();
        let first = self
            .send_once(method.clone(), location, headers, body.clone(), current)
            .await?;
        if first.status != 401 || self.credentials.is_none() {
            return Ok(first);
        }
        let Some(challenge) = first.header("www-authenticate") else {
            return Ok(first);
        };
        let authorization = self.answer(challenge, location).await?;
        self.session().0 = Some(authorization.clone());
        self.send_once(method, location, headers, body, Some(authorization))
            .await
    }

    fn session(&self) -> std::sync::MutexGuard<'_, (Option<String>, Vec<String>)> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `Authorization` value answering `challenge`.
    async fn answer(&self, challenge: &str, location: &str) -> Result<String, String> {
        use base64::Engine as _;
        let Some((user, password)) = &self.credentials else {
            return Err("no credentials".into());
        };
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let (realm, service, scope) = match roci::challenge::parse(challenge) {
            Some(Challenge::Basic) => return Ok(basic),
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => (realm, service, scope),
            None => return Err(format!("unsupported challenge: {challenge}")),
        };
        let mut url = Url::parse(&realm).map_err(|e| format!("bad realm {realm:?}: {e}"))?;
        let scopes = {
            let mut session = self.session();
            let mut wanted: Vec<String> = scope.into_iter().collect();
            // A mount also needs pull on the repository it mounts from.
            let target = self.url(location)?;
            if let Some((_, from)) = target.query_pairs().find(|(k, _)| k == "from") {
                wanted.push(format!("repository:{from}:pull"));
            }
            for scope in wanted {
                if !session.1.contains(&scope) {
                    session.1.push(scope);
                }
            }
            session.1.clone()
        };
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &service {
                query.append_pair("service", service);
            }
            for scope in &scopes {
                query.append_pair("scope", scope);
            }
        }
        let response = self
            .http
            .get(url)
            .header("authorization", basic)
            .send()
            .await
            .map_err(|e| format!("token request: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("token request refused: {}", response.status()));
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| format!("token response: {e}"))?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .ok_or("token response without a token")?;
        Ok(format!("Bearer {token}"))
    }

    async fn send_once(
        &self,
        method: Method,
        location: &str,
        headers: &[(&str, String)],
        body: Option<Bytes>,
        authorization: Option<String>,
    ) -> Result<Resp, String> {
        let url = self.url(location)?;
        let mut request = self.http.request(method.clone(), url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            request = request.body(body);
        } else if matches!(method, Method::PUT | Method::POST | Method::PATCH) {
            request = request.header("content-length", "0");
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {location}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("{method} {location}: body: {e}"))?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, location: &str, headers: &[(&str, String)]) -> Result<Resp, String> {
        self.send(Method::GET, location, headers, None).await
    }

    pub async fn head(&self, location: &str) -> Result<Resp, String> {
        self.send(Method::HEAD, location, &[], None).await
    }

    pub async fn delete(&self, location: &str) -> Result<Resp, String> {
        self.send(Method::DELETE, location, &[], None).await
    }
}
