//! The services the test command starts are the ones later issues need: a Kafka-protocol
//! broker, Debian's ClickHouse 18.16 and the current ClickHouse engine, all answering.

fn require(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("ARGUS_REQUIRE_SERVICES").is_err(),
                "ARGUS_REQUIRE_SERVICES is set but {var} is not"
            );
            eprintln!("{var} not set: skipping");
            None
        }
    }
}

async fn clickhouse_version(url: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{url}/"))
        .body("SELECT version()")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.text().await.unwrap().trim().to_string()
}

#[tokio::test]
async fn both_clickhouse_engines_answer() {
    let (Some(old), Some(modern)) = (
        require("ARGUS_TEST_CLICKHOUSE_URL"),
        require("ARGUS_TEST_CLICKHOUSE_MODERN_URL"),
    ) else {
        return;
    };
    let v_old = clickhouse_version(&old).await;
    let v_new = clickhouse_version(&modern).await;
    assert!(v_old.starts_with("18.16."), "Debian's server: {v_old}");
    let major: u32 = v_new.split('.').next().unwrap().parse().unwrap();
    assert!(major >= 24, "the current engine: {v_new}");
}
