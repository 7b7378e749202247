//! Relay connections: page arguments, opaque keyset cursors and the
//! connection/edge types every list returns.
//!
//! A cursor holds the sort key of its row (never an offset), so a page starts
//! right after (or before) that row however many rows were added meanwhile.

use std::{future::Future, pin::Pin, sync::Arc};

use async_graphql::SimpleObject;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

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

/// Where a page sits in its list.
#[derive(SimpleObject, Debug, Clone)]
pub struct PageInfo {
    /// Rows exist after this page: ask again with `after: endCursor`.
    pub has_next_page: bool,
    /// Rows exist before this page: ask again with `before: startCursor`.
    pub has_previous_page: bool,
    /// The cursor of the first row of the page.
    pub start_cursor: Option<String>,
    /// The cursor of the last row of the page.
    pub end_cursor: Option<String>,
}

impl PageInfo {
    /// Page info for `cursors` (in page order).
    pub fn new(flags: PageInfoFlags, cursors: &[String]) -> Self {
        Self {
            has_next_page: flags.has_next_page,
            has_previous_page: flags.has_previous_page,
            start_cursor: cursors.first().cloned(),
            end_cursor: cursors.last().cloned(),
        }
    }
}

/// Counts every row matching the list's filter, run only when `totalCount`
/// is asked for.
#[derive(Clone)]
pub struct TotalCount(Arc<CountFn>);

type CountFn = dyn Fn() -> Pin<Box<dyn Future<Output = ApiResult<u64>> + Send>> + Send + Sync;

impl TotalCount {
    /// A count computed by `count` on demand.
    pub fn new<F, Fut>(count: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ApiResult<u64>> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(count())))
    }

    /// A count already known.
    pub fn known(total: u64) -> Self {
        Self::new(move || async move { Ok(total) })
    }

    /// Runs the count.
    pub async fn get(&self) -> ApiResult<i64> {
        let total = (self.0)().await?;
        Ok(i64::try_from(total).unwrap_or(i64::MAX))
    }
}

/// Declares a connection type and its edge type for one node type.
#[macro_export]
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty, $what:literal) => {
        #[doc = concat!("A page of ", $what, ".")]
        pub struct $connection {
            /// The rows of the page, with their cursors.
            pub edges: Vec<$edge>,
            /// Where the page sits in the list.
            pub page_info: $crate::graphql::connection::PageInfo,
            /// Counts the whole list on demand.
            pub total: $crate::graphql::connection::TotalCount,
        }

        #[doc = concat!("A page of ", $what, ".")]
        #[async_graphql::Object]
        impl $connection {
            /// The rows of the page, with their cursors.
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            /// The rows of the page.
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|edge| &edge.node).collect()
            }

            /// Where the page sits in the list.
            async fn page_info(&self) -> &$crate::graphql::connection::PageInfo {
                &self.page_info
            }

            /// How many rows the whole list holds (one extra query; ask only when shown).
            async fn total_count(&self) -> $crate::error::ApiResult<i64> {
                self.total.get().await
            }
        }

        #[doc = concat!("One of ", $what, ", with its cursor.")]
        pub struct $edge {
            /// Opaque position of this row, for `after` and `before`.
            pub cursor: String,
            /// The row.
            pub node: $node,
        }

        #[doc = concat!("One of ", $what, ", with its cursor.")]
        #[async_graphql::Object]
        impl $edge {
            /// Opaque position of this row, for `after` and `before`.
            async fn cursor(&self) -> &str {
                &self.cursor
            }

            /// The row.
            async fn node(&self) -> &$node {
                &self.node
            }
        }

        impl $connection {
            /// Builds the page from `(cursor, node)` pairs in page order.
            pub fn from_page(
                rows: Vec<(String, $node)>,
                flags: $crate::graphql::connection::PageInfoFlags,
                total: $crate::graphql::connection::TotalCount,
            ) -> Self {
                let cursors: Vec<String> = rows.iter().map(|(cursor, _)| cursor.clone()).collect();
                Self {
                    page_info: $crate::graphql::connection::PageInfo::new(flags, &cursors),
                    edges: rows
                        .into_iter()
                        .map(|(cursor, node)| $edge { cursor, node })
                        .collect(),
                    total,
                }
            }
        }
    };
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
