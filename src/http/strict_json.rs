//! JSON as requests must send it: no key twice in one object (which value a
//! duplicate means differs between parsers, so a proxy and this service could
//! read two different requests from one body), and no nesting beyond a limit,
//! checked in one pass before the recursive parser runs.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::graphql::shape::json_nesting;

/// Why a JSON text was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonError {
    /// Nested deeper than the limit.
    TooDeep(usize),
    /// Not JSON, or a key appears twice in one object.
    Invalid(String),
}

/// Parses `bytes`, refusing duplicate keys and nesting deeper than `max_nesting`.
pub fn parse(bytes: &[u8], max_nesting: usize) -> Result<Value, JsonError> {
    if json_nesting(bytes) > max_nesting {
        return Err(JsonError::TooDeep(max_nesting));
    }
    serde_json::from_slice::<Strict>(bytes)
        .map(|strict| strict.0)
        .map_err(|error| JsonError::Invalid(error.to_string()))
}

/// A JSON value whose objects have unique keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the key `{key}` appears twice in one object"
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ordinary_json_parses_as_serde_json_would() {
        let text = br#"{"query": "{ a }", "variables": {"x": [1, 2.5, -3, true, null, "s"]}}"#;
        assert_eq!(
            parse(text, 8),
            Ok(json!({"query": "{ a }", "variables": {"x": [1, 2.5, -3, true, null, "s"]}}))
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_level() {
        let top = parse(br#"{"query": "{ a }", "query": "{ b }"}"#, 8);
        assert!(matches!(top, Err(JsonError::Invalid(m)) if m.contains("`query` appears twice")));
        let inner = parse(br#"{"variables": {"x": 1, "x": 2}}"#, 8);
        assert!(matches!(inner, Err(JsonError::Invalid(_))));
    }

    #[test]
    fn deep_json_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(deep.as_bytes(), 8), Err(JsonError::TooDeep(8)));
    }
}
