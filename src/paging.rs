//! Keyset paging: page arguments, opaque cursors, and pages over lists
//! ordered by a name, then id. The GraphQL connection types built from a page
//! are in `graphql::connection`; nothing here knows GraphQL.
//!
//! A cursor holds the sort key of its row (never an offset), so a page starts
//! right after (or before) that row however many rows were added meanwhile.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Select,
    sea_query::{Expr, ExprTrait},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    db::Db,
    error::{ApiError, ApiResult},
};

/// Counting the rows a select finds with one plain `SELECT COUNT(*) … WHERE …`.
/// (sea-orm's `PaginatorTrait::count` wraps the whole-row select in a
/// subquery, which the database must then plan around, and SQLite reads.)
pub trait CountRows {
    /// How many rows the select finds.
    fn count_rows<C: ConnectionTrait>(
        self,
        conn: &C,
    ) -> impl Future<Output = Result<u64, DbErr>> + Send;
}

impl<E: EntityTrait> CountRows for Select<E> {
    fn count_rows<C: ConnectionTrait>(
        self,
        conn: &C,
    ) -> impl Future<Output = Result<u64, DbErr>> + Send {
        let mut select = self
            .select_only()
            .column_as(Expr::cust("COUNT(*)"), "count");
        QueryTrait::query(&mut select).clear_order_by();
        async move {
            let count: Option<i64> = select.into_tuple().one(conn).await?;
            Ok(count.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
        }
    }
}

/// The most rows one page may hold.
pub const MAX_PAGE: i32 = 100;
/// Rows in a page when neither `first` nor `last` is given.
pub const DEFAULT_PAGE: i32 = 20;

/// `first`/`after`/`last`/`before` as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    /// Rows after `after`.
    pub first: Option<i32>,
    /// Cursor to start after.
    pub after: Option<String>,
    /// Rows before `before`.
    pub last: Option<i32>,
    /// Cursor to end before.
    pub before: Option<String>,
}

/// A validated page request over one ordering.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Rows wanted.
    pub limit: u64,
    /// Reading backwards (`last`/`before`): fetch in reverse order, then flip.
    pub backward: bool,
    /// The sort key to start after (or before, backwards).
    pub key: Option<Vec<Value>>,
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    /// The ordering the key belongs to.
    o: String,
    /// The row's sort key.
    k: Vec<Value>,
}

/// Encodes the sort key of a row under `ordering` as an opaque cursor.
pub fn encode_cursor(ordering: &str, key: Vec<Value>) -> String {
    let body = CursorBody {
        o: ordering.to_owned(),
        k: key,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

fn decode_cursor(cursor: &str, ordering: &str, field: &str) -> ApiResult<Vec<Value>> {
    let invalid = || ApiError::bad_input(field, format!("`{cursor}` is not a cursor of this list"));
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if body.o != ordering {
        return Err(ApiError::bad_input(
            field,
            "the cursor belongs to another ordering of this list",
        ));
    }
    Ok(body.k)
}

impl PageArgs {
    /// Checks the arguments against `ordering`: `first` and `last` exclude each
    /// other and lie in 0..=100.
    pub fn page(&self, ordering: &str) -> ApiResult<Page> {
        let check = |n: i32, field: &str| {
            if (0..=MAX_PAGE).contains(&n) {
                Ok(u64::try_from(n).unwrap_or_default())
            } else {
                Err(ApiError::bad_input(
                    field,
                    format!("`{field}` must be between 0 and {MAX_PAGE}"),
                ))
            }
        };
        match (self.first, self.last) {
            (Some(_), Some(_)) => Err(ApiError::bad_input(
                "last",
                "give `first` (with `after`) or `last` (with `before`), not both",
            )),
            (_, Some(last)) => Ok(Page {
                limit: check(last, "last")?,
                backward: true,
                key: self
                    .before
                    .as_deref()
                    .map(|c| decode_cursor(c, ordering, "before"))
                    .transpose()?,
            }),
            (first, None) => {
                if self.before.is_some() {
                    return Err(ApiError::bad_input("before", "`before` goes with `last`"));
                }
                Ok(Page {
                    limit: check(first.unwrap_or(DEFAULT_PAGE), "first")?,
                    backward: false,
                    key: self
                        .after
                        .as_deref()
                        .map(|c| decode_cursor(c, ordering, "after"))
                        .transpose()?,
                })
            }
        }
    }
}

impl Page {
    /// Turns `limit + 1` fetched rows into a page: trims the probe row, restores
    /// forward order when reading backwards, and works out `pageInfo`.
    pub fn finish<T>(&self, mut rows: Vec<T>) -> (Vec<T>, PageInfoFlags) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        if self.backward {
            rows.reverse();
            (
                rows,
                PageInfoFlags {
                    has_previous_page: more,
                    has_next_page: self.key.is_some(),
                },
            )
        } else {
            (
                rows,
                PageInfoFlags {
                    has_previous_page: self.key.is_some(),
                    has_next_page: more,
                },
            )
        }
    }
}

/// Whether more rows lie beyond a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfoFlags {
    /// Rows exist before the page.
    pub has_previous_page: bool,
    /// Rows exist after the page.
    pub has_next_page: bool,
}

/// The cursor tag of name-ordered lists.
pub const BY_NAME: &str = "NAME";

/// The cursor of a row whose name is `name` and id `id`.
pub fn name_cursor(name: &str, id: i64) -> String {
    encode_cursor(BY_NAME, vec![json!(name), json!(id)])
}

/// One page of `select`, ordered by `(name, id)`.
pub async fn by_name<E>(
    db: &Db,
    select: Select<E>,
    name: E::Column,
    id: E::Column,
    page: &Page,
) -> ApiResult<(Vec<E::Model>, PageInfoFlags)>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
{
    let key = match page.key.as_deref() {
        None => None,
        Some([Value::String(key_name), key_id]) => {
            let key_id = key_id.as_i64().ok_or_else(|| misfit(page))?;
            Some(vec![Expr::val(key_name.clone()), Expr::val(key_id)])
        }
        Some(_) => return Err(misfit(page)),
    };
    keyset(db, select, &[name, id], key, page).await
}

/// One page of `select`, ordered by one integer column (an id, a sequence
/// number) whose value is the whole cursor key.
pub async fn by_number<E>(
    db: &Db,
    select: Select<E>,
    column: E::Column,
    page: &Page,
) -> ApiResult<(Vec<E::Model>, PageInfoFlags)>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
{
    let key = match page.key.as_deref() {
        None => None,
        Some([key]) => Some(vec![Expr::val(key.as_i64().ok_or_else(|| misfit(page))?)]),
        Some(_) => return Err(misfit(page)),
    };
    keyset(db, select, &[column], key, page).await
}

/// A cursor of another list, named after the argument it came in.
fn misfit(page: &Page) -> ApiError {
    let field = if page.backward { "before" } else { "after" };
    ApiError::bad_input(field, "the cursor does not fit this list")
}

/// Rows of `select` beyond `key` (in `columns`' order, read backwards when the
/// page is), one more than the page holds, then made a page.
async fn keyset<E>(
    db: &Db,
    select: Select<E>,
    columns: &[E::Column],
    key: Option<Vec<Expr>>,
    page: &Page,
) -> ApiResult<(Vec<E::Model>, PageInfoFlags)>
where
    E: EntityTrait,
    E::Column: ColumnTrait + Copy,
{
    let mut select = select;
    if let Some(key) = key {
        let row = Expr::tuple(columns.iter().map(|column| Expr::col(*column)));
        let key = Expr::tuple(key);
        select = select.filter(if page.backward {
            row.lt(key)
        } else {
            row.gt(key)
        });
    }
    let order = if page.backward {
        Order::Desc
    } else {
        Order::Asc
    };
    for column in columns {
        select = select.order_by(*column, order.clone());
    }
    let rows = select.limit(page.limit + 1).all(db.reader()).await?;
    Ok(page.finish(rows))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(
        first: Option<i32>,
        after: Option<&str>,
        last: Option<i32>,
        before: Option<&str>,
    ) -> PageArgs {
        PageArgs {
            first,
            after: after.map(str::to_owned),
            last,
            before: before.map(str::to_owned),
        }
    }

    #[test]
    fn cursors_round_trip_within_their_ordering_only() {
        let cursor = encode_cursor(
            "IMPORTANCE",
            vec![json!(0), json!("2026-11-01T09:00:00Z"), json!(7)],
        );
        let page = args(Some(5), Some(&cursor), None, None).page("IMPORTANCE");
        assert_eq!(
            page.ok().and_then(|p| p.key),
            Some(vec![json!(0), json!("2026-11-01T09:00:00Z"), json!(7)])
        );
        let other = args(Some(5), Some(&cursor), None, None).page("CREATED_AT");
        assert!(
            matches!(other, Err(ApiError::BadUserInput { field: Some(f), .. }) if f == "after")
        );
        let junk = args(Some(5), Some("%%%"), None, None).page("IMPORTANCE");
        assert!(matches!(junk, Err(ApiError::BadUserInput { .. })));
    }

    #[test]
    fn page_sizes_default_and_are_capped() {
        let page = PageArgs::default().page("X").ok();
        assert_eq!(page.map(|p| p.limit), Some(20));
        assert!(args(Some(101), None, None, None).page("X").is_err());
        assert!(args(Some(-1), None, None, None).page("X").is_err());
        assert!(args(None, None, Some(101), None).page("X").is_err());
        assert!(args(Some(1), None, Some(1), None).page("X").is_err());
        assert!(args(Some(1), None, None, Some("x")).page("X").is_err());
    }

    #[test]
    fn finishing_a_page_trims_the_probe_row_and_flips_backward_pages() {
        let forward = Page {
            limit: 2,
            backward: false,
            key: None,
        };
        let (rows, flags) = forward.finish(vec![1, 2, 3]);
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(
            flags,
            PageInfoFlags {
                has_previous_page: false,
                has_next_page: true
            }
        );

        let backward = Page {
            limit: 2,
            backward: true,
            key: Some(vec![]),
        };
        let (rows, flags) = backward.finish(vec![9, 8, 7]);
        assert_eq!(rows, vec![8, 9]);
        assert_eq!(
            flags,
            PageInfoFlags {
                has_previous_page: true,
                has_next_page: true
            }
        );
    }
}
