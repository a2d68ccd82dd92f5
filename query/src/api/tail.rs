//! `/loki/api/v1/tail`: a WebSocket that sends new log lines as they are stored.
//! Parameters as Loki's: `query` (a log query), `delay_for` (seconds, at most 5),
//! `limit` (default 100), `start` (default one hour ago). Each message is
//! `{"streams":[{"stream":{…},"values":[["<ns>","line"]]}],"dropped_entries":null}`.
//!
//! Lines are found by polling the store once a second for entries after the last one
//! sent; lines with the same timestamp as the last one sent are remembered so none is
//! sent twice.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::params::{Params, now_ns, parse_limit, parse_time};
use super::{ApiState, error_response, tenant};
use crate::engine::{QueryData, QueryKind, QueryParams};
use crate::error::{QueryError, Result};
use crate::logql::ast::Expr;
use crate::store::Direction;

const MAX_DELAY_SECS: i64 = 5;

struct TailRequest {
    tenant: String,
    query: String,
    delay: i64,
    limit: u32,
    start: i64,
}

fn parse_request(headers: &HeaderMap, p: &Params) -> Result<TailRequest> {
    let tenant = tenant(headers)?;
    let query = p
        .get("query")
        .ok_or_else(|| QueryError::BadParam("missing query parameter".into()))?
        .to_string();
    if !matches!(crate::logql::parse(&query)?, Expr::Log(_)) {
        return Err(QueryError::BadParam(
            "tail requires a log query, not a metric query".into(),
        ));
    }
    let delay = match p.get("delay_for") {
        None => 0,
        Some(v) => v.parse::<i64>().map_err(|_| {
            QueryError::BadParam(format!(
                "invalid parameter \"delay_for\": cannot parse \"{v}\" to a valid integer"
            ))
        })?,
    };
    if delay > MAX_DELAY_SECS {
        return Err(QueryError::BadParam(format!(
            "delay_for can't be greater than {MAX_DELAY_SECS}"
        )));
    }
    Ok(TailRequest {
        tenant,
        query,
        delay: delay.max(0) * 1_000_000_000,
        limit: parse_limit(p)?,
        start: parse_time("start", p.get("start"), now_ns() - 3600 * 1_000_000_000)?,
    })
}

pub(super) async fn tail(
    State(st): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let mut p = Params::default();
    if let Some(q) = raw {
        p.extend_from_urlencoded(&q);
    }
    match parse_request(&headers, &p) {
        Ok(req) => ws
            .on_upgrade(move |socket| run(st, req, socket))
            .into_response(),
        Err(e) => error_response("tail", &e),
    }
}

async fn run(st: ApiState, req: TailRequest, mut socket: WebSocket) {
    let mut from = req.start;
    // Lines already sent whose timestamp equals `from` (the next poll includes `from`).
    let mut sent_at_from: HashSet<(String, String)> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            },
            _ = tick.tick() => {}
        }
        let until = now_ns() - req.delay;
        if until <= from {
            continue;
        }
        let params = QueryParams {
            tenant: req.tenant.clone(),
            query: req.query.clone(),
            kind: QueryKind::Range,
            start: from,
            end: until,
            // One step spanning the whole poll: log queries only check the step count.
            step: (until - from).max(1),
            interval: 0,
            limit: req.limit,
            direction: Direction::Forward,
        };
        let resp = match st.engine.query(&params).await {
            Ok(r) => r,
            Err(e) => {
                let _ = socket
                    .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                        code: 1011,
                        reason: e.to_string().chars().take(120).collect::<String>().into(),
                    })))
                    .await;
                return;
            }
        };
        let QueryData::Streams(streams) = resp.data else {
            return;
        };
        let mut newest = from;
        let mut out = Vec::new();
        let mut fresh = Vec::new();
        for s in &streams {
            let key = s.labels.to_string();
            let values: Vec<_> = s
                .entries
                .iter()
                .filter(|(ts, line, _)| {
                    *ts > from || !sent_at_from.contains(&(key.clone(), format!("{ts} {line}")))
                })
                .map(|(ts, line, _)| {
                    newest = newest.max(*ts);
                    fresh.push((key.clone(), *ts, line.clone()));
                    json!([ts.to_string(), line])
                })
                .collect();
            if !values.is_empty() {
                out.push(json!({"stream": s.labels, "values": values}));
            }
        }
        if out.is_empty() {
            // Nothing new: everything before `until` has been seen (unless the limit cut
            // the answer short, in which case `fresh` would not be empty).
            continue;
        }
        if newest > from {
            sent_at_from.clear();
            from = newest;
        }
        for (key, ts, line) in fresh {
            if ts == from {
                sent_at_from.insert((key, format!("{ts} {line}")));
            }
        }
        let msg = json!({"streams": out, "dropped_entries": null}).to_string();
        if socket.send(Message::Text(msg.into())).await.is_err() {
            return;
        }
    }
}
