//! Approvals and fulfilment tasks, and the whole laptop journey through the
//! real HTTP API.

use itsm::auth::Role;
use serde_json::{Value, json};

use crate::{
    catalog::{SUBMIT, item, live_service},
    helpers::{Backend, Person, TestApp, WsClient, code, error_field, spawn_app},
};

crate::on_both_backends!(
    a_laptop_is_requested_approved_fulfilled_and_closed,
    a_rejected_request_is_cancelled_with_the_reason,
    named_approvers_decide_and_all_must_approve_when_the_rule_says_all,
    normal_changes_wait_for_a_manager_and_standard_ones_do_not,
    a_change_made_normal_later_still_waits_for_a_manager,
    approvals_left_undecided_are_withdrawn_when_no_longer_needed,
    cancelling_a_request_skips_its_tasks_and_freezes_them,
    items_without_approval_start_work_at_once,
    a_request_keeps_the_form_it_was_made_with,
    a_manager_never_decides_the_approval_of_her_own_ticket,
);

const UPDATE: &str =
    "mutation($input: UpdateTicketInput!) { updateTicket(input: $input) { ticket { version } } }";

const TICKET: &str = "query($id: ID!) { ticket(id: $id) { status version cancelReason availableTransitions approvals { id state comment approver { subject } decidedBy { subject } } tasks { id position title status note } } }";
const DECIDE: &str = "mutation($input: DecideApprovalInput!) { decideApproval(input: $input) { approval { state } ticket { status } } }";
const TRANSITION: &str = "mutation($input: TransitionTicketInput!) { transitionTicket(input: $input) { ticket { status } } }";

/// People, a live service and its team's queue for fulfilment tests.
pub struct Desk {
    pub rita: Person,
    pub nina: Person,
    pub mia: Person,
    pub service: String,
    pub queue: String,
    pub admin: Person,
}

/// Sets up a [`Desk`]: Nina works the service's queue.
pub async fn desk(app: &TestApp) -> Desk {
    let admin = app.person("root", Role::Admin).await;
    let rita = app.person("rita", Role::Requester).await;
    let nina = app.person("nina", Role::Agent).await;
    let mia = app.person("mia", Role::Manager).await;
    let (service, queue) = live_service(app, &admin, "LAPTOPS", "OPERATION").await;
    let teams = app
        .ok(&admin, "{ teams { nodes { id name } } }", json!({}))
        .await;
    let team = teams["teams"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == "LAPTOPS team")
        .map(|t| t["id"].clone())
        .unwrap_or_default();
    app.ok(&admin, "mutation($t: ID!, $u: ID!) { addTeamMember(input: {teamId: $t, userId: $u}) { team { id } } }", json!({"t": team, "u": nina.id})).await;
    Desk {
        rita,
        nina,
        mia,
        service,
        queue,
        admin,
    }
}

fn laptop_answers() -> Value {
    json!({"model": "14-inch", "justification": "New starter", "needed_by": "2027-01-04"})
}

/// Submits the laptop answers for `item` as `who`; returns the ticket id.
pub async fn request(app: &TestApp, who: &Person, item: &Value) -> Value {
    let input = json!({"input": {"catalogItemId": item["id"], "answers": laptop_answers()}});
    app.ok(who, SUBMIT, input).await["submitServiceRequest"]["ticket"]["id"].clone()
}

/// A toner item: no approval, two tasks.
pub async fn toner(app: &TestApp, d: &Desk) -> Value {
    item(
        app,
        &d.mia,
        &d.service,
        &d.queue,
        "toner",
        json!({"approval": {"rule": "NONE"}, "tasks": [{"title": "Pick"}, {"title": "Deliver"}]}),
    )
    .await
}

async fn ticket(app: &TestApp, who: &Person, id: &Value) -> Value {
    app.ok(who, TICKET, json!({"id": id})).await["ticket"].clone()
}

async fn a_laptop_is_requested_approved_fulfilled_and_closed(backend: Backend) {
    let app = spawn_app(backend).await;
    let d = desk(&app).await;
    item(
        &app,
        &d.mia,
        &d.service,
        &d.queue,
        "new_laptop",
        json!({
            "name": "New laptop",
            "approval": {"rule": "ANY_MANAGER"},
            "tasks": [{"title": "Procure"}, {"title": "Image"}, {"title": "Deliver"}]
        }),
    )
    .await;

    // The requester browses the catalog and finds the form.
    let found = app.ok(&d.rita, "{ catalogItems(search: \"laptop\") { nodes { id name form { key type required options } } } }", json!({})).await;
    let laptop = found["catalogItems"]["nodes"][0].clone();
    assert_eq!(laptop["name"], "New laptop");
    assert_eq!(laptop["form"][0]["options"], json!(["14-inch", "16-inch"]));

    let mut phone = WsClient::signed_in(&app, &d.rita).await;
    phone
        .subscribe(
            "mine",
            "subscription { myTicketUpdates { kind } }",
            json!({}),
        )
        .await;
    // The fulfilment team's board follows the queue.
    let mut board = WsClient::signed_in(&app, &d.nina).await;
    board
        .subscribe(
            "board",
            "subscription($q: ID!) { queueUpdates(queueId: $q) { kind } }",
            json!({"q": d.queue}),
        )
        .await;
    app.wait_for_subscriptions(2).await;

    let id = request(&app, &d.rita, &laptop).await;
    let waiting = ticket(&app, &d.rita, &id).await;
    assert_eq!(waiting["status"], "AWAITING_APPROVAL");
    assert_eq!(waiting["approvals"][0]["state"], "PENDING");
    assert_eq!(
        waiting["approvals"][0]["approver"],
        Value::Null,
        "any manager may decide"
    );
    assert_eq!(waiting["tasks"], json!([]), "no work before approval");
    for kind in ["CREATED", "APPROVAL_REQUESTED"] {
        assert_eq!(
            phone.next_of("mine").await["payload"]["data"]["myTicketUpdates"]["kind"],
            kind
        );
    }

    // Nobody starts work before the approval, and only a manager approves.
    let early = app
        .fails(
            &d.nina,
            TRANSITION,
            json!({"input": {"id": id, "to": "IN_PROGRESS"}}),
        )
        .await;
    assert_eq!(
        (code(&early), error_field(&early)),
        (Some("BAD_USER_INPUT"), Some("to"))
    );
    let approval = waiting["approvals"][0]["id"].clone();
    let not_hers = app
        .fails(
            &d.nina,
            DECIDE,
            json!({"input": {"approvalId": approval, "decision": "APPROVED"}}),
        )
        .await;
    assert_eq!(code(&not_hers), Some("FORBIDDEN"));
    let inbox = app
        .ok(
            &d.mia,
            "{ myApprovals { id canDecide ticket { number } } }",
            json!({}),
        )
        .await;
    assert_eq!(inbox["myApprovals"][0]["id"], approval);
    assert_eq!(inbox["myApprovals"][0]["canDecide"], true);
    let approved = app.ok(&d.mia, DECIDE, json!({"input": {"approvalId": approval, "decision": "APPROVED", "comment": "Budgeted"}})).await;
    assert_eq!(
        approved["decideApproval"],
        json!({"approval": {"state": "APPROVED"}, "ticket": {"status": "IN_PROGRESS"}})
    );
    let twice = app
        .fails(
            &d.mia,
            DECIDE,
            json!({"input": {"approvalId": approval, "decision": "REJECTED", "comment": "no"}}),
        )
        .await;
    assert_eq!(code(&twice), Some("CONFLICT"));
    for kind in ["APPROVAL_DECIDED", "STATUS_CHANGED", "TASK_UPDATED"] {
        assert_eq!(
            phone.next_of("mine").await["payload"]["data"]["myTicketUpdates"]["kind"],
            kind
        );
    }

    // Fulfilment: the tasks, in order; resolving waits for them.
    let working = ticket(&app, &d.nina, &id).await;
    let titles: Vec<&str> = working["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["title"].as_str())
        .collect();
    assert_eq!(titles, vec!["Procure", "Image", "Deliver"]);
    let too_soon = app
        .fails(
            &d.nina,
            TRANSITION,
            json!({"input": {"id": id, "to": "RESOLVED", "resolution": "done"}}),
        )
        .await;
    assert!(
        too_soon["message"]
            .as_str()
            .is_some_and(|m| m.contains("3 fulfilment task")),
        "{too_soon}"
    );
    let complete = "mutation($t: ID!, $n: String) { completeTask(input: {taskId: $t, note: $n}) { task { status note } } }";
    let skip = "mutation($t: ID!, $r: String!) { skipTask(input: {taskId: $t, reason: $r}) { task { status note } } }";
    let tasks = working["tasks"].as_array().cloned().unwrap_or_default();
    let done = app
        .ok(
            &d.nina,
            complete,
            json!({"t": tasks[0]["id"], "n": "Ordered from the framework supplier"}),
        )
        .await;
    assert_eq!(done["completeTask"]["task"]["status"], "DONE");
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(board.next_of("board").await["payload"]["data"]["queueUpdates"]["kind"].clone());
    }
    assert_eq!(
        seen,
        vec![
            json!("CREATED"),
            json!("APPROVAL_REQUESTED"),
            json!("APPROVAL_DECIDED"),
            json!("STATUS_CHANGED"),
            json!("TASK_UPDATED"),
            json!("TASK_UPDATED")
        ],
        "approvals and tasks reach the queue's board"
    );
    let again = app
        .fails(&d.nina, complete, json!({"t": tasks[0]["id"]}))
        .await;
    assert_eq!(code(&again), Some("CONFLICT"));
    let no_reason = app
        .fails(&d.nina, skip, json!({"t": tasks[1]["id"], "r": " "}))
        .await;
    assert_eq!(error_field(&no_reason), Some("reason"));
    app.ok(
        &d.nina,
        skip,
        json!({"t": tasks[1]["id"], "r": "Shipped pre-imaged"}),
    )
    .await;
    let requester_cannot = app
        .fails(&d.rita, complete, json!({"t": tasks[2]["id"]}))
        .await;
    assert_eq!(code(&requester_cannot), Some("FORBIDDEN"));
    app.ok(&d.nina, complete, json!({"t": tasks[2]["id"]}))
        .await;
    app.ok(
        &d.nina,
        TRANSITION,
        json!({"input": {"id": id, "to": "RESOLVED", "resolution": "Laptop delivered"}}),
    )
    .await;

    // The requester closes it.
    assert_eq!(
        ticket(&app, &d.rita, &id).await["availableTransitions"],
        json!(["IN_PROGRESS", "CLOSED"])
    );
    let closed = app
        .ok(
            &d.rita,
            TRANSITION,
            json!({"input": {"id": id, "to": "CLOSED"}}),
        )
        .await;
    assert_eq!(closed["transitionTicket"]["ticket"]["status"], "CLOSED");
    let history = app
        .ok(
            &d.rita,
            "query($id: ID!) { ticket(id: $id) { history(first: 100) { nodes { kind } } } }",
            json!({"id": id}),
        )
        .await;
    let kinds: Vec<&str> = history["ticket"]["history"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "CREATED",
            "APPROVAL_REQUESTED",
            "APPROVAL_DECIDED",
            "STATUS_CHANGED",
            "TASK_UPDATED",
            "TASK_UPDATED",
            "TASK_UPDATED",
            "TASK_UPDATED",
            "STATUS_CHANGED",
            "STATUS_CHANGED",
        ]
    );
    let _ = &d.admin;
}

async fn a_rejected_request_is_cancelled_with_the_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    let d = desk(&app).await;
    let laptop = item(
        &app,
        &d.mia,
        &d.service,
        &d.queue,
        "new_laptop",
        json!({"approval": {"rule": "ANY_MANAGER"}, "tasks": [{"title": "Procure"}]}),
    )
    .await;
    let id = request(&app, &d.rita, &laptop).await;
    let approval = ticket(&app, &d.rita, &id).await["approvals"][0]["id"].clone();
    let bare = app
        .fails(
            &d.mia,
            DECIDE,
            json!({"input": {"approvalId": approval, "decision": "REJECTED"}}),
        )
        .await;
    assert_eq!(
        (code(&bare), error_field(&bare)),
        (Some("BAD_USER_INPUT"), Some("comment"))
    );
    let rejected = app.ok(&d.mia, DECIDE, json!({"input": {"approvalId": approval, "decision": "REJECTED", "comment": "Laptop refresh is next quarter"}})).await;
    assert_eq!(rejected["decideApproval"]["ticket"]["status"], "CANCELLED");
    let after = ticket(&app, &d.rita, &id).await;
    assert!(
        after["cancelReason"]
            .as_str()
            .is_some_and(|r| r.contains("Laptop refresh is next quarter")),
        "{after}"
    );
    assert_eq!(after["approvals"][0]["state"], "REJECTED");
    // The requester sees who decided by display name only.
    assert_eq!(after["approvals"][0]["decidedBy"]["subject"], Value::Null);
    let staff_view = ticket(&app, &d.mia, &id).await;
    assert_eq!(staff_view["approvals"][0]["decidedBy"]["subject"], "mia");
    assert_eq!(after["tasks"], json!([]), "no work for a rejected request");
}

async fn named_approvers_decide_and_all_must_approve_when_the_rule_says_all(backend: Backend) {
    let app = spawn_app(backend).await;
    let d = desk(&app).await;
    let finance = app.person("fiona", Role::Requester).await;
    let other_manager = app.person("otto", Role::Manager).await;
    let item = item(
        &app,
        &d.mia,
        &d.service,
        &d.queue,
        "monitor",
        json!({
            "approval": {"rule": "APPROVERS", "mode": "ALL", "approverIds": [d.mia.id, finance.id]},
            "tasks": [{"title": "Ship"}]
        }),
    )
    .await;
    let id = request(&app, &d.rita, &item).await;
    let approvals = ticket(&app, &d.mia, &id).await["approvals"].clone();
    let subjects: Vec<&str> = approvals
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["approver"]["subject"].as_str())
        .collect();
    assert_eq!(subjects, vec!["mia", "fiona"]);
    let mine = |who: &Person| {
        approvals
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["approver"]["subject"] == who.token_subject())
            .map(|a| a["id"].clone())
            .unwrap_or_default()
    };

    let outsider = app
        .fails(
            &other_manager,
            DECIDE,
            json!({"input": {"approvalId": mine(&d.mia), "decision": "APPROVED"}}),
        )
        .await;
    assert_eq!(
        code(&outsider),
        Some("FORBIDDEN"),
        "only designated approvers decide"
    );
    let half = app
        .ok(
            &d.mia,
            DECIDE,
            json!({"input": {"approvalId": mine(&d.mia), "decision": "APPROVED"}}),
        )
        .await;
    assert_eq!(
        half["decideApproval"]["ticket"]["status"], "AWAITING_APPROVAL",
        "one of two is not all"
    );
    // The finance approver is a requester: she sees the request through her approval.
    let inbox = app
        .ok(
            &finance,
            "{ myApprovals { id ticket { number } } }",
            json!({}),
        )
        .await;
    assert!(
        inbox["myApprovals"][0]["ticket"]["number"].is_string(),
        "{inbox}"
    );
    let hidden = app
        .ok(
            &finance,
            "query($id: ID!) { ticket(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(hidden["ticket"], Value::Null, "but not otherwise");
    let all = app
        .ok(
            &finance,
            DECIDE,
            json!({"input": {"approvalId": mine(&finance), "decision": "APPROVED"}}),
        )
        .await;
    assert_eq!(all["decideApproval"]["ticket"]["status"], "IN_PROGRESS");
    assert_eq!(ticket(&app, &d.mia, &id).await["tasks"][0]["title"], "Ship");
}

async fn normal_changes_wait_for_a_manager_and_standard_ones_do_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let d = desk(&app).await;
    let create = "mutation($t: ChangeType!) { createChange(input: {title: \"Patch\", impact: LOW, urgency: LOW, changeType: $t, risk: LOW}) { ticket { id status approvals { state } } } }";
    let standard =
        app.ok(&d.nina, create, json!({"t": "STANDARD"})).await["createChange"]["ticket"].clone();
    assert_eq!(
        (standard["status"].clone(), standard["approvals"].clone()),
        (json!("NEW"), json!([])),
        "pre-approved"
    );
    let normal =
        app.ok(&d.nina, create, json!({"t": "NORMAL"})).await["createChange"]["ticket"].clone();
    assert_eq!(normal["status"], "AWAITING_APPROVAL");
    assert_eq!(normal["approvals"], json!([{"state": "PENDING"}]));
    let early = app
        .fails(
            &d.mia,
            TRANSITION,
            json!({"input": {"id": normal["id"], "to": "IN_PROGRESS"}}),
        )
        .await;
    assert_eq!(error_field(&early), Some("to"));
    let approval = ticket(&app, &d.mia, &normal["id"]).await["approvals"][0]["id"].clone();
    let decided = app
        .ok(
            &d.mia,
            DECIDE,
            json!({"input": {"approvalId": approval, "decision": "APPROVED"}}),
        )
        .await;
    assert_eq!(decided["decideApproval"]["ticket"]["status"], "IN_PROGRESS");
    let emergency =
        app.ok(&d.nina, create, json!({"t": "EMERGENCY"})).await["createChange"]["ticket"].clone();
    assert_eq!(emergency["status"], "AWAITING_APPROVAL");
    let approval = ticket(&app, &d.mia, &emergency["id"]).await["approvals"][0]["id"].clone();
    let agent = app
        .fails(
            &d.nina,
            DECIDE,
            json!({"input": {"approvalId": approval, "decision": "APPROVED"}}),
        )
        .await;
    assert_eq!(
        code(&agent),
        Some("FORBIDDEN"),
        "agents do not approve changes"
    );
    let _ = (&d.rita, &d.admin);
}

async fn a_change_made_normal_later_still_waits_for_a_manager(backend: Backend) {
    let app = spawn_app(backend).await;
    let d = desk(&app).await;
    let create = "mutation($q: ID!) { createChange(input: {title: \"Patch\", impact: LOW, urgency: LOW, changeType: STANDARD, risk: LOW, queueId: $q}) { ticket { id version availableTransitions } } }";
    let change =
        app.ok(&d.nina, create, json!({"q": d.queue})).await["createChange"]["ticket"].clone();
    let id = change["id"].clone();
    assert!(
        change["availableTransitions"]
            .as_array()
            .is_some_and(|moves| moves.contains(&json!("IN_PROGRESS"))),
        "a standard change starts at once: {change}"
    );
    app.ok(
        &d.nina,
        UPDATE,
        json!({"input": {"id": id, "expectedVersion": change["version"], "changeType": "NORMAL"}}),
    )
    .await;
    let normal = ticket(&app, &d.nina, &id).await;
    assert_eq!(
        normal["availableTransitions"],
        json!(["AWAITING_APPROVAL", "CANCELLED"])
    );
    for to in ["IN_PROGRESS", "PENDING", "RESOLVED"] {
        let refused = app
            .fails(
                &d.nina,
                TRANSITION,
                json!({"input": {"id": id, "to": to, "pendingReason": (to == "PENDING").then_some("AWAITING_VENDOR"),
                    "resolution": (to == "RESOLVED").then_some("done")}}),
            )
            .await;
        assert_eq!(
            (code(&refused), error_field(&refused)),
            (Some("BAD_USER_INPUT"), Some("to")),
            "{to}: {refused}"
        );
        assert!(
            refused["message"]
                .as_str()
                .is_some_and(|m| m.contains("allowed: AWAITING_APPROVAL, CANCELLED")),
            "{refused}"
        );
    }
    // Sent for approval by hand: any manager decides, agents do not.
    let sent = app
        .ok(
            &d.nina,
            TRANSITION,
            json!({"input": {"id": id, "to": "AWAITING_APPROVAL"}}),
        )
        .await;
    assert_eq!(
        sent["transitionTicket"]["ticket"]["status"],
        "AWAITING_APPROVAL"
    );
    let waiting = ticket(&app, &d.mia, &id).await;
    assert_eq!(waiting["approvals"].as_array().map(Vec::len), Some(1));
    assert_eq!(waiting["approvals"][0]["state"], "PENDING");
    assert_eq!(waiting["approvals"][0]["approver"], Value::Null);
    let approval = waiting["approvals"][0]["id"].clone();
    let agent = app
        .fails(
            &d.nina,
            DECIDE,
            json!({"input": {"approvalId": approval, "decision": "APPROVED"}}),
        )
        .await;
    assert_eq!(code(&agent), Some("FORBIDDEN"));
    let fixed = app
        .fails(
            &d.mia,
            UPDATE,
            json!({"input": {"id": id, "expectedVersion": waiting["version"], "changeType": "STANDARD"}}),
        )
        .await;
    assert_eq!(
        (code(&fixed), error_field(&fixed)),
        (Some("BAD_USER_INPUT"), Some("changeType")),
        "no reclassifying past the approval"
    );
    let approved = app
        .ok(
            &d.mia,
            DECIDE,
            json!({"input": {"approvalId": approval, "decision": "APPROVED"}}),
        )
        .await;
    assert_eq!(
        approved["decideApproval"]["ticket"]["status"],
        "IN_PROGRESS"
    );
    let history = app
        .ok(
            &d.mia,
            "query($id: ID!) { ticket(id: $id) { history(first: 20) { nodes { kind } } } }",
            json!({"id": id}),
        )
        .await;
    let kinds: Vec<&str> = history["ticket"]["history"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "CREATED",
            "UPDATED",
            "STATUS_CHANGED",
            "APPROVAL_REQUESTED",
            "APPROVAL_DECIDED",
            "STATUS_CHANGED"
        ]
    );
}

async fn approvals_left_undecided_are_withdrawn_when_no_longer_needed(backend: Backend) {
    let app = spawn_app(backend).await;
    let d = desk(&app).await;
    let otto = app.person("otto", Role::Manager).await;
    let monitor = item(
        &app,
        &d.mia,
        &d.service,
        &d.queue,
        "monitor",
        json!({"approval": {"rule": "APPROVERS", "mode": "ANY", "approverIds": [d.mia.id, otto.id]}}),
    )
    .await;
    let inbox = "query($state: ApprovalState! = PENDING) { myApprovals(state: $state) { id state canDecide ticket { id } } }";
    let of = |who: &Person, approvals: &Value| {
        approvals
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["approver"]["subject"] == who.token_subject())
            .map(|a| a["id"].clone())
            .unwrap_or_default()
    };

    // ANY: the first approval starts work; the other approver's is withdrawn.
    let first = request(&app, &d.rita, &monitor).await;
    let approvals = ticket(&app, &d.mia, &first).await["approvals"].clone();
    let approved = app
        .ok(
            &otto,
            DECIDE,
            json!({"input": {"approvalId": of(&otto, &approvals), "decision": "APPROVED"}}),
        )
        .await;
    assert_eq!(
        approved["decideApproval"]["ticket"]["status"],
        "IN_PROGRESS"
    );
    let states: Vec<Value> = ticket(&app, &d.mia, &first).await["approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| json!([a["approver"]["subject"], a["state"]]))
        .collect();
    assert_eq!(
        states,
        vec![json!(["mia", "WITHDRAWN"]), json!(["otto", "APPROVED"])]
    );
    let pending = app.ok(&d.mia, inbox, json!({})).await;
    assert_eq!(pending["myApprovals"], json!([]), "nothing left to decide");
    let late = app
        .fails(
            &d.mia,
            DECIDE,
            json!({"input": {"approvalId": of(&d.mia, &approvals), "decision": "APPROVED"}}),
        )
        .await;
    assert_eq!(code(&late), Some("CONFLICT"));
    let withdrawn = app.ok(&d.mia, inbox, json!({"state": "WITHDRAWN"})).await;
    assert_eq!(withdrawn["myApprovals"][0]["ticket"]["id"], first);
    assert_eq!(withdrawn["myApprovals"][0]["canDecide"], false);
    let decided = app.ok(&otto, inbox, json!({"state": "APPROVED"})).await;
    assert_eq!(decided["myApprovals"][0]["ticket"]["id"], first);

    // A rejection withdraws the others too.
    let second = request(&app, &d.rita, &monitor).await;
    let approvals = ticket(&app, &d.mia, &second).await["approvals"].clone();
    app.ok(&d.mia, DECIDE, json!({"input": {"approvalId": of(&d.mia, &approvals), "decision": "REJECTED", "comment": "Not this year"}}))
        .await;
    let rejected = ticket(&app, &d.mia, &second).await;
    assert_eq!(rejected["status"], "CANCELLED");
    assert_eq!(rejected["approvals"][1]["state"], "WITHDRAWN");
    let rejections = app.ok(&d.mia, inbox, json!({"state": "REJECTED"})).await;
    assert_eq!(rejections["myApprovals"][0]["ticket"]["id"], second);

    // So does the requester cancelling while the request waits.
    let third = request(&app, &d.rita, &monitor).await;
    app.ok(
        &d.rita,
        TRANSITION,
        json!({"input": {"id": third, "to": "CANCELLED", "reason": "Found a spare"}}),
    )
    .await;
    let cancelled = ticket(&app, &d.mia, &third).await;
    let states: Vec<&Value> = cancelled["approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| &a["state"])
        .collect();
    assert_eq!(states, vec!["WITHDRAWN", "WITHDRAWN"]);
    assert_eq!(
        app.ok(&otto, inbox, json!({})).await["myApprovals"],
        json!([])
    );
}

async fn cancelling_a_request_skips_its_tasks_and_freezes_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let d = desk(&app).await;
    let toner = toner(&app, &d).await;
    let id = request(&app, &d.rita, &toner).await;
    let tasks = ticket(&app, &d.nina, &id).await["tasks"].clone();
    let complete = "mutation($t: ID!) { completeTask(input: {taskId: $t}) { task { status } } }";
    app.ok(&d.nina, complete, json!({"t": tasks[0]["id"]}))
        .await;
    app.ok(
        &d.rita,
        TRANSITION,
        json!({"input": {"id": id, "to": "CANCELLED", "reason": "No longer needed"}}),
    )
    .await;
    let cancelled = ticket(&app, &d.nina, &id).await;
    let states: Vec<(&Value, &Value)> = cancelled["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (&t["status"], &t["note"]))
        .collect();
    assert_eq!(
        states,
        vec![
            (&json!("DONE"), &Value::Null),
            (&json!("SKIPPED"), &json!("the ticket was cancelled"))
        ]
    );
    for task in [&tasks[0], &tasks[1]] {
        let frozen = app.fails(&d.nina, complete, json!({"t": task["id"]})).await;
        assert_eq!(code(&frozen), Some("CONFLICT"), "{frozen}");
    }
    let assign = "mutation($t: ID!, $a: ID) { assignTask(input: {taskId: $t, assigneeId: $a}) { task { status } } }";
    let frozen = app
        .fails(
            &d.nina,
            assign,
            json!({"t": tasks[1]["id"], "a": d.nina.id}),
        )
        .await;
    assert_eq!(code(&frozen), Some("CONFLICT"), "{frozen}");
}

async fn items_without_approval_start_work_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let d = desk(&app).await;
    let toner = toner(&app, &d).await;
    let id = request(&app, &d.rita, &toner).await;
    let made = ticket(&app, &d.nina, &id).await;
    assert_eq!(made["status"], "NEW");
    assert_eq!(made["approvals"], json!([]));
    let titles: Vec<(&Value, &Value)> = made["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (&t["title"], &t["status"]))
        .collect();
    assert_eq!(
        titles,
        vec![
            (&json!("Pick"), &json!("OPEN")),
            (&json!("Deliver"), &json!("OPEN"))
        ]
    );
    // Sent for approval afterwards, it keeps its tasks and gets no second set.
    app.ok(
        &d.nina,
        TRANSITION,
        json!({"input": {"id": id, "to": "AWAITING_APPROVAL"}}),
    )
    .await;
    let approval = ticket(&app, &d.mia, &id).await["approvals"][0]["id"].clone();
    app.ok(
        &d.mia,
        DECIDE,
        json!({"input": {"approvalId": approval, "decision": "APPROVED"}}),
    )
    .await;
    let approved = ticket(&app, &d.nina, &id).await;
    assert_eq!(approved["status"], "IN_PROGRESS");
    assert_eq!(approved["tasks"].as_array().map(Vec::len), Some(2));
    // Rejected instead, the request is cancelled and its tasks skipped.
    let other = request(&app, &d.rita, &toner).await;
    app.ok(
        &d.nina,
        TRANSITION,
        json!({"input": {"id": other, "to": "AWAITING_APPROVAL"}}),
    )
    .await;
    let approval = ticket(&app, &d.mia, &other).await["approvals"][0]["id"].clone();
    app.ok(&d.mia, DECIDE, json!({"input": {"approvalId": approval, "decision": "REJECTED", "comment": "Use the shared printer"}}))
        .await;
    let rejected = ticket(&app, &d.nina, &other).await;
    assert_eq!(rejected["status"], "CANCELLED");
    let states: Vec<&Value> = rejected["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| &t["status"])
        .collect();
    assert_eq!(states, vec!["SKIPPED", "SKIPPED"]);
    let blocked = app
        .fails(
            &d.nina,
            TRANSITION,
            json!({"input": {"id": id, "to": "RESOLVED", "resolution": "done"}}),
        )
        .await;
    assert_eq!(
        (code(&blocked), error_field(&blocked)),
        (Some("BAD_USER_INPUT"), Some("to")),
        "open tasks block resolving"
    );
}

async fn a_request_keeps_the_form_it_was_made_with(backend: Backend) {
    let app = spawn_app(backend).await;
    let d = desk(&app).await;
    let laptop = item(
        &app,
        &d.mia,
        &d.service,
        &d.queue,
        "new_laptop",
        json!({"approval": {"rule": "NONE"}}),
    )
    .await;
    let request = json!({"input": {"catalogItemId": laptop["id"], "answers": laptop_answers(), "idempotencyKey": "portal-1"}});
    let submitted = app.ok(&d.rita, SUBMIT, request.clone()).await;
    let id = submitted["submitServiceRequest"]["ticket"]["id"].clone();
    let form = "query($id: ID!) { ticket(id: $id) { requestForm { field { key label type options } value } } }";
    let before = app.ok(&d.rita, form, json!({"id": id})).await;
    // A relabelled field does not turn the portal's retry into a conflict.
    let mut relabelled = crate::catalog::laptop_form();
    relabelled[0]["label"] = json!("Which model");
    let update = "mutation($input: UpdateCatalogItemInput!) { updateCatalogItem(input: $input) { item { version } } }";
    let edited = app
        .ok(&d.mia, update, json!({"input": {"id": laptop["id"], "expectedVersion": laptop["version"], "form": relabelled}}))
        .await;
    let retried = app.ok(&d.rita, SUBMIT, request).await;
    assert_eq!(retried["submitServiceRequest"]["ticket"]["id"], id);
    // The manager reworks the form: a field renamed, one dropped, options changed.
    let reworked = json!([
        {"key": "model", "label": "Laptop model", "type": "SELECT", "required": true, "options": ["13-inch", "15-inch"]},
        {"key": "justification", "label": "Why", "type": "TEXTAREA", "required": true}
    ]);
    app.ok(
        &d.mia,
        update,
        json!({"input": {"id": laptop["id"], "expectedVersion": edited["updateCatalogItem"]["item"]["version"], "form": reworked}}),
    )
    .await;
    let after = app.ok(&d.rita, form, json!({"id": id})).await;
    assert_eq!(after, before, "the request reads as it was made");
    assert_eq!(
        after["ticket"]["requestForm"][0],
        json!({"field": {"key": "model", "label": "Model", "type": "SELECT", "options": ["14-inch", "16-inch"]}, "value": "14-inch"})
    );
    assert_eq!(
        after["ticket"]["requestForm"][2]["field"]["key"],
        "needed_by"
    );
    // A request stored as a plain object of answers (before fields were kept
    // with them) still reads, through the item's current form.
    let conn = app.db.connect().await;
    sea_orm::ConnectionTrait::execute_unprepared(
        &conn,
        &format!(
            "UPDATE tickets SET request_answers = '{{\"model\": \"13-inch\", \"justification\": \"Old\"}}' WHERE id = {}",
            crate::tickets::id_of(id.as_str().unwrap_or_default())
        ),
    )
    .await
    .expect("store the old shape");
    let old = app.ok(&d.rita, form, json!({"id": id})).await;
    assert_eq!(
        old["ticket"]["requestForm"],
        json!([
            {"field": {"key": "model", "label": "Laptop model", "type": "SELECT", "options": ["13-inch", "15-inch"]}, "value": "13-inch"},
            {"field": {"key": "justification", "label": "Why", "type": "TEXTAREA", "options": []}, "value": "Old"}
        ])
    );
}

/// Separation of duties: whoever requested a ticket never decides its
/// approval, whatever the rule; another manager (or the other named
/// approvers) must.
async fn a_manager_never_decides_the_approval_of_her_own_ticket(backend: Backend) {
    let app = spawn_app(backend).await;
    let d = desk(&app).await;
    let otto = app.person("otto", Role::Manager).await;
    let fiona = app.person("fiona", Role::Requester).await;
    const MINE: &str = "{ myApprovals { id ticket { id } } }";
    let decide =
        |approval: &Value| json!({"input": {"approvalId": approval, "decision": "APPROVED"}});
    let approvals_of = |who: &Person, id: &Value| {
        let query = "query($id: ID!) { ticket(id: $id) { status approvals { id state canDecide approver { subject } } } }";
        let variables = json!({"id": id});
        let who = who.clone();
        let app = &app;
        async move { app.ok(&who, query, variables).await["ticket"].clone() }
    };

    // Any manager: her own request waits for another one.
    let laptop = item(
        &app,
        &d.mia,
        &d.service,
        &d.queue,
        "laptop",
        json!({"approval": {"rule": "ANY_MANAGER"}}),
    )
    .await;
    let own = request(&app, &d.mia, &laptop).await;
    let ticket = approvals_of(&d.mia, &own).await;
    assert_eq!(ticket["status"], "AWAITING_APPROVAL");
    let approval = ticket["approvals"][0]["id"].clone();
    assert_eq!(ticket["approvals"][0]["canDecide"], false);
    let listed = app.ok(&d.mia, MINE, json!({})).await;
    assert_eq!(listed["myApprovals"], json!([]), "not in her own inbox");
    let refused = app.fails(&d.mia, DECIDE, decide(&approval)).await;
    assert_eq!(code(&refused), Some("FORBIDDEN"), "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("another approver"),
        "{refused}"
    );
    assert_eq!(
        approvals_of(&d.mia, &own).await["approvals"][0]["state"],
        "PENDING"
    );
    let listed = app.ok(&otto, MINE, json!({})).await;
    assert_eq!(listed["myApprovals"][0]["id"], approval);
    assert_eq!(
        approvals_of(&otto, &own).await["approvals"][0]["canDecide"],
        true
    );
    let decided = app.ok(&otto, DECIDE, decide(&approval)).await;
    assert_eq!(decided["decideApproval"]["ticket"]["status"], "IN_PROGRESS");

    // Her own normal change, too.
    let create = "mutation { createChange(input: {title: \"Own change\", impact: LOW, urgency: LOW, changeType: NORMAL, risk: LOW}) { ticket { id approvals { id } } } }";
    let change = app.ok(&d.mia, create, json!({})).await["createChange"]["ticket"].clone();
    let approval = change["approvals"][0]["id"].clone();
    let refused = app.fails(&d.mia, DECIDE, decide(&approval)).await;
    assert_eq!(code(&refused), Some("FORBIDDEN"), "{refused}");
    app.ok(&otto, DECIDE, decide(&approval)).await;

    // Named as an approver of her own request: under ALL her place goes to
    // any other manager; the other named approver still decides.
    let monitor = item(
        &app,
        &d.mia,
        &d.service,
        &d.queue,
        "monitor",
        json!({
        "approval": {"rule": "APPROVERS", "mode": "ALL", "approverIds": [d.mia.id, fiona.id]}}),
    )
    .await;
    let own = request(&app, &d.mia, &monitor).await;
    let ticket = approvals_of(&otto, &own).await;
    let approvers: Vec<Value> = ticket["approvals"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["approver"]["subject"].clone())
        .collect();
    assert_eq!(approvers, vec![Value::Null, json!("fiona")], "{ticket}");
    for approval in ticket["approvals"].as_array().into_iter().flatten() {
        let refused = app.fails(&d.mia, DECIDE, decide(&approval["id"])).await;
        assert_eq!(code(&refused), Some("FORBIDDEN"), "{refused}");
    }
    app.ok(&otto, DECIDE, decide(&ticket["approvals"][0]["id"]))
        .await;
    let done = app
        .ok(&fiona, DECIDE, decide(&ticket["approvals"][1]["id"]))
        .await;
    assert_eq!(done["decideApproval"]["ticket"]["status"], "IN_PROGRESS");

    // Sent for approval by hand: still not hers to decide.
    let incident = app
        .incident(&d.mia, "Own outage", "LOW", "LOW", Some(&d.queue))
        .await;
    app.ok(
        &d.mia,
        TRANSITION,
        json!({"input": {"id": incident["id"], "to": "AWAITING_APPROVAL"}}),
    )
    .await;
    let approval = approvals_of(&d.mia, &incident["id"]).await["approvals"][0]["id"].clone();
    let refused = app.fails(&d.mia, DECIDE, decide(&approval)).await;
    assert_eq!(code(&refused), Some("FORBIDDEN"), "{refused}");
    app.ok(&otto, DECIDE, decide(&approval)).await;
}
