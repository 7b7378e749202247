//! Shared execution of identical subscriptions.
//!
//! WebSocket subscriptions that follow the live stream (no `after`) with the
//! same document, variables and operation name, from the same viewer, form a
//! group. The group runs the subscription once, its *lead* execution: each
//! event's selection is executed and serialised once, and the same bytes are
//! queued to every member's socket, which only adds the operation id.
//!
//! The visibility class is the viewer (user, role and token scopes). It is
//! deliberately no coarser: what an event shows depends on the viewer's own
//! relation to its ticket (an agent still sees a ticket that left the team's
//! queue while it is assigned to them, a teammate does not; approvals,
//! requesters' rights), so two different viewers never share an execution,
//! and sharing can neither widen nor narrow what anyone sees.
//!
//! Each member is admitted by an execution of its own: the document is
//! validated, rate-limited and authorised as any subscription is, and only
//! then does the member's resolver join the group instead of following the
//! feed. A subscription with `after` replays the log and runs alone.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
};

use async_graphql::{Data, PathSegment, Pos, Positioned, Response, parser::types::Field};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream::BoxStream};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::{
    auth::{Grants, Viewer},
    error::ApiError,
    events::{bus::EventBus, feed::cursor},
    graphql::ItsmSchema,
    metrics::{EventStats, Held, Metrics},
    vocabulary::Role,
};

/// One message for one operation of a socket: the shared, serialised
/// `ExecutionResult` the socket wraps in a `next` (or legacy `data`) message.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The operation id on the member's socket.
    pub operation: Arc<str>,
    /// The serialised response, shared by every member.
    pub payload: Bytes,
}

/// What a WebSocket operation brings to a group it may join: put in the
/// operation's request data by the socket.
pub struct Joining {
    /// The `subscribe` (or `start`) payload, as the client sent it.
    pub payload: Arc<Value>,
    /// The socket's session data (authentication, request id, address).
    pub session: Arc<Data>,
    /// The schema, for the lead execution.
    pub schema: ItsmSchema,
    /// The operation id on the socket.
    pub operation: Arc<str>,
    /// The socket's queue of shared frames.
    pub frames: mpsc::Sender<Frame>,
    /// The groups of this process.
    pub multiplexer: Arc<Multiplexer>,
    /// Whether the operation joined its group already: a document with more
    /// than one root field joins once, and the lead serves every field.
    pub joined: std::sync::atomic::AtomicBool,
    /// The membership, once admitted: the socket takes it over when the
    /// operation's own execution ends, which frees that execution's state.
    pub admitted: Arc<Mutex<Option<Admitted>>>,
    /// Counts the member among the running subscriptions.
    pub metrics: Metrics,
}

impl Joining {
    /// Hands the membership to the socket; the operation's own execution
    /// then ends without a response.
    pub fn admit(&self, field: &Positioned<Field>, stopped: BoxStream<'static, ApiError>) {
        if let Ok(mut admitted) = self.admitted.lock() {
            *admitted = Some(Admitted {
                key: field.node.response_key().node.to_string(),
                position: field.pos,
                stopped,
                running: self.metrics.subscription(&field.node.name.node),
            });
        }
    }
}

/// A member admitted to its group, as the socket holds it.
pub struct Admitted {
    key: String,
    position: Pos,
    stopped: BoxStream<'static, ApiError>,
    running: Held,
}

impl Admitted {
    /// What the operation still answers itself: the error that stopped it
    /// (it fell behind), if any. It ends when its membership does.
    pub fn responses(self) -> BoxStream<'static, Response> {
        let Self {
            key,
            position,
            stopped,
            running,
        } = self;
        let responses = stopped
            .map(move |error| {
                let mut error = async_graphql::Error::from(error).into_server_error(position);
                error.path = vec![PathSegment::Field(key.clone())];
                Response::from_errors(vec![error])
            })
            .boxed();
        Counted {
            responses,
            _running: running,
        }
        .boxed()
    }
}

/// A member's responses, counted as running as long as they last.
struct Counted {
    responses: BoxStream<'static, Response>,
    _running: Held,
}

impl Stream for Counted {
    type Item = Response;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Response>> {
        self.responses.poll_next_unpin(cx)
    }
}

/// Marks the lead execution of a group in its request data.
#[derive(Clone)]
pub struct Lead(Arc<Group>);

impl Lead {
    /// The lead's feed follows the stream after event `start`: members now
    /// follow it too.
    pub fn live(&self, start: i64) {
        self.0.seq.store(start, Ordering::Release);
        for member in self
            .0
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values_mut()
        {
            member.seq = start;
        }
        self.0.phase.send_replace(Phase::Live);
    }

    /// The lead is about to deliver event `seq`.
    pub fn delivering(&self, seq: i64) {
        self.0.seq.store(seq, Ordering::Release);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    payload: String,
    user: i64,
    role: Role,
    grants: Grants,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The lead is opening its feed.
    Starting,
    /// The lead follows the stream.
    Live,
    /// The lead stopped.
    Ended,
}

struct Member {
    operation: Arc<str>,
    frames: mpsc::Sender<Frame>,
    /// The last event queued to this member.
    seq: i64,
    /// Told why the member was stopped (`Some`), or that the group ended.
    end: oneshot::Sender<Option<ApiError>>,
}

/// Subscriptions sharing one execution.
pub struct Group {
    key: GroupKey,
    members: Mutex<HashMap<u64, Member>>,
    phase: watch::Sender<Phase>,
    /// The event the lead delivers now.
    seq: AtomicI64,
    lead: Mutex<Option<tokio::task::AbortHandle>>,
}

/// The groups of this process.
#[derive(Default)]
pub struct Multiplexer {
    groups: Mutex<HashMap<GroupKey, Arc<Group>>>,
    next_member: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Multiplexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups = self.groups.lock().map(|groups| groups.len()).unwrap_or(0);
        f.debug_struct("Multiplexer")
            .field("groups", &groups)
            .finish()
    }
}

/// A member's place in its group; leaves it when dropped.
struct Membership {
    mux: Arc<Multiplexer>,
    group: Arc<Group>,
    id: u64,
    stats: EventStats,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.mux.leave(&self.group, self.id, &self.stats);
    }
}

impl Multiplexer {
    /// Joins `viewer`'s group for `joining`'s operation, starting the group
    /// when it has no other member. The stream ends when the group does, or
    /// yields the error that stopped this member (it fell behind).
    pub fn join(
        self: &Arc<Self>,
        viewer: &Viewer,
        joining: &Joining,
        bus: &EventBus,
    ) -> BoxStream<'static, ApiError> {
        if joining.joined.swap(true, Ordering::AcqRel) {
            return futures_util::stream::empty().boxed();
        }
        let key = GroupKey {
            payload: joining.payload.to_string(),
            user: viewer.user.id,
            role: viewer.role,
            grants: viewer.grants,
        };
        let id = self.next_member.fetch_add(1, Ordering::Relaxed);
        let (end, ended) = oneshot::channel();
        let stats = bus.stats().clone();
        let group = {
            let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
            let group = match groups.get(&key) {
                Some(group) if *group.phase.borrow() != Phase::Ended => group.clone(),
                _ => {
                    // The socket parsed this payload already.
                    let Ok(request) = serde_json::from_value::<async_graphql::Request>(
                        (*joining.payload).clone(),
                    ) else {
                        return futures_util::stream::once(std::future::ready(ApiError::internal(
                            anyhow::anyhow!("a payload that cannot be parsed"),
                        )))
                        .boxed();
                    };
                    let group = Arc::new(Group {
                        key: key.clone(),
                        members: Mutex::default(),
                        phase: watch::Sender::new(Phase::Starting),
                        seq: AtomicI64::new(0),
                        lead: Mutex::default(),
                    });
                    groups.insert(key, group.clone());
                    stats.group_started();
                    self.lead(&group, request, joining, &stats);
                    group
                }
            };
            group
                .members
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    id,
                    Member {
                        operation: joining.operation.clone(),
                        frames: joining.frames.clone(),
                        seq: group.seq.load(Ordering::Acquire),
                        end,
                    },
                );
            group
        };
        let membership = Membership {
            mux: self.clone(),
            group: group.clone(),
            id,
            stats,
        };
        let bus = bus.clone();
        futures_util::stream::once(async move {
            let mut phase = membership.group.phase.subscribe();
            // Counted as following once the lead's starting point is fixed:
            // an event committed from then on reaches this member.
            let live = phase
                .wait_for(|phase| *phase != Phase::Starting)
                .await
                .is_ok_and(|phase| *phase == Phase::Live);
            let following = live.then(|| bus.following());
            let outcome = ended.await;
            drop(following);
            drop(membership);
            outcome.ok().flatten()
        })
        .filter_map(std::future::ready)
        .boxed()
    }

    /// Starts the lead execution of `group`, as `joining`'s operation.
    fn lead(
        self: &Arc<Self>,
        group: &Arc<Group>,
        request: async_graphql::Request,
        joining: &Joining,
        stats: &EventStats,
    ) {
        let request = request.data(Lead(group.clone()));
        let responses = joining
            .schema
            .execute_stream_with_session_data(request, joining.session.clone());
        let task = tokio::spawn(run(self.clone(), group.clone(), responses, stats.clone()));
        *group.lead.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
    }

    fn leave(&self, group: &Arc<Group>, id: u64, stats: &EventStats) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let mut members = group.members.lock().unwrap_or_else(|e| e.into_inner());
        members.remove(&id);
        if members.is_empty() && *group.phase.borrow() != Phase::Ended {
            drop(members);
            Self::forget(&mut groups, group);
            drop(groups);
            Self::stop(group, stats);
        }
    }

    /// The lead stopped: the group ends, and so do its members' operations.
    fn end(&self, group: &Arc<Group>, stats: &EventStats) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        Self::forget(&mut groups, group);
        drop(groups);
        Self::stop(group, stats);
    }

    /// Removes `group` from the map, unless a newer group took its key.
    fn forget(groups: &mut HashMap<GroupKey, Arc<Group>>, group: &Arc<Group>) {
        if groups
            .get(&group.key)
            .is_some_and(|current| Arc::ptr_eq(current, group))
        {
            groups.remove(&group.key);
        }
    }

    fn stop(group: &Arc<Group>, stats: &EventStats) {
        let previous = group.phase.send_replace(Phase::Ended);
        if previous == Phase::Ended {
            return;
        }
        stats.group_ended();
        if let Some(lead) = group.lead.lock().unwrap_or_else(|e| e.into_inner()).take() {
            lead.abort();
        }
        let members: Vec<Member> = group
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, member)| member)
            .collect();
        for member in members {
            let _ = member.end.send(None);
        }
    }
}

/// Runs the lead: each response is serialised once and queued to every
/// member. A member whose socket queue is full fell behind and is stopped
/// with the cursor to resume from.
async fn run(
    mux: Arc<Multiplexer>,
    group: Arc<Group>,
    mut responses: BoxStream<'static, Response>,
    stats: EventStats,
) {
    while let Some(response) = responses.next().await {
        let Ok(payload) = serde_json::to_vec(&response) else {
            continue;
        };
        let payload = Bytes::from(payload);
        let seq = group.seq.load(Ordering::Acquire);
        let mut members = group.members.lock().unwrap_or_else(|e| e.into_inner());
        let mut behind = Vec::new();
        let mut delivered = 0;
        for (id, member) in members.iter_mut() {
            let frame = Frame {
                operation: member.operation.clone(),
                payload: payload.clone(),
            };
            match member.frames.try_send(frame) {
                Ok(()) => {
                    member.seq = seq;
                    delivered += 1;
                }
                Err(mpsc::error::TrySendError::Full(_)) => behind.push(*id),
                // The socket is closing; its operation leaves the group.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        for id in behind {
            if let Some(member) = members.remove(&id) {
                stats.dropped(1);
                let _ = member.end.send(Some(ApiError::Conflict(format!(
                    "this subscription fell too far behind and was stopped; \
                     subscribe again with after: \"{}\" to resume without losing events",
                    cursor(member.seq)
                ))));
            }
        }
        drop(members);
        stats.delivered_to(delivered);
    }
    mux.end(&group, &stats);
}
