//! GraphQL for teams, memberships and the people directory.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::service;
use crate::{
    connection,
    entity::teams,
    error::ApiResult,
    graphql::{
        ContextExt,
        connection::TotalCount,
        relay::{decode_id_of, encode_id},
    },
    paging::PageArgs,
    paging::{BY_NAME, name_cursor},
    queue::resolvers::{QueueConnection, queue_page},
    user::resolvers::User,
};

connection!(TeamConnection, TeamEdge, Team, "teams");
connection!(UserConnection, UserEdge, User, "people");

/// An assignment group of agents; it owns queues.
pub struct Team(pub teams::Model);

/// An assignment group of agents; it owns queues.
#[Object]
impl Team {
    /// The opaque global id.
    pub async fn id(&self) -> ID {
        encode_id("Team", self.0.id)
    }

    /// The team's unique name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the team does.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// When the team was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The team's agents, by name (agents, managers, admins and integrations).
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Members after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
        #[graphql(desc = "Members before the `before` cursor (at most 100).")] last: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] before: Option<String>,
    ) -> ApiResult<UserConnection> {
        let viewer = ctx.auth().viewer()?;
        let db = ctx.db()?.clone();
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .page(BY_NAME)?;
        let (rows, flags) = service::members(&db, viewer, self.0.id, &page).await?;
        let team_id = self.0.id;
        let total = TotalCount::new(move || {
            let db = db.clone();
            async move { service::count_members(&db, team_id).await }
        });
        Ok(user_page(rows, flags, total))
    }

    /// The queues this team owns, by name.
    async fn queues(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Queues after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
        #[graphql(desc = "Queues before the `before` cursor (at most 100).")] last: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] before: Option<String>,
    ) -> ApiResult<QueueConnection> {
        queue_page(
            ctx,
            Some(self.0.id),
            PageArgs {
                first,
                after,
                last,
                before,
            },
        )
        .await
    }
}

fn user_page(
    rows: Vec<crate::entity::users::Model>,
    flags: crate::paging::PageInfoFlags,
    total: TotalCount,
) -> UserConnection {
    let rows = rows
        .into_iter()
        .map(|u| (name_cursor(&u.display_name, u.id), User(u)))
        .collect();
    UserConnection::from_page(rows, flags, total)
}

/// Team and people queries.
#[derive(Default)]
pub struct TeamQuery;

/// Team and people queries.
#[Object]
impl TeamQuery {
    /// Every team, by name.
    async fn teams(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Teams after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
        #[graphql(desc = "Teams before the `before` cursor (at most 100).")] last: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] before: Option<String>,
    ) -> ApiResult<TeamConnection> {
        ctx.auth().viewer()?;
        let db = ctx.db()?.clone();
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .page(BY_NAME)?;
        let (rows, flags) = service::list(&db, &page).await?;
        let rows = rows
            .into_iter()
            .map(|t| (name_cursor(&t.name, t.id), Team(t)))
            .collect();
        let total = TotalCount::new(move || {
            let db = db.clone();
            async move { service::count(&db).await }
        });
        Ok(TeamConnection::from_page(rows, flags, total))
    }

    /// One team; null when there is none with that id.
    async fn team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team's global id.")] id: ID,
    ) -> ApiResult<Option<Team>> {
        ctx.auth().viewer()?;
        let id = decode_id_of("Team", &id, "id")?;
        Ok(service::get(ctx.db()?, id).await?.map(Team))
    }

    /// People whose name, email or subject contains `search`, by name
    /// (managers and admins).
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Text to look for, case-insensitive.")] search: Option<String>,
        #[graphql(desc = "People after the `after` cursor (at most 100).")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
        #[graphql(desc = "People before the `before` cursor (at most 100).")] last: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] before: Option<String>,
    ) -> ApiResult<UserConnection> {
        let viewer = ctx.auth().viewer()?;
        let db = ctx.db()?.clone();
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .page(BY_NAME)?;
        let (rows, flags) = service::users(&db, viewer, search.as_deref(), &page).await?;
        let total = TotalCount::new(move || {
            let (db, search) = (db.clone(), search.clone());
            async move { service::count_users(&db, search).await }
        });
        Ok(user_page(rows, flags, total))
    }
}

/// Creates a team.
#[derive(InputObject)]
pub struct CreateTeamInput {
    /// A unique name, 1 to 100 characters.
    pub name: String,
    /// What the team does.
    pub description: Option<String>,
}

/// A user and a team.
#[derive(InputObject)]
pub struct TeamMemberInput {
    /// The team.
    pub team_id: ID,
    /// The user.
    pub user_id: ID,
}

/// The team a mutation created.
#[derive(SimpleObject)]
pub struct TeamPayload {
    /// The team.
    pub team: Team,
}

/// The team and user whose membership changed.
#[derive(SimpleObject)]
pub struct TeamMemberPayload {
    /// The team.
    pub team: Team,
    /// The user.
    pub user: User,
}

/// Team mutations (admins).
#[derive(Default)]
pub struct TeamMutation;

/// Team mutations (admins).
#[Object]
impl TeamMutation {
    /// Creates a team.
    async fn create_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: CreateTeamInput,
    ) -> ApiResult<TeamPayload> {
        let viewer = ctx.auth().viewer()?;
        let team =
            service::create(ctx.db()?, viewer, &input.name, input.description.as_deref()).await?;
        Ok(TeamPayload { team: Team(team) })
    }

    /// Adds a user to a team; adding a member again changes nothing.
    async fn add_team_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: TeamMemberInput,
    ) -> ApiResult<TeamMemberPayload> {
        let viewer = ctx.auth().viewer()?;
        let team_id = decode_id_of("Team", &input.team_id, "teamId")?;
        let user_id = decode_id_of("User", &input.user_id, "userId")?;
        let (team, user) = service::add_member(ctx.db()?, viewer, team_id, user_id).await?;
        Ok(TeamMemberPayload {
            team: Team(team),
            user: User(user),
        })
    }

    /// Removes a user from a team.
    async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to do.")] input: TeamMemberInput,
    ) -> ApiResult<TeamMemberPayload> {
        let viewer = ctx.auth().viewer()?;
        let team_id = decode_id_of("Team", &input.team_id, "teamId")?;
        let user_id = decode_id_of("User", &input.user_id, "userId")?;
        let (team, user) = service::remove_member(ctx.db()?, viewer, team_id, user_id).await?;
        Ok(TeamMemberPayload {
            team: Team(team),
            user: User(user),
        })
    }
}
