//! One input policy for every request, applied to the variables and to every
//! literal in the document before any resolver runs, so no field can forget
//! it: no control characters in any string (only newline, carriage return and
//! tab, which single-line fields refuse on their own), and no list longer than
//! the cap (so no filter can overflow a statement's bind parameters).
//!
//! The same text reaches SQLite and PostgreSQL, so both behave alike: a NUL
//! byte, which PostgreSQL refuses to store and SQLite cuts a pattern at, never
//! gets that far.

use async_graphql::{
    Name, Positioned, ServerError, Value, Variables,
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

/// Checks the literal arguments of a field or directive; variables inside
/// them are left as nulls (their values are checked with the variables).
macro_rules! check_arguments {
    ($arguments:expr, $limits:expr) => {
        for (name, value) in $arguments {
            let literal = value
                .node
                .clone()
                .into_const_with(|_| Ok::<Value, std::convert::Infallible>(Value::Null))
                .unwrap_or_default();
            check_value(&name.node, &literal, $limits)?;
        }
    };
}

/// How large an input may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Most items in any one list argument or list variable.
    pub max_list: usize,
}

/// An input the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// A string holds a control character other than newline, CR or tab.
    ControlCharacter {
        /// Where: a variable path (`input.title`) or an argument name.
        field: String,
        /// The character, as `U+0000`.
        character: String,
    },
    /// A list is longer than the cap.
    ListTooLong {
        /// Where.
        field: String,
        /// The cap.
        limit: usize,
    },
}

impl InputError {
    /// As a GraphQL error with code `BAD_USER_INPUT` and the field at fault.
    pub fn to_server_error(&self) -> ServerError {
        let (message, field) = match self {
            Self::ControlCharacter { field, character } => (
                format!(
                    "`{field}` holds the control character {character}; text may hold newlines and tabs but no other control characters"
                ),
                field,
            ),
            Self::ListTooLong { field, limit } => {
                (format!("`{field}` holds more than {limit} items"), field)
            }
        };
        let mut error = ServerError::new(message, None);
        let extensions = error.extensions.get_or_insert_with(Default::default);
        extensions.set("code", "BAD_USER_INPUT");
        extensions.set("field", field.as_str());
        error
    }
}

pub use crate::text::{forbidden_character, single_line_violation};

/// Checks every value of the variables.
pub fn check_variables(variables: &Variables, limits: &InputLimits) -> Result<(), InputError> {
    for (name, value) in variables.iter() {
        check_value(name.as_str(), value, limits)?;
    }
    Ok(())
}

/// Checks one value and everything inside it, without recursion.
fn check_value(root: &str, value: &Value, limits: &InputLimits) -> Result<(), InputError> {
    let mut stack: Vec<(String, &Value)> = vec![(root.to_owned(), value)];
    while let Some((path, value)) = stack.pop() {
        match value {
            Value::String(text) => {
                if let Some(c) = text.chars().find(|&c| forbidden_character(c)) {
                    return Err(InputError::ControlCharacter {
                        field: path,
                        character: format!("U+{:04X}", u32::from(c)),
                    });
                }
            }
            Value::List(items) => {
                if items.len() > limits.max_list {
                    return Err(InputError::ListTooLong {
                        field: path,
                        limit: limits.max_list,
                    });
                }
                stack.extend(items.iter().map(|item| (path.clone(), item)));
            }
            Value::Object(fields) => {
                for (key, item) in fields {
                    if forbidden_character_in_name(key) {
                        return Err(InputError::ControlCharacter {
                            field: path,
                            character: "in a key".into(),
                        });
                    }
                    stack.push((format!("{path}.{key}"), item));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn forbidden_character_in_name(name: &Name) -> bool {
    name.chars().any(forbidden_character)
}

/// Checks every literal argument (and default value) in the document.
pub fn check_document(
    document: &ExecutableDocument,
    limits: &InputLimits,
) -> Result<(), InputError> {
    let mut sets: Vec<&Positioned<SelectionSet>> = Vec::new();
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = &definition.node.default_value {
                check_value(&definition.node.name.node, &default.node, limits)?;
            }
        }
        check_directives(&operation.node.directives, limits)?;
        sets.push(&operation.node.selection_set);
    }
    for fragment in document.fragments.values() {
        check_directives(&fragment.node.directives, limits)?;
        sets.push(&fragment.node.selection_set);
    }
    while let Some(set) = sets.pop() {
        for item in &set.node.items {
            match &item.node {
                Selection::Field(field) => {
                    check_arguments!(&field.node.arguments, limits);
                    check_directives(&field.node.directives, limits)?;
                    sets.push(&field.node.selection_set);
                }
                Selection::FragmentSpread(spread) => {
                    check_directives(&spread.node.directives, limits)?;
                }
                Selection::InlineFragment(fragment) => {
                    check_directives(&fragment.node.directives, limits)?;
                    sets.push(&fragment.node.selection_set);
                }
            }
        }
    }
    Ok(())
}

fn check_directives(
    directives: &[Positioned<async_graphql::parser::types::Directive>],
    limits: &InputLimits,
) -> Result<(), InputError> {
    for directive in directives {
        check_arguments!(&directive.node.arguments, limits);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;
    use serde_json::json;

    use super::*;

    fn document(query: &str) -> Result<(), InputError> {
        let document = parse_query(query).expect("parses");
        check_document(&document, &InputLimits { max_list: 3 })
    }

    #[test]
    fn control_characters_are_refused_in_literals_anywhere() {
        assert_eq!(document("{ a(t: \"line\\nnext\\ttab\") }"), Ok(()));
        let nul = document("{ a { b(input: {title: \"x\\u0000y\"}) } }");
        assert_eq!(
            nul,
            Err(InputError::ControlCharacter {
                field: "input.title".into(),
                character: "U+0000".into()
            })
        );
        assert!(document("{ a @include(if: true) @d(s: \"\\u0007\") }").is_err());
        assert!(document("query($x: String = \"\\u001b\") { a }").is_err());
        assert!(document("{ ...F } fragment F on Q { a(s: [\"\\u0000\"]) }").is_err());
    }

    #[test]
    fn long_lists_are_refused() {
        assert_eq!(document("{ a(ids: [1, 2, 3]) }"), Ok(()));
        assert_eq!(
            document("{ a(f: {ids: [1, 2, 3, 4]}) }"),
            Err(InputError::ListTooLong {
                field: "f.ids".into(),
                limit: 3
            })
        );
    }

    #[test]
    fn variables_follow_the_same_policy() {
        let limits = InputLimits { max_list: 3 };
        let vars = |v: serde_json::Value| Variables::from_json(v);
        assert_eq!(
            check_variables(&vars(json!({"input": {"body": "a\nb\tc\r\n"}})), &limits),
            Ok(())
        );
        assert!(matches!(
            check_variables(&vars(json!({"input": {"tags": ["ok", "bad\u{0}"]}})), &limits),
            Err(InputError::ControlCharacter { field, .. }) if field == "input.tags"
        ));
        assert!(matches!(
            check_variables(&vars(json!({"ids": [1, 2, 3, 4]})), &limits),
            Err(InputError::ListTooLong { .. })
        ));
        assert!(check_variables(&vars(json!({"s": "\u{85}"})), &limits).is_err());
    }
}
