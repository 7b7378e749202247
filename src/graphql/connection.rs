//! Relay connections: the connection, edge and page-info types every list
//! returns. Pages, cursors and their checks are [`crate::paging`]'s.

use std::{future::Future, pin::Pin, sync::Arc};

use async_graphql::SimpleObject;

use crate::{error::ApiResult, paging::PageInfoFlags};

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
                flags: $crate::paging::PageInfoFlags,
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
