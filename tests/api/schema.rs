//! The checked-in schema and its documentation.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

crate::on_both_backends!(every_type_field_and_argument_has_a_description);

#[test]
fn schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == itsm::graphql::sdl(),
        "schema.graphql is out of date with the code; regenerate it with\n\n    \
         cargo run -q -- schema > schema.graphql\n"
    );
}

async fn every_type_field_and_argument_has_a_description(backend: Backend) {
    let app = spawn_app(backend).await;
    let query = "{ __schema { types { name description \
        fields { name description args { name description } } \
        inputFields { name description } enumValues { name description } } } }";
    let (_, body) = app.graphql(query, None).await;
    let types = body["data"]["__schema"]["types"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!types.is_empty(), "{body}");
    let builtin: BTreeSet<&str> = ["String", "Int", "Float", "Boolean", "ID"].into();
    let undocumented = |v: &Value| {
        v["description"]
            .as_str()
            .is_none_or(|d| d.trim().is_empty())
    };
    let mut missing = Vec::new();
    for ty in &types {
        let name = ty["name"].as_str().unwrap_or_default();
        if name.starts_with("__") || builtin.contains(name) {
            continue;
        }
        if undocumented(ty) {
            missing.push(name.to_owned());
        }
        for list in ["fields", "inputFields", "enumValues"] {
            for member in ty[list].as_array().into_iter().flatten() {
                let member_name = member["name"].as_str().unwrap_or_default();
                if undocumented(member) {
                    missing.push(format!("{name}.{member_name}"));
                }
                for arg in member["args"].as_array().into_iter().flatten() {
                    if undocumented(arg) {
                        missing.push(format!("{name}.{member_name}({})", arg["name"]));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}
