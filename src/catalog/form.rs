//! Request forms: the typed fields of a catalog item, checked when the item is
//! saved, and the answers of a request, checked against them. Pure: no
//! database, no GraphQL.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The type of a form field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FieldType {
    /// One line of text.
    Text,
    /// Several lines of text.
    Textarea,
    /// A number, optionally between `min` and `max`.
    Number,
    /// Yes or no.
    Boolean,
    /// One of `options`.
    Select,
    /// Any of `options`.
    MultiSelect,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An email address.
    Email,
    /// Files, sent beside the answers (`files`) and kept as the request's
    /// attachments: `options` may narrow the accepted media types, `max` is
    /// how many (one when absent).
    File,
}

/// One field of a request form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormField {
    /// The key answers use: lower-case letters, digits and `_`.
    pub key: String,
    /// What the portal shows.
    pub label: String,
    /// Help text.
    #[serde(default)]
    pub help: Option<String>,
    /// The type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Must be answered.
    #[serde(default)]
    pub required: bool,
    /// The answer when none is given.
    #[serde(default)]
    pub default: Option<Value>,
    /// Smallest number allowed (`NUMBER`).
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest number allowed (`NUMBER`), or most files (`FILE`).
    #[serde(default)]
    pub max: Option<f64>,
    /// The choices (`SELECT`, `MULTI_SELECT`), or the accepted media types
    /// (`FILE`; any the service accepts when empty).
    #[serde(default)]
    pub options: Vec<String>,
}

/// A file sent for a `FILE` field, as the service read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFile {
    /// The field it answers.
    pub field: String,
    /// Its cleaned name.
    pub filename: String,
    /// Its media type, read from the content.
    pub content_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Why the service refuses it whatever the form says (empty, too large,
    /// a type it never accepts).
    pub refused: Option<String>,
}

/// Most files one `FILE` field takes.
pub const MAX_FILES_PER_FIELD: usize = 10;

fn is_media_type(text: &str) -> bool {
    let mut parts = text.split('/');
    let part_ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        })
    };
    part_ok(parts.next()) && part_ok(parts.next()) && parts.next().is_none()
}

/// One problem with a form or its answers: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The input field at fault, such as `form[2].options` or `answers.model`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
    }
}

/// Most fields a request form holds.
pub const MAX_FIELDS: usize = 50;
const MAX_TEXT: usize = 200;
const MAX_TEXTAREA: usize = 5_000;

/// Checks a form definition: unique well-formed keys, labels, options where
/// (and only where) selects need them, sane bounds, valid defaults.
pub fn check_form(fields: &[FormField]) -> Vec<Problem> {
    let mut problems = Vec::new();
    if fields.len() > MAX_FIELDS {
        problems.push(problem(
            "form",
            format!("a form holds at most {MAX_FIELDS} fields"),
        ));
    }
    let mut keys = std::collections::HashSet::new();
    for (index, field) in fields.iter().enumerate() {
        let at = |part: &str| format!("form[{index}].{part}");
        let key_ok = !field.key.is_empty()
            && field.key.len() <= 50
            && field.key.starts_with(|c: char| c.is_ascii_lowercase())
            && field
                .key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            problems.push(problem(at("key"), "a key starts with a lower-case letter and holds only lower-case letters, digits and `_` (at most 50)"));
        } else if !keys.insert(field.key.clone()) {
            problems.push(problem(
                at("key"),
                format!("the key `{}` is used twice", field.key),
            ));
        }
        if field.label.trim().is_empty() || field.label.chars().count() > MAX_TEXT {
            problems.push(problem(at("label"), "a label holds 1 to 200 characters"));
        }
        let selects = matches!(field.kind, FieldType::Select | FieldType::MultiSelect);
        if field.kind == FieldType::File {
            if field.options.iter().any(|o| !is_media_type(o)) {
                problems.push(problem(
                    at("options"),
                    "a FILE field's options are media types such as application/pdf",
                ));
            }
            if field.max.is_some_and(|max| {
                max.fract() != 0.0 || !(1.0..=MAX_FILES_PER_FIELD as f64).contains(&max)
            }) {
                problems.push(problem(
                    at("max"),
                    format!("a FILE field takes 1 to {MAX_FILES_PER_FIELD} files"),
                ));
            }
            if field.min.is_some() {
                problems.push(problem(
                    at("min"),
                    "a FILE field has no min; make it required",
                ));
            }
            if field.default.is_some() {
                problems.push(problem(at("default"), "a FILE field has no default"));
            }
            continue;
        }
        if selects {
            let mut seen = std::collections::HashSet::new();
            if field.options.is_empty() {
                problems.push(problem(at("options"), "a select needs at least one option"));
            } else if field
                .options
                .iter()
                .any(|o| o.trim().is_empty() || !seen.insert(o.as_str()))
            {
                problems.push(problem(
                    at("options"),
                    "options must be non-empty and distinct",
                ));
            }
        } else if !field.options.is_empty() {
            problems.push(problem(
                at("options"),
                "only SELECT and MULTI_SELECT fields have options",
            ));
        }
        if field.kind == FieldType::Number {
            if let (Some(min), Some(max)) = (field.min, field.max)
                && min > max
            {
                problems.push(problem(at("max"), "max must not be below min"));
            }
            if field.min.is_some_and(|v| !v.is_finite())
                || field.max.is_some_and(|v| !v.is_finite())
            {
                problems.push(problem(at("min"), "bounds must be finite numbers"));
            }
        } else if field.min.is_some() || field.max.is_some() {
            problems.push(problem(at("min"), "only NUMBER fields have bounds"));
        }
        if let Some(default) = &field.default
            && let Err(message) = check_value(field, default)
        {
            problems.push(problem(
                at("default"),
                format!("the default is not a valid answer: {message}"),
            ));
        }
    }
    problems
}

/// Checks one answer against its field; returns the answer as stored.
fn check_value(field: &FormField, value: &Value) -> Result<Value, String> {
    match field.kind {
        FieldType::Text | FieldType::Textarea => {
            let text = value.as_str().ok_or("expected text")?;
            let max = if field.kind == FieldType::Text {
                MAX_TEXT
            } else {
                MAX_TEXTAREA
            };
            if text.chars().count() > max {
                return Err(format!("at most {max} characters"));
            }
            Ok(Value::String(text.trim().to_owned()))
        }
        FieldType::Number => {
            let number = value.as_f64().ok_or("expected a number")?;
            if let Some(min) = field.min
                && number < min
            {
                return Err(format!("must be at least {min}"));
            }
            if let Some(max) = field.max
                && number > max
            {
                return Err(format!("must be at most {max}"));
            }
            Ok(value.clone())
        }
        FieldType::Boolean => value
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| "expected true or false".into()),
        FieldType::Select => {
            let choice = value.as_str().ok_or("expected one of the options")?;
            if field.options.iter().any(|o| o == choice) {
                Ok(Value::String(choice.to_owned()))
            } else {
                Err(format!(
                    "`{choice}` is not an option; choose one of: {}",
                    field.options.join(", ")
                ))
            }
        }
        FieldType::MultiSelect => {
            let choices = value.as_array().ok_or("expected a list of options")?;
            let mut picked = Vec::with_capacity(choices.len());
            for choice in choices {
                let choice = choice.as_str().ok_or("expected a list of options")?;
                if !field.options.iter().any(|o| o == choice) {
                    return Err(format!(
                        "`{choice}` is not an option; choose from: {}",
                        field.options.join(", ")
                    ));
                }
                if !picked.contains(&choice) {
                    picked.push(choice);
                }
            }
            Ok(Value::Array(
                picked
                    .into_iter()
                    .map(|c| Value::String(c.to_owned()))
                    .collect(),
            ))
        }
        FieldType::Date => {
            let text = value.as_str().ok_or("expected a date such as 2026-12-24")?;
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|date| Value::String(date.format("%Y-%m-%d").to_string()))
                .map_err(|_| format!("`{text}` is not a date such as 2026-12-24"))
        }
        FieldType::Email => {
            let text = value.as_str().ok_or("expected an email address")?.trim();
            if is_email(text) {
                Ok(Value::String(text.to_owned()))
            } else {
                Err(format!("`{text}` is not an email address"))
            }
        }
        FieldType::File => Err("send files in `files`, naming this field".into()),
    }
}

/// Checks the files sent for `FILE` fields; returns each field's answer
/// (the files' descriptions, in the order sent).
fn check_files(
    fields: &[FormField],
    files: &[SentFile],
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Value> {
    let mut answered: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (index, file) in files.iter().enumerate() {
        let Some(field) = fields.iter().find(|f| f.key == file.field) else {
            problems.push(problem(
                format!("files[{index}].field"),
                format!("the form has no field `{}`", file.field),
            ));
            continue;
        };
        if field.kind != FieldType::File {
            problems.push(problem(
                format!("files[{index}].field"),
                format!("`{}` is not a FILE field", field.label),
            ));
            continue;
        }
        if let Some(reason) = &file.refused {
            problems.push(problem(
                format!("files[{index}].file"),
                format!("{}: {reason}", field.label),
            ));
            continue;
        }
        if !field.options.is_empty() && !field.options.contains(&file.content_type) {
            problems.push(problem(
                format!("files[{index}].file"),
                format!(
                    "{}: the file's content is {}; this field accepts {}",
                    field.label,
                    file.content_type,
                    field.options.join(", ")
                ),
            ));
            continue;
        }
        answered
            .entry(field.key.clone())
            .or_default()
            .push(serde_json::json!({
                "filename": file.filename, "contentType": file.content_type,
                "size": file.size, "sha256": file.sha256,
            }));
    }
    for field in fields.iter().filter(|f| f.kind == FieldType::File) {
        let sent = files.iter().filter(|f| f.field == field.key).count();
        let most = field.max.map_or(1, |max| max as usize);
        if sent > most {
            problems.push(problem(
                format!("answers.{}", field.key),
                format!(
                    "`{}` takes at most {most} file(s); {sent} were sent",
                    field.label
                ),
            ));
        }
    }
    answered
        .into_iter()
        .map(|(key, list)| (key, Value::Array(list)))
        .collect()
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 255
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(char::is_whitespace)
        && !domain.contains('@')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Checks a request's answers against the form, reporting every problem at
/// once; returns the answers as stored (in form order, defaults applied,
/// unanswered optional fields left out).
pub fn check_answers(
    fields: &[FormField],
    answers: &Value,
    files: &[SentFile],
) -> Result<BTreeMap<String, Value>, Vec<Problem>> {
    let empty = Map::new();
    let given = match answers {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => {
            return Err(vec![problem(
                "answers",
                "answers are an object of field keys to values",
            )]);
        }
    };
    let mut problems = Vec::new();
    for key in given.keys() {
        if !fields.iter().any(|f| &f.key == key) {
            problems.push(problem(
                format!("answers.{key}"),
                format!("the form has no field `{key}`"),
            ));
        }
    }
    let sent = check_files(fields, files, &mut problems);
    let mut stored = BTreeMap::new();
    for field in fields {
        let answer = if field.kind == FieldType::File {
            if given.get(&field.key).is_some_and(|v| !v.is_null()) {
                problems.push(problem(
                    format!("answers.{}", field.key),
                    format!("{}: send files in `files`, naming this field", field.label),
                ));
                continue;
            }
            sent.get(&field.key)
        } else {
            given
                .get(&field.key)
                .filter(|v| !v.is_null())
                .or(field.default.as_ref())
        };
        let blank = match answer {
            None => true,
            Some(Value::String(text)) => text.trim().is_empty(),
            Some(Value::Array(items)) => items.is_empty(),
            Some(_) => false,
        };
        if blank {
            if field.required {
                problems.push(problem(
                    format!("answers.{}", field.key),
                    format!("`{}` is required", field.label),
                ));
            }
            continue;
        }
        if let Some(answer) = answer {
            if field.kind == FieldType::File {
                stored.insert(field.key.clone(), answer.clone());
                continue;
            }
            match check_value(field, answer) {
                Ok(value) => {
                    stored.insert(field.key.clone(), value);
                }
                Err(message) => problems.push(problem(
                    format!("answers.{}", field.key),
                    format!("{}: {message}", field.label),
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(stored)
    } else {
        Err(problems)
    }
}

/// One answered field as stored with a request: the field as the form
/// defined it when the request was made, and its answer. Later edits of the
/// form leave requests already made as they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    /// The field as it was.
    pub field: FormField,
    /// The answer, typed as the field says.
    pub value: Value,
}

/// The answers of a request with their fields, in form order.
pub fn answered(fields: &[FormField], answers: &BTreeMap<String, Value>) -> Vec<Answered> {
    fields
        .iter()
        .filter_map(|field| {
            Some(Answered {
                field: field.clone(),
                value: answers.get(&field.key)?.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(key: &str, kind: FieldType) -> FormField {
        FormField {
            key: key.into(),
            label: key.to_uppercase(),
            help: None,
            kind,
            required: false,
            default: None,
            min: None,
            max: None,
            options: Vec::new(),
        }
    }

    fn laptop_form() -> Vec<FormField> {
        vec![
            FormField {
                options: vec!["14-inch".into(), "16-inch".into()],
                required: true,
                ..field("model", FieldType::Select)
            },
            FormField {
                required: true,
                ..field("justification", FieldType::Textarea)
            },
            FormField {
                required: true,
                ..field("needed_by", FieldType::Date)
            },
            FormField {
                min: Some(1.0),
                max: Some(3.0),
                default: Some(json!(1)),
                ..field("quantity", FieldType::Number)
            },
            field("docking_station", FieldType::Boolean),
            FormField {
                options: vec!["mouse".into(), "headset".into()],
                ..field("extras", FieldType::MultiSelect)
            },
            field("notify", FieldType::Email),
            field("cost_centre", FieldType::Text),
        ]
    }

    fn fields_of(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn a_good_form_passes() {
        assert_eq!(check_form(&laptop_form()), vec![]);
    }

    #[test]
    fn forms_are_checked_when_saved() {
        let form = vec![
            field("Bad Key", FieldType::Text),
            field("dup", FieldType::Text),
            field("dup", FieldType::Text),
            FormField {
                label: " ".into(),
                ..field("empty_label", FieldType::Text)
            },
            field("no_options", FieldType::Select),
            FormField {
                options: vec!["a".into(), "a".into()],
                ..field("twice", FieldType::MultiSelect)
            },
            FormField {
                options: vec!["x".into()],
                ..field("text_options", FieldType::Text)
            },
            FormField {
                min: Some(5.0),
                max: Some(1.0),
                ..field("upside_down", FieldType::Number)
            },
            FormField {
                min: Some(1.0),
                ..field("bounded_text", FieldType::Text)
            },
            FormField {
                default: Some(json!("soon")),
                ..field("bad_default", FieldType::Date)
            },
        ];
        assert_eq!(
            fields_of(&check_form(&form)),
            vec![
                "form[0].key",
                "form[2].key",
                "form[3].label",
                "form[4].options",
                "form[5].options",
                "form[6].options",
                "form[7].max",
                "form[8].min",
                "form[9].default",
            ]
        );
    }

    #[test]
    fn good_answers_are_stored_typed_with_defaults() {
        let answers = json!({
            "model": "16-inch", "justification": "  Video editing  ", "needed_by": "2026-12-24",
            "docking_station": true, "extras": ["mouse", "mouse"], "notify": "lead@example.com"
        });
        let stored = check_answers(&laptop_form(), &answers, &[]).unwrap_or_default();
        assert_eq!(stored.get("model"), Some(&json!("16-inch")));
        assert_eq!(stored.get("justification"), Some(&json!("Video editing")));
        assert_eq!(
            stored.get("quantity"),
            Some(&json!(1)),
            "the default applies"
        );
        assert_eq!(stored.get("extras"), Some(&json!(["mouse"])));
        assert_eq!(
            stored.get("cost_centre"),
            None,
            "unanswered optional fields are left out"
        );
        let form = laptop_form();
        let kept = answered(&form, &stored);
        let keys: Vec<&str> = kept.iter().map(|a| a.field.key.as_str()).collect();
        let in_form_order: Vec<&str> = form
            .iter()
            .map(|f| f.key.as_str())
            .filter(|key| stored.contains_key(*key))
            .collect();
        assert_eq!(keys, in_form_order, "kept in form order, with their fields");
    }

    #[test]
    fn every_problem_with_the_answers_is_reported_at_once() {
        let answers = json!({
            "model": "17-inch",            // option not offered
            "justification": 42,           // wrong type
            "needed_by": "next week",      // bad date
            "quantity": 9,                 // out of range
            "docking_station": "yes",      // wrong type
            "extras": ["keyboard"],        // option not offered
            "notify": "not-an-email",      // bad email
            "colour": "blue"               // unknown field
        });
        let problems = check_answers(&laptop_form(), &answers, &[])
            .err()
            .unwrap_or_default();
        assert_eq!(
            fields_of(&problems),
            vec![
                "answers.colour",
                "answers.model",
                "answers.justification",
                "answers.needed_by",
                "answers.quantity",
                "answers.docking_station",
                "answers.extras",
                "answers.notify",
            ]
        );
        let missing = check_answers(&laptop_form(), &json!({"model": "14-inch"}), &[])
            .err()
            .unwrap_or_default();
        assert_eq!(
            fields_of(&missing),
            vec!["answers.justification", "answers.needed_by"]
        );
        assert!(check_answers(&laptop_form(), &json!([1]), &[]).is_err());
    }

    fn expense_form() -> Vec<FormField> {
        vec![
            FormField {
                required: true,
                options: vec!["application/pdf".into()],
                ..field("receipt", FieldType::File)
            },
            FormField {
                max: Some(2.0),
                ..field("photos", FieldType::File)
            },
            field("note", FieldType::Text),
        ]
    }

    fn sent(field: &str, filename: &str, content_type: &str) -> SentFile {
        SentFile {
            field: field.into(),
            filename: filename.into(),
            content_type: content_type.into(),
            size: 3,
            sha256: "ab".repeat(32),
            refused: None,
        }
    }

    #[test]
    fn file_fields_are_checked_when_saved() {
        assert_eq!(check_form(&expense_form()), vec![]);
        let form = vec![
            FormField {
                options: vec!["pdf".into(), "Image/PNG".into()],
                ..field("bad_types", FieldType::File)
            },
            FormField {
                max: Some(0.0),
                ..field("none", FieldType::File)
            },
            FormField {
                max: Some(1.5),
                ..field("half", FieldType::File)
            },
            FormField {
                min: Some(1.0),
                ..field("with_min", FieldType::File)
            },
            FormField {
                default: Some(json!([])),
                ..field("with_default", FieldType::File)
            },
        ];
        assert_eq!(
            fields_of(&check_form(&form)),
            vec![
                "form[0].options",
                "form[1].max",
                "form[2].max",
                "form[3].min",
                "form[4].default",
            ]
        );
    }

    #[test]
    fn files_answer_their_fields_with_their_descriptions() {
        let files = [
            sent("receipt", "taxi.pdf", "application/pdf"),
            sent("photos", "a.png", "image/png"),
            sent("photos", "b.jpg", "image/jpeg"),
        ];
        let stored =
            check_answers(&expense_form(), &json!({"note": "taxi"}), &files).unwrap_or_default();
        assert_eq!(
            stored.get("receipt"),
            Some(
                &json!([{"filename": "taxi.pdf", "contentType": "application/pdf", "size": 3, "sha256": "ab".repeat(32)}])
            )
        );
        assert_eq!(
            stored.get("photos").and_then(Value::as_array).map(Vec::len),
            Some(2)
        );
        assert_eq!(stored.get("note"), Some(&json!("taxi")));
    }

    #[test]
    fn every_problem_with_the_files_is_reported_at_once() {
        let files = [
            sent("receipt", "r.png", "image/png"), // not a type the field takes
            sent("photos", "a.png", "image/png"),
            sent("photos", "b.png", "image/png"),
            sent("photos", "c.png", "image/png"), // one too many
            sent("colour", "x.png", "image/png"), // no such field
            sent("note", "n.png", "image/png"),   // not a FILE field
            SentFile {
                refused: Some("the file is empty".into()),
                ..sent("photos", "d.png", "image/png")
            },
        ];
        let problems = check_answers(&expense_form(), &json!({"receipt": "inline"}), &files)
            .err()
            .unwrap_or_default();
        assert_eq!(
            fields_of(&problems),
            vec![
                "files[0].file",
                "files[4].field",
                "files[5].field",
                "files[6].file",
                "answers.photos",
                "answers.receipt",
            ]
        );
        let missing = check_answers(&expense_form(), &json!({}), &[])
            .err()
            .unwrap_or_default();
        assert_eq!(fields_of(&missing), vec!["answers.receipt"], "required");
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        for good in ["a@b.co", "first.last@sub.example.org"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "", "a", "@b.co", "a@b", "a@.co", "a@b.", "a b@c.de", "a@b@c.de",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
