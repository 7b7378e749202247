//! Reading the error codes and fields out of GraphQL responses.

use serde_json::Value;

/// The `extensions.code` of the first error in a GraphQL response.
pub fn error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// The `extensions.field` of an error.
pub fn error_field(error: &Value) -> Option<&str> {
    error["extensions"]["field"].as_str()
}

/// The `extensions.code` of an error.
pub fn code(error: &Value) -> Option<&str> {
    error["extensions"]["code"].as_str()
}
