//! Wire-format tests: fingerprints, golden fixtures, versions, malformed records.

use argus_schemas::*;

/// Values computed independently (Python's `xxhash.xxh3_64` over the documented byte
/// layout). A change here breaks every key on every existing log.
#[test]
fn fingerprint_golden() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "2d06800538d394c2"),
        (&[("a", "1")], "ec77f7b8249c519f"),
        (
            &[
                ("__name__", "up"),
                ("job", "node"),
                ("instance", "localhost:9100"),
            ],
            "dbf5aea06e0cf60b",
        ),
        (
            &[("app", "nginx"), ("namespace", "web")],
            "303ee681335f523a",
        ),
        (
            &[("ünïcode", "值"), ("b", "a=b,c}\"\\\n")],
            "d072e7a49d1d010a",
        ),
    ];
    for (pairs, want) in cases {
        assert_eq!(
            fingerprint(pairs.iter().copied()).to_string(),
            *want,
            "{pairs:?}"
        );
        let labels = Labels::from_pairs(pairs.iter().copied());
        assert_eq!(
            labels.fingerprint().to_string(),
            *want,
            "{pairs:?} via Labels"
        );
    }
}

#[test]
fn fingerprint_ignores_order_and_separates_fields() {
    let a = fingerprint([("a", "1"), ("b", "2")]);
    assert_eq!(a, fingerprint([("b", "2"), ("a", "1")]));
    // Moving bytes between name and value, or between labels, changes the fingerprint.
    assert_ne!(fingerprint([("ab", "c")]), fingerprint([("a", "bc")]));
    assert_ne!(
        fingerprint([("a", "1b"), ("c", "")]),
        fingerprint([("a", "1"), ("bc", "")])
    );
    assert_ne!(
        fingerprint([("a", "")]),
        fingerprint::<[(&str, &str); 0]>([])
    );
}

#[test]
fn labels_deserialize_sorted_and_reject_duplicates() {
    let l: Labels = serde_json::from_str(r#"{"z":"1","a":"2","m":"3"}"#).unwrap();
    assert_eq!(
        l.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        ["a", "m", "z"]
    );
    assert_eq!(l.to_string(), r#"{a="2", m="3", z="1"}"#);
    let e = serde_json::from_str::<Labels>(r#"{"a":"1","a":"2"}"#).unwrap_err();
    assert!(e.to_string().contains("duplicate label name \"a\""), "{e}");
    let e = serde_json::from_str::<Labels>(r#"{"a":1}"#).unwrap_err();
    assert!(e.to_string().contains("expected a string"), "{e}");
}

const FIXTURES: &[(&str, &str)] = &[
    (
        "metric_samples",
        include_str!("golden/v1/metric_samples.json"),
    ),
    ("log_entry", include_str!("golden/v1/log_entry.json")),
    ("node_event", include_str!("golden/v1/node_event.json")),
    (
        "security_finding",
        include_str!("golden/v1/security_finding.json"),
    ),
    (
        "alert_transition",
        include_str!("golden/v1/alert_transition.json"),
    ),
    ("alert_batch", include_str!("golden/v1/alert_batch.json")),
    (
        "silence_change",
        include_str!("golden/v1/silence_change.json"),
    ),
    (
        "notification_attempt",
        include_str!("golden/v1/notification_attempt.json"),
    ),
    ("audit", include_str!("golden/v1/audit.json")),
];

/// Every v1 fixture decodes, and encoding it again gives the same JSON value. Readers
/// must keep accepting these as long as the project lives.
#[test]
fn golden_v1_fixtures_round_trip() {
    assert_eq!(
        FIXTURES.len(),
        RecordKind::ALL.len(),
        "one fixture per record type"
    );
    for (name, text) in FIXTURES {
        let env = decode(text.trim().as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(env.kind().as_str(), *name);
        assert_eq!(env.version, 1);
        let again: serde_json::Value = serde_json::from_slice(&encode(&env)).unwrap();
        let want: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(again, want, "{name} does not round-trip");
        assert_eq!(
            encode(&decode(&encode(&env)).unwrap()),
            encode(&env),
            "{name}"
        );
    }
}

#[test]
fn golden_keys_are_default_keys() {
    for (name, text) in FIXTURES {
        let env = decode(text.trim().as_bytes()).unwrap();
        if *name != "notification_attempt" && *name != "alert_transition" {
            assert_eq!(env.key, env.payload.default_key(&env.tenant), "{name}");
        }
    }
}

#[test]
fn special_float_values_survive() {
    let env = decode(FIXTURES[0].1.trim().as_bytes()).unwrap();
    let Payload::MetricSamples(m) = &env.payload else {
        panic!()
    };
    assert_eq!(m.samples[0].value, 1027.5);
    assert!(m.samples[1].value.is_nan());
    assert_ne!(m.samples[1].value.to_bits(), STALE_NAN_BITS);
    assert_eq!(m.samples[2].value, f64::INFINITY);
    assert_eq!(m.samples[3].value.to_bits(), STALE_NAN_BITS);
}

fn with(text: &str, f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn newer_version_is_rejected_with_reason() {
    let b = with(FIXTURES[1].1, |v| v["version"] = 7.into());
    let e = decode(&b).unwrap_err();
    assert_eq!(e.code(), "newer_version");
    assert_eq!(
        e.to_string(),
        "log_entry version 7 is newer than this build reads (up to 1)"
    );
    let b = with(FIXTURES[1].1, |v| v["version"] = 0.into());
    assert_eq!(decode(&b).unwrap_err().code(), "bad_version");
}

#[test]
fn malformed_records_are_rejected_with_reasons() {
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (b"not json".to_vec(), "json", "not valid JSON"),
        (b"{\"type\":\"log_entry\"".to_vec(), "json", "EOF"),
        (
            with(FIXTURES[1].1, |v| v["type"] = "weather".into()),
            "unknown_type",
            "\"weather\"",
        ),
        (
            with(FIXTURES[1].1, |v| {
                v.as_object_mut().unwrap().remove("tenant");
            }),
            "json",
            "missing field `tenant`",
        ),
        (
            with(FIXTURES[1].1, |v| v["tenant"] = "a/b".into()),
            "invalid",
            "contains '/'",
        ),
        (
            with(FIXTURES[1].1, |v| v["key"] = "".into()),
            "invalid",
            "invalid key",
        ),
        (
            with(FIXTURES[1].1, |v| v["payload"]["line"] = 5.into()),
            "payload",
            "log_entry payload: invalid type: integer `5`, expected a string",
        ),
        (
            with(FIXTURES[1].1, |v| {
                v["payload"]["labels"] = serde_json::json!({})
            }),
            "invalid",
            "a log stream needs at least one label",
        ),
        (
            with(FIXTURES[1].1, |v| v["payload"]["colour"] = "red".into()),
            "payload",
            "unknown field `colour`",
        ),
        (
            with(FIXTURES[0].1, |v| {
                v["payload"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("__name__");
            }),
            "invalid",
            "__name__",
        ),
        (
            with(FIXTURES[0].1, |v| {
                v["payload"]["samples"][0]["value"] = "lots".into()
            }),
            "payload",
            "\"lots\" is not a number",
        ),
        (
            with(FIXTURES[1].1, |v| v["extra"] = 1.into()),
            "json",
            "unknown field `extra`",
        ),
        (
            with(FIXTURES[2].1, |v| v["payload"]["severity"] = "fatal".into()),
            "payload",
            "unknown variant `fatal`",
        ),
    ];
    for (bytes, code, needle) in cases {
        let e = decode(&bytes).unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        assert!(e.to_string().contains(needle), "{e:?} lacks {needle:?}");
    }
}

#[test]
fn alert_batches_name_the_bad_alert() {
    let batch = FIXTURES
        .iter()
        .find(|(n, _)| *n == "alert_batch")
        .unwrap()
        .1;
    let env = decode(batch.trim().as_bytes()).unwrap();
    let Payload::AlertBatch(b) = &env.payload else {
        panic!("{env:?}")
    };
    assert_eq!(b.alerts.len(), 2);
    assert_eq!(b.alerts[1].to, AlertState::Resolved);
    assert_eq!(env.key, env.payload.default_key(&env.tenant));
    assert_eq!(env.kind().topic(), topics::ALERTS);

    let e = decode(&with(batch, |v| {
        v["payload"]["alerts"] = serde_json::json!([])
    }))
    .unwrap_err();
    assert_eq!(e.code(), "invalid");
    assert!(e.to_string().contains("payload.alerts"), "{e}");
    let e = decode(&with(batch, |v| {
        v["payload"]["alerts"][1]["labels"] = serde_json::json!({})
    }))
    .unwrap_err();
    assert_eq!(e.code(), "invalid");
    assert!(e.to_string().contains("payload.alerts[1].labels"), "{e}");
    let e = decode(&with(batch, |v| {
        v["payload"]["alerts"][0]["to"] = "burning".into()
    }))
    .unwrap_err();
    assert!(e.to_string().contains("unknown variant `burning`"), "{e}");
}

#[test]
fn external_events_get_defaults() {
    let obj = serde_json::json!({
        "type": "log_entry",
        "payload": {"labels": {"app": "x"}, "timestamp": "2023-11-14T22:13:20Z", "line": "hello"}
    });
    let env = decode_external(obj.as_object().unwrap().clone(), "team-b", "api").unwrap();
    assert_eq!(env.tenant, "team-b");
    assert_eq!(env.source, "api");
    assert_eq!(env.version, 1);
    assert_eq!(env.key, fingerprint([("app", "x")]).to_string());
    let Payload::LogEntry(e) = &env.payload else {
        panic!()
    };
    assert_eq!(e.timestamp, Timestamp(1_700_000_000_000_000_000));

    let obj = serde_json::json!({"payload": {}});
    let e = decode_external(obj.as_object().unwrap().clone(), "t", "api").unwrap_err();
    assert_eq!(e.to_string(), "invalid type: missing");
}

#[test]
fn every_kind_has_a_topic() {
    for k in RecordKind::ALL {
        assert!(topics::ALL.contains(&k.topic()));
        assert_eq!(RecordKind::parse(k.as_str()), Some(k));
    }
}

#[test]
fn tenant_rules() {
    assert!(validate_tenant("team-a").is_ok());
    assert!(validate_tenant("a.b_c(1)*").is_ok());
    assert!(validate_tenant("").is_err());
    assert!(validate_tenant("..").is_err());
    assert!(validate_tenant(&"x".repeat(151)).is_err());
    assert!(validate_tenant("a b").is_err());
}
