//! Who may see and work which tickets: decided here, once, for every path.
//!
//! Requesters see their own tickets; agents see tickets in their teams' queues,
//! tickets assigned to them and their own; managers, admins and integrations
//! see all. A ticket outside the viewer's reach answers exactly like one that
//! does not exist.

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use crate::{
    auth::{Grants, Role, Viewer},
    db::Db,
    entity::{queues, team_members, tickets},
    error::ApiResult,
    vocabulary::{ChangeType, TicketKind, Visibility},
};

/// How the viewer relates to one ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relation {
    /// The viewer's role.
    pub role: Role,
    /// The viewer asked for this ticket.
    pub is_requester: bool,
    /// The viewer is an agent of the ticket's queue's team, or its assignee.
    pub works_ticket: bool,
    /// The ticket is a normal or emergency change: work starts only through
    /// an approval, so from `NEW` it goes to `AWAITING_APPROVAL` or is
    /// cancelled.
    pub approval_gated: bool,
    /// The viewer is monitoring resolving the incident its alert opened.
    pub resolves_alert: bool,
}

impl Relation {
    /// May work the ticket through the whole workflow.
    pub fn is_staff(&self) -> bool {
        match self.role {
            Role::Manager | Role::Admin => true,
            Role::Agent => self.works_ticket,
            Role::Requester | Role::Integration => false,
        }
    }
}

/// The viewer's reach over tickets, loaded once per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The viewer's user id.
    pub user_id: i64,
    /// The viewer's role.
    pub role: Role,
    /// Queues owned by the viewer's teams.
    pub queue_ids: Vec<i64>,
    /// What an integration's token allows it to write.
    pub grants: Grants,
    /// The one incident this scope may resolve as monitoring (see
    /// [`Scope::resolving_alert`]).
    pub resolving: Option<i64>,
}

impl Scope {
    /// Loads the viewer's team queues.
    #[tracing::instrument(skip_all, fields(user_id = viewer.user.id))]
    pub async fn load(db: &Db, viewer: &Viewer) -> ApiResult<Self> {
        let queue_ids = match viewer.role {
            // Only agents' reach depends on their teams.
            Role::Agent => Self::team_queues(db, viewer.user.id).await?,
            _ => Vec::new(),
        };
        Ok(Self {
            user_id: viewer.user.id,
            role: viewer.role,
            queue_ids,
            grants: viewer.grants,
            resolving: None,
        })
    }

    /// The queues of an agent's teams, remembered until team membership or
    /// a queue's team changes.
    async fn team_queues(db: &Db, user_id: i64) -> ApiResult<Vec<i64>> {
        let signals = db.signals();
        // Read before the queues: a change committed while they load leaves
        // this entry stale at birth, so it is never used.
        let generation = signals.setup_generation();
        if let Some(queue_ids) = signals.reach.get(user_id, generation) {
            return Ok(queue_ids);
        }
        let queue_ids = queues::Entity::find()
            .select_only()
            .column(queues::Column::Id)
            .filter(
                queues::Column::TeamId.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(team_members::Column::TeamId)
                        .from(team_members::Entity)
                        .and_where(Expr::col(team_members::Column::UserId).eq(user_id))
                        .to_owned(),
                ),
            )
            .into_tuple::<i64>()
            .all(db.reader())
            .await?;
        signals.reach.put(user_id, generation, queue_ids.clone());
        Ok(queue_ids)
    }

    /// Sees every ticket.
    pub fn sees_all(&self) -> bool {
        matches!(self.role, Role::Manager | Role::Admin | Role::Integration)
    }

    /// May change tickets (update, move through the workflow, assign):
    /// never an integration.
    pub fn may_change_tickets(&self) -> bool {
        self.role != Role::Integration
    }

    /// May move `ticket` along the workflow (which moves, the workflow rules
    /// say): anyone who may change tickets, and monitoring resolving the
    /// incident its alert opened.
    pub fn may_move(&self, ticket: &tickets::Model) -> bool {
        self.may_change_tickets() || self.resolving == Some(ticket.id)
    }

    /// What an integration with `alerts:write` does for a monitoring alert:
    /// opens incidents on behalf of the monitoring requester and adds work
    /// notes to them. `None` without the scope.
    pub fn for_alerts(&self) -> Option<Self> {
        (self.role == Role::Integration && self.grants.alerts_write).then(|| Self {
            grants: Grants {
                tickets_write: true,
                comments_write: true,
                alerts_write: true,
            },
            ..self.clone()
        })
    }

    /// [`Scope::for_alerts`], also allowed to resolve `ticket_id`: the
    /// incident the alert being resolved opened.
    pub fn resolving_alert(&self, ticket_id: i64) -> Option<Self> {
        self.for_alerts().map(|scope| Self {
            resolving: Some(ticket_id),
            ..scope
        })
    }

    /// May open tickets: anyone signed in, and an integration whose token
    /// carries `tickets:write`.
    pub fn may_open_tickets(&self) -> bool {
        self.role != Role::Integration || self.grants.tickets_write
    }

    /// May open a ticket for someone else (recorded as its actor, the other
    /// person as its requester): staff, and integrations with `tickets:write`.
    pub fn opens_for_others(&self) -> bool {
        self.role >= Role::Agent || (self.role == Role::Integration && self.grants.tickets_write)
    }

    /// May comment (the ticket's own rules apply too): anyone signed in, and
    /// an integration whose token carries `comments:write`, which then
    /// comments like staff, work notes included.
    pub fn may_comment(&self) -> bool {
        self.role != Role::Integration || self.grants.comments_write
    }

    /// Is staff: reads internal comments and events of the tickets it sees.
    pub fn is_staff(&self) -> bool {
        self.role >= Role::Agent || self.role == Role::Integration
    }

    /// The SQL condition selecting the tickets this viewer may see.
    pub fn visible(&self) -> Condition {
        if self.sees_all() {
            return Condition::all();
        }
        let own = Condition::any().add(tickets::Column::RequesterId.eq(self.user_id));
        if self.role == Role::Agent {
            own.add(tickets::Column::AssigneeId.eq(self.user_id))
                .add(tickets::Column::QueueId.is_in(self.queue_ids.clone()))
        } else {
            own
        }
    }

    /// [`Scope::visible`] for tickets known to be in `queue_id`: nothing to
    /// check when the viewer sees the whole queue, which lets the database walk
    /// the queue's importance index instead of sorting the queue.
    pub fn visible_in_queue(&self, queue_id: i64) -> Condition {
        if self.sees_whole_queue(queue_id) {
            Condition::all()
        } else {
            self.visible()
        }
    }

    /// Sees every ticket in `queue_id`.
    pub fn sees_whole_queue(&self, queue_id: i64) -> bool {
        self.sees_all() || (self.role == Role::Agent && self.queue_ids.contains(&queue_id))
    }

    /// True when this viewer may see `ticket`.
    pub fn can_see(&self, ticket: &tickets::Model) -> bool {
        self.sees_all()
            || ticket.requester_id == self.user_id
            || (self.role == Role::Agent && self.works(ticket))
    }

    /// The viewer is an agent of the ticket's queue's team, or its assignee.
    pub fn works(&self, ticket: &tickets::Model) -> bool {
        ticket.assignee_id == Some(self.user_id) || self.queue_ids.contains(&ticket.queue_id)
    }

    /// How the viewer relates to `ticket`, for the workflow rules.
    pub fn relation(&self, ticket: &tickets::Model) -> Relation {
        Relation {
            role: self.role,
            is_requester: ticket.requester_id == self.user_id,
            works_ticket: self.works(ticket),
            resolves_alert: self.resolving == Some(ticket.id),
            approval_gated: ticket.kind == TicketKind::Change
                && matches!(
                    ticket.change_type,
                    Some(ChangeType::Normal | ChangeType::Emergency)
                ),
        }
    }

    /// May work `ticket` as staff: edit every field, assign, move, add work notes.
    pub fn may_work(&self, ticket: &tickets::Model) -> bool {
        self.relation(ticket).is_staff()
    }

    /// Which comment and event visibilities this viewer reads on tickets it sees.
    pub fn visibilities(&self) -> &'static [Visibility] {
        if self.is_staff() {
            &[Visibility::Public, Visibility::Internal]
        } else {
            &[Visibility::Public]
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn scope(role: Role, queue_ids: Vec<i64>) -> Scope {
        Scope {
            user_id: 7,
            role,
            queue_ids,
            grants: Grants::default(),
            resolving: None,
        }
    }

    fn ticket(requester_id: i64, assignee_id: Option<i64>, queue_id: i64) -> tickets::Model {
        tickets::Model {
            requester_id,
            assignee_id,
            queue_id,
            ..tickets::Model::example(Utc::now())
        }
    }

    #[test]
    fn requesters_see_their_own_tickets_only() {
        let me = scope(Role::Requester, vec![3]);
        assert!(me.can_see(&ticket(7, None, 1)));
        assert!(
            !me.can_see(&ticket(8, Some(7), 3)),
            "team queues mean nothing to requesters"
        );
        assert!(!me.may_work(&ticket(7, None, 1)));
        assert_eq!(me.visibilities(), &[Visibility::Public]);
    }

    #[test]
    fn agents_see_their_queues_their_assignments_and_their_own() {
        let me = scope(Role::Agent, vec![3]);
        assert!(me.can_see(&ticket(8, None, 3)));
        assert!(me.can_see(&ticket(8, Some(7), 9)));
        assert!(me.can_see(&ticket(7, None, 9)));
        assert!(!me.can_see(&ticket(8, None, 9)));
        assert!(me.may_work(&ticket(8, None, 3)));
        assert!(
            !me.may_work(&ticket(7, None, 9)),
            "an agent's own request is not theirs to work"
        );
    }

    #[test]
    fn managers_admins_and_integrations_see_everything_but_integrations_write_nothing() {
        for role in [Role::Manager, Role::Admin, Role::Integration] {
            assert!(scope(role, vec![]).can_see(&ticket(8, None, 9)), "{role:?}");
        }
        assert!(scope(Role::Manager, vec![]).may_work(&ticket(8, None, 9)));
        let integration = scope(Role::Integration, vec![]);
        assert!(!integration.may_change_tickets());
        assert!(!integration.may_open_tickets());
        assert!(!integration.opens_for_others());
        assert!(!integration.may_comment());
        assert!(!integration.may_work(&ticket(8, None, 9)));
    }

    #[test]
    fn an_integrations_scopes_allow_opening_tickets_for_others_and_commenting_only() {
        let writer = Scope {
            grants: Grants {
                tickets_write: true,
                ..Grants::default()
            },
            ..scope(Role::Integration, vec![])
        };
        assert!(writer.may_open_tickets() && writer.opens_for_others());
        assert!(!writer.may_comment());
        assert!(!writer.may_change_tickets());
        let commenter = Scope {
            grants: Grants {
                comments_write: true,
                ..Grants::default()
            },
            ..scope(Role::Integration, vec![])
        };
        assert!(commenter.may_comment());
        assert!(!commenter.may_open_tickets());
        // Scopes mean nothing to people: their role decides.
        let requester = Scope {
            grants: writer.grants,
            ..scope(Role::Requester, vec![])
        };
        assert!(requester.may_open_tickets() && !requester.opens_for_others());
        assert!(scope(Role::Agent, vec![]).opens_for_others());
    }
}
