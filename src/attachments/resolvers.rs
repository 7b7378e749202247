//! GraphQL for attachments: the type, the upload and removal mutations.
//! Uploads follow the GraphQL multipart request spec (`Upload` scalar).

use std::io::Read;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Upload};
use chrono::{DateTime, Utc};

use super::{
    files::Files,
    service::{self, Upload as File},
};
use crate::{
    entity::attachments,
    error::{ApiError, ApiResult},
    graphql::{
        ContextExt,
        loaders::{AttachmentsKey, TicketKey, UserKey},
        relay::{decode_id_of, encode_id},
    },
    ticket::{
        query,
        resolvers::{Comment, Ticket},
    },
    user::resolvers::User,
    vocabulary::Visibility,
};

pub(crate) fn files<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Files> {
    ctx.data_opt::<Files>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("schema built without attachments")))
}

/// A file attached to a ticket or to one of its comments.
pub struct Attachment(pub attachments::Model);

/// The attachments of ticket `ticket_id` that the viewer may read and
/// `keep` selects, oldest first, through the request's loader (one query
/// for every ticket and comment on the page).
pub(crate) async fn of_ticket(
    ctx: &Context<'_>,
    ticket_id: i64,
    keep: impl Fn(&attachments::Model) -> bool,
) -> ApiResult<Vec<Attachment>> {
    let scope = ctx.scope().await?;
    let key = AttachmentsKey {
        ticket_id,
        visibilities: scope.visibilities(),
    };
    Ok(ctx
        .state()?
        .loader
        .load_one(key)
        .await?
        .unwrap_or_default()
        .into_iter()
        .filter(|a| keep(a))
        .map(Attachment)
        .collect())
}

/// The path a download link starts with.
pub const DOWNLOAD_PATH: &str = "/attachments";

/// A file attached to a ticket or to one of its comments. It has the
/// visibility of what it belongs to.
#[Object]
impl Attachment {
    /// The opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Attachment", self.0.id)
    }

    /// The file's name, as uploaded (without any path).
    async fn filename(&self) -> &str {
        &self.0.filename
    }

    /// The media type its content shows (sniffed, not as the uploader said).
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    /// Its size in bytes.
    async fn size(&self) -> i64 {
        self.0.size
    }

    /// The key of the catalog request form's `FILE` field it answers, when
    /// it was sent with the request.
    async fn form_field(&self) -> Option<&str> {
        self.0.form_field.as_deref()
    }

    /// The SHA-256 of its bytes, hex.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }

    /// `INTERNAL` when it belongs to a work note.
    async fn visibility(&self) -> Visibility {
        self.0.visibility
    }

    /// The ticket it belongs to.
    async fn ticket(&self, ctx: &Context<'_>) -> ApiResult<Option<Ticket>> {
        let scope = ctx.scope().await?;
        let ticket = ctx
            .state()?
            .loader
            .load_one(TicketKey(self.0.ticket_id))
            .await?;
        Ok(ticket.filter(|t| scope.can_see(t)).map(Ticket))
    }

    /// The comment it belongs to, when it is not the ticket's own.
    async fn comment(&self, ctx: &Context<'_>) -> ApiResult<Option<Comment>> {
        let Some(id) = self.0.comment_id else {
            return Ok(None);
        };
        let scope = ctx.scope().await?;
        Ok(query::comment_by_id(ctx.db()?, scope, id)
            .await?
            .map(Comment))
    }

    /// Who attached it.
    async fn uploaded_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        Ok(ctx
            .state()?
            .loader
            .load_one(UserKey(self.0.uploaded_by))
            .await?
            .map(User))
    }

    /// When it was attached.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it was removed (its record stays).
    async fn removed_at(&self) -> Option<DateTime<Utc>> {
        self.0.removed_at
    }

    /// Who removed it.
    async fn removed_by(&self, ctx: &Context<'_>) -> ApiResult<Option<User>> {
        let Some(id) = self.0.removed_by else {
            return Ok(None);
        };
        Ok(ctx.state()?.loader.load_one(UserKey(id)).await?.map(User))
    }

    /// A link that downloads it, relative to the API's origin, valid until
    /// `urlExpiresAt` (`ITSM_ATTACHMENT_URL_TTL`); ask again for a fresh
    /// one. Null once removed.
    async fn url(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        if self.0.removed_at.is_some() {
            return Ok(None);
        }
        let signed = files(ctx)?.sign(self.0.id).await?;
        let name: String = url_escape(&self.0.filename);
        Ok(Some(format!(
            "{DOWNLOAD_PATH}/{}/{name}?expires={}&signature={}",
            self.0.id, signed.expires, signed.signature
        )))
    }

    /// When `url` stops working.
    async fn url_expires_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        if self.0.removed_at.is_some() {
            return Ok(None);
        }
        let signed = files(ctx)?.sign(self.0.id).await?;
        Ok(DateTime::from_timestamp(signed.expires, 0))
    }
}

/// Percent-encodes a path segment.
fn url_escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Attaches a file.
#[derive(InputObject)]
pub struct AddAttachmentInput {
    /// The ticket.
    pub ticket_id: ID,
    /// One of its comments, to attach the file to that comment (and give it
    /// the comment's visibility).
    pub comment_id: Option<ID>,
    /// The file, as a part of a multipart request (the GraphQL multipart
    /// request spec).
    pub file: Upload,
}

/// Reads an uploaded file (the input field `field`), up to one byte past
/// the size limit so that a larger one is seen as such.
pub(crate) async fn read_upload(
    ctx: &Context<'_>,
    files: &Files,
    upload: &Upload,
    field: &str,
) -> ApiResult<File> {
    let upload = upload
        .value(ctx)
        .map_err(|_| ApiError::bad_input(field, "send the file as a multipart part"))?;
    let limit = files.max_bytes();
    let filename = upload.filename.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        upload
            .into_read()
            .take(u64::try_from(limit).unwrap_or(u64::MAX) + 1)
            .read_to_end(&mut bytes)
            .map(|_| bytes)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(File {
        filename,
        bytes: bytes.into(),
    })
}

/// Removes an attachment.
#[derive(InputObject)]
pub struct RemoveAttachmentInput {
    /// The attachment.
    pub id: ID,
}

/// An attachment as a mutation left it.
#[derive(SimpleObject)]
pub struct AttachmentPayload {
    /// The attachment.
    pub attachment: Attachment,
}

/// Attachment mutations.
#[derive(Default)]
pub struct AttachmentMutation;

/// Attachment mutations.
#[Object]
impl AttachmentMutation {
    /// Attaches a file to a ticket (the requester and the ticket's agents)
    /// or to a comment (its author and the ticket's agents). Its type is
    /// read from its content and must be one `ITSM_ATTACHMENT_TYPES` allows;
    /// its size and the ticket's count are limited too.
    async fn add_attachment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: AddAttachmentInput,
    ) -> ApiResult<AttachmentPayload> {
        let ticket_id = decode_id_of("Ticket", &input.ticket_id, "ticketId")?;
        let comment_id = input
            .comment_id
            .map(|id| decode_id_of("Comment", &id, "commentId"))
            .transpose()?;
        let files = files(ctx)?;
        let file = read_upload(ctx, files, &input.file, "file").await?;
        let scope = ctx.scope().await?;
        let attachment = service::add(ctx.db()?, files, scope, ticket_id, comment_id, file).await?;
        Ok(AttachmentPayload {
            attachment: Attachment(attachment),
        })
    }

    /// Removes an attachment (who attached it, or the ticket's agents). Its
    /// record stays, and the ticket's history says who removed it.
    async fn remove_attachment(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: RemoveAttachmentInput,
    ) -> ApiResult<AttachmentPayload> {
        let id = decode_id_of("Attachment", &input.id, "id")?;
        let scope = ctx.scope().await?;
        let removed = service::remove(ctx.db()?, files(ctx)?, scope, id).await?;
        Ok(AttachmentPayload {
            attachment: Attachment(removed),
        })
    }
}
