//! The GraphQL executor's own cost for the board page: the board's
//! selection (50 tickets, each with requester, assignee, queue and team,
//! comment count, latest comment and author, SLA state) resolved by
//! async-graphql from memory, with no database and no network, then
//! serialised to JSON. What this costs per page is a floor under the
//! service's CPU per page that no change to our resolvers or SQL can lower.
//!
//! Measured with no schema extension and with four that do nothing, as the
//! service has four: with any extension registered, async-graphql sends every
//! field through the extension chain.

use std::{sync::Arc, time::Instant};

use anyhow::{Context as _, bail};
use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Enum, ID, Object, Schema, SimpleObject,
    extensions::{Extension, ExtensionFactory},
};
use clap::Args;

use crate::queue_page::BOARD;

#[derive(Debug, Args)]
pub struct Executor {
    /// Seconds to measure each variant.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Tickets on the page.
    #[arg(long, default_value_t = 50)]
    page: usize,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
enum Kind {
    Incident,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
enum Status {
    Open,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
enum Priority {
    P2,
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "User")]
struct Person {
    display_name: String,
}

#[derive(SimpleObject, Clone)]
struct Team {
    name: String,
}

#[derive(SimpleObject, Clone)]
struct Sla {
    response_breached: bool,
    resolution_breached: bool,
    remaining_seconds: Option<i64>,
}

#[derive(SimpleObject, Clone)]
struct Stats {
    open: i64,
    unassigned: i64,
    breached: i64,
}

#[derive(Clone)]
struct Comment {
    body: String,
    author: Person,
}

#[Object]
impl Comment {
    async fn body(&self) -> &str {
        &self.body
    }
    async fn author(&self) -> &Person {
        &self.author
    }
}

#[derive(Clone)]
struct Queue {
    id: i64,
    name: String,
    team: Team,
}

#[derive(Clone)]
struct Ticket {
    id: i64,
    number: String,
    title: String,
    requester: Person,
    assignee: Option<Person>,
    queue: Queue,
    comment_count: i64,
    latest_comment: Option<Comment>,
    sla: Sla,
}

#[Object]
impl Ticket {
    async fn id(&self) -> ID {
        ID(format!("Ticket:{}", self.id))
    }
    async fn number(&self) -> &str {
        &self.number
    }
    async fn kind(&self) -> Kind {
        Kind::Incident
    }
    async fn title(&self) -> &str {
        &self.title
    }
    async fn status(&self) -> Status {
        Status::Open
    }
    async fn priority(&self) -> Priority {
        Priority::P2
    }
    async fn requester(&self) -> &Person {
        &self.requester
    }
    async fn assignee(&self) -> Option<&Person> {
        self.assignee.as_ref()
    }
    async fn queue(&self) -> QueueNode {
        QueueNode(self.queue.clone())
    }
    async fn comment_count(&self) -> i64 {
        self.comment_count
    }
    async fn latest_comment(&self) -> Option<&Comment> {
        self.latest_comment.as_ref()
    }
    async fn sla(&self) -> &Sla {
        &self.sla
    }
}

struct QueueNode(Queue);

#[Object(name = "Queue")]
impl QueueNode {
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn team(&self) -> &Team {
        &self.0.team
    }
    async fn stats(&self) -> Stats {
        Stats {
            open: 1639,
            unassigned: 240,
            breached: 31,
        }
    }
    async fn tickets(&self, ctx: &Context<'_>, first: i32) -> Connection {
        let tickets = ctx.data_unchecked::<Arc<Vec<Ticket>>>();
        let first = usize::try_from(first).unwrap_or(0);
        Connection(tickets.iter().take(first).cloned().collect())
    }
}

struct Connection(Vec<Ticket>);

#[derive(SimpleObject)]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

struct Edge(Ticket);

#[Object]
impl Edge {
    async fn cursor(&self) -> String {
        format!("c{}", self.0.id)
    }
    async fn node(&self) -> &Ticket {
        &self.0
    }
}

#[Object(name = "TicketConnection")]
impl Connection {
    async fn total_count(&self) -> i64 {
        1639
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: true,
            end_cursor: self.0.last().map(|t| format!("c{}", t.id)),
        }
    }
    async fn edges(&self) -> Vec<Edge> {
        self.0.iter().cloned().map(Edge).collect()
    }
}

struct Query;

#[Object]
impl Query {
    async fn queue(&self, ctx: &Context<'_>, id: ID) -> Option<QueueNode> {
        let tickets = ctx.data_unchecked::<Arc<Vec<Ticket>>>();
        let queue = tickets.first()?.queue.clone();
        (id.0 == format!("Queue:{}", queue.id)).then_some(QueueNode(queue))
    }
}

/// An extension that changes nothing: what merely having one costs.
struct Nothing;

impl Extension for Nothing {}

impl ExtensionFactory for Nothing {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Nothing)
    }
}

type Board = Schema<Query, EmptyMutation, EmptySubscription>;

fn tickets(page: usize) -> Vec<Ticket> {
    let person = |n: usize| Person {
        display_name: format!("Agent Number {n}"),
    };
    let queue = Queue {
        id: 1,
        name: "Network".into(),
        team: Team {
            name: "Network operations".into(),
        },
    };
    (0..page)
        .map(|n| Ticket {
            id: 1000 + n as i64,
            number: format!("INC-{:06}", 1000 + n),
            title: format!("VPN drops every few minutes on the third floor ({n})"),
            requester: person(n),
            assignee: (n % 3 != 0).then(|| person(n + 1)),
            queue: queue.clone(),
            comment_count: (n % 7) as i64,
            latest_comment: (n % 2 == 0).then(|| Comment {
                body: "Restarted the access point; watching it for an hour.".into(),
                author: person(n + 2),
            }),
            sla: Sla {
                response_breached: n % 11 == 0,
                resolution_breached: false,
                remaining_seconds: Some(3600 + n as i64),
            },
        })
        .collect()
}

fn schema(page: usize, extensions: usize) -> Board {
    let mut builder =
        Schema::build(Query, EmptyMutation, EmptySubscription).data(Arc::new(tickets(page)));
    for _ in 0..extensions {
        builder = builder.extension(Nothing);
    }
    builder.finish()
}

/// CPU seconds this process has used (user and system).
pub(crate) fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th fields of the line, in clock ticks (100 per second).
    let rest = stat.rsplit_once(')').context("odd /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Pages per second and CPU microseconds per page, one page at a time;
/// with `parsed`, every request carries the document parsed beforehand, as
/// a cache of parsed documents would give it.
async fn measure(
    schema: &Board,
    page: usize,
    seconds: u64,
    parsed: bool,
) -> anyhow::Result<(f64, f64)> {
    let document = async_graphql::parser::parse_query(BOARD)?;
    let request = || {
        let mut request =
            async_graphql::Request::new(BOARD).variables(async_graphql::Variables::from_json(
                serde_json::json!({"queue": "Queue:1", "first": page}),
            ));
        if parsed {
            request.set_parsed_query(document.clone());
        }
        request
    };
    // Warm up, and check the page is whole.
    let response = schema.execute(request()).await;
    if !response.errors.is_empty() {
        bail!("the board failed: {:?}", response.errors);
    }
    let body = serde_json::to_value(&response)?;
    crate::queue_page::check(&body, page)?;

    let started = Instant::now();
    let cpu = cpu_seconds()?;
    let mut pages = 0u64;
    while started.elapsed().as_secs() < seconds {
        let response = schema.execute(request()).await;
        let bytes = serde_json::to_vec(&response)?;
        std::hint::black_box(bytes);
        pages += 1;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu;
    Ok((pages as f64 / wall, cpu / pages as f64 * 1e6))
}

pub async fn run(args: Executor) -> anyhow::Result<()> {
    println!(
        "== the board page's selection resolved from memory by async-graphql, {} tickets, one page at a time",
        args.page
    );
    println!("extensions  document         pages/s  CPU µs/page");
    for (extensions, parsed) in [(0, false), (0, true), (1, false), (4, false)] {
        let schema = schema(args.page, extensions);
        let (rate, micros) = measure(&schema, args.page, args.seconds, parsed).await?;
        let document = if parsed { "parsed before" } else { "parsed" };
        println!("{extensions:>10}  {document:<15}  {rate:>7.0}  {micros:>11.0}");
    }
    Ok(())
}
