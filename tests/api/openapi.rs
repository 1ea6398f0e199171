//! The committed contract: `openapi.yaml` equals what the code describes.

use serde_json::Value;

fn spec() -> Value {
    let yaml = otica_api::app::openapi_yaml();
    serde_json::to_value(serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&yaml).unwrap()).unwrap()
}

#[test]
fn the_committed_openapi_yaml_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .unwrap_or_default();

    let generated = otica_api::app::openapi_yaml();

    assert!(
        committed == generated,
        "openapi.yaml is out of date with the code; rewrite it with:\n    cargo run -- openapi > openapi.yaml"
    );
}

#[test]
fn operations_have_the_agreed_ids() {
    let spec = spec();

    let mut ids: Vec<&str> = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ops| ops.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    ids.sort();

    assert_eq!(
        ids,
        [
            "createStaff",
            "deleteStaff",
            "getStaff",
            "getStaffStats",
            "listStaff",
            "updateStaff"
        ]
    );
}

#[test]
fn schemas_have_the_agreed_names() {
    let spec = spec();

    let names: Vec<&String> = spec["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .collect();

    for name in [
        "Staff",
        "StaffCreate",
        "StaffUpdate",
        "StaffStats",
        "StaffRole",
        "Problem",
    ] {
        assert!(
            names.iter().any(|n| *n == name),
            "{name} missing from {names:?}"
        );
    }
}

#[test]
fn every_operation_requires_the_bearer_scheme_and_documents_its_errors() {
    let spec = spec();
    let scheme = &spec["components"]["securitySchemes"]["ClerkSession"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "JWT");

    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["security"][0].get("ClerkSession").is_some(),
                "{method} {path}"
            );
            for status in ["401", "403", "422", "500", "503"] {
                let media = &op["responses"][status]["content"]["application/problem+json"];
                assert!(media.is_object(), "{method} {path} lacks {status}");
            }
        }
    }
}
