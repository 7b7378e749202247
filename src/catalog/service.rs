//! The catalog service: items, their forms and rules, and turning a submitted
//! form into a service request.

use std::collections::BTreeMap;

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};
use serde_json::Value;

use super::form::{self, FormField, Problem};
use crate::paging::CountRows;
use crate::{
    access::Scope,
    auth::{Role, Viewer, require},
    clock::now,
    db::{Db, Txn},
    entity::{catalog_items, queues, services, users},
    error::{ApiError, ApiResult},
    paging,
    paging::{Page, PageInfoFlags},
    vocabulary::{ApprovalMode, ApprovalRule, Level, ServiceStatus, Stage, TaskTemplate},
};

/// Most tasks a catalog item's template holds.
pub const MAX_TASKS: usize = 30;

/// An approval rule as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Who approves.
    pub rule: ApprovalRule,
    /// With named approvers: one or all of them.
    pub mode: ApprovalMode,
    /// The named approvers.
    pub approver_ids: Vec<i64>,
}

impl Default for Approval {
    fn default() -> Self {
        Self {
            rule: ApprovalRule::None,
            mode: ApprovalMode::Any,
            approver_ids: Vec::new(),
        }
    }
}

/// A catalog item's fields; on update `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ItemFields {
    /// The service it belongs to.
    pub service_id: Option<i64>,
    /// A unique key.
    pub key: Option<String>,
    /// The display name.
    pub name: Option<String>,
    /// What it is.
    pub description: Option<String>,
    /// The catalog category.
    pub category: Option<String>,
    /// Offered now.
    pub active: Option<bool>,
    /// The queue that fulfils requests.
    pub fulfilment_queue_id: Option<i64>,
    /// Impact of requests.
    pub default_impact: Option<Level>,
    /// Urgency of requests.
    pub default_urgency: Option<Level>,
    /// Expected fulfilment time, in hours.
    pub fulfilment_hours: Option<i32>,
    /// Who approves requests.
    pub approval: Option<Approval>,
    /// Fulfilment steps.
    pub tasks: Option<Vec<TaskTemplate>>,
    /// The request form.
    pub form: Option<Vec<FormField>>,
}

/// The items someone with `role` may see: requesters see active items of
/// live services only.
pub fn visible_to(role: Role) -> Condition {
    if role != Role::Requester {
        return Condition::all();
    }
    Condition::all()
        .add(catalog_items::Column::Active.eq(true))
        .add(catalog_items::Column::ServiceId.in_subquery(live_services()))
}

fn live_services() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(services::Column::Id)
        .from(services::Entity)
        .and_where(Expr::col(services::Column::Stage).eq(Stage::Operation.as_str()))
        .and_where(Expr::col(services::Column::Status).eq(ServiceStatus::Active.as_str()))
        .to_owned()
}

/// The form of an item.
pub fn form_of(item: &catalog_items::Model) -> Vec<FormField> {
    serde_json::from_str(&item.form).unwrap_or_default()
}

/// The task templates of an item.
pub fn tasks_of(item: &catalog_items::Model) -> Vec<TaskTemplate> {
    serde_json::from_str(&item.tasks).unwrap_or_default()
}

/// The named approvers of an item.
pub fn approvers_of(item: &catalog_items::Model) -> Vec<i64> {
    serde_json::from_str(&item.approvers).unwrap_or_default()
}

fn problems(list: Vec<Problem>) -> ApiError {
    ApiError::BadUserInputs(list.into_iter().map(|p| (p.field, p.message)).collect())
}

fn text(value: &str, field: &str, max: usize) -> ApiResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(ApiError::bad_input(
            field,
            format!("`{field}` holds 1 to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

fn item_key(value: &str) -> ApiResult<String> {
    let value = value.trim().to_uppercase();
    let ok = !value.is_empty()
        && value.chars().count() <= 50
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(value)
    } else {
        Err(ApiError::bad_input(
            "key",
            "a key holds 1 to 50 letters, digits, `-` or `_`",
        ))
    }
}

async fn check_references(txn: &Txn, fields: &ItemFields) -> ApiResult<()> {
    if let Some(id) = fields.service_id
        && services::Entity::find_by_id(id).one(txn).await?.is_none()
    {
        return Err(ApiError::bad_input("serviceId", "no such service"));
    }
    if let Some(id) = fields.fulfilment_queue_id
        && queues::Entity::find_by_id(id).one(txn).await?.is_none()
    {
        return Err(ApiError::bad_input("fulfilmentQueueId", "no such queue"));
    }
    if let Some(approval) = &fields.approval {
        match approval.rule {
            ApprovalRule::Approvers if approval.approver_ids.is_empty() => {
                return Err(ApiError::bad_input(
                    "approval.approverIds",
                    "name at least one approver",
                ));
            }
            ApprovalRule::Approvers => {
                let found = users::Entity::find()
                    .filter(users::Column::Id.is_in(approval.approver_ids.clone()))
                    .count_rows(txn)
                    .await?;
                let mut distinct = approval.approver_ids.clone();
                distinct.sort_unstable();
                distinct.dedup();
                if found != distinct.len() as u64 {
                    return Err(ApiError::bad_input(
                        "approval.approverIds",
                        "every approver must be a known user",
                    ));
                }
            }
            _ if !approval.approver_ids.is_empty() => {
                return Err(ApiError::bad_input(
                    "approval.approverIds",
                    "approvers go with the APPROVERS rule",
                ));
            }
            _ => {}
        }
    }
    if let Some(tasks) = &fields.tasks {
        if tasks.len() > MAX_TASKS {
            return Err(ApiError::bad_input(
                "tasks",
                format!("at most {MAX_TASKS} tasks"),
            ));
        }
        for (index, task) in tasks.iter().enumerate() {
            text(&task.title, &format!("tasks[{index}].title"), 200)?;
            if let Some(queue) = task.queue_id
                && queues::Entity::find_by_id(queue).one(txn).await?.is_none()
            {
                return Err(ApiError::bad_input(
                    format!("tasks[{index}].queueId"),
                    "no such queue",
                ));
            }
        }
    }
    if let Some(form) = &fields.form {
        let found = form::check_form(form);
        if !found.is_empty() {
            return Err(problems(found));
        }
    }
    if let Some(hours) = fields.fulfilment_hours
        && !(1..=24 * 365).contains(&hours)
    {
        return Err(ApiError::bad_input(
            "expectedFulfilmentHours",
            "between 1 and 8760 hours",
        ));
    }
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> ApiResult<String> {
    serde_json::to_string(value).map_err(ApiError::internal)
}

/// Adds an item to the catalog (managers and admins).
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id))]
pub async fn create(
    db: &Db,
    viewer: &Viewer,
    fields: ItemFields,
) -> ApiResult<catalog_items::Model> {
    require(viewer, Role::Manager, "manage the catalog")?;
    let key = item_key(fields.key.as_deref().unwrap_or_default())?;
    let name = text(fields.name.as_deref().unwrap_or_default(), "name", 200)?;
    let category = text(
        fields.category.as_deref().unwrap_or("General"),
        "category",
        100,
    )?;
    let service_id = fields
        .service_id
        .ok_or_else(|| ApiError::bad_input("serviceId", "an item belongs to a service"))?;
    let queue_id = fields.fulfilment_queue_id.ok_or_else(|| {
        ApiError::bad_input("fulfilmentQueueId", "an item needs a fulfilment queue")
    })?;
    let txn = db.begin().await?;
    check_references(&txn, &fields).await?;
    let approval = fields.approval.clone().unwrap_or_default();
    let at = now();
    let item = catalog_items::Entity::insert(catalog_items::ActiveModel {
        id: NotSet,
        service_id: Set(service_id),
        key: Set(key),
        name: Set(name),
        description: Set(fields
            .description
            .clone()
            .unwrap_or_default()
            .trim()
            .to_owned()),
        category: Set(category),
        active: Set(fields.active.unwrap_or(true)),
        fulfilment_queue_id: Set(queue_id),
        default_impact: Set(fields.default_impact.unwrap_or(Level::Low)),
        default_urgency: Set(fields.default_urgency.unwrap_or(Level::Low)),
        fulfilment_hours: Set(fields.fulfilment_hours.unwrap_or(40)),
        approval_rule: Set(approval.rule),
        approval_mode: Set(approval.mode),
        approvers: Set(json(&approval.approver_ids)?),
        tasks: Set(json(&fields.tasks.clone().unwrap_or_default())?),
        form: Set(json(&fields.form.clone().unwrap_or_default())?),
        version: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
    })
    .exec_with_returning(&txn)
    .await
    .map_err(|e| ApiError::unless_unique(e, "key", "an item with this key exists"))?;
    txn.commit().await?;
    Ok(item)
}

/// Changes an item (managers and admins); a stale version gets `CONFLICT`.
#[tracing::instrument(skip_all, fields(viewer = viewer.user.id, item = id))]
pub async fn update(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    expected_version: i32,
    fields: ItemFields,
) -> ApiResult<catalog_items::Model> {
    require(viewer, Role::Manager, "manage the catalog")?;
    let txn = db.begin().await?;
    let item = catalog_items::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound("no catalog item with that `id`".into()))?;
    if item.version != expected_version {
        return Err(ApiError::Conflict(format!(
            "the item changed since version {expected_version} (it is at version {}); reload and retry",
            item.version
        )));
    }
    check_references(&txn, &fields).await?;
    let mut row = catalog_items::ActiveModel::default();
    if let Some(value) = &fields.key {
        row.key = Set(item_key(value)?);
    }
    if let Some(value) = &fields.name {
        row.name = Set(text(value, "name", 200)?);
    }
    if let Some(value) = &fields.description {
        row.description = Set(value.trim().to_owned());
    }
    if let Some(value) = &fields.category {
        row.category = Set(text(value, "category", 100)?);
    }
    if let Some(value) = fields.service_id {
        row.service_id = Set(value);
    }
    if let Some(value) = fields.active {
        row.active = Set(value);
    }
    if let Some(value) = fields.fulfilment_queue_id {
        row.fulfilment_queue_id = Set(value);
    }
    if let Some(value) = fields.default_impact {
        row.default_impact = Set(value);
    }
    if let Some(value) = fields.default_urgency {
        row.default_urgency = Set(value);
    }
    if let Some(value) = fields.fulfilment_hours {
        row.fulfilment_hours = Set(value);
    }
    if let Some(approval) = &fields.approval {
        row.approval_rule = Set(approval.rule);
        row.approval_mode = Set(approval.mode);
        row.approvers = Set(json(&approval.approver_ids)?);
    }
    if let Some(tasks) = &fields.tasks {
        row.tasks = Set(json(tasks)?);
    }
    if let Some(form) = &fields.form {
        row.form = Set(json(form)?);
    }
    row.version = Set(item.version + 1);
    row.updated_at = Set(now());
    let mut saved = catalog_items::Entity::update_many()
        .set(row)
        .filter(catalog_items::Column::Id.eq(id))
        .filter(catalog_items::Column::Version.eq(item.version))
        .exec_with_returning(&txn)
        .await
        .map_err(|e| ApiError::unless_unique(e, "key", "an item with this key exists"))?;
    let saved = saved
        .pop()
        .ok_or_else(|| ApiError::Conflict("the item changed meanwhile; reload and retry".into()))?;
    txn.commit().await?;
    Ok(saved)
}

/// Which items a list holds.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    /// Items of this service.
    pub service_id: Option<i64>,
    /// Items in this category.
    pub category: Option<String>,
    /// Text in the key, name or description.
    pub search: Option<String>,
}

fn condition(role: Role, filter: &ItemFilter) -> ApiResult<Condition> {
    let mut condition = visible_to(role);
    if let Some(id) = filter.service_id {
        condition = condition.add(catalog_items::Column::ServiceId.eq(id));
    }
    if let Some(category) = &filter.category {
        condition = condition.add(catalog_items::Column::Category.eq(category.trim()));
    }
    let search = crate::text::search_condition(
        filter.search.as_deref(),
        &[
            catalog_items::Column::Key,
            catalog_items::Column::Name,
            catalog_items::Column::Description,
        ],
    )?;
    Ok(condition.add(search))
}

/// Items the viewer may see, by name.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn list(
    db: &Db,
    role: Role,
    filter: &ItemFilter,
    page: &Page,
) -> ApiResult<(Vec<catalog_items::Model>, PageInfoFlags)> {
    let select = catalog_items::Entity::find().filter(condition(role, filter)?);
    paging::by_name(
        db,
        select,
        catalog_items::Column::Name,
        catalog_items::Column::Id,
        page,
    )
    .await
}

/// How many items match.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn count(db: &Db, role: Role, filter: &ItemFilter) -> ApiResult<u64> {
    Ok(catalog_items::Entity::find()
        .filter(condition(role, filter)?)
        .count_rows(db.reader())
        .await?)
}

/// Catalog items (callers check who may see them) by id, in no particular order.
#[tracing::instrument(skip_all, level = "debug", fields(count = ids.len()))]
pub async fn by_ids(db: &Db, ids: &[i64]) -> ApiResult<Vec<catalog_items::Model>> {
    Ok(catalog_items::Entity::find()
        .filter(catalog_items::Column::Id.is_in(ids.iter().copied()))
        .all(db.reader())
        .await?)
}

/// An item the viewer may see.
#[tracing::instrument(skip_all, level = "debug", fields(id))]
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    role: Role,
    id: i64,
) -> ApiResult<Option<catalog_items::Model>> {
    Ok(catalog_items::Entity::find_by_id(id)
        .filter(visible_to(role))
        .one(conn)
        .await?)
}

/// The categories of the items the viewer may see, alphabetically.
#[tracing::instrument(skip_all, level = "debug")]
pub async fn categories(db: &Db, role: Role) -> ApiResult<Vec<String>> {
    Ok(catalog_items::Entity::find()
        .select_only()
        .column(catalog_items::Column::Category)
        .distinct()
        .filter(visible_to(role))
        .order_by_asc(catalog_items::Column::Category)
        .into_tuple()
        .all(db.reader())
        .await?)
}

/// A request made from the catalog.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The item requested.
    pub item_id: i64,
    /// The form's answers, by field key.
    pub answers: Value,
    /// A title; the item's name when absent.
    pub title: Option<String>,
    /// Makes a retry return the first request.
    pub idempotency_key: Option<String>,
    /// Whom it is for, when not the viewer.
    pub requester_id: Option<i64>,
}

/// A submission checked against its item: what the request ticket is made
/// of. `ticket::request` turns it into a ticket.
#[derive(Debug, Clone)]
pub struct Request {
    /// The item requested.
    pub item: catalog_items::Model,
    /// The ticket's title: the one given, or the item's name.
    pub title: String,
    /// The answers as readable text, one `label: answer` line per field.
    pub description: String,
    /// The answers as stored, with their labels (JSON).
    pub answers: String,
    /// What the portal sent, by which a retry is recognised.
    pub submitted: Value,
    /// Who must approve: nobody (`None`), any manager (`Some(None)`), or
    /// the item's named approvers.
    pub approvers: Option<Option<Vec<i64>>>,
    /// Makes a retry return the first request.
    pub idempotency_key: Option<String>,
}

/// Checks a submitted form and the `files` sent for its `FILE` fields
/// against its item: the item must be requestable now, and every problem
/// with the answers is reported at once.
#[tracing::instrument(skip_all, fields(viewer = scope.user_id, item = submission.item_id))]
pub async fn prepare(
    db: &Db,
    scope: &Scope,
    submission: Submission,
    files: &[form::SentFile],
) -> ApiResult<Request> {
    let item = get(db.reader(), scope.role, submission.item_id)
        .await?
        .ok_or_else(|| ApiError::bad_input("catalogItemId", "no such catalog item"))?;
    let service = services::Entity::find_by_id(item.service_id)
        .one(db.reader())
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("item without service")))?;
    if !item.active || !crate::lifecycle::portfolio::is_live(&service) {
        return Err(ApiError::bad_input(
            "catalogItemId",
            "this item cannot be requested now: it is inactive or its service is not live",
        ));
    }
    let fields = form_of(&item);
    let answers = form::check_answers(&fields, &submission.answers, files).map_err(problems)?;
    let description = render(&fields, &answers);
    // A retry is recognised by what the portal sent, not by what the item's
    // current name and form make of it; files by their content.
    let sent: Vec<Value> = files
        .iter()
        .map(|f| serde_json::json!([f.field, f.sha256]))
        .collect();
    let mut submitted = serde_json::json!({
        "catalogItemId": item.id, "answers": submission.answers, "title": submission.title,
    });
    if !sent.is_empty() {
        submitted["files"] = Value::Array(sent);
    }
    let title = submission
        .title
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| item.name.clone());
    Ok(Request {
        title,
        description,
        answers: json(&form::answered(&fields, &answers))?,
        submitted,
        approvers: match item.approval_rule {
            ApprovalRule::None => None,
            ApprovalRule::AnyManager => Some(None),
            ApprovalRule::Approvers => Some(Some(approvers_of(&item))),
        },
        idempotency_key: submission.idempotency_key,
        item,
    })
}

fn render(fields: &[FormField], answers: &BTreeMap<String, Value>) -> String {
    fields
        .iter()
        .filter_map(|field| {
            let value = answers.get(&field.key)?;
            let shown = match value {
                Value::String(text) => text.clone(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(|item| item.as_str().or_else(|| item["filename"].as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::Bool(true) => "yes".into(),
                Value::Bool(false) => "no".into(),
                other => other.to_string(),
            };
            Some(format!("{}: {shown}", field.label))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
