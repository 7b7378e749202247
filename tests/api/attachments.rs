//! Attachments through the real server: uploads by the GraphQL multipart
//! request spec, types read from the content, limits, the visibility of
//! what a file belongs to on every read path, signed download links (their
//! headers, expiry and tampering), removal with its record, and no file left
//! behind by a failed upload.

use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{Hmac, Mac};
use itsm::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, Person, TestApp, WsClient, spawn_app, spawn_app_with};

crate::on_both_backends!(
    a_requester_attaches_a_screenshot_and_downloads_it_through_a_signed_link,
    size_count_and_type_limits_are_enforced_by_content,
    a_work_notes_attachment_never_reaches_the_requester,
    download_links_expire_and_tampered_ones_are_refused,
    removing_an_attachment_keeps_its_record_and_deletes_the_file,
    a_failed_upload_leaves_no_file_and_the_sweeper_removes_strays,
    a_request_forms_files_become_the_requests_attachments,
    every_problem_with_a_requests_files_is_reported_and_nothing_is_written,
);

/// A small PDF.
const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";

/// A 1×1 PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

const ADD: &str = "mutation($input: AddAttachmentInput!) { addAttachment(input: $input) { attachment { id filename contentType size sha256 visibility url urlExpiresAt uploadedBy { id } comment { id } } } }";
const ATTACHMENTS: &str = "query($id: ID!) { ticket(id: $id) { attachments { id filename visibility } comments(first: 20) { nodes { id attachments { id } } } } }";

/// Uploads `bytes` as `filename` (the client claims `claimed`) to `ticket`
/// (or its `comment`) with a multipart request; the whole answer.
pub(crate) async fn upload(
    app: &TestApp,
    who: &Person,
    ticket: &str,
    comment: Option<&str>,
    filename: &str,
    claimed: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    multipart(
        app,
        who,
        ADD,
        json!({"input": {"ticketId": ticket, "commentId": comment, "file": null}}),
        &[("variables.input.file", filename, claimed, bytes)],
    )
    .await
}

/// Sends `query` with `variables` as a GraphQL multipart request, each file
/// (variable path, file name, claimed type, bytes) a part; the whole answer.
async fn multipart(
    app: &TestApp,
    who: &Person,
    query: &str,
    variables: Value,
    files: &[(&str, &str, &str, &[u8])],
) -> (StatusCode, Value) {
    let operations = json!({"query": query, "variables": variables});
    let map: serde_json::Map<String, Value> = files
        .iter()
        .enumerate()
        .map(|(index, (path, ..))| (index.to_string(), json!([path])))
        .collect();
    let mut form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", Value::Object(map).to_string());
    for (index, (_, filename, claimed, bytes)) in files.iter().enumerate() {
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name((*filename).to_owned())
            .mime_str(claimed)
            .expect("a media type");
        form = form.part(index.to_string(), part);
    }
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&who.token)
        .multipart(form)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Uploads and expects success; the attachment.
async fn attach(
    app: &TestApp,
    who: &Person,
    ticket: &str,
    comment: Option<&str>,
    filename: &str,
    bytes: &[u8],
) -> Value {
    let (status, body) = upload(
        app,
        who,
        ticket,
        comment,
        filename,
        "application/octet-stream",
        bytes,
    )
    .await;
    assert!(
        status == StatusCode::OK && body["errors"].is_null(),
        "{status}: {body}"
    );
    body["data"]["addAttachment"]["attachment"].clone()
}

/// The first error of a refused upload.
async fn refused(
    app: &TestApp,
    who: &Person,
    ticket: &str,
    filename: &str,
    claimed: &str,
    bytes: &[u8],
) -> Value {
    let (_, body) = upload(app, who, ticket, None, filename, claimed, bytes).await;
    assert!(body["errors"].is_array(), "expected a refusal: {body}");
    body["errors"][0].clone()
}

async fn comment(
    app: &TestApp,
    who: &Person,
    ticket: &str,
    body: &str,
    visibility: &str,
) -> String {
    app.ok(
        who,
        "mutation($id: ID!, $b: String!, $v: Visibility!) { addComment(input: {ticketId: $id, body: $b, visibility: $v}) { comment { id } } }",
        json!({"id": ticket, "b": body, "v": visibility}),
    )
    .await["addComment"]["comment"]["id"]
        .as_str()
        .expect("comment id")
        .to_owned()
}

/// A requester's incident in a queue the agent works.
async fn desk(app: &TestApp) -> (Person, Person, String) {
    let admin = app.person("ada.admin", Role::Admin).await;
    let agent = app.person("alex.agent", Role::Agent).await;
    let rita = app.person("rita.requester", Role::Requester).await;
    let (_, queue) = app.team_with_queue(&admin, "Desk", &[&agent]).await;
    let ticket = app
        .incident(
            &rita,
            "Laptop will not boot",
            "MEDIUM",
            "HIGH",
            Some(&queue),
        )
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    (agent, rita, ticket)
}

async fn get(app: &TestApp, url: &str) -> reqwest::Response {
    app.client.get(app.url(url)).send().await.expect("sent")
}

/// The files in the test server's attachment store.
fn stored(app: &TestApp) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&app.db.dir().join("attachments"), &mut found);
    found
}

async fn a_requester_attaches_a_screenshot_and_downloads_it_through_a_signed_link(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (agent, rita, ticket) = desk(&app).await;
    let attachment = attach(
        &app,
        &rita,
        &ticket,
        None,
        "C:\\Users\\rita\\boot error.png",
        PNG,
    )
    .await;
    assert_eq!(attachment["filename"], "boot error.png");
    assert_eq!(
        attachment["contentType"], "image/png",
        "read from the content"
    );
    assert_eq!(attachment["size"], PNG.len());
    let digest: String = Sha256::digest(PNG)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(attachment["sha256"], digest);
    assert_eq!(attachment["visibility"], "PUBLIC");
    assert_eq!(attachment["uploadedBy"]["id"], rita.id);

    // The agent sees it on the ticket and downloads it.
    let seen = app.ok(&agent, ATTACHMENTS, json!({"id": ticket})).await;
    assert_eq!(seen["ticket"]["attachments"][0]["id"], attachment["id"]);
    let url = seen_url(&app, &agent, attachment["id"].as_str().expect("id")).await;
    let response = get(&app, &url).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"boot error.png\"; filename*=UTF-8''boot%20error.png"
    );
    assert_eq!(response.bytes().await.expect("body").as_ref(), PNG);

    // ATTACHMENT_ADDED is in the history, by the requester.
    let added = first_of(&history(&app, &agent, &ticket).await, "ATTACHMENT_ADDED");
    assert_eq!(added["actor"]["id"], rita.id);
    assert_eq!(added["visibility"], "PUBLIC");
    assert!(
        added["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["field"] == "filename" && c["to"] == "boot error.png")
    );
    assert!(
        added["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["field"] == "attachment" && c["to"] == attachment["id"]),
        "named by its global id: {added}"
    );
    assert_eq!(stored(&app).len(), 1);
}

/// Ticket `ticket`'s history as `who` reads it, oldest first.
async fn history(app: &TestApp, who: &Person, ticket: &str) -> Vec<Value> {
    app.ok(
        who,
        "query($t: ID!) { ticketEvents(ticketId: $t, first: 50) { nodes { kind visibility actor { id } changes { field to } } } }",
        json!({"t": ticket}),
    )
    .await["ticketEvents"]["nodes"]
        .as_array()
        .expect("events")
        .clone()
}

/// The first event of `kind` in `history`.
fn first_of(history: &[Value], kind: &str) -> Value {
    history
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {history:?}"))
        .clone()
}

/// A fresh download link for attachment `id`, as `who` sees it.
async fn seen_url(app: &TestApp, who: &Person, id: &str) -> String {
    app.ok(
        who,
        "query($id: ID!) { node(id: $id) { ... on Attachment { url } } }",
        json!({"id": id}),
    )
    .await["node"]["url"]
        .as_str()
        .expect("a url")
        .to_owned()
}

async fn size_count_and_type_limits_are_enforced_by_content(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[
            "--attachment-max-bytes",
            "1024",
            "--attachment-max-per-ticket",
            "2",
        ],
    )
    .await;
    let (_, rita, ticket) = desk(&app).await;
    let cases: [(&str, &str, Vec<u8>, &str); 5] = [
        (
            "big.txt",
            "text/plain",
            vec![b'a'; 2048],
            "at most 1024 bytes",
        ),
        ("empty.txt", "text/plain", Vec::new(), "empty"),
        (
            "pretty.png",
            "image/png",
            b"<html><script>alert(document.cookie)</script></html>".to_vec(),
            "not accepted",
        ),
        (
            "setup.pdf",
            "application/pdf",
            b"MZ\x90\0\x03\0\0\0\x04\0\0\0".to_vec(),
            "not accepted",
        ),
        (
            "logo.svg",
            "image/png",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(),
            "not accepted",
        ),
    ];
    for (name, claimed, bytes, why) in cases {
        let error = refused(&app, &rita, &ticket, name, claimed, &bytes).await;
        assert_eq!(
            error["extensions"]["code"], "BAD_USER_INPUT",
            "{name}: {error}"
        );
        if name != "big.txt" {
            // Too big is refused while the request is read, before any field.
            assert_eq!(error["extensions"]["field"], "file", "{name}");
        }
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains(why)),
            "{name}: {error}"
        );
    }
    attach(&app, &rita, &ticket, None, "a.png", PNG).await;
    attach(
        &app,
        &rita,
        &ticket,
        None,
        "notes.txt",
        b"fan noise, then nothing",
    )
    .await;
    let error = refused(&app, &rita, &ticket, "third.png", "image/png", PNG).await;
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 2 attachments")),
        "{error}"
    );
    assert_eq!(stored(&app).len(), 2, "nothing written for refused files");

    // Plain JSON with an Upload variable is refused too.
    let error = app
        .fails(
            &rita,
            ADD,
            json!({"input": {"ticketId": ticket, "file": "not a file"}}),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{error}");
}

async fn a_work_notes_attachment_never_reaches_the_requester(backend: Backend) {
    let app = spawn_app(backend).await;
    let (agent, rita, ticket) = desk(&app).await;
    let mut phone = WsClient::signed_in(&app, &rita).await;
    phone
        .subscribe(
            "mine",
            "subscription { myTicketUpdates { kind changes { field to } } }",
            json!({}),
        )
        .await;
    app.wait_for_subscriptions(1).await;

    let note = comment(&app, &agent, &ticket, "Disk shows SMART errors", "INTERNAL").await;
    let secret = attach(
        &app,
        &agent,
        &ticket,
        Some(&note),
        "smart.txt",
        b"reallocated sectors: 812",
    )
    .await;
    assert_eq!(secret["visibility"], "INTERNAL");
    assert_eq!(secret["comment"]["id"], note);
    let reply = comment(&app, &agent, &ticket, "We will replace the disk", "PUBLIC").await;
    let shared = attach(
        &app,
        &agent,
        &ticket,
        Some(&reply),
        "plan.txt",
        b"swap disk on Monday",
    )
    .await;
    assert_eq!(shared["visibility"], "PUBLIC");

    // The agent sees both; the requester only the public one, on every path.
    let staff = app.ok(&agent, ATTACHMENTS, json!({"id": ticket})).await;
    assert_eq!(
        staff["ticket"]["attachments"].as_array().map(Vec::len),
        Some(2)
    );
    let mine = app.ok(&rita, ATTACHMENTS, json!({"id": ticket})).await;
    let ids: Vec<&Value> = mine["ticket"]["attachments"]
        .as_array()
        .expect("attachments")
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(ids, [&shared["id"]]);
    let node = app
        .ok(
            &rita,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({"id": secret["id"]}),
        )
        .await;
    assert!(node["node"].is_null(), "{node}");
    let removed = app
        .fails(
            &rita,
            "mutation($id: ID!) { removeAttachment(input: {id: $id}) { attachment { id } } }",
            json!({"id": secret["id"]}),
        )
        .await;
    assert_eq!(removed["extensions"]["code"], "NOT_FOUND");
    let history = Value::Array(history(&app, &rita, &ticket).await).to_string();
    assert!(!history.contains("smart.txt"), "{history}");
    assert!(history.contains("plan.txt"), "{history}");
    // The phone gets the public reply and its file, never the note's.
    let mut got = Vec::new();
    while !got
        .iter()
        .any(|e: &Value| e.to_string().contains("plan.txt"))
    {
        got.push(phone.next_of("mine").await);
    }
    assert!(
        !got.iter().any(|e| e.to_string().contains("smart.txt")),
        "{got:?}"
    );
    // And the agent's link to the note's file works, for the agent.
    let url = seen_url(&app, &agent, secret["id"].as_str().expect("id")).await;
    assert_eq!(get(&app, &url).await.status(), StatusCode::OK);
}

async fn download_links_expire_and_tampered_ones_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, rita, ticket) = desk(&app).await;
    let attachment = attach(&app, &rita, &ticket, None, "a.png", PNG).await;
    let url = attachment["url"].as_str().expect("url").to_owned();
    assert_eq!(get(&app, &url).await.status(), StatusCode::OK);
    let (path, query) = url.split_once('?').expect("a query");
    let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let expires: i64 = params[0].1.parse().expect("expires");
    let signature = params[1].1;
    let id: i64 = path
        .split('/')
        .nth(2)
        .expect("id")
        .parse()
        .expect("numeric");

    let other_id = path.replacen(&format!("/{id}/"), &format!("/{}/", id + 1), 1);
    for tampered in [
        format!("{path}?expires={}&signature={signature}", expires + 3600),
        format!("{other_id}?expires={expires}&signature={signature}"),
        format!(
            "{path}?expires={expires}&signature={}",
            signature.replace(|c: char| c.is_ascii_digit(), "x")
        ),
        format!("{path}?expires={expires}"),
        path.to_owned(),
    ] {
        let response = get(&app, &tampered).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{tampered}");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    }

    // A link signed correctly but for a time already past: expired.
    let conn = app.db.connect().await;
    let key = sea_orm::ConnectionTrait::query_one_raw(
        &conn,
        sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT value FROM service_keys WHERE name = 'attachment-urls'",
        ),
    )
    .await
    .expect("query")
    .and_then(|row| row.try_get_by_index::<String>(0).ok())
    .expect("the signing key");
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key)
        .expect("base64");
    let past = chrono::Utc::now().timestamp() - 1;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("attachment:{id}:{past}").as_bytes());
    let stale =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let response = get(&app, &format!("{path}?expires={past}&signature={stale}")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{body}"
    );
}

async fn removing_an_attachment_keeps_its_record_and_deletes_the_file(backend: Backend) {
    let app = spawn_app(backend).await;
    let (agent, rita, ticket) = desk(&app).await;
    let other = app.person("otto.other", Role::Requester).await;
    let attachment = attach(&app, &rita, &ticket, None, "a.png", PNG).await;
    let id = attachment["id"].as_str().expect("id");
    let url = attachment["url"].as_str().expect("url").to_owned();
    let remove = "mutation($id: ID!) { removeAttachment(input: {id: $id}) { attachment { id removedAt removedBy { id } url } } }";
    let stranger = app.fails(&other, remove, json!({"id": id})).await;
    assert_eq!(stranger["extensions"]["code"], "NOT_FOUND");

    let removed =
        app.ok(&agent, remove, json!({"id": id})).await["removeAttachment"]["attachment"].clone();
    assert!(removed["removedAt"].is_string());
    assert_eq!(removed["removedBy"]["id"], agent.id);
    assert!(removed["url"].is_null());
    assert_eq!(get(&app, &url).await.status(), StatusCode::NOT_FOUND);
    assert!(stored(&app).is_empty(), "the file is gone");
    let listed = app.ok(&rita, ATTACHMENTS, json!({"id": ticket})).await;
    assert_eq!(listed["ticket"]["attachments"], json!([]));
    // The record: the node still answers, and the history says who.
    let record = app
        .ok(
            &rita,
            "query($id: ID!) { node(id: $id) { ... on Attachment { filename removedAt } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(record["node"]["filename"], "a.png");
    let removal = first_of(&history(&app, &rita, &ticket).await, "ATTACHMENT_REMOVED");
    assert_eq!(removal["actor"]["id"], agent.id);
    let again = app.fails(&agent, remove, json!({"id": id})).await;
    assert_eq!(again["extensions"]["code"], "NOT_FOUND");
}

async fn a_failed_upload_leaves_no_file_and_the_sweeper_removes_strays(backend: Backend) {
    let app = spawn_app_with(backend, &["--attachment-max-per-ticket", "1"]).await;
    let (_, rita, ticket) = desk(&app).await;
    // Two at once for the last place: one wins, the other's file is deleted
    // whether it lost before writing or in its transaction.
    let (a, b) = tokio::join!(
        upload(&app, &rita, &ticket, None, "a.png", "image/png", PNG),
        upload(&app, &rita, &ticket, None, "b.txt", "text/plain", b"second")
    );
    let won = [&a.1, &b.1]
        .iter()
        .filter(|body| body["errors"].is_null())
        .count();
    assert_eq!(won, 1, "{a:?} {b:?}");
    assert_eq!(stored(&app).len(), 1, "no file without its row");

    // A stray file (a crash between writing and committing) older than an
    // hour is swept; a fresh one is left for its upload to finish.
    let dir = app.db.dir().join("attachments").join("attachments");
    let stray = dir.join("stray0000");
    std::fs::write(&stray, b"left by a crash").expect("write");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&stray)
        .and_then(|f| f.set_modified(old))
        .expect("age the file");
    let fresh = dir.join("fresh0000");
    std::fs::write(&fresh, b"an upload on its way").expect("write");
    let settings = crate::helpers::settings(&[
        "--database-url",
        &app.db.url,
        "--attachment-store",
        &app.db.dir().join("attachments").display().to_string(),
    ]);
    let db = itsm::db::Db::connect(&settings.database).await.expect("db");
    let files = itsm::attachments::Files::open(&settings.attachments, &settings.database, &db)
        .expect("files");
    let swept = itsm::attachments::service::sweep(&db, &files)
        .await
        .expect("sweep");
    assert_eq!(swept, 1);
    assert!(!stray.exists() && fresh.exists());
    assert_eq!(
        stored(&app).len(),
        2,
        "the live file and the fresh one stay"
    );
}

/// The same service over an S3-compatible bucket (moto, started per test).
mod s3 {
    use super::*;
    use crate::helpers::Moto;

    crate::on_both_backends!(
        ignore = "needs moto_server (ITSM_TEST_MOTO=path; .ci/moto.sh installs moto from PyPI)";
        files_live_in_the_bucket_and_leave_it_with_their_attachment,
        a_missing_bucket_refuses_the_upload_and_writes_nothing,
    );

    fn bucket() -> String {
        format!("itsm-{}", uuid::Uuid::new_v4().simple())
    }

    async fn files_live_in_the_bucket_and_leave_it_with_their_attachment(backend: Backend) {
        let moto = Moto::start().await;
        let bucket = bucket();
        moto.create_bucket(&bucket).await;
        let store = moto.store_url(&bucket, "desk/files");
        let app = spawn_app_with(backend, &["--attachment-store", &store]).await;
        let (agent, rita, ticket) = desk(&app).await;

        let attachment = attach(&app, &rita, &ticket, None, "boot.png", PNG).await;
        let keys = moto.keys(&bucket).await;
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(
            keys[0].starts_with("desk/files/attachments/"),
            "under the URL's prefix: {keys:?}"
        );
        assert!(stored(&app).is_empty(), "nothing on the local disk");

        // Downloaded through the service, from the bucket.
        let id = attachment["id"].as_str().expect("id");
        let response = get(&app, &seen_url(&app, &agent, id).await).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "image/png");
        assert_eq!(response.bytes().await.expect("body").as_ref(), PNG);

        // The sweeper lists the bucket: a stray under the prefix goes, the
        // live file and anything outside the prefix stay.
        moto.put(
            &bucket,
            "desk/files/attachments/stray0000",
            b"left by a crash",
        )
        .await;
        moto.put(&bucket, "elsewhere/keep", b"not ours").await;
        let settings = crate::helpers::settings(&[
            "--database-url",
            &app.db.url,
            "--attachment-store",
            &store,
        ]);
        let db = itsm::db::Db::connect(&settings.database).await.expect("db");
        let files = itsm::attachments::Files::open(&settings.attachments, &settings.database, &db)
            .expect("files");
        let later = chrono::Utc::now() + chrono::Duration::minutes(1);
        let swept = itsm::attachments::service::sweep_written_before(&db, &files, later)
            .await
            .expect("sweep");
        assert_eq!(swept, 1);
        assert_eq!(
            moto.keys(&bucket).await,
            vec![keys[0].clone(), "elsewhere/keep".to_owned()]
        );

        // Removing the attachment deletes its object.
        app.ok(
            &agent,
            "mutation($id: ID!) { removeAttachment(input: {id: $id}) { attachment { id } } }",
            json!({"id": id}),
        )
        .await;
        assert_eq!(moto.keys(&bucket).await, vec!["elsewhere/keep".to_owned()]);
    }

    async fn a_missing_bucket_refuses_the_upload_and_writes_nothing(backend: Backend) {
        let moto = Moto::start().await;
        let store = moto.store_url(&bucket(), "files");
        let app = spawn_app_with(backend, &["--attachment-store", &store]).await;
        let (agent, rita, ticket) = desk(&app).await;
        let (_, body) = upload(&app, &rita, &ticket, None, "a.png", "image/png", PNG).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "INTERNAL",
            "{body}"
        );
        assert!(body["data"]["addAttachment"].is_null(), "{body}");
        let listed = app.ok(&agent, ATTACHMENTS, json!({"id": ticket})).await;
        assert_eq!(listed["ticket"]["attachments"], json!([]));
        let history = history(&app, &agent, &ticket).await;
        assert!(
            history.iter().all(|e| e["kind"] != "ATTACHMENT_ADDED"),
            "no event for a file that was not stored: {history:?}"
        );
    }
}

#[tokio::test]
async fn a_store_that_is_not_a_directory_stops_start_up_with_a_reason() {
    let db = crate::helpers::TestDatabase::create(Backend::Sqlite).await;
    let settings = crate::helpers::settings(&[
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
        "--jwt-secret",
        crate::helpers::TEST_SECRET,
        "--attachment-store",
        "gs://itsm-files",
    ]);
    let error = match itsm::startup::Application::build(settings).await {
        Ok(_) => panic!("started with an object store it cannot use"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("is not a directory or an S3 bucket"),
        "{error}"
    );
}

/// An expense claim: a required PDF receipt, up to two photos, a note.
async fn expense_item(app: &TestApp) -> (Person, Value) {
    let admin = app.person("ada.admin", Role::Admin).await;
    let (service, queue) = crate::catalog::live_service(app, &admin, "EXPENSES", "OPERATION").await;
    let form = json!([
        {"key": "receipt", "label": "Receipt", "type": "FILE", "required": true, "options": ["application/pdf"]},
        {"key": "photos", "label": "Photos", "type": "FILE", "max": 2},
        {"key": "note", "label": "Note", "type": "TEXT"}
    ]);
    let item = crate::catalog::item(
        app,
        &admin,
        &service,
        &queue,
        "expense",
        json!({"form": form}),
    )
    .await;
    assert_eq!(item["form"][0]["type"], "FILE");
    assert_eq!(item["form"][1]["max"], 2.0);
    (admin, item)
}

const SUBMIT_FILES: &str = "mutation($input: SubmitServiceRequestInput!) { submitServiceRequest(input: $input) { ticket { id description requestForm { field { key type } value } attachments { id filename contentType formField url } } } }";

/// Submits `item` with `answers` and `files` (field key, file name, bytes).
async fn submit_with_files(
    app: &TestApp,
    who: &Person,
    item: &Value,
    answers: Value,
    key: Option<&str>,
    files: &[(&str, &str, &[u8])],
) -> Value {
    let sent: Vec<Value> = files
        .iter()
        .map(|(field, ..)| json!({"field": field, "file": null}))
        .collect();
    let paths: Vec<String> = (0..files.len())
        .map(|index| format!("variables.input.files.{index}.file"))
        .collect();
    let parts: Vec<(&str, &str, &str, &[u8])> = files
        .iter()
        .zip(&paths)
        .map(|((_, filename, bytes), path)| {
            (path.as_str(), *filename, "application/octet-stream", *bytes)
        })
        .collect();
    let (status, body) = multipart(
        app,
        who,
        SUBMIT_FILES,
        json!({"input": {"catalogItemId": item["id"], "answers": answers, "idempotencyKey": key, "files": sent}}),
        &parts,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn a_request_forms_files_become_the_requests_attachments(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, item) = expense_item(&app).await;
    let rita = app.person("rita.requester", Role::Requester).await;
    let files: [(&str, &str, &[u8]); 3] = [
        ("receipt", "taxi.pdf", PDF),
        ("photos", "meter.png", PNG),
        ("photos", "C:\\fakepath\\car.txt", b"plate: B-XY 123"),
    ];
    // Photos take any type the service accepts; text is one.
    let body = submit_with_files(
        &app,
        &rita,
        &item,
        json!({"note": "airport"}),
        Some("claim-1"),
        &files,
    )
    .await;
    assert!(body["errors"].is_null(), "{body}");
    let ticket = body["data"]["submitServiceRequest"]["ticket"].clone();
    let attachments = ticket["attachments"]
        .as_array()
        .expect("attachments")
        .clone();
    let described: Vec<(&str, &str, &str)> = attachments
        .iter()
        .map(|a| {
            (
                a["filename"].as_str().unwrap_or_default(),
                a["contentType"].as_str().unwrap_or_default(),
                a["formField"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        described,
        vec![
            ("taxi.pdf", "application/pdf", "receipt"),
            ("meter.png", "image/png", "photos"),
            ("car.txt", "text/plain", "photos"),
        ]
    );
    let answers = ticket["requestForm"].as_array().expect("answers");
    let receipt = answers
        .iter()
        .find(|a| a["field"]["key"] == "receipt")
        .expect("receipt");
    assert_eq!(receipt["field"]["type"], "FILE");
    let digest: String = Sha256::digest(PDF)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        receipt["value"],
        json!([{"filename": "taxi.pdf", "contentType": "application/pdf", "size": PDF.len(), "sha256": digest}])
    );
    let description = ticket["description"].as_str().expect("description");
    assert!(description.contains("Receipt: taxi.pdf"), "{description}");
    assert!(
        description.contains("Photos: meter.png, car.txt"),
        "{description}"
    );
    assert_eq!(stored(&app).len(), 3);

    // The requester downloads them; the history has one ATTACHMENT_ADDED each.
    let response = get(&app, attachments[0]["url"].as_str().expect("url")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.expect("body").as_ref(), PDF);
    let history = history(&app, &admin, ticket["id"].as_str().expect("id")).await;
    let kinds: Vec<&str> = history.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "ATTACHMENT_ADDED").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(kinds.first(), Some(&"CREATED"), "{kinds:?}");

    // A retry with the same files is the same request, and stores nothing more.
    let again = submit_with_files(
        &app,
        &rita,
        &item,
        json!({"note": "airport"}),
        Some("claim-1"),
        &files,
    )
    .await;
    assert_eq!(
        again["data"]["submitServiceRequest"]["ticket"]["id"], ticket["id"],
        "{again}"
    );
    assert_eq!(stored(&app).len(), 3, "the retry's copies are deleted");
    // The same key with another receipt is a different request.
    let other = submit_with_files(
        &app,
        &rita,
        &item,
        json!({"note": "airport"}),
        Some("claim-1"),
        &[("receipt", "hotel.pdf", b"%PDF-1.7\nanother receipt\n")],
    )
    .await;
    assert_eq!(
        other["errors"][0]["extensions"]["code"], "CONFLICT",
        "{other}"
    );
    assert_eq!(stored(&app).len(), 3);
}

async fn every_problem_with_a_requests_files_is_reported_and_nothing_is_written(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, item) = expense_item(&app).await;
    let rita = app.person("rita.requester", Role::Requester).await;
    let body = submit_with_files(
        &app,
        &rita,
        &item,
        json!({"receipt": "see attached", "note": "lunch"}),
        None,
        &[
            ("receipt", "receipt.png", PNG), // the field takes PDFs only
            ("photos", "a.png", PNG),
            ("photos", "b.png", PNG),
            ("photos", "c.png", PNG), // one photo too many
            ("colour", "x.png", PNG), // no such field
            ("note", "n.png", PNG),   // not a FILE field
            (
                "photos",
                "page.html",
                b"<html><script>alert(1)</script></html>",
            ), // never accepted
        ],
    )
    .await;
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "{e}");
            e["extensions"]["field"].as_str().unwrap_or_default()
        })
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        vec![
            "answers.photos",
            "answers.receipt",
            "files[0].file",
            "files[4].field",
            "files[5].field",
            "files[6].file",
        ],
        "{body}"
    );
    // A required FILE field without a file.
    let missing = submit_with_files(&app, &rita, &item, json!({}), None, &[]).await;
    assert_eq!(
        missing["errors"][0]["extensions"]["field"], "answers.receipt",
        "{missing}"
    );
    // Nothing was written: no ticket, no file.
    let tickets = app
        .ok(&admin, "{ tickets(first: 5) { totalCount } }", json!({}))
        .await;
    assert_eq!(tickets["tickets"]["totalCount"], 0);
    assert!(stored(&app).is_empty());
}
