//! The service catalog: items with checked forms, who sees what, and
//! requests checked against their forms.

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{Backend, Person, TestApp, code, count, error_field, spawn_app};

crate::on_both_backends!(
    forms_are_checked_when_items_are_saved_and_only_managers_save_them,
    requesters_see_active_items_of_live_services_only,
    answers_are_checked_against_the_form_and_every_problem_is_reported,
    a_valid_request_lands_typed_in_the_fulfilment_queue,
);

pub const CREATE_ITEM: &str = "mutation($input: CreateCatalogItemInput!) { createCatalogItem(input: $input) { item { id key name category active version form { key label type required options min max default } approval { rule mode approvers { subject } } tasks { title } fulfilmentQueue { name } service { key } } } }";
pub const SUBMIT: &str = "mutation($input: SubmitServiceRequestInput!) { submitServiceRequest(input: $input) { ticket { id number kind title status priority queue { name } service { key } catalogItem { key } requestForm { field { key label type } value } } } }";

/// The laptop form of the demo: one field of every type.
pub fn laptop_form() -> Value {
    json!([
        {"key": "model", "label": "Model", "type": "SELECT", "required": true, "options": ["14-inch", "16-inch"]},
        {"key": "justification", "label": "Justification", "type": "TEXTAREA", "required": true},
        {"key": "needed_by", "label": "Needed by", "type": "DATE", "required": true},
        {"key": "quantity", "label": "Quantity", "type": "NUMBER", "min": 1, "max": 3, "default": 1},
        {"key": "docking_station", "label": "Docking station", "type": "BOOLEAN"},
        {"key": "extras", "label": "Extras", "type": "MULTI_SELECT", "options": ["mouse", "headset"]},
        {"key": "notify", "label": "Also notify", "type": "EMAIL"},
        {"key": "cost_centre", "label": "Cost centre", "type": "TEXT"}
    ])
}

/// A live service with a team and queue; returns (service id, queue id).
pub async fn live_service(
    app: &TestApp,
    admin: &Person,
    key: &str,
    stage: &str,
) -> (String, String) {
    let (team, queue) = app
        .team_with_queue(admin, &format!("{key} team"), &[])
        .await;
    let service = app
        .ok(
            admin,
            "mutation($input: CreateServiceInput!) { createService(input: $input) { service { id } } }",
            json!({"input": {"key": key, "name": format!("{key} service"), "ownerTeamId": team, "stage": stage}}),
        )
        .await["createService"]["service"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (service, queue)
}

pub async fn item(
    app: &TestApp,
    who: &Person,
    service: &str,
    queue: &str,
    key: &str,
    extra: Value,
) -> Value {
    let mut input = json!({"serviceId": service, "key": key, "name": format!("Item {key}"), "category": "Hardware",
        "fulfilmentQueueId": queue, "form": laptop_form()});
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    app.ok(who, CREATE_ITEM, json!({"input": input})).await["createCatalogItem"]["item"].clone()
}

async fn forms_are_checked_when_items_are_saved_and_only_managers_save_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let mia = app.person("mia", Role::Manager).await;
    let nina = app.person("nina", Role::Agent).await;
    let (service, queue) = live_service(&app, &admin, "LAPTOPS", "OPERATION").await;
    let laptop = item(&app, &mia, &service, &queue, "new_laptop", json!({"approval": {"rule": "ANY_MANAGER"}, "tasks": [{"title": "Procure"}, {"title": "Image"}, {"title": "Deliver"}]})).await;
    assert_eq!(laptop["key"], "NEW_LAPTOP");
    assert_eq!(laptop["form"].as_array().map(Vec::len), Some(8));
    assert_eq!(
        laptop["form"][0],
        json!({"key": "model", "label": "Model", "type": "SELECT", "required": true, "options": ["14-inch", "16-inch"], "min": null, "max": null, "default": null})
    );
    assert_eq!(laptop["form"][3]["default"], 1);
    assert_eq!(laptop["approval"]["rule"], "ANY_MANAGER");
    assert_eq!(
        laptop["tasks"],
        json!([{"title": "Procure"}, {"title": "Image"}, {"title": "Deliver"}])
    );
    assert_eq!(laptop["fulfilmentQueue"]["name"], "LAPTOPS team");
    let desk = item(
        &app,
        &mia,
        &service,
        &queue,
        "desk_phone",
        json!({"form": [{"key": "desk", "label": "Desk", "type": "TEXT", "help": "Building and desk number"}]}),
    )
    .await;
    let help = app
        .ok(
            &nina,
            "query($id: ID!) { catalogItem(id: $id) { form { key help } } }",
            json!({"id": desk["id"]}),
        )
        .await;
    assert_eq!(
        help["catalogItem"]["form"],
        json!([{"key": "desk", "help": "Building and desk number"}])
    );

    let bad_form = json!([
        {"key": "dup", "label": "A", "type": "TEXT"},
        {"key": "dup", "label": "B", "type": "TEXT"},
        {"key": "pick", "label": "Pick", "type": "SELECT"},
        {"key": "count", "label": "Count", "type": "NUMBER", "min": 5, "max": 1}
    ]);
    let (status, body) = app
        .graphql_with(
            json!({"query": CREATE_ITEM, "variables": {"input": {"serviceId": service, "key": "BAD", "name": "Bad", "fulfilmentQueueId": queue, "form": bad_form}}}),
            Some(&mia.token),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["extensions"]["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        vec!["form[1].key", "form[2].options", "form[3].max"],
        "{body}"
    );
    assert!(
        body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["extensions"]["code"] == "BAD_USER_INPUT")
    );

    let update = "mutation($input: UpdateCatalogItemInput!) { updateCatalogItem(input: $input) { item { name version active } } }";
    let rita = app.person("rita", Role::Requester).await;
    for who in [&nina, &rita] {
        let refused = app.fails(who, CREATE_ITEM, json!({"input": {"serviceId": service, "key": "X", "name": "X", "fulfilmentQueueId": queue}})).await;
        assert_eq!(code(&refused), Some("FORBIDDEN"));
        let refused = app
            .fails(
                who,
                update,
                json!({"input": {"id": laptop["id"], "expectedVersion": 1, "active": false}}),
            )
            .await;
        assert_eq!(code(&refused), Some("FORBIDDEN"));
    }
    let updated = app.ok(&mia, update, json!({"input": {"id": laptop["id"], "expectedVersion": 1, "name": "New laptop", "active": false}})).await;
    assert_eq!(
        updated["updateCatalogItem"]["item"],
        json!({"name": "New laptop", "version": 2, "active": false})
    );
    let stale = app
        .fails(
            &mia,
            update,
            json!({"input": {"id": laptop["id"], "expectedVersion": 1, "name": "Lost"}}),
        )
        .await;
    assert_eq!(code(&stale), Some("CONFLICT"));
    let approvers = app.fails(&mia, update, json!({"input": {"id": laptop["id"], "expectedVersion": 2, "approval": {"rule": "APPROVERS"}}})).await;
    assert_eq!(error_field(&approvers), Some("approval.approverIds"));
}

async fn requesters_see_active_items_of_live_services_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let (live, queue) = live_service(&app, &admin, "LAPTOPS", "OPERATION").await;
    let (planned, planned_queue) = live_service(&app, &admin, "VR", "DESIGN").await;
    item(&app, &admin, &live, &queue, "laptop", json!({})).await;
    item(
        &app,
        &admin,
        &live,
        &queue,
        "old_laptop",
        json!({"active": false, "category": "Legacy"}),
    )
    .await;
    let headset = item(
        &app,
        &admin,
        &planned,
        &planned_queue,
        "vr_headset",
        json!({"category": "Labs"}),
    )
    .await;
    let keys = |data: &Value| -> Vec<String> {
        data["catalogItems"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["key"].as_str().map(str::to_owned))
            .collect()
    };
    let query = "{ catalogItems { totalCount nodes { key } } catalogCategories }";
    let seen = app.ok(&rita, query, json!({})).await;
    assert_eq!(keys(&seen), vec!["LAPTOP"]);
    assert_eq!(seen["catalogCategories"], json!(["Hardware"]));
    let staff = app.ok(&nina, query, json!({})).await;
    assert_eq!(staff["catalogItems"]["totalCount"], 3);
    assert_eq!(
        staff["catalogCategories"],
        json!(["Hardware", "Labs", "Legacy"])
    );
    let hidden = app
        .ok(
            &rita,
            "query($id: ID!) { catalogItem(id: $id) { key } node(id: $id) { id } }",
            json!({"id": headset["id"]}),
        )
        .await;
    assert_eq!(hidden, json!({"catalogItem": null, "node": null}));
    let of_service = app
        .ok(
            &rita,
            "query($s: ID!) { service(id: $s) { catalogItems { totalCount nodes { key } } } }",
            json!({"s": live}),
        )
        .await;
    assert_eq!(
        of_service["service"]["catalogItems"],
        json!({"totalCount": 1, "nodes": [{"key": "LAPTOP"}]})
    );
    let searched = app
        .ok(
            &nina,
            "{ catalogItems(search: \"headset\", category: \"Labs\") { nodes { key } } }",
            json!({}),
        )
        .await;
    assert_eq!(keys(&searched), vec!["VR_HEADSET"]);
    let by_service = "query($s: ID!) { catalogItems(serviceId: $s) { totalCount nodes { key } } }";
    assert_eq!(
        app.ok(&nina, by_service, json!({"s": live})).await["catalogItems"]["totalCount"],
        2
    );
    assert_eq!(
        keys(&app.ok(&rita, by_service, json!({"s": live})).await),
        vec!["LAPTOP"]
    );
    // Paging by one walks every item once, by name.
    let page = "query($after: String) { catalogItems(first: 1, after: $after) { nodes { key } pageInfo { hasNextPage endCursor } } }";
    let mut walked = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app.ok(&nina, page, json!({"after": after})).await;
        walked.extend(keys(&data));
        let info = &data["catalogItems"]["pageInfo"];
        if info["hasNextPage"] != json!(true) {
            break;
        }
        after = info["endCursor"].clone();
    }
    let mut by_name = walked.clone();
    by_name.sort_by_key(|key| format!("Item {}", key.to_lowercase()));
    assert_eq!(walked.len(), 3, "{walked:?}");
    assert_eq!(walked, by_name);
    // Requesting a hidden item looks like requesting none at all.
    let refused = app
        .fails(
            &rita,
            SUBMIT,
            json!({"input": {"catalogItemId": headset["id"], "answers": {}}}),
        )
        .await;
    assert_eq!(
        (code(&refused), error_field(&refused)),
        (Some("BAD_USER_INPUT"), Some("catalogItemId"))
    );
}

async fn answers_are_checked_against_the_form_and_every_problem_is_reported(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let (service, queue) = live_service(&app, &admin, "LAPTOPS", "OPERATION").await;
    let laptop = item(&app, &admin, &service, &queue, "laptop", json!({})).await;
    let submit = |answers: Value| {
        let body = json!({"query": SUBMIT, "variables": {"input": {"catalogItemId": laptop["id"], "answers": answers}}});
        let app = &app;
        let token = rita.token.clone();
        async move { app.graphql_with(body, Some(&token)).await.1 }
    };
    let problems = |body: &Value| -> Vec<String> {
        body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "{e}");
                e["extensions"]["field"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    // The table: each type, each way to get it wrong.
    let cases = [
        (
            json!({}),
            vec![
                "answers.model",
                "answers.justification",
                "answers.needed_by",
            ],
        ),
        (
            json!({"model": "17-inch", "justification": "x", "needed_by": "2027-01-10"}),
            vec!["answers.model"],
        ),
        (
            json!({"model": 14, "justification": "x", "needed_by": "2027-01-10"}),
            vec!["answers.model"],
        ),
        (
            json!({"model": "14-inch", "justification": ["x"], "needed_by": "2027-01-10"}),
            vec!["answers.justification"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "10/01/2027"}),
            vec!["answers.needed_by"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "2027-02-30"}),
            vec!["answers.needed_by"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-10", "quantity": 4}),
            vec!["answers.quantity"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-10", "quantity": "two"}),
            vec!["answers.quantity"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-10", "docking_station": "yes"}),
            vec!["answers.docking_station"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-10", "extras": ["keyboard"]}),
            vec!["answers.extras"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-10", "extras": "mouse"}),
            vec!["answers.extras"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-10", "notify": "boss at example"}),
            vec!["answers.notify"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-10", "cost_centre": "x".repeat(201)}),
            vec!["answers.cost_centre"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-10", "colour": "red"}),
            vec!["answers.colour"],
        ),
        // Wrong JSON types for text, date and email fields.
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": 20270110, "cost_centre": 4711}),
            vec!["answers.needed_by", "answers.cost_centre"],
        ),
        (
            json!({"model": "14-inch", "justification": "x", "needed_by": "2027-01-10", "notify": true}),
            vec!["answers.notify"],
        ),
        (
            json!({"model": "17-inch", "justification": "  ", "needed_by": "soon", "quantity": 0, "notify": "@x", "colour": "red"}),
            vec![
                "answers.colour",
                "answers.model",
                "answers.justification",
                "answers.needed_by",
                "answers.quantity",
                "answers.notify",
            ],
        ),
    ];
    for (answers, expected) in cases {
        let body = submit(answers.clone()).await;
        assert_eq!(problems(&body), expected, "answers {answers}: {body}");
        assert_eq!(body["data"], Value::Null);
    }
    let not_an_object = submit(json!(["model"])).await;
    assert_eq!(problems(&not_an_object), vec!["answers"]);
    let conn = app.db.connect().await;
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM tickets").await,
        0,
        "nothing was written"
    );
}

async fn a_valid_request_lands_typed_in_the_fulfilment_queue(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let (service, queue) = live_service(&app, &admin, "LAPTOPS", "OPERATION").await;
    let laptop = item(
        &app,
        &admin,
        &service,
        &queue,
        "laptop",
        json!({"defaultImpact": "LOW", "defaultUrgency": "MEDIUM"}),
    )
    .await;
    let answers = json!({"model": "16-inch", "justification": "Video editing", "needed_by": "2027-01-10",
        "docking_station": true, "extras": ["headset"], "notify": "lead@example.com"});
    let input =
        json!({"catalogItemId": laptop["id"], "answers": answers, "idempotencyKey": "portal-1"});
    let ticket =
        app.ok(&rita, SUBMIT, json!({"input": input})).await["submitServiceRequest"]["ticket"]
            .clone();
    assert_eq!(ticket["number"], "REQ0001001");
    assert_eq!(
        (ticket["kind"].as_str(), ticket["title"].as_str()),
        (Some("SERVICE_REQUEST"), Some("Item laptop"))
    );
    assert_eq!(ticket["priority"], "LOW");
    assert_eq!(ticket["queue"]["name"], "LAPTOPS team");
    assert_eq!(ticket["service"]["key"], "LAPTOPS");
    assert_eq!(ticket["catalogItem"]["key"], "LAPTOP");
    let form: Vec<(String, Value)> = ticket["requestForm"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["field"]["key"].as_str().unwrap_or_default().to_owned(),
                a["value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        form,
        vec![
            ("model".to_owned(), json!("16-inch")),
            ("justification".to_owned(), json!("Video editing")),
            ("needed_by".to_owned(), json!("2027-01-10")),
            ("quantity".to_owned(), json!(1)),
            ("docking_station".to_owned(), json!(true)),
            ("extras".to_owned(), json!(["headset"])),
            ("notify".to_owned(), json!("lead@example.com")),
        ]
    );
    assert_eq!(ticket["requestForm"][0]["field"]["type"], "SELECT");
    let again =
        app.ok(&rita, SUBMIT, json!({"input": input})).await["submitServiceRequest"]["ticket"]
            .clone();
    assert_eq!(
        again["id"], ticket["id"],
        "a retry returns the first request"
    );
    let description = app
        .ok(
            &rita,
            "query($id: ID!) { ticket(id: $id) { description } }",
            json!({"id": ticket["id"]}),
        )
        .await;
    assert!(
        description["ticket"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("Model: 16-inch") && d.contains("Extras: headset"))
    );
}
