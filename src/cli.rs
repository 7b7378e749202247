//! The subcommands behind `main`.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Context, bail};
use migration::{MigrationStatus, Migrator, MigratorTrait};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    auth::{Claims, JwtKeys},
    config::{Cli, Command, MigrateAction, SeedArgs, Settings, TokenArgs},
    db::Db,
    graphql,
    startup::Application,
};

/// Runs the command line's subcommand (`serve` when none is given).
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(cli.settings)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Migrate { action } => migrate(&cli.settings, action).await,
        Command::Schema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Token(args) => {
            println!("{}", token(&cli.settings, args)?);
            Ok(())
        }
        Command::Healthcheck => healthcheck(cli.settings.http.listen).await,
        Command::Seed(args) => seed(&cli.settings, &args).await,
    }
}

async fn seed(settings: &Settings, args: &SeedArgs) -> anyhow::Result<()> {
    if !args.demo {
        bail!("say what to load: `itsm seed --demo`");
    }
    let db = Db::connect(&settings.database).await?;
    db.migrate().await?;
    let summary = crate::seed::demo(&db, args.tickets).await?;
    if db.backend() == sea_orm::DbBackend::Postgres {
        // No event pump runs here: number the demo's events now, unless a
        // long transaction elsewhere holds them back (a server's pump will).
        for _ in 0..500 {
            let settled = crate::events::log::settle(&db).await;
            if !settled.map_err(|error| anyhow::anyhow!("{error:?}"))?.held {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    db.close().await;
    println!(
        "Loaded {} tickets, {} comments, {} services and {} catalog items in {:.1} s.",
        summary.tickets, summary.comments, summary.services, summary.items, summary.seconds
    );
    println!("Try it as an agent, a requester or a manager:");
    println!("  itsm token --sub nina.network --role agent");
    println!("  itsm token --sub rita.requester --role requester");
    println!("  itsm token --sub mia.manager --role manager");
    Ok(())
}

/// Asks the server listening on `address` for `/healthz`, so that a container
/// image needs no HTTP client of its own.
async fn healthcheck(mut address: SocketAddr) -> anyhow::Result<()> {
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    let probe = async {
        let mut stream = TcpStream::connect(address).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .context("no answer from /healthz within 3 s")?
        .with_context(|| format!("could not reach {address}"))?;
    let status_line = String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if status_line.split_whitespace().nth(1) != Some("200") {
        bail!("unhealthy: {status_line}");
    }
    Ok(())
}

async fn migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let db = Db::connect(&settings.database).await?;
    let conn = db.writer();
    match action {
        MigrateAction::Up { steps } => Migrator::up(conn, steps).await?,
        MigrateAction::Down { steps } => Migrator::down(conn, Some(steps)).await?,
        MigrateAction::Fresh { yes } => {
            if !yes {
                bail!(
                    "`migrate fresh` drops every table and all data; repeat with --yes to confirm"
                );
            }
            Migrator::fresh(conn).await?;
        }
        MigrateAction::Status => {
            for migration in Migrator::get_migration_with_status(conn)
                .await
                .context("could not read migration status")?
            {
                let status = match migration.status() {
                    MigrationStatus::Applied => "applied",
                    MigrationStatus::Pending => "pending",
                };
                println!("{status}\t{}", migration.name());
            }
        }
    }
    db.close().await;
    Ok(())
}

fn token(settings: &Settings, args: TokenArgs) -> anyhow::Result<String> {
    let keys = JwtKeys::load(settings)?;
    let subject = args.sub.trim().to_owned();
    if subject.is_empty() {
        bail!("--sub must not be empty");
    }
    let claims = Claims {
        subject,
        email: args.email,
        name: args.name,
        role: args.role,
        grants: crate::auth::Grants::from_scope(args.scope.as_deref().unwrap_or_default()),
    };
    keys.mint(&claims, args.ttl)
}
