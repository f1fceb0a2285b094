//! Requests the server itself makes — to identity providers (discovery, JWKS, the code
//! exchange) and to SIEM webhooks. Blocking (ureq, rustls), so callers run them on a blocking
//! thread; each has a connect and a total timeout, answers its status instead of raising it,
//! and reads at most a bounded body.

use std::time::Duration;

/// The most of an answer read (a discovery document, a JWKS, a token response).
pub(crate) const MAX_ANSWER: u64 = 1 << 20;

/// What came back: the status and the body (at most [`MAX_ANSWER`] bytes).
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

fn agent(total: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(5)))
        .timeout_global(Some(total))
        .http_status_as_error(false)
        .user_agent(concat!("hpl-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn answer(mut r: ureq::http::Response<ureq::Body>) -> Result<Answer, ureq::Error> {
    let status = r.status().as_u16();
    let body = r.body_mut().with_config().limit(MAX_ANSWER).read_to_vec()?;
    Ok(Answer { status, body })
}

pub(crate) fn get(url: &str) -> Result<Answer, ureq::Error> {
    answer(agent(Duration::from_secs(10)).get(url).call()?)
}

pub(crate) fn post_form(url: &str, form: &[(&str, &str)]) -> Result<Answer, ureq::Error> {
    answer(
        agent(Duration::from_secs(10))
            .post(url)
            .send_form(form.iter().copied())?,
    )
}

/// POSTs JSON lines (a webhook page), with a bearer token when given; 30 s in all.
pub(crate) fn post_lines(url: &str, token: Option<&str>, body: String) -> Result<u16, ureq::Error> {
    let mut request = agent(Duration::from_secs(30))
        .post(url)
        .header("content-type", "application/x-ndjson");
    if let Some(t) = token {
        request = request.header("authorization", &format!("Bearer {t}"));
    }
    Ok(request.send(body)?.status().as_u16())
}
