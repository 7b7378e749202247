//! Keyset pages over small lists ordered by a name, then id.

use sea_orm::{
    ColumnTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select,
    sea_query::{Expr, ExprTrait},
};
use serde_json::{Value, json};

use crate::{
    db::Db,
    error::{ApiError, ApiResult},
    graphql::connection::{Page, PageInfoFlags, encode_cursor},
};

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
    let mut select = select;
    if let Some(key) = &page.key {
        let field = if page.backward { "before" } else { "after" };
        let invalid = || ApiError::bad_input(field, "the cursor does not fit this list");
        let (Some(Value::String(key_name)), Some(key_id)) =
            (key.first(), key.get(1).and_then(Value::as_i64))
        else {
            return Err(invalid());
        };
        let row = Expr::tuple([Expr::col(name), Expr::col(id)]);
        let key = Expr::tuple([Expr::val(key_name.clone()), Expr::val(key_id)]);
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
    let rows = select
        .order_by(name, order.clone())
        .order_by(id, order)
        .limit(page.limit + 1)
        .all(db.reader())
        .await?;
    Ok(page.finish(rows))
}
