//! The one home of the text input policy and of text search patterns, shared
//! by the request-wide checks, the token claims and the domain services.

use sea_orm::{
    ColumnTrait, Condition,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

use crate::error::{ApiError, ApiResult};

/// Longest name (of a team, a queue, a service…), in characters.
const MAX_NAME: usize = 100;
/// Longest description, in characters.
const MAX_DESCRIPTION: usize = 2_000;
/// Longest long text (a ticket's description, a comment, a note), in characters.
const MAX_TEXT: usize = 20_000;

/// Longest search text, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// True for a character no text input may hold: control characters other
/// than newline, carriage return and tab.
pub fn forbidden_character(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// The first character a single-line text (a name, a title, a key, a claim)
/// may not hold: any control character, newlines and tabs included.
pub fn single_line_violation(text: &str) -> Option<char> {
    text.chars().find(|c| c.is_control())
}

/// A case-insensitive `LIKE` pattern for a search text: trimmed, at most
/// [`MAX_SEARCH_CHARS`] characters, single-line, with `%`, `_` and `\`
/// escaped (use `ESCAPE '\'`). `None` for no or blank text.
pub fn search_pattern(search: Option<&str>) -> ApiResult<Option<String>> {
    let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if search.chars().count() > MAX_SEARCH_CHARS {
        return Err(ApiError::bad_input(
            "search",
            format!("search text holds at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    if single_line_violation(search).is_some() {
        return Err(ApiError::bad_input(
            "search",
            "search text holds no control characters",
        ));
    }
    let escaped = search
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Ok(Some(format!("%{escaped}%")))
}

/// Rows where any of `columns` contains the search text, case-insensitively;
/// every row for no or blank text.
pub fn search_condition<C: ColumnTrait>(
    search: Option<&str>,
    columns: &[C],
) -> ApiResult<Condition> {
    let Some(pattern) = search_pattern(search)? else {
        return Ok(Condition::all());
    };
    Ok(columns.iter().fold(Condition::any(), |any, column| {
        any.add(
            Expr::expr(Func::lower(Expr::col(*column)))
                .like(LikeExpr::new(pattern.clone()).escape('\\')),
        )
    }))
}

/// A checked name: 1 to 100 characters.
pub fn name(value: &str, field: &str) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_NAME {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` holds 1 to {MAX_NAME} characters"),
        ));
    }
    if single_line_violation(value).is_some() {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` is one line: no newlines, tabs or other control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A checked description: at most 2,000 characters; blank means none.
pub fn description(value: Option<&str>) -> ApiResult<Option<String>> {
    match value.map(str::trim) {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => Err(ApiError::bad_input(
            "description",
            format!("`description` holds at most {MAX_DESCRIPTION} characters"),
        )),
        Some("") | None => Ok(None),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

/// A checked long text (a description, a comment, a note): at most
/// 20,000 characters, trimmed.
pub fn long_text(value: &str, field: &str) -> ApiResult<String> {
    if value.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` holds at most {MAX_TEXT} characters"),
        ));
    }
    Ok(value.trim().to_owned())
}

/// Trimmed text, or `None` when blank.
pub fn clean(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_are_escaped_capped_and_single_line() {
        assert!(matches!(search_pattern(None), Ok(None)));
        assert!(matches!(search_pattern(Some("  ")), Ok(None)));
        assert_eq!(
            search_pattern(Some(" 50%_off\\ "))
                .ok()
                .flatten()
                .as_deref(),
            Some("%50\\%\\_off\\\\%")
        );
        assert!(search_pattern(Some(&"x".repeat(201))).is_err());
        assert!(search_pattern(Some("a\u{0}b")).is_err());
        assert!(search_pattern(Some(&"x".repeat(200))).is_ok());
    }

    #[test]
    fn only_newline_cr_and_tab_pass_in_long_text() {
        assert!(!forbidden_character('\n'));
        assert!(!forbidden_character('\t'));
        assert!(forbidden_character('\u{0}'));
        assert!(forbidden_character('\u{7f}'));
        assert_eq!(single_line_violation("a\tb"), Some('\t'));
    }
}
