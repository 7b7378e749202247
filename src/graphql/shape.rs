//! Shape checks that run before any recursive parser or validator sees a
//! request: how deeply a GraphQL document nests (selection sets, arguments,
//! input objects, lists, directives, and the same through chains of fragment
//! spreads), how many tokens it has, and how deeply JSON (a request body, the
//! variables) nests.
//!
//! Both scanners are single loops over the bytes with counters: their own work
//! and stack are bounded by the input's length, never by its nesting, so a
//! document nested 100,000 levels deep costs one pass and an error.

use std::collections::HashMap;

use async_graphql::{ServerError, Value, Variables};

/// How large a document may be, in shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeLimits {
    /// Deepest nesting of `{`, `(` and `[`, counted through fragment spreads.
    pub max_nesting: usize,
    /// Most lexical tokens in one document; also the most values in the variables.
    pub max_tokens: usize,
}

/// Why a request was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// The document nests deeper than the limit.
    QueryTooDeep(usize),
    /// The document has more tokens than the limit.
    QueryTooLong(usize),
    /// A fragment spreads itself, directly or through others.
    FragmentCycle(String),
    /// The variables (or the JSON request) nest deeper than the limit.
    VariablesTooDeep(usize),
    /// The variables hold more values than the limit.
    VariablesTooLarge(usize),
}

impl ShapeError {
    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            Self::QueryTooDeep(limit) => format!(
                "the query nests too deeply: at most {limit} levels of braces, brackets and parentheses, fragments included"
            ),
            Self::QueryTooLong(limit) => {
                format!("the query is too long: at most {limit} tokens")
            }
            Self::FragmentCycle(name) => {
                format!("fragment `{name}` spreads itself, directly or through other fragments")
            }
            Self::VariablesTooDeep(limit) => {
                format!("the variables nest too deeply: at most {limit} levels")
            }
            Self::VariablesTooLarge(limit) => {
                format!("the variables hold too many values: at most {limit}")
            }
        }
    }

    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::QueryTooDeep(_) | Self::QueryTooLong(_) | Self::FragmentCycle(_) => "query",
            Self::VariablesTooDeep(_) | Self::VariablesTooLarge(_) => "variables",
        }
    }

    /// As a GraphQL error with code `BAD_USER_INPUT`.
    pub fn to_server_error(&self) -> ServerError {
        let mut error = ServerError::new(self.message(), None);
        let extensions = error.extensions.get_or_insert_with(Default::default);
        extensions.set("code", "BAD_USER_INPUT");
        extensions.set("field", self.field());
        error
    }

    /// As the JSON of one GraphQL error.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "message": self.message(),
            "extensions": {"code": "BAD_USER_INPUT", "field": self.field()},
        })
    }
}

/// One operation or fragment definition, as the scanner saw it.
#[derive(Default)]
struct Definition {
    /// The fragment's name; `None` for operations.
    fragment: Option<String>,
    /// Deepest nesting inside the definition itself.
    deepest: usize,
    /// `(fragment name, nesting at the spread)` for each `...Name`.
    spreads: Vec<(String, usize)>,
    /// Whether the definition's own selection set has opened.
    body_opened: bool,
}

/// Checks a GraphQL document's nesting and length without parsing it.
pub fn check_document(source: &str, limits: &ShapeLimits) -> Result<(), ShapeError> {
    let bytes = source.as_bytes();
    let mut definitions: Vec<Definition> = Vec::new();
    let mut depth = 0usize;
    let mut tokens = 0usize;
    let mut expect_fragment_name = false;
    let mut after_spread = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b',') {
            i += 1;
            continue;
        }
        if byte == b'#' {
            while i < bytes.len() && !matches!(bytes[i], b'\n' | b'\r') {
                i += 1;
            }
            continue;
        }
        tokens += 1;
        if tokens > limits.max_tokens {
            return Err(ShapeError::QueryTooLong(limits.max_tokens));
        }
        let spread = std::mem::take(&mut after_spread);
        match byte {
            b'"' => i = skip_string(bytes, i),
            b'{' | b'(' | b'[' => {
                if depth == 0 {
                    expect_fragment_name = false;
                }
                if depth == 0 && byte == b'{' {
                    if definitions.last().is_none_or(|d| d.body_opened) {
                        definitions.push(Definition::default());
                    }
                    if let Some(current) = definitions.last_mut() {
                        current.body_opened = true;
                    }
                } else if depth == 0 && definitions.last().is_none_or(|d| d.body_opened) {
                    definitions.push(Definition::default());
                }
                depth += 1;
                if depth > limits.max_nesting {
                    return Err(ShapeError::QueryTooDeep(limits.max_nesting));
                }
                if let Some(current) = definitions.last_mut() {
                    current.deepest = current.deepest.max(depth);
                }
                i += 1;
            }
            b'}' | b')' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                after_spread = true;
                i += 3;
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                let start = i;
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                let name = &source[start..i];
                if depth == 0 {
                    if definitions.last().is_none_or(|d| d.body_opened) {
                        definitions.push(Definition::default());
                    }
                    if std::mem::take(&mut expect_fragment_name) {
                        if let Some(current) = definitions.last_mut() {
                            current.fragment = Some(name.to_owned());
                        }
                    } else if name == "fragment" {
                        expect_fragment_name = true;
                    }
                } else if spread
                    && name != "on"
                    && let Some(current) = definitions.last_mut()
                {
                    current.spreads.push((name.to_owned(), depth));
                }
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
            }
            // Punctuators and anything the parser will refuse anyway.
            _ => i += 1,
        }
    }
    check_fragments(&definitions, limits.max_nesting)
}

/// The index just past the string starting at `start` (a `"…"` or `"""…"""`).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return i;
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            // An unterminated string: the parser reports it.
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    i
}

/// Nesting through fragment spreads: a spread at nesting `d` of a fragment
/// whose own body reaches `f` reaches `d - 1 + f`. Worked bottom-up over the
/// spread graph (no recursion); a cycle is refused.
fn check_fragments(definitions: &[Definition], max_nesting: usize) -> Result<(), ShapeError> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, definition) in definitions.iter().enumerate() {
        if let Some(name) = &definition.fragment {
            by_name.entry(name.as_str()).or_default().push(index);
        }
    }
    if by_name.is_empty() {
        return Ok(());
    }
    // Kahn's algorithm over definitions: a definition is ready once every
    // fragment it spreads has its reach.
    let mut waiting_on = vec![0usize; definitions.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); definitions.len()];
    for (index, definition) in definitions.iter().enumerate() {
        for (name, _) in &definition.spreads {
            for &target in by_name.get(name.as_str()).into_iter().flatten() {
                waiting_on[index] += 1;
                dependents[target].push(index);
            }
        }
    }
    let mut ready: Vec<usize> = (0..definitions.len())
        .filter(|&i| waiting_on[i] == 0)
        .collect();
    let mut reach: Vec<Option<usize>> = vec![None; definitions.len()];
    while let Some(index) = ready.pop() {
        let definition = &definitions[index];
        let mut deepest = definition.deepest;
        for (name, at) in &definition.spreads {
            for &target in by_name.get(name.as_str()).into_iter().flatten() {
                let inner = reach[target].unwrap_or(0);
                deepest = deepest.max(at.saturating_sub(1).saturating_add(inner));
            }
        }
        if deepest > max_nesting {
            return Err(ShapeError::QueryTooDeep(max_nesting));
        }
        reach[index] = Some(deepest);
        for &dependent in &dependents[index] {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.push(dependent);
            }
        }
    }
    match reach.iter().position(Option::is_none) {
        None => Ok(()),
        Some(stuck) => {
            // Name a fragment on the cycle (or one waiting on it).
            let name = definitions[stuck]
                .fragment
                .clone()
                .or_else(|| definitions[stuck].spreads.first().map(|(n, _)| n.clone()))
                .unwrap_or_default();
            Err(ShapeError::FragmentCycle(name))
        }
    }
}

/// Checks the variables' nesting and size without recursion.
pub fn check_variables(variables: &Variables, limits: &ShapeLimits) -> Result<(), ShapeError> {
    let mut stack: Vec<(&Value, usize)> = variables.values().map(|v| (v, 1)).collect();
    let mut count = 0usize;
    while let Some((value, depth)) = stack.pop() {
        count += 1;
        if count > limits.max_tokens {
            return Err(ShapeError::VariablesTooLarge(limits.max_tokens));
        }
        match value {
            Value::List(items) => {
                if depth >= limits.max_nesting {
                    return Err(ShapeError::VariablesTooDeep(limits.max_nesting));
                }
                stack.extend(items.iter().map(|item| (item, depth + 1)));
            }
            Value::Object(fields) => {
                if depth >= limits.max_nesting {
                    return Err(ShapeError::VariablesTooDeep(limits.max_nesting));
                }
                stack.extend(fields.values().map(|item| (item, depth + 1)));
            }
            _ => {}
        }
    }
    Ok(())
}

/// How deeply a JSON text nests (`[` and `{`), found in one pass without
/// parsing. Malformed JSON gets some answer; the parser refuses it later.
pub fn json_nesting(bytes: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = json_string_end(bytes, i + 1),
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// The index of the quote closing the JSON string whose text starts at
/// `start` (past the end when it is not closed).
fn json_string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    i
}

/// The string value of a top-level key of a JSON object, read without parsing
/// the rest (for naming the operation of a message too deep to parse).
pub fn top_level_string(bytes: &[u8], key: &str) -> Option<String> {
    let mut depth = 0usize;
    let mut i = 0;
    let mut last_key: Option<(usize, usize)> = None;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i = json_string_end(bytes, start);
                let end = i.min(bytes.len());
                if depth == 1 {
                    let rest = bytes.get(end + 1..).unwrap_or_default();
                    let next = rest.iter().find(|b| !b.is_ascii_whitespace());
                    if next == Some(&b':') {
                        last_key = Some((start, end));
                    } else if let Some((ks, ke)) = last_key.take()
                        && &bytes[ks..ke] == key.as_bytes()
                    {
                        let text = format!("\"{}\"", String::from_utf8_lossy(&bytes[start..end]));
                        return serde_json::from_str(&text).ok();
                    }
                }
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => last_key = None,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str) -> Result<(), ShapeError> {
        check_document(
            source,
            &ShapeLimits {
                max_nesting: 8,
                max_tokens: 200,
            },
        )
    }

    fn nested_objects(levels: usize) -> String {
        format!(
            "{{ __typename(x: {}1{}) }}",
            "{a: ".repeat(levels),
            "}".repeat(levels)
        )
    }

    #[test]
    fn ordinary_documents_pass() {
        assert_eq!(check("{ viewer { id } }"), Ok(()));
        assert_eq!(
            check("query Q($a: [[Int!]] = [[1]]) @x(y: {z: [1]}) { t(f: {a: 1}) { id } }"),
            Ok(())
        );
        assert_eq!(
            check("{ ...F } fragment F on Query { a { ...G } } fragment G on A { b { c } }"),
            Ok(())
        );
    }

    #[test]
    fn nesting_of_any_bracket_is_refused_at_the_limit() {
        assert_eq!(check(&nested_objects(6)), Ok(()));
        assert_eq!(check(&nested_objects(7)), Err(ShapeError::QueryTooDeep(8)));
        let lists = format!("{{ f(x: {}1{}) }}", "[".repeat(20), "]".repeat(20));
        assert_eq!(check(&lists), Err(ShapeError::QueryTooDeep(8)));
        let selections = format!("{}{}", "{ a ".repeat(9), "}".repeat(9));
        assert_eq!(check(&selections), Err(ShapeError::QueryTooDeep(8)));
        let directives = format!("{{ a @d(x: {}1{}) }}", "{b: ".repeat(9), "}".repeat(9));
        assert_eq!(check(&directives), Err(ShapeError::QueryTooDeep(8)));
    }

    #[test]
    fn a_deep_document_costs_one_pass_and_an_error() {
        let deep = nested_objects(100_000);
        let limits = ShapeLimits {
            max_nesting: 32,
            max_tokens: 10_000,
        };
        assert_eq!(
            check_document(&deep, &limits),
            Err(ShapeError::QueryTooDeep(limits.max_nesting))
        );
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let noise = "[[[[[[[[[[{{{{{{{{{{((((((((";
        assert_eq!(
            check(&format!(
                "{{ a(s: \"{noise}\", t: \"\"\"{noise}\\\"\"\"\"\"\") }} # {noise}\n"
            )),
            Ok(())
        );
        assert_eq!(check(&format!("{{ a(s: \"\\\"{noise}\") }}")), Ok(()));
    }

    #[test]
    fn nesting_through_fragment_chains_is_counted() {
        // Each fragment adds one level; a chain of ten exceeds eight.
        let mut doc = String::from("{ ...F0 }");
        for i in 0..10 {
            doc.push_str(&format!(
                " fragment F{i} on Query {{ a {{ ...F{} }} }}",
                i + 1
            ));
        }
        doc.push_str(" fragment F10 on Query { z }");
        assert_eq!(check(&doc), Err(ShapeError::QueryTooDeep(8)));
        // A long chain does not recurse.
        let mut long = String::from("{ ...F0 }");
        for i in 0..3_000 {
            long.push_str(&format!(" fragment F{i} on Q {{ ...F{} }}", i + 1));
        }
        let limits = ShapeLimits {
            max_nesting: 32,
            max_tokens: 1_000_000,
        };
        assert_eq!(check_document(&long, &limits), Ok(()));
    }

    #[test]
    fn fragment_cycles_are_refused() {
        let doc = "{ ...A } fragment A on Q { ...B } fragment B on Q { ...A }";
        assert!(matches!(check(doc), Err(ShapeError::FragmentCycle(_))));
        let own = "{ ...A } fragment A on Q { a { ...A } }";
        assert!(matches!(check(own), Err(ShapeError::FragmentCycle(_))));
        // Inline fragments are not spreads.
        assert_eq!(
            check("{ ... on Query { a } ... @skip(if: true) { b } }"),
            Ok(())
        );
    }

    #[test]
    fn long_documents_are_refused() {
        let long = format!("{{ {} }}", "a ".repeat(300));
        assert_eq!(check(&long), Err(ShapeError::QueryTooLong(200)));
    }

    #[test]
    fn variables_are_bounded_in_depth_and_size() {
        let limits = ShapeLimits {
            max_nesting: 4,
            max_tokens: 50,
        };
        let vars = |json: serde_json::Value| Variables::from_json(json);
        assert_eq!(
            check_variables(&vars(serde_json::json!({"a": {"b": [1]}})), &limits),
            Ok(())
        );
        assert_eq!(
            check_variables(&vars(serde_json::json!({"a": [[[[[1]]]]]})), &limits),
            Err(ShapeError::VariablesTooDeep(4))
        );
        let many: Vec<i32> = (0..100).collect();
        assert_eq!(
            check_variables(&vars(serde_json::json!({ "ids": many })), &limits),
            Err(ShapeError::VariablesTooLarge(50))
        );
    }

    #[test]
    fn json_nesting_ignores_strings() {
        assert_eq!(json_nesting(br#"{"a": [1, {"b": "[[[{{"}]}"#), 3);
        assert_eq!(json_nesting(&b"[".repeat(100_000)), 100_000);
        assert_eq!(json_nesting(br#"{"q": "\"[["}"#), 1);
    }

    #[test]
    fn top_level_strings_are_found_without_parsing() {
        let message = format!(
            r#"{{"payload": {{"id": "inner", "v": {}1{}}}, "id": "op-\"1", "type": "subscribe"}}"#,
            "[".repeat(500),
            "]".repeat(500)
        );
        assert_eq!(
            top_level_string(message.as_bytes(), "id").as_deref(),
            Some("op-\"1")
        );
        assert_eq!(
            top_level_string(message.as_bytes(), "type").as_deref(),
            Some("subscribe")
        );
        assert_eq!(top_level_string(b"[1]", "id"), None);
    }
}
