//! Liveness and readiness.

use reqwest::StatusCode;

use crate::helpers::{
    Backend, Proxy, TestDatabase, postgres_socket, postgres_url, spawn_app, spawn_on_url, via_proxy,
};

crate::on_both_backends!(liveness_and_readiness_answer_when_all_is_well);

async fn liveness_and_readiness_answer_when_all_is_well(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

/// Only PostgreSQL can be unreachable: an SQLite file has no network between
/// the service and its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ITSM_TEST_POSTGRES_URL"]
async fn readiness_follows_postgres_going_away_and_coming_back_while_liveness_stays_up() {
    let admin = postgres_url();
    let db = TestDatabase::create(Backend::Postgres).await;
    let proxy = Proxy::start(postgres_socket(&admin)).await;
    let url = via_proxy(&db.url, proxy.address);
    let app = spawn_on_url(db, &url, &["--db-acquire-timeout", "1s"]).await;
    let status = |path: &'static str| {
        let request = app.client.get(app.url(path));
        async move { request.send().await.expect("sent").status() }
    };
    assert_eq!(status("/readyz").await, StatusCode::OK);

    proxy.cut();
    assert_eq!(status("/readyz").await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        status("/healthz").await,
        StatusCode::OK,
        "liveness never touches the database"
    );

    proxy.restore();
    // The pool reconnects on the next acquire; allow it a few attempts.
    let mut ready = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..20 {
        ready = status("/readyz").await;
        if ready == StatusCode::OK {
            break;
        }
        // Poll interval of this bounded retry loop, which asks /readyz each turn.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(
        ready,
        StatusCode::OK,
        "ready again once the database is back"
    );
}
