//! The JSON Schema documents under `schemas/json/` match the types. Regenerate with
//! `ARGUS_UPDATE_SCHEMAS=1 cargo test -p argus-schemas --test json_schema`.

use std::path::PathBuf;

#[test]
fn checked_in_schemas_match_the_code() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("json");
    let docs = argus_schemas::json_schema::documents();
    if std::env::var_os("ARGUS_UPDATE_SCHEMAS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &docs {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut generated: Vec<String> = docs.iter().map(|(n, _)| n.clone()).collect();
    generated.sort();
    assert_eq!(
        on_disk, generated,
        "files under schemas/json differ from the generated set"
    );
    for (name, text) in &docs {
        let disk = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(
            disk == *text,
            "schemas/json/{name} has drifted from the code; run ARGUS_UPDATE_SCHEMAS=1 cargo test -p argus-schemas --test json_schema"
        );
    }
}

/// The envelope schema accepts the golden fixtures' shape: every `type` it lists
/// resolves to a payload document that exists.
#[test]
fn event_schema_names_every_payload_document() {
    let docs = argus_schemas::json_schema::documents();
    let event: serde_json::Value = serde_json::from_str(
        &docs
            .iter()
            .find(|(n, _)| n == "event.schema.json")
            .unwrap()
            .1,
    )
    .unwrap();
    for v in event["oneOf"].as_array().unwrap() {
        let file = v["properties"]["payload"]["$ref"].as_str().unwrap();
        assert!(docs.iter().any(|(n, _)| n == file), "{file} missing");
    }
}
