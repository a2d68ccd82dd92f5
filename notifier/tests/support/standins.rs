//! Stand-ins for the HTTP APIs the notifier's channels call, served on 127.0.0.1 by
//! axum: a WeCom group-robot API that enforces what WeCom documents (message shape,
//! byte limits, a message rate per window, unknown keys) and a Tencent Cloud SMS
//! `SendSms` endpoint that verifies the TC3-HMAC-SHA256 signature with its own
//! implementation of the documented algorithm and checks the request's fields.
//!
//! Shared by the notifier's channel tests (`notifier/tests/channels_http.rs`, through
//! `mod support;`) and the binary's end-to-end test (`tests/notifier_e2e.rs`, through
//! `#[path = …] mod standins;`), so it uses only crates both have: axum, tokio,
//! serde_json, chrono, hmac, sha2 and hex.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

// ------------------------------------------------------------------------------
// Helpers

/// Serves `router` on a free port of 127.0.0.1 in a background task.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Lower-case hex HMAC-SHA256 of `data` under `key`.
pub fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    hex::encode(m.finalize().into_bytes())
}

/// HMAC-SHA256 of `data` under `key`, raw bytes.
pub fn hmac_raw(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

// ------------------------------------------------------------------------------
// WeCom robot API stand-in

/// The robot key the WeCom stand-in accepts (`?key=`).
pub const WECOM_KEY: &str = "good-key";
/// The path the WeCom stand-in serves, as WeCom's
/// `https://qyapi.weixin.qq.com/cgi-bin/webhook/send`.
pub const WECOM_PATH: &str = "/cgi-bin/webhook/send";

/// What the WeCom stand-in accepts and what it received.
pub struct WecomState {
    /// The only robot key it accepts.
    pub key: String,
    /// Messages per window it accepts before answering 45009.
    pub limit: usize,
    /// The rate window (WeCom: a minute).
    pub window: Duration,
    /// When the accepted messages of the current window came.
    pub sent: Mutex<VecDeque<Instant>>,
    /// Every accepted message, as received.
    pub messages: Mutex<Vec<serde_json::Value>>,
    /// How often it answered 45009 (rate exceeded).
    pub answered_45009: AtomicUsize,
    /// errcode to answer every valid request with instead of 0 (e.g. -1).
    pub force_errcode: Mutex<Option<i64>>,
}

/// WeCom's answer body: `{"errcode": code, "errmsg": msg}` with HTTP 200.
pub fn wecom_answer(code: i64, msg: &str) -> Response {
    axum::Json(serde_json::json!({ "errcode": code, "errmsg": msg })).into_response()
}

/// Checks a request the way WeCom documents the robot API.
pub fn wecom_check_shape(v: &serde_json::Value) -> Result<(), (i64, String)> {
    let obj = v
        .as_object()
        .ok_or((40008, "invalid message type".to_string()))?;
    let kind = obj
        .get("msgtype")
        .and_then(|k| k.as_str())
        .ok_or((40008, "invalid message type".to_string()))?;
    let (max, allowed): (usize, &[&str]) = match kind {
        "text" => (
            2048,
            &["content", "mentioned_list", "mentioned_mobile_list"],
        ),
        "markdown" => (4096, &["content"]),
        _ => return Err((40008, "invalid message type".into())),
    };
    if obj.keys().any(|k| k != "msgtype" && k != kind) {
        return Err((40058, "unexpected field".into()));
    }
    let inner = obj
        .get(kind)
        .and_then(|i| i.as_object())
        .ok_or((40058, format!("{kind} missing")))?;
    for k in inner.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err((40058, format!("{kind}.{k} is not a field")));
        }
    }
    let content = inner
        .get("content")
        .and_then(|c| c.as_str())
        .ok_or((40058, format!("{kind}.content missing")))?;
    if content.is_empty() {
        return Err((44004, "empty content".into()));
    }
    if content.len() > max {
        return Err((40058, format!("{kind}.content exceed max length {max}")));
    }
    for list in ["mentioned_list", "mentioned_mobile_list"] {
        if let Some(l) = inner.get(list) {
            let ok = l
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x.is_string()));
            if !ok {
                return Err((40058, format!("{list} must be a list of strings")));
            }
        }
    }
    Ok(())
}

/// `POST /cgi-bin/webhook/send?key=…`: checks the key, content type, JSON and shape,
/// then the rate (45009 past `limit` messages per `window`), then records the message.
pub async fn wecom_send(
    State(s): State<Arc<WecomState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if q.get("key") != Some(&s.key) {
        return wecom_answer(93000, "invalid webhook url, hint: [stand-in]");
    }
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return wecom_answer(40058, "content-type must be json");
    }
    // Body must be valid UTF-8 JSON.
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return wecom_answer(40058, "Warning: wrong json format.");
    };
    if let Err((code, msg)) = wecom_check_shape(&v) {
        return wecom_answer(code, &msg);
    }
    {
        let mut sent = s.sent.lock().unwrap();
        let now = Instant::now();
        while sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= s.window)
        {
            sent.pop_front();
        }
        if sent.len() >= s.limit {
            s.answered_45009.fetch_add(1, Ordering::SeqCst);
            return wecom_answer(45009, "api freq out of limit");
        }
        sent.push_back(now);
    }
    if let Some(code) = *s.force_errcode.lock().unwrap() {
        return wecom_answer(code, "system busy");
    }
    s.messages.lock().unwrap().push(v);
    wecom_answer(0, "ok")
}

/// Starts a WeCom stand-in for key [`WECOM_KEY`] that accepts `limit` messages per
/// `window`; returns its state and its send URL (`http://127.0.0.1:PORT/cgi-bin/webhook/send`).
pub async fn wecom_server(limit: usize, window: Duration) -> (Arc<WecomState>, String) {
    let state = Arc::new(WecomState {
        key: WECOM_KEY.into(),
        limit,
        window,
        sent: Mutex::new(VecDeque::new()),
        messages: Mutex::new(Vec::new()),
        answered_45009: AtomicUsize::new(0),
        force_errcode: Mutex::new(None),
    });
    let addr = serve(
        Router::new()
            .route(WECOM_PATH, post(wecom_send))
            .with_state(state.clone()),
    )
    .await;
    (state, format!("http://{addr}{WECOM_PATH}"))
}

// ------------------------------------------------------------------------------
// Tencent Cloud SMS stand-in

/// The SecretId the Tencent stand-in knows.
pub const TENCENT_SECRET_ID: &str = "AKIDstandin";
/// The SecretKey it verifies signatures with.
pub const TENCENT_SECRET_KEY: &str = "stand-in-secret-key";
/// The only SmsSdkAppId it accepts.
pub const TENCENT_SDK_APP_ID: &str = "1400006666";
/// The only TemplateId it accepts.
pub const TENCENT_TEMPLATE_ID: &str = "449739";

/// What the Tencent SMS stand-in accepts and what it received.
pub struct TencentState {
    /// The SecretId it knows (the Credential's first part).
    pub secret_id: String,
    /// The key it verifies signatures with.
    pub secret_key: String,
    /// The SmsSdkAppId it accepts.
    pub app_id: String,
    /// The TemplateId it accepts.
    pub template_id: String,
    /// Number → (Code, Message) it always fails with.
    pub fail: HashMap<String, (String, String)>,
    /// Number → (Code, Message) it fails with once.
    pub fail_once: Mutex<HashMap<String, (String, String)>>,
    /// Every request body that passed the checks, as received.
    pub bodies: Mutex<Vec<serde_json::Value>>,
}

/// A Tencent Cloud API error answer (`Response.Error.Code`/`Message`), HTTP 200 as the
/// real API answers.
pub fn tc_error(code: &str, msg: &str) -> Response {
    axum::Json(serde_json::json!({"Response": {
        "Error": {"Code": code, "Message": msg},
        "RequestId": "stand-in-req"}}))
    .into_response()
}

/// A header's value as text, empty when missing or not text.
pub fn header<'a>(h: &'a HeaderMap, n: &str) -> &'a str {
    h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Verifies the request's TC3-HMAC-SHA256 signature from first principles, following
/// Tencent Cloud's signature v3 documentation.
pub fn tc3_verify(
    s: &TencentState,
    h: &HeaderMap,
    body: &[u8],
) -> Result<(), (&'static str, String)> {
    let auth = header(h, "authorization");
    let rest = auth
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or(("AuthFailure.InvalidAuthorization", auth.to_string()))?;
    let mut credential = "";
    let mut signed = "";
    let mut signature = "";
    for part in rest.split(", ") {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = v;
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = v;
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = v;
        }
    }
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 4 || scope[3] != "tc3_request" {
        return Err(("AuthFailure.InvalidAuthorization", credential.to_string()));
    }
    if scope[0] != s.secret_id {
        return Err(("AuthFailure.SecretIdNotFound", scope[0].to_string()));
    }
    let ts: i64 = header(h, "x-tc-timestamp")
        .parse()
        .map_err(|_| ("MissingParameter", "X-TC-Timestamp".to_string()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts).abs() > 300 {
        return Err(("AuthFailure.SignatureExpire", ts.to_string()));
    }
    let date = chrono::DateTime::from_timestamp(ts, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    if scope[1] != date || scope[2] != "sms" {
        return Err((
            "AuthFailure.SignatureFailure",
            format!("scope {credential}"),
        ));
    }
    let names: Vec<&str> = signed.split(';').collect();
    if !names.contains(&"content-type") || !names.contains(&"host") {
        return Err((
            "AuthFailure.SignatureFailure",
            format!("signed headers {signed}"),
        ));
    }
    let mut sorted = names.clone();
    sorted.sort();
    if sorted != names {
        return Err((
            "AuthFailure.SignatureFailure",
            "signed headers unsorted".into(),
        ));
    }
    let canonical_headers: String = names
        .iter()
        .map(|n| format!("{n}:{}\n", header(h, n).trim().to_lowercase()))
        .collect();
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{signed}\n{}",
        hex::encode(Sha256::digest(body))
    );
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{ts}\n{date}/sms/tc3_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac_raw(format!("TC3{}", s.secret_key).as_bytes(), date.as_bytes());
    let k_service = hmac_raw(&k_date, b"sms");
    let k_signing = hmac_raw(&k_service, b"tc3_request");
    if hmac_hex(&k_signing, to_sign.as_bytes()) != signature {
        return Err(("AuthFailure.SignatureFailure", "signature mismatch".into()));
    }
    Ok(())
}

/// `POST /`: the SendSms action (API version 2021-01-11): checks the headers, the
/// signature and the body's fields, records the body, answers a `SendStatusSet` with
/// `Ok` for every number except those in `fail` / `fail_once`.
pub async fn tencent_send(
    State(s): State<Arc<TencentState>>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    if header(&h, "content-type") != "application/json; charset=utf-8" {
        return tc_error("InvalidParameter", "content-type");
    }
    if header(&h, "x-tc-action") != "SendSms" {
        return tc_error("InvalidAction", header(&h, "x-tc-action"));
    }
    if header(&h, "x-tc-version") != "2021-01-11" {
        return tc_error("NoSuchVersion", header(&h, "x-tc-version"));
    }
    if header(&h, "x-tc-region").is_empty() {
        return tc_error("MissingParameter", "X-TC-Region");
    }
    if let Err((code, why)) = tc3_verify(&s, &h, &body) {
        return tc_error(code, &why);
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return tc_error("FailedOperation.FailResolvePacket", "json");
    };
    let numbers: Vec<String> = match v["PhoneNumberSet"].as_array() {
        Some(a) if !a.is_empty() && a.len() <= 200 => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => return tc_error("MissingParameter", "PhoneNumberSet"),
    };
    if v["SmsSdkAppId"] != s.app_id.as_str() {
        return tc_error("InvalidParameterValue.SdkAppIdNotExist", "SmsSdkAppId");
    }
    if v["SignName"].as_str().is_none_or(str::is_empty) {
        return tc_error("MissingParameter", "SignName");
    }
    if v["TemplateId"] != s.template_id.as_str() {
        return tc_error(
            "FailedOperation.TemplateIncorrectOrUnapproved",
            "TemplateId",
        );
    }
    if !v["TemplateParamSet"]
        .as_array()
        .is_some_and(|a| a.iter().all(|p| p.is_string()))
    {
        return tc_error("InvalidParameter", "TemplateParamSet");
    }
    s.bodies.lock().unwrap().push(v.clone());
    let mut once = s.fail_once.lock().unwrap();
    let set: Vec<serde_json::Value> = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (code, msg) = s
                .fail
                .get(n)
                .cloned()
                .or_else(|| once.remove(n))
                .unwrap_or(("Ok".into(), "send success".into()));
            serde_json::json!({"SerialNo": format!("serial-{i}"), "PhoneNumber": n, "Fee": 1,
                "SessionContext": "", "Code": code, "Message": msg, "IsoCode": "CN"})
        })
        .collect();
    axum::Json(serde_json::json!({"Response": {"SendStatusSet": set, "RequestId": "stand-in-req"}}))
        .into_response()
}

/// Starts a Tencent SMS stand-in for [`TENCENT_SECRET_ID`] / [`TENCENT_SECRET_KEY`],
/// app [`TENCENT_SDK_APP_ID`] and template [`TENCENT_TEMPLATE_ID`]; `fail` and
/// `fail_once` are `(number, error code)` pairs. Returns its state and address (the
/// endpoint is `http://ADDR/`).
pub async fn tencent_server(
    fail: &[(&str, &str)],
    fail_once: &[(&str, &str)],
) -> (Arc<TencentState>, SocketAddr) {
    let pairs = |l: &[(&str, &str)]| -> HashMap<String, (String, String)> {
        l.iter()
            .map(|(n, c)| (n.to_string(), (c.to_string(), format!("{c} (stand-in)"))))
            .collect()
    };
    let state = Arc::new(TencentState {
        secret_id: TENCENT_SECRET_ID.into(),
        secret_key: TENCENT_SECRET_KEY.into(),
        app_id: TENCENT_SDK_APP_ID.into(),
        template_id: TENCENT_TEMPLATE_ID.into(),
        fail: pairs(fail),
        fail_once: Mutex::new(pairs(fail_once)),
        bodies: Mutex::new(Vec::new()),
    });
    let addr = serve(
        Router::new()
            .route("/", post(tencent_send))
            .with_state(state.clone()),
    )
    .await;
    (state, addr)
}
