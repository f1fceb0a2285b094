//! HTTP to the control plane: blocking, bounded in time, retried with backoff and jitter.
//!
//! Every attempt has a connect timeout and an overall timeout, and the whole client a deadline
//! (one sync): retries never sleep past it. Transport failures, 429 and 5xx are retried —
//! each attempt signed anew, with a fresh nonce, because the server may have spent the last
//! one — and 4xx answers are not (they will not change by asking again).

use ed25519_dalek::{Signer, SigningKey};
use hpl_runtime::load::hex;
use hpl_runtime::protocol;
use std::fmt;
use std::time::{Duration, Instant};

/// The largest answer read (a bundle's limit, with room for headers).
const MAX_BODY: u64 = hpl_runtime::store::MAX_BUNDLE_BYTES + 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server could not be reached or kept failing (connection, timeout, 5xx).
    Unreachable(String),
    /// The server refused the request (4xx): its code and message.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable(m) => write!(f, "the server is unreachable: {m}"),
            ClientError::Refused {
                status,
                code,
                message,
            } => write!(f, "the server refused ({status} {code}): {message}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// An answer: status, `ETag`, body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    /// `hpl-next-cursor`: where an audit export's next page starts.
    pub cursor: Option<String>,
    pub body: Vec<u8>,
}

/// Retry settings.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }
}

pub struct Client {
    base: String,
    http: ureq::Agent,
    deadline: Instant,
    retry: Retry,
}

/// The headers of a signed request (`device` is `None` for enrollment, which the bearer token
/// and the key in its body identify).
pub fn signed_headers(
    key: &SigningKey,
    device: Option<&str>,
    method: &str,
    path: &str,
    body: &[u8],
    time: i64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let digest = protocol::request_digest(method, path, time, nonce, body);
    let mut h = vec![
        (protocol::TIME_HEADER, time.to_string()),
        (protocol::NONCE_HEADER, nonce.to_string()),
        (
            protocol::SIGNATURE_HEADER,
            hex(&key.sign(&digest).to_bytes()),
        ),
    ];
    if let Some(d) = device {
        h.push((protocol::DEVICE_HEADER, d.to_string()));
    }
    h
}

/// A random delay in `[0, min(cap, base·2^attempt)]` (full jitter: retries of many devices
/// spread out instead of arriving together).
fn jitter(retry: &Retry, attempt: u32) -> Duration {
    let ceiling = retry
        .base
        .saturating_mul(1u32 << attempt.min(16))
        .min(retry.cap);
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    let r = u64::from_le_bytes(b) % (ceiling.as_millis() as u64 + 1);
    Duration::from_millis(r)
}

impl Client {
    /// A client for `base` (`http://127.0.0.1:8470`) whose calls end by `budget` from now.
    pub fn new(base: &str, budget: Duration) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(30).min(budget)))
            .http_status_as_error(false)
            .user_agent(concat!("hpl-agent/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: config.into(),
            deadline: Instant::now() + budget,
            retry: Retry::default(),
        }
    }

    pub fn with_retry(mut self, retry: Retry) -> Client {
        self.retry = retry;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn once(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |e: ureq::Error| ClientError::Unreachable(format!("{url}: {e}"));
        let result = match (method, body) {
            ("GET", _) => {
                let mut r = self.http.get(&url);
                for (k, v) in headers {
                    r = r.header(*k, v.as_str());
                }
                r.call()
            }
            (_, body) => {
                let mut r = match method {
                    "PUT" => self.http.put(&url),
                    _ => self.http.post(&url),
                };
                for (k, v) in headers {
                    r = r.header(*k, v.as_str());
                }
                r.send(body.unwrap_or_default())
            }
        };
        let mut response = result.map_err(unreachable)?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("etag");
        let cursor = header("hpl-next-cursor");
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(unreachable)?;
        Ok(Reply {
            status,
            etag,
            cursor,
            body,
        })
    }

    /// Sends with retries; `headers` is called for every attempt (signatures are per attempt).
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &dyn Fn() -> Vec<(&'static str, String)>,
        body: Option<&[u8]>,
    ) -> Result<Reply, ClientError> {
        let mut last = ClientError::Unreachable("no attempt was made".into());
        for attempt in 0..self.retry.attempts.max(1) {
            if attempt > 0 {
                let pause = jitter(&self.retry, attempt - 1);
                let left = self.deadline.saturating_duration_since(Instant::now());
                if left <= pause {
                    break;
                }
                std::thread::sleep(pause);
            }
            if Instant::now() >= self.deadline {
                break;
            }
            match self.once(method, path, &headers(), body) {
                Ok(r) if r.status == 429 || r.status >= 500 => {
                    last = ClientError::Unreachable(format!(
                        "{}{path} answered {}",
                        self.base, r.status
                    ));
                }
                Ok(r) if (400..500).contains(&r.status) => {
                    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                    return Err(ClientError::Refused {
                        status: r.status,
                        code: v["error"].as_str().unwrap_or("").to_string(),
                        message: v["message"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| String::from_utf8_lossy(&r.body).into_owned()),
                    });
                }
                Ok(r) => return Ok(r),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A request signed by the device key.
    pub fn signed(
        &self,
        key: &SigningKey,
        device: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        extra: &[(&'static str, String)],
    ) -> Result<Reply, ClientError> {
        let headers = || {
            let mut h = signed_headers(
                key,
                Some(device),
                method,
                path,
                body.unwrap_or_default(),
                crate::now(),
                &crate::nonce(),
            );
            h.extend(extra.iter().cloned());
            if body.is_some() {
                h.push(("content-type", "application/json".into()));
            }
            h
        };
        self.send(method, path, &headers, body)
    }

    /// Enrollment: the bearer enrollment token, signed by the key it enrolls.
    pub fn enroll(&self, key: &SigningKey, token: &str, body: &[u8]) -> Result<Reply, ClientError> {
        let headers = || {
            let mut h = signed_headers(
                key,
                None,
                "POST",
                "/v1/enroll",
                body,
                crate::now(),
                &crate::nonce(),
            );
            h.push(("authorization", format!("Bearer {}", token.trim())));
            h.push(("content-type", "application/json".into()));
            h
        };
        self.send("POST", "/v1/enroll", &headers, Some(body))
    }

    /// An operator request with a bearer token (`hpl publish`, `hpl ring`).
    pub fn operator(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> Result<Reply, ClientError> {
        let content_type = content_type.to_string();
        let headers = || {
            vec![
                ("authorization", format!("Bearer {}", token.trim())),
                ("content-type", content_type.clone()),
            ]
        };
        self.send(method, path, &headers, body)
    }
}

/// One request to an identity provider (discovery, device authorization, token): no retries,
/// a 10-second timeout, at most 1 MiB read. Returns the status and the JSON body.
pub fn provider_request(
    method: &str,
    url: &str,
    form: &[(&str, &str)],
) -> Result<(u16, serde_json::Value), ClientError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .user_agent(concat!("hpl/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let failed = |e: ureq::Error| ClientError::Unreachable(format!("{url}: {e}"));
    let mut response = match method {
        "GET" => agent.get(url).call().map_err(failed)?,
        _ => agent
            .post(url)
            .send_form(form.iter().copied())
            .map_err(failed)?,
    };
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(failed)?;
    Ok((status, serde_json::from_slice(&body).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_under_the_ceiling() {
        let r = Retry::default();
        for attempt in 0..20 {
            let ceiling = r.base.saturating_mul(1 << attempt.min(16)).min(r.cap);
            assert!(jitter(&r, attempt) <= ceiling);
        }
    }

    #[test]
    fn a_server_that_is_down_fails_fast_within_the_budget() {
        // Nothing listens on port 9 of loopback (discard is not served here).
        let started = Instant::now();
        let c = Client::new("http://127.0.0.1:9", Duration::from_secs(3));
        let e = c
            .operator("t", "GET", "/healthz", None, "text/plain")
            .unwrap_err();
        assert!(matches!(e, ClientError::Unreachable(_)), "{e}");
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
