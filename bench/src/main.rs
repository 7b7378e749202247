//! Load generators for the itsm GraphQL service. Each checks every response
//! it gets and prints figures; none asserts a time.

mod executor;
mod fanout_floor;
mod overload;
mod queue_page;
mod saturate;
mod subscribers;
mod webhooks;
mod writes;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "itsm-bench", about = "Benchmarks for the itsm GraphQL service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// An agents' board queue page under concurrent load.
    QueuePage(queue_page::QueuePage),
    /// Many WebSocket subscribers receiving a stream of ticket changes.
    Subscribers(subscribers::Subscribers),
    /// The board page offered at a multiple of the rate the server sustains.
    Overload(overload::Overload),
    /// WebSockets up to the server's ceiling: refusals, health, recovery.
    Saturate(saturate::Saturate),
    /// Webhook deliveries to a local receiver: throughput and latency.
    Webhooks(webhooks::Webhooks),
    /// The board page resolved from memory by the GraphQL executor alone.
    Executor(executor::Executor),
    /// `createIncident` under concurrent load: incidents per second.
    Writes(writes::Writes),
    /// The minimal fan-out server of `subscribers --floor` (started by it).
    #[command(hide = true)]
    FloorServer(fanout_floor::FloorServer),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::QueuePage(args) => queue_page::run(args).await,
        Command::Subscribers(args) => subscribers::run(args).await,
        Command::Overload(args) => overload::run(args).await,
        Command::Saturate(args) => saturate::run(args).await,
        Command::Webhooks(args) => webhooks::run(args).await,
        Command::Executor(args) => executor::run(args).await,
        Command::Writes(args) => writes::run(args).await,
        Command::FloorServer(args) => fanout_floor::serve(args).await,
    }
}
