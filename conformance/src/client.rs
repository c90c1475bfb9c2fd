//! A small HTTP client for the checks: every request returns status,
//! headers and the whole body, with relative `Location`s resolved.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};

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
}

impl Client {
    pub fn new(base: &str, insecure: bool) -> Result<Client, String> {
        let base = Url::parse(base).map_err(|e| format!("invalid URL {base:?}: {e}"))?;
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Client { http, base })
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
        let url = self.url(location)?;
        let mut request = self.http.request(method.clone(), url);
        for (name, value) in headers {
            request = request.header(*name, value);
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
