//! The Alertmanager v2 API: JSON shapes and error answers as Alertmanager 0.25 gives
//! them (observed against Debian's prometheus-alertmanager 0.25).

mod am_common;

use std::sync::Arc;

use am_common::{api_with, call, call_json, silences, temp_log};
use argus_rules::silences::ManualClock;
use argus_schemas::Timestamp;
use axum::http::StatusCode;
use serde_json::json;

const T0: &str = "2030-03-01T00:00:00Z";

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

async fn setup(yaml: &str) -> (axum::Router, Arc<ManualClock>, tempfile::TempDir) {
    let (log, dir) = temp_log().await;
    let clock = Arc::new(ManualClock::new(ts(T0)));
    let (_api, router) = api_with(silences(&log, clock.clone()), yaml);
    (router, clock, dir)
}

fn silence_body(matchers: serde_json::Value, start: &str, end: &str) -> String {
    json!({"matchers": matchers, "startsAt": start, "endsAt": end, "createdBy": "me", "comment": "c"})
        .to_string()
}

fn eq(name: &str, value: &str) -> serde_json::Value {
    json!({"name": name, "value": value, "isRegex": false, "isEqual": true})
}

async fn post_silence(r: &axum::Router, body: &str) -> String {
    let (s, v) = call_json(r, "POST", "/api/v2/silences", body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["silenceID"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn silences_have_alertmanagers_json() {
    let (r, clock, _d) = setup("{}").await;
    let body = silence_body(
        json!([eq("alertname", "X")]),
        "2030-02-28T23:00:00Z",
        "2030-03-01T02:00:00Z",
    );
    let (s, raw) = call(&r, "POST", "/api/v2/silences", &body).await;
    assert_eq!(s, StatusCode::OK);
    let id = serde_json::from_str::<serde_json::Value>(&raw).unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(raw, format!("{{\"silenceID\":\"{id}\"}}\n"));

    let (s, raw) = call(&r, "GET", &format!("/api/v2/silence/{id}"), "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        raw,
        format!(
            "{{\"id\":\"{id}\",\"status\":{{\"state\":\"active\"}},\"updatedAt\":\"2030-03-01T00:00:00.000Z\",\
             \"comment\":\"c\",\"createdBy\":\"me\",\"endsAt\":\"2030-03-01T02:00:00.000Z\",\
             \"matchers\":[{{\"isEqual\":true,\"isRegex\":false,\"name\":\"alertname\",\"value\":\"X\"}}],\
             \"startsAt\":\"2030-03-01T00:00:00.000Z\"}}\n"
        )
    );

    // Order: active by end, then pending by start, then expired, newest end first.
    let short = post_silence(
        &r,
        &silence_body(json!([eq("a", "1")]), T0, "2030-03-01T01:00:00Z"),
    )
    .await;
    let pend_late = post_silence(
        &r,
        &silence_body(
            json!([eq("a", "2")]),
            "2030-03-02T00:00:00Z",
            "2030-03-03T00:00:00Z",
        ),
    )
    .await;
    let pend_soon = post_silence(
        &r,
        &silence_body(
            json!([eq("a", "3")]),
            "2030-03-01T12:00:00Z",
            "2030-03-04T00:00:00Z",
        ),
    )
    .await;
    let exp_old = post_silence(
        &r,
        &silence_body(json!([eq("a", "4")]), T0, "2030-03-05T00:00:00Z"),
    )
    .await;
    let exp_new = post_silence(
        &r,
        &silence_body(json!([eq("a", "5")]), T0, "2030-03-05T00:00:00Z"),
    )
    .await;
    clock.set(ts("2030-03-01T00:10:00Z"));
    assert_eq!(
        call(&r, "DELETE", &format!("/api/v2/silence/{exp_old}"), "").await,
        (StatusCode::OK, String::new())
    );
    clock.set(ts("2030-03-01T00:20:00Z"));
    call(&r, "DELETE", &format!("/api/v2/silence/{exp_new}"), "").await;
    let (_, v) = call_json(&r, "GET", "/api/v2/silences", "").await;
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![
            short.as_str(),
            &id,
            &pend_soon,
            &pend_late,
            &exp_new,
            &exp_old
        ]
    );
    let states: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"]["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "active", "active", "pending", "pending", "expired", "expired"
        ]
    );
    assert_eq!(v[4]["endsAt"], "2030-03-01T00:20:00.000Z");

    // filter= keeps silences having that exact matcher.
    let (_, v) = call_json(&r, "GET", "/api/v2/silences?filter=alertname%3D%22X%22", "").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], id.as_str());
    let (_, v) = call_json(&r, "GET", "/api/v2/silences?filter=alertname%3D~X", "").await;
    assert_eq!(v, json!([]));

    // Update in place (comment), then replace (matchers).
    let mut up: serde_json::Value = serde_json::from_str(&body).unwrap();
    up["id"] = json!(id);
    up["startsAt"] = json!("2030-03-01T00:00:00.000Z");
    up["comment"] = json!("updated");
    assert_eq!(post_silence(&r, &up.to_string()).await, id);
    let (_, v) = call_json(&r, "GET", &format!("/api/v2/silence/{id}"), "").await;
    assert_eq!(
        (v["comment"].as_str(), v["status"]["state"].as_str()),
        (Some("updated"), Some("active"))
    );
    up["matchers"] = json!([eq("alertname", "Z")]);
    let new_id = post_silence(&r, &up.to_string()).await;
    assert_ne!(new_id, id);
    let (_, v) = call_json(&r, "GET", &format!("/api/v2/silence/{id}"), "").await;
    assert_eq!(v["status"]["state"], "expired");
}

#[tokio::test]
async fn silence_errors_are_alertmanagers() {
    let (r, _clock, _d) = setup("{}").await;
    let m = json!([eq("a", "x")]);
    let cases: Vec<(String, StatusCode, serde_json::Value)> = vec![
        (
            silence_body(json!([{"name":"alertname","value":".*","isRegex":true,"isEqual":true}]), T0, "2030-03-01T03:00:00Z"),
            StatusCode::BAD_REQUEST,
            json!("silence invalid: at least one matcher must not match the empty string"),
        ),
        (
            silence_body(m.clone(), "2030-03-01T04:00:00Z", "2030-03-01T03:00:00Z"),
            StatusCode::BAD_REQUEST,
            json!("Failed to create silence: start time must be before end time"),
        ),
        (
            silence_body(m.clone(), "2030-03-01T03:00:00Z", "2030-03-01T03:00:00Z"),
            StatusCode::BAD_REQUEST,
            json!("Failed to create silence: start time must be before end time"),
        ),
        (
            silence_body(m.clone(), "2030-02-28T00:00:00Z", "2030-02-28T00:30:00Z"),
            StatusCode::BAD_REQUEST,
            json!("Failed to create silence: end time can't be in the past"),
        ),
        (
            silence_body(json!([]), T0, "2030-03-01T03:00:00Z"),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code":612,"message":"matchers in body should have at least 1 items"}),
        ),
        (
            json!({"matchers": m, "startsAt": T0, "endsAt": "2030-03-01T03:00:00Z", "comment": "c"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code":602,"message":"createdBy in body is required"}),
        ),
        (
            silence_body(json!([{"name":"a","value":"x"}]), T0, "2030-03-01T03:00:00Z"),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code":602,"message":"matchers.0.isRegex in body is required"}),
        ),
        (
            silence_body(json!([eq("alert-name", "X")]), T0, "2030-03-01T03:00:00Z"),
            StatusCode::BAD_REQUEST,
            json!("silence invalid: invalid label matcher 0: invalid label name \"alert-name\""),
        ),
        (
            {
                let mut b: serde_json::Value = serde_json::from_str(&silence_body(m.clone(), T0, "2030-03-01T03:00:00Z")).unwrap();
                b["id"] = json!("0b4f012f-6008-46ce-98fb-fe463fbbde42");
                b.to_string()
            },
            StatusCode::NOT_FOUND,
            json!("silence not found"),
        ),
        (
            String::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code":602,"message":"silence in body is required"}),
        ),
    ];
    for (body, status, want) in cases {
        let (s, v) = call_json(&r, "POST", "/api/v2/silences", &body).await;
        assert_eq!((s, &v), (status, &want), "body {body}");
    }
    let (s, v) = call_json(&r, "POST", "/api/v2/silences", "garbage").await;
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(400))
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("parsing silence body from \"\" failed, because ")
    );
    let (s, v) = call_json(
        &r,
        "POST",
        "/api/v2/silences",
        &silence_body(m.clone(), "notatime", T0),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(400))
    );

    // Invalid regexes are reported with the matcher's index.
    let (s, v) = call_json(
        &r,
        "POST",
        "/api/v2/silences",
        &silence_body(
            json!([eq("a", "x"), {"name":"b","value":"(","isRegex":true}]),
            T0,
            "2030-03-01T03:00:00Z",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v.as_str().unwrap().starts_with("silence invalid: invalid label matcher 1: invalid regular expression \"(\": error parsing regexp:"), "{v}");

    assert_eq!(
        call_json(&r, "GET", "/api/v2/silence/abc", "").await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code":601,"message":"silenceID in path must be of type uuid: \"abc\""})
        )
    );
    let unknown = "/api/v2/silence/00000000-0000-0000-0000-000000000000";
    assert_eq!(
        call(&r, "GET", unknown, "").await,
        (StatusCode::NOT_FOUND, String::new())
    );
    assert_eq!(
        call_json(&r, "DELETE", unknown, "").await,
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!("silence not found")
        )
    );
    assert_eq!(
        call_json(&r, "GET", "/api/v2/silences?filter=foo", "").await,
        (StatusCode::BAD_REQUEST, json!("bad matcher format: foo"))
    );
    // Nothing was created by the failed requests.
    assert_eq!(
        call_json(&r, "GET", "/api/v2/silences", "").await.1,
        json!([])
    );
}

#[tokio::test]
async fn alerts_post_get_filter_and_merge() {
    let (r, clock, _d) = setup("{}").await;
    let (s, b) = call(
        &r,
        "POST",
        "/api/v2/alerts",
        &json!([
            {"labels":{"alertname":"X","severity":"warning","cluster":"c1"},"annotations":{"summary":"s"},"generatorURL":"http://prom/graph"},
            {"labels":{"alertname":"Other","job":"y","empty":""},"startsAt":"2030-02-28T00:00:00Z"}
        ])
        .to_string(),
    )
    .await;
    assert_eq!((s, b.as_str()), (StatusCode::OK, ""));

    let (s, raw) = call(&r, "GET", "/api/v2/alerts", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        raw,
        "[{\"annotations\":{},\"endsAt\":\"2030-03-01T00:05:00.000Z\",\"fingerprint\":\"0b992fcb3e693444\",\
         \"receivers\":[{\"name\":\"default\"}],\"startsAt\":\"2030-02-28T00:00:00.000Z\",\
         \"status\":{\"inhibitedBy\":[],\"silencedBy\":[],\"state\":\"active\"},\"updatedAt\":\"2030-03-01T00:00:00.000Z\",\
         \"labels\":{\"alertname\":\"Other\",\"job\":\"y\"}},\
         {\"annotations\":{\"summary\":\"s\"},\"endsAt\":\"2030-03-01T00:05:00.000Z\",\"fingerprint\":\"b647c6f03f4fbf67\",\
         \"receivers\":[{\"name\":\"default\"}],\"startsAt\":\"2030-03-01T00:00:00.000Z\",\
         \"status\":{\"inhibitedBy\":[],\"silencedBy\":[],\"state\":\"active\"},\"updatedAt\":\"2030-03-01T00:00:00.000Z\",\
         \"generatorURL\":\"http://prom/graph\",\"labels\":{\"alertname\":\"X\",\"cluster\":\"c1\",\"severity\":\"warning\"}}]\n"
    );

    // A silence suppresses X.
    let sid = post_silence(
        &r,
        &silence_body(json!([eq("alertname", "X")]), T0, "2030-03-01T02:00:00Z"),
    )
    .await;
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, v) = call_json(&r, "GET", "/api/v2/alerts", "").await;
    assert_eq!(
        v[1]["status"],
        json!({"inhibitedBy":[],"silencedBy":[sid],"state":"suppressed"})
    );
    assert_eq!(
        names(
            &call_json(&r, "GET", "/api/v2/alerts?silenced=false", "")
                .await
                .1
        ),
        ["Other"]
    );
    assert_eq!(
        names(
            &call_json(&r, "GET", "/api/v2/alerts?active=false", "")
                .await
                .1
        ),
        ["X"]
    );
    assert_eq!(
        names(
            &call_json(
                &r,
                "GET",
                "/api/v2/alerts?active=true&inhibited=false&silenced=false&unprocessed=false",
                ""
            )
            .await
            .1
        ),
        ["Other"]
    );
    assert_eq!(
        names(
            &call_json(
                &r,
                "GET",
                "/api/v2/alerts?filter=alertname%3D%22Other%22",
                ""
            )
            .await
            .1
        ),
        ["Other"]
    );
    // Alertmanager's filter quirk: label="" also accepts alerts without the label.
    assert_eq!(
        names(
            &call_json(&r, "GET", "/api/v2/alerts?filter=job%3D%22%22", "")
                .await
                .1
        ),
        ["X"]
    );
    assert_eq!(
        names(
            &call_json(
                &r,
                "GET",
                "/api/v2/alerts?filter=alertname%3D~%22O.*%22&filter=job%3Dy",
                ""
            )
            .await
            .1
        ),
        ["Other"]
    );
    assert_eq!(
        names(
            &call_json(&r, "GET", "/api/v2/alerts?receiver=def", "")
                .await
                .1
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        names(
            &call_json(&r, "GET", "/api/v2/alerts?receiver=def.*", "")
                .await
                .1
        ),
        ["Other", "X"]
    );
    let (s, v) = call_json(&r, "GET", "/api/v2/alerts?receiver=(", "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v.as_str()
            .unwrap()
            .starts_with("failed to parse receiver param: error parsing regexp:")
    );
    assert_eq!(
        call_json(&r, "GET", "/api/v2/alerts?filter=foo", "").await,
        (StatusCode::BAD_REQUEST, json!("bad matcher format: foo"))
    );

    // Re-posted: the earliest start is kept, the newer annotations win.
    clock.set(ts("2030-03-01T00:01:00Z"));
    call(&r, "POST", "/api/v2/alerts", &json!([{"labels":{"alertname":"Other","job":"y"},"annotations":{"n":"2"},"startsAt":"2030-02-28T12:00:00Z"}]).to_string()).await;
    let (_, v) = call_json(&r, "GET", "/api/v2/alerts?filter=alertname%3DOther", "").await;
    assert_eq!(v[0]["startsAt"], "2030-02-28T00:00:00.000Z");
    assert_eq!(v[0]["annotations"], json!({"n":"2"}));
    assert_eq!(v[0]["endsAt"], "2030-03-01T00:06:00.000Z");
    // Resolved by an end in the past: no longer listed.
    call(
        &r,
        "POST",
        "/api/v2/alerts",
        &json!([{"labels":{"alertname":"Other","job":"y"},"endsAt":"2030-03-01T00:00:30Z"}])
            .to_string(),
    )
    .await;
    assert_eq!(
        names(&call_json(&r, "GET", "/api/v2/alerts", "").await.1),
        ["X"]
    );
    // Without re-posting, an alert resolves when its resolve timeout passes.
    clock.set(ts("2030-03-01T00:05:00Z"));
    assert_eq!(
        names(&call_json(&r, "GET", "/api/v2/alerts", "").await.1),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn alert_post_errors_are_alertmanagers() {
    let (r, _clock, _d) = setup("{}").await;
    let cases = [
        (json!([{"labels":{}}]).to_string(), StatusCode::BAD_REQUEST, json!("at least one label pair required")),
        (json!([{"labels":{"a":""}}]).to_string(), StatusCode::BAD_REQUEST, json!("at least one label pair required")),
        (json!([{"labels":{"a-b":"x"}}]).to_string(), StatusCode::BAD_REQUEST, json!("invalid label set: invalid name \"a-b\"")),
        (
            json!([{"labels":{"a":"x"},"startsAt":"2030-03-01T05:00:00Z","endsAt":"2030-03-01T04:00:00Z"}]).to_string(),
            StatusCode::BAD_REQUEST,
            json!("start time must be before end time"),
        ),
        (json!([{"labels":{"a":"x"},"annotations":{"b-c":"x"}}]).to_string(), StatusCode::BAD_REQUEST, json!("invalid annotations: invalid name \"b-c\"")),
        (
            json!([{"labels":{}},{"labels":{"a-b":"x"}}]).to_string(),
            StatusCode::BAD_REQUEST,
            json!("at least one label pair required; invalid label set: invalid name \"a-b\""),
        ),
        (json!([{"annotations":{"x":"y"}}]).to_string(), StatusCode::UNPROCESSABLE_ENTITY, json!({"code":602,"message":"0.labels in body is required"})),
        (
            json!({"labels":{"a":"x"}}).to_string(),
            StatusCode::BAD_REQUEST,
            json!({"code":400,"message":"parsing alerts body from \"\" failed, because json: cannot unmarshal object into Go value of type models.PostableAlerts"}),
        ),
        (
            json!([{"labels":{"a":"x"},"generatorURL":"not a url"}]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code":601,"message":"0.generatorURL in body must be of type uri: \"not a url\""}),
        ),
    ];
    for (body, status, want) in cases {
        assert_eq!(
            call_json(&r, "POST", "/api/v2/alerts", &body).await,
            (status, want),
            "{body}"
        );
    }
    // The valid alerts of a partly invalid batch are stored; shape errors store nothing.
    call(
        &r,
        "POST",
        "/api/v2/alerts",
        &json!([{"labels":{}}, {"labels":{"alertname":"Ok"}}]).to_string(),
    )
    .await;
    let (_, v) = call_json(&r, "GET", "/api/v2/alerts", "").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["labels"], json!({"alertname":"Ok"}));
}

#[tokio::test]
async fn groups_receivers_and_status() {
    let yaml = "route: {receiver: default, group_by: [alertname], receivers: [team-x]}\nresolve_timeout: 10m\n";
    let (r, _clock, _d) = setup(yaml).await;
    call(
        &r,
        "POST",
        "/api/v2/alerts",
        &json!([
            {"labels":{"alertname":"B","instance":"i1"}},
            {"labels":{"alertname":"A","instance":"i2"}},
            {"labels":{"alertname":"A","instance":"i1"}}
        ])
        .to_string(),
    )
    .await;
    let (s, v) = call_json(&r, "GET", "/api/v2/alerts/groups", "").await;
    assert_eq!(s, StatusCode::OK);
    let groups = v.as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["labels"], json!({"alertname":"A"}));
    assert_eq!(groups[0]["receiver"], json!({"name":"default"}));
    let inst: Vec<&str> = groups[0]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["instance"].as_str().unwrap())
        .collect();
    assert_eq!(inst, ["i1", "i2"]);
    assert_eq!(groups[0]["alerts"][0]["endsAt"], "2030-03-01T00:10:00.000Z");
    assert_eq!(groups[1]["labels"], json!({"alertname":"B"}));
    let keys: Vec<&String> = groups[1].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["alerts", "labels", "receiver"]);
    let (_, v) = call_json(&r, "GET", "/api/v2/alerts/groups?filter=alertname%3DB", "").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, v) = call_json(&r, "GET", "/api/v2/alerts/groups?receiver=team-x", "").await;
    assert_eq!(v, json!([]));

    assert_eq!(
        call_json(&r, "GET", "/api/v2/receivers", "").await,
        (
            StatusCode::OK,
            json!([{"name":"default"},{"name":"team-x"}])
        )
    );

    let (s, v) = call_json(&r, "GET", "/api/v2/status", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["cluster"], json!({"peers":[],"status":"disabled"}));
    assert_eq!(v["versionInfo"]["version"], "0.25.0");
    for k in ["branch", "buildDate", "buildUser", "goVersion", "revision"] {
        assert!(v["versionInfo"][k].is_string(), "{k}");
    }
    let original = v["config"]["original"].as_str().unwrap();
    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(original).unwrap();
    assert_eq!(parsed["route"]["receiver"].as_str(), Some("default"));
    assert_eq!(parsed["global"]["resolve_timeout"].as_str(), Some("10m"));
    assert_eq!(parsed["receivers"][1]["name"].as_str(), Some("team-x"));
    let uptime = v["uptime"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(uptime).is_ok()
            && uptime.ends_with('Z')
            && uptime.len() == 24,
        "{uptime}"
    );
}
