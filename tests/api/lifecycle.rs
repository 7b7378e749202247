//! The service portfolio and the ITIL lifecycle.

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, Person, TestApp, code, error_field, spawn_app};

crate::on_both_backends!(
    the_lifecycle_stages_are_described_in_order,
    a_service_moves_through_the_lifecycle_and_keeps_its_history,
    requesters_see_only_live_services_and_manage_none,
    tickets_name_the_service_they_concern,
);

const CREATE: &str = "mutation($input: CreateServiceInput!) { createService(input: $input) { service { id key name stage status version live ownerTeam { name } } } }";
const UPDATE: &str = "mutation($input: UpdateServiceInput!) { updateService(input: $input) { service { name version } } }";
const RETIRE: &str =
    "mutation($input: RetireServiceInput!) { retireService(input: $input) { service { status } } }";
const MOVE: &str = "mutation($input: MoveServiceStageInput!) { moveServiceStage(input: $input) { service { stage version } } }";

async fn service(app: &TestApp, who: &Person, team: &str, key: &str, stage: Option<&str>) -> Value {
    let input = json!({"key": key, "name": format!("{key} service"), "description": "A service", "ownerTeamId": team, "stage": stage});
    app.ok(who, CREATE, json!({"input": input})).await["createService"]["service"].clone()
}

async fn team(app: &TestApp, admin: &Person) -> String {
    app.ok(
        admin,
        "mutation { createTeam(input: {name: \"Workplace\"}) { team { id } } }",
        json!({}),
    )
    .await["createTeam"]["team"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn the_lifecycle_stages_are_described_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let rita = app.person("rita", Role::Requester).await;
    let stages = app
        .ok(
            &rita,
            "{ lifecycleStages { stage name description position nextStages ticketKinds } }",
            json!({}),
        )
        .await["lifecycleStages"]
        .clone();
    let order: Vec<&str> = stages
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert_eq!(
        order,
        vec![
            "STRATEGY",
            "DESIGN",
            "TRANSITION",
            "OPERATION",
            "CONTINUAL_IMPROVEMENT"
        ]
    );
    assert_eq!(stages[0]["position"], 1);
    assert_eq!(stages[3]["nextStages"], json!(["CONTINUAL_IMPROVEMENT"]));
    assert_eq!(
        stages[4]["nextStages"],
        json!(["DESIGN", "TRANSITION", "OPERATION"])
    );
    assert_eq!(stages[2]["ticketKinds"], json!(["CHANGE"]));
    assert_eq!(
        stages[3]["ticketKinds"],
        json!(["INCIDENT", "SERVICE_REQUEST", "PROBLEM"])
    );
    assert!(
        stages
            .as_array()
            .into_iter()
            .flatten()
            .all(|s| s["description"].as_str().is_some_and(|d| !d.is_empty()))
    );
}

async fn a_service_moves_through_the_lifecycle_and_keeps_its_history(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let mia = app.person("mia", Role::Manager).await;
    let workplace = team(&app, &admin).await;
    let laptops = service(&app, &mia, &workplace, "laptops", None).await;
    assert_eq!(
        (
            laptops["key"].as_str(),
            laptops["stage"].as_str(),
            laptops["live"].as_bool()
        ),
        (Some("LAPTOPS"), Some("STRATEGY"), Some(false))
    );
    assert_eq!(laptops["ownerTeam"]["name"], "Workplace");
    let id = &laptops["id"];
    for (to, version) in [("DESIGN", 2), ("TRANSITION", 3), ("OPERATION", 4)] {
        let moved = app.ok(&mia, MOVE, json!({"input": {"id": id, "to": to, "note": format!("to {to}"), "expectedVersion": version - 1}})).await;
        assert_eq!(
            moved["moveServiceStage"]["service"],
            json!({"stage": to, "version": version})
        );
    }
    let refused = app
        .fails(&mia, MOVE, json!({"input": {"id": id, "to": "STRATEGY"}}))
        .await;
    assert_eq!(
        (code(&refused), error_field(&refused)),
        (Some("BAD_USER_INPUT"), Some("to"))
    );
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("allowed: CONTINUAL_IMPROVEMENT")),
        "{refused}"
    );
    let stale = app
        .fails(
            &mia,
            MOVE,
            json!({"input": {"id": id, "to": "CONTINUAL_IMPROVEMENT", "expectedVersion": 1}}),
        )
        .await;
    assert_eq!(code(&stale), Some("CONFLICT"));

    let history = app
        .ok(&mia, "query($id: ID!) { service(id: $id) { live stageHistory { totalCount nodes { fromStage toStage note actor { subject } } } } }", json!({"id": id}))
        .await["service"]
        .clone();
    assert_eq!(history["live"], true);
    assert_eq!(history["stageHistory"]["totalCount"], 4);
    assert_eq!(
        history["stageHistory"]["nodes"][0],
        json!({"fromStage": null, "toStage": "STRATEGY", "note": null, "actor": {"subject": "mia"}})
    );
    assert_eq!(
        history["stageHistory"]["nodes"][3],
        json!({"fromStage": "TRANSITION", "toStage": "OPERATION", "note": "to OPERATION", "actor": {"subject": "mia"}})
    );

    let duplicate = app
        .fails(
            &mia,
            CREATE,
            json!({"input": {"key": "LAPTOPS", "name": "Again", "ownerTeamId": workplace}}),
        )
        .await;
    assert_eq!(error_field(&duplicate), Some("key"));
    let bad_key = app
        .fails(
            &mia,
            CREATE,
            json!({"input": {"key": "lap tops!", "name": "Bad", "ownerTeamId": workplace}}),
        )
        .await;
    assert_eq!(error_field(&bad_key), Some("key"));

    let retired = app
        .ok(&mia, "mutation($id: ID!) { retireService(input: {id: $id, note: \"replaced\"}) { service { status live } } }", json!({"id": id}))
        .await;
    assert_eq!(
        retired["retireService"]["service"],
        json!({"status": "RETIRED", "live": false})
    );
    let after = app
        .fails(
            &mia,
            MOVE,
            json!({"input": {"id": id, "to": "CONTINUAL_IMPROVEMENT"}}),
        )
        .await;
    assert_eq!(code(&after), Some("BAD_USER_INPUT"));
}

async fn requesters_see_only_live_services_and_manage_none(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let mia = app.person("mia", Role::Manager).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let workplace = team(&app, &admin).await;
    let live = service(&app, &mia, &workplace, "EMAIL", Some("OPERATION")).await;
    let planned = service(&app, &mia, &workplace, "CHATBOT", Some("DESIGN")).await;
    let names = |data: &Value| -> Vec<String> {
        data["services"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["key"].as_str().map(str::to_owned))
            .collect()
    };
    let query = "{ services { nodes { key } } }";
    assert_eq!(names(&app.ok(&rita, query, json!({})).await), vec!["EMAIL"]);
    assert_eq!(names(&app.ok(&nina, query, json!({})).await).len(), 2);
    let hidden = app
        .ok(
            &rita,
            "query($id: ID!) { service(id: $id) { key } node(id: $id) { id } }",
            json!({"id": planned["id"]}),
        )
        .await;
    assert_eq!(hidden, json!({"service": null, "node": null}));
    let by_stage = app
        .ok(
            &mia,
            "{ lifecycleStages { stage services { totalCount } } }",
            json!({}),
        )
        .await;
    let counts: Vec<i64> = by_stage["lifecycleStages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["services"]["totalCount"].as_i64())
        .collect();
    assert_eq!(counts, vec![0, 1, 0, 1, 0]);
    let search = app
        .ok(
            &nina,
            "{ services(search: \"chat\") { nodes { key } } }",
            json!({}),
        )
        .await;
    assert_eq!(names(&search), vec!["CHATBOT"]);
    for who in [&rita, &nina] {
        let refused = app
            .fails(
                who,
                CREATE,
                json!({"input": {"key": "X", "name": "X", "ownerTeamId": workplace}}),
            )
            .await;
        assert_eq!(code(&refused), Some("FORBIDDEN"));
        let refused = app
            .fails(
                who,
                MOVE,
                json!({"input": {"id": live["id"], "to": "CONTINUAL_IMPROVEMENT"}}),
            )
            .await;
        assert_eq!(code(&refused), Some("FORBIDDEN"));
        for (mutation, input) in [
            (
                UPDATE,
                json!({"id": live["id"], "expectedVersion": live["version"], "name": "Mine now"}),
            ),
            (RETIRE, json!({"id": live["id"], "note": "mine"})),
        ] {
            let refused = app.fails(who, mutation, json!({"input": input})).await;
            assert_eq!(code(&refused), Some("FORBIDDEN"), "{refused}");
        }
    }

    // Managers edit services, with the version guarding lost updates.
    let renamed = app
        .ok(&mia, UPDATE, json!({"input": {"id": live["id"], "expectedVersion": live["version"], "name": "Email and calendars"}}))
        .await;
    assert_eq!(
        renamed["updateService"]["service"]["name"],
        "Email and calendars"
    );
    let stale = app
        .fails(&mia, UPDATE, json!({"input": {"id": live["id"], "expectedVersion": live["version"], "name": "Lost"}}))
        .await;
    assert_eq!(code(&stale), Some("CONFLICT"));

    // A retired service is not live, even in operation.
    let fax = service(&app, &mia, &workplace, "FAX", Some("OPERATION")).await;
    assert_eq!(
        names(&app.ok(&rita, query, json!({})).await),
        vec!["EMAIL", "FAX"]
    );
    app.ok(
        &mia,
        RETIRE,
        json!({"input": {"id": fax["id"], "note": "Nobody faxes"}}),
    )
    .await;
    assert_eq!(names(&app.ok(&rita, query, json!({})).await), vec!["EMAIL"]);
    let filtered = |filter: &str| format!("{{ services({filter}) {{ nodes {{ key }} }} }}");
    let sorted = |data: Value| {
        let mut keys = names(&data);
        keys.sort();
        keys
    };
    assert_eq!(
        sorted(app.ok(&mia, &filtered("status: RETIRED"), json!({})).await),
        vec!["FAX"]
    );
    assert_eq!(
        sorted(app.ok(&mia, &filtered("stage: OPERATION"), json!({})).await),
        vec!["EMAIL", "FAX"]
    );
    assert_eq!(
        sorted(
            app.ok(
                &mia,
                &filtered("stage: OPERATION, status: ACTIVE"),
                json!({})
            )
            .await
        ),
        vec!["EMAIL"]
    );
    assert_eq!(
        sorted(app.ok(&mia, &filtered("stage: DESIGN"), json!({})).await),
        vec!["CHATBOT"]
    );
}

async fn tickets_name_the_service_they_concern(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let mia = app.person("mia", Role::Manager).await;
    let rita = app.person("rita", Role::Requester).await;
    let workplace = team(&app, &admin).await;
    let email = service(&app, &mia, &workplace, "EMAIL", Some("OPERATION")).await;
    let planned = service(&app, &mia, &workplace, "CHATBOT", Some("DESIGN")).await;
    let create = "mutation($input: CreateIncidentInput!) { createIncident(input: $input) { ticket { id service { key } } } }";
    let ticket = app
        .ok(&rita, create, json!({"input": {"title": "Mail bounces", "impact": "LOW", "urgency": "HIGH", "serviceId": email["id"]}}))
        .await["createIncident"]["ticket"]
        .clone();
    assert_eq!(ticket["service"]["key"], "EMAIL");
    app.incident(&rita, "No service named", "LOW", "LOW", None)
        .await;
    let refused = app
        .fails(&rita, create, json!({"input": {"title": "Bot?", "impact": "LOW", "urgency": "LOW", "serviceId": planned["id"]}}))
        .await;
    assert_eq!(
        (code(&refused), error_field(&refused)),
        (Some("BAD_USER_INPUT"), Some("serviceId"))
    );
    let filtered = app
        .ok(&mia, "query($s: ID!) { tickets(filter: {serviceIds: [$s]}) { totalCount } service(id: $s) { openTickets { totalCount nodes { id } } } }", json!({"s": email["id"]}))
        .await;
    assert_eq!(filtered["tickets"]["totalCount"], 1);
    assert_eq!(
        filtered["service"]["openTickets"]["nodes"][0]["id"],
        ticket["id"]
    );
}
