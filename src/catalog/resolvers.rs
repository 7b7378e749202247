//! GraphQL for the catalog: items, their forms and rules, and requests.

use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    form::{self, FieldType, FormField},
    service::{self, Approval, ItemFields, ItemFilter, Submission},
};
use crate::{
    connection,
    entity::catalog_items,
    error::{ApiError, ApiResult},
    graphql::{
        ContextExt,
        connection::TotalCount,
        errors::report,
        loaders::{QueueKey, ServiceKey, UserKey},
        relay::{decode_id_of, encode_id},
    },
    lifecycle::resolvers::Service,
    paging::PageArgs,
    paging::{BY_NAME, name_cursor},
    queue::resolvers::Queue,
    ticket::resolvers::{Ticket, TicketPayload},
    user::resolvers::User,
    vocabulary::{ApprovalMode, ApprovalRule, Level, TaskTemplate},
};

connection!(
    CatalogItemConnection,
    CatalogItemEdge,
    CatalogItem,
    "catalog items"
);

/// Something a person can request, such as "New laptop".
pub struct CatalogItem(pub catalog_items::Model);

/// Something a person can request, such as "New laptop".
#[Object]
impl CatalogItem {
    /// The opaque global id.
    pub async fn id(&self) -> ID {
        encode_id("CatalogItem", self.0.id)
    }

    /// The unique key, such as `NEW_LAPTOP`.
    async fn key(&self) -> &str {
        &self.0.key
    }

    /// The display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What it is.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The catalog category.
    async fn category(&self) -> &str {
        &self.0.category
    }

    /// Offered now (requesters see active items of live services only).
    async fn active(&self) -> bool {
        self.0.active
    }

    /// The service it belongs to.
    async fn service(&self, ctx: &Context<'_>) -> ApiResult<Service> {
        let service = ctx
            .state()?
            .loader
            .load_one(ServiceKey(self.0.service_id))
            .await?;
        service
            .map(Service)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("service missing")))
    }

    /// The queue that fulfils requests.
    async fn fulfilment_queue(&self, ctx: &Context<'_>) -> ApiResult<Queue> {
        let queue = ctx
            .state()?
            .loader
            .load_one(QueueKey(self.0.fulfilment_queue_id))
            .await?;
        queue
            .map(Queue)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("queue missing")))
    }

    /// Impact of requests made from it.
    async fn default_impact(&self) -> Level {
        self.0.default_impact
    }

    /// Urgency of requests made from it.
    async fn default_urgency(&self) -> Level {
        self.0.default_urgency
    }

    /// How long fulfilment is expected to take, in hours.
    async fn expected_fulfilment_hours(&self) -> i32 {
        self.0.fulfilment_hours
    }

    /// Who approves requests before they are fulfilled.
    async fn approval(&self) -> ApprovalInfo {
        ApprovalInfo {
            rule: self.0.approval_rule,
            mode: self.0.approval_mode,
            approver_ids: service::approvers_of(&self.0),
        }
    }

    /// The fulfilment steps each request gets, in order.
    async fn tasks(&self) -> Vec<TaskTemplateInfo> {
        service::tasks_of(&self.0)
            .into_iter()
            .map(TaskTemplateInfo)
            .collect()
    }

    /// The request form.
    async fn form(&self) -> Vec<FormFieldInfo> {
        service::form_of(&self.0)
            .into_iter()
            .map(FormFieldInfo)
            .collect()
    }

    /// Changes with every edit; send it back as `expectedVersion`.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When it was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Who approves requests for an item.
pub struct ApprovalInfo {
    rule: ApprovalRule,
    mode: ApprovalMode,
    approver_ids: Vec<i64>,
}

/// Who approves requests for an item.
#[Object]
impl ApprovalInfo {
    /// The rule.
    async fn rule(&self) -> ApprovalRule {
        self.rule
    }

    /// With named approvers: whether one or all must approve.
    async fn mode(&self) -> ApprovalMode {
        self.mode
    }

    /// The named approvers.
    async fn approvers(&self, ctx: &Context<'_>) -> ApiResult<Vec<User>> {
        let found = ctx
            .state()?
            .loader
            .load_many(self.approver_ids.iter().map(|id| UserKey(*id)))
            .await?;
        Ok(self
            .approver_ids
            .iter()
            .filter_map(|id| found.get(&UserKey(*id)).cloned().map(User))
            .collect())
    }
}

/// A fulfilment step an item's requests get.
pub struct TaskTemplateInfo(TaskTemplate);

/// A fulfilment step an item's requests get.
#[Object]
impl TaskTemplateInfo {
    /// What to do.
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// The queue that does it; the request's queue when null.
    async fn queue(&self, ctx: &Context<'_>) -> ApiResult<Option<Queue>> {
        let Some(id) = self.0.queue_id else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(QueueKey(id)).await?.map(Queue))
    }
}

/// One field of a request form.
pub struct FormFieldInfo(pub FormField);

/// One field of a request form.
#[Object(name = "FormField")]
impl FormFieldInfo {
    /// The key answers use.
    async fn key(&self) -> &str {
        &self.0.key
    }

    /// What the portal shows.
    async fn label(&self) -> &str {
        &self.0.label
    }

    /// Help text.
    async fn help(&self) -> Option<&str> {
        self.0.help.as_deref()
    }

    /// The type.
    #[graphql(name = "type")]
    async fn kind(&self) -> FieldType {
        self.0.kind
    }

    /// Must be answered.
    async fn required(&self) -> bool {
        self.0.required
    }

    /// The answer when none is given.
    async fn default(&self) -> Option<Json<Value>> {
        self.0.default.clone().map(Json)
    }

    /// Smallest number allowed (`NUMBER`).
    async fn min(&self) -> Option<f64> {
        self.0.min
    }

    /// Largest number allowed (`NUMBER`), or most files (`FILE`).
    async fn max(&self) -> Option<f64> {
        self.0.max
    }

    /// The choices (`SELECT`, `MULTI_SELECT`), or the accepted media types
    /// (`FILE`; any the service accepts when empty).
    async fn options(&self) -> &[String] {
        &self.0.options
    }
}

/// One answered field of a request.
#[derive(SimpleObject)]
pub struct RequestAnswer {
    /// The form field.
    pub field: FormFieldInfo,
    /// The answer, typed as the field says (text, number, boolean, list or
    /// date text; for `FILE`, a list of `{filename contentType size sha256}`,
    /// the files being the request's attachments with this `formField`).
    pub value: Json<Value>,
}

/// The answers stored with a request, in form order, each with its field as
/// the form defined it when the request was made. Requests stored before
/// fields were kept with them hold a plain object of answers: those are read
/// through `item`'s current form.
pub fn request_form(answers: &str, item: Option<&catalog_items::Model>) -> Vec<RequestAnswer> {
    let answered = match serde_json::from_str::<Vec<form::Answered>>(answers) {
        Ok(answered) => answered,
        Err(_) => {
            let map: std::collections::BTreeMap<String, Value> =
                serde_json::from_str(answers).unwrap_or_default();
            item.map(|item| form::answered(&service::form_of(item), &map))
                .unwrap_or_default()
        }
    };
    answered
        .into_iter()
        .map(|answered| RequestAnswer {
            field: FormFieldInfo(answered.field),
            value: Json(answered.value),
        })
        .collect()
}

/// True when `answers` were stored without their fields (before fields were
/// kept with them), so reading them needs the catalog item.
pub fn needs_item(answers: &str) -> bool {
    answers.trim_start().starts_with('{')
}

/// One page of the catalog items matching `filter` that the viewer may see.
pub async fn item_page(
    ctx: &Context<'_>,
    filter: ItemFilter,
    args: PageArgs,
) -> ApiResult<CatalogItemConnection> {
    let role = ctx.auth().viewer()?.role;
    let db = ctx.db()?.clone();
    let page = args.page(BY_NAME)?;
    let (rows, flags) = service::list(&db, role, &filter, &page).await?;
    let rows = rows
        .into_iter()
        .map(|item| (name_cursor(&item.name, item.id), CatalogItem(item)))
        .collect();
    let total = TotalCount::new(move || {
        let (db, filter) = (db.clone(), filter.clone());
        async move { service::count(&db, role, &filter).await }
    });
    Ok(CatalogItemConnection::from_page(rows, flags, total))
}

/// Catalog queries.
#[derive(Default)]
pub struct CatalogQuery;

/// Catalog queries.
#[Object]
impl CatalogQuery {
    /// Catalog items the viewer may see, by name (requesters see active items
    /// of live services only).
    async fn catalog_items(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only items of this service.")] service_id: Option<ID>,
        #[graphql(desc = "Only items in this category.")] category: Option<String>,
        #[graphql(desc = "Text in the key, name or description.")] search: Option<String>,
        #[graphql(desc = "Items after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
    ) -> ApiResult<CatalogItemConnection> {
        let filter = ItemFilter {
            service_id: service_id
                .map(|id| decode_id_of("Service", &id, "serviceId"))
                .transpose()?,
            category,
            search,
        };
        item_page(
            ctx,
            filter,
            PageArgs {
                first,
                after,
                last: None,
                before: None,
            },
        )
        .await
    }

    /// One catalog item; null when it does not exist or the viewer may not see it.
    async fn catalog_item(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The item's global id.")] id: ID,
    ) -> ApiResult<Option<CatalogItem>> {
        let role = ctx.auth().viewer()?.role;
        let id = decode_id_of("CatalogItem", &id, "id")?;
        Ok(service::get(ctx.db()?.reader(), role, id)
            .await?
            .map(CatalogItem))
    }

    /// The categories of the items the viewer may see, alphabetically.
    async fn catalog_categories(&self, ctx: &Context<'_>) -> ApiResult<Vec<String>> {
        let role = ctx.auth().viewer()?.role;
        service::categories(ctx.db()?, role).await
    }
}

/// A field of a request form.
#[derive(InputObject)]
pub struct FormFieldInput {
    /// The key answers use: a lower-case letter, then lower-case letters, digits or `_`.
    pub key: String,
    /// What the portal shows.
    pub label: String,
    /// Help text.
    pub help: Option<String>,
    /// The type.
    #[graphql(name = "type")]
    pub kind: FieldType,
    /// Must be answered.
    #[graphql(default)]
    pub required: bool,
    /// The answer when none is given.
    pub default: Option<Json<Value>>,
    /// Smallest number allowed (`NUMBER` only).
    pub min: Option<f64>,
    /// Largest number allowed (`NUMBER`), or most files (`FILE`: 1 to 10;
    /// one when absent).
    pub max: Option<f64>,
    /// The choices (`SELECT` and `MULTI_SELECT`), or the accepted media
    /// types (`FILE`: such as `application/pdf`; any the service accepts
    /// when empty).
    #[graphql(default)]
    pub options: Vec<String>,
}

/// Who approves an item's requests.
#[derive(InputObject)]
pub struct ApprovalInput {
    /// The rule.
    pub rule: ApprovalRule,
    /// With named approvers: whether one or all must approve.
    #[graphql(default_with = "ApprovalMode::Any")]
    pub mode: ApprovalMode,
    /// The named approvers (`APPROVERS` only).
    #[graphql(default)]
    pub approver_ids: Vec<ID>,
}

/// A fulfilment step.
#[derive(InputObject)]
pub struct TaskTemplateInput {
    /// What to do.
    pub title: String,
    /// The queue that does it; the request's queue when absent.
    pub queue_id: Option<ID>,
}

/// Adds an item to the catalog.
#[derive(InputObject)]
pub struct CreateCatalogItemInput {
    /// The service it belongs to.
    pub service_id: ID,
    /// A unique key: 1 to 50 letters, digits, `-` or `_` (stored upper-case).
    pub key: String,
    /// The display name.
    pub name: String,
    /// What it is.
    pub description: Option<String>,
    /// The catalog category (`General` when absent).
    pub category: Option<String>,
    /// Offered now (default true).
    pub active: Option<bool>,
    /// The queue that fulfils requests.
    pub fulfilment_queue_id: ID,
    /// Impact of requests (default LOW).
    pub default_impact: Option<Level>,
    /// Urgency of requests (default LOW).
    pub default_urgency: Option<Level>,
    /// Expected fulfilment time in hours (default 40).
    pub expected_fulfilment_hours: Option<i32>,
    /// Who approves requests (nobody when absent).
    pub approval: Option<ApprovalInput>,
    /// Fulfilment steps, in order.
    #[graphql(default)]
    pub tasks: Vec<TaskTemplateInput>,
    /// The request form.
    #[graphql(default)]
    pub form: Vec<FormFieldInput>,
}

/// Changes a catalog item; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateCatalogItemInput {
    /// The item.
    pub id: ID,
    /// The version the edit is based on; a stale one gets `CONFLICT`.
    pub expected_version: i32,
    /// A new service.
    pub service_id: Option<ID>,
    /// A new key.
    pub key: Option<String>,
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new category.
    pub category: Option<String>,
    /// Offer it, or stop offering it.
    pub active: Option<bool>,
    /// A new fulfilment queue.
    pub fulfilment_queue_id: Option<ID>,
    /// A new impact for requests.
    pub default_impact: Option<Level>,
    /// A new urgency for requests.
    pub default_urgency: Option<Level>,
    /// A new expected fulfilment time in hours.
    pub expected_fulfilment_hours: Option<i32>,
    /// A new approval rule.
    pub approval: Option<ApprovalInput>,
    /// New fulfilment steps.
    pub tasks: Option<Vec<TaskTemplateInput>>,
    /// A new request form.
    pub form: Option<Vec<FormFieldInput>>,
}

/// Requests a catalog item.
#[derive(InputObject)]
pub struct SubmitServiceRequestInput {
    /// The item requested.
    pub catalog_item_id: ID,
    /// The form's answers: an object of field keys to values.
    pub answers: Json<Value>,
    /// A title; the item's name when absent.
    pub title: Option<String>,
    /// Makes a retry return the first request instead of creating a second.
    pub idempotency_key: Option<String>,
    /// Whom it is for, when not you (a `User` id): agents, managers, admins,
    /// and integrations whose token carries `tickets:write` (which must name
    /// someone). You are recorded as the one who submitted it.
    pub requester_id: Option<ID>,
    /// The files answering the form's `FILE` fields, sent as multipart
    /// parts. They become the request's attachments, each naming its field.
    #[graphql(default)]
    pub files: Vec<FormFileInput>,
}

/// A file answering a `FILE` field of a request form.
#[derive(InputObject)]
pub struct FormFileInput {
    /// The field's key.
    pub field: String,
    /// The file (a multipart part).
    pub file: Upload,
}

/// The item a mutation created or changed.
#[derive(SimpleObject)]
pub struct CatalogItemPayload {
    /// The item as it is now.
    pub item: CatalogItem,
}

fn form(fields: Vec<FormFieldInput>) -> Vec<FormField> {
    fields
        .into_iter()
        .map(|f| FormField {
            key: f.key.trim().to_owned(),
            label: f.label.trim().to_owned(),
            help: f.help,
            kind: f.kind,
            required: f.required,
            default: f.default.map(|Json(v)| v),
            min: f.min,
            max: f.max,
            options: f.options,
        })
        .collect()
}

fn approval(input: ApprovalInput) -> ApiResult<Approval> {
    Ok(Approval {
        rule: input.rule,
        mode: input.mode,
        approver_ids: input
            .approver_ids
            .iter()
            .map(|id| decode_id_of("User", id, "approval.approverIds"))
            .collect::<ApiResult<_>>()?,
    })
}

fn tasks(input: Vec<TaskTemplateInput>) -> ApiResult<Vec<TaskTemplate>> {
    input
        .into_iter()
        .enumerate()
        .map(|(index, t)| {
            Ok(TaskTemplate {
                title: t.title,
                queue_id: t
                    .queue_id
                    .map(|id| decode_id_of("Queue", &id, &format!("tasks[{index}].queueId")))
                    .transpose()?,
            })
        })
        .collect()
}

/// Catalog mutations.
#[derive(Default)]
pub struct CatalogMutation;

/// Catalog mutations.
#[Object]
impl CatalogMutation {
    /// Adds an item to the catalog (managers and admins). The form is checked
    /// as it is saved; every problem is reported at once.
    async fn create_catalog_item(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateCatalogItemInput,
    ) -> async_graphql::Result<CatalogItemPayload> {
        let viewer = ctx.auth().viewer()?;
        let fields = ItemFields {
            service_id: Some(decode_id_of("Service", &input.service_id, "serviceId")?),
            key: Some(input.key),
            name: Some(input.name),
            description: input.description,
            category: input.category,
            active: input.active,
            fulfilment_queue_id: Some(decode_id_of(
                "Queue",
                &input.fulfilment_queue_id,
                "fulfilmentQueueId",
            )?),
            default_impact: input.default_impact,
            default_urgency: input.default_urgency,
            fulfilment_hours: input.expected_fulfilment_hours,
            approval: input.approval.map(approval).transpose()?,
            tasks: Some(tasks(input.tasks)?),
            form: Some(form(input.form)),
        };
        let item = service::create(ctx.db()?, viewer, fields)
            .await
            .map_err(|e| report(ctx, e))?;
        Ok(CatalogItemPayload {
            item: CatalogItem(item),
        })
    }

    /// Changes a catalog item (managers and admins).
    async fn update_catalog_item(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: UpdateCatalogItemInput,
    ) -> async_graphql::Result<CatalogItemPayload> {
        let viewer = ctx.auth().viewer()?;
        let id = decode_id_of("CatalogItem", &input.id, "id")?;
        let fields = ItemFields {
            service_id: input
                .service_id
                .map(|id| decode_id_of("Service", &id, "serviceId"))
                .transpose()?,
            key: input.key,
            name: input.name,
            description: input.description,
            category: input.category,
            active: input.active,
            fulfilment_queue_id: input
                .fulfilment_queue_id
                .map(|id| decode_id_of("Queue", &id, "fulfilmentQueueId"))
                .transpose()?,
            default_impact: input.default_impact,
            default_urgency: input.default_urgency,
            fulfilment_hours: input.expected_fulfilment_hours,
            approval: input.approval.map(approval).transpose()?,
            tasks: input.tasks.map(tasks).transpose()?,
            form: input.form.map(form),
        };
        let item = service::update(ctx.db()?, viewer, id, input.expected_version, fields)
            .await
            .map_err(|e| report(ctx, e))?;
        Ok(CatalogItemPayload {
            item: CatalogItem(item),
        })
    }

    /// Requests a catalog item: the answers are checked against its form
    /// (every problem reported at once, each naming its field), and a valid
    /// request becomes a `SERVICE_REQUEST` in the item's fulfilment queue.
    async fn submit_service_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: SubmitServiceRequestInput,
    ) -> async_graphql::Result<TicketPayload> {
        let scope = ctx.scope().await?;
        let submission = Submission {
            item_id: decode_id_of("CatalogItem", &input.catalog_item_id, "catalogItemId")?,
            answers: input.answers.0,
            title: input.title,
            idempotency_key: input.idempotency_key,
            requester_id: crate::ticket::resolvers::requester_id(input.requester_id)?,
        };
        let files = crate::attachments::resolvers::files(ctx)?;
        let mut uploads = Vec::with_capacity(input.files.len());
        for (index, sent) in input.files.iter().enumerate() {
            let file = crate::attachments::resolvers::read_upload(
                ctx,
                files,
                &sent.file,
                &format!("files[{index}].file"),
            )
            .await?;
            uploads.push((sent.field.trim().to_owned(), file));
        }
        let ticket =
            crate::ticket::request::submit_with_files(ctx.db()?, files, scope, submission, uploads)
                .await
                .map_err(|e| report(ctx, e))?;
        Ok(TicketPayload {
            ticket: Ticket(ticket),
        })
    }
}
