//! The `mongo` driver: databases, users and role grants through the official `mongodb` crate.
//!
//! - `database`: MongoDB makes a database on its first collection, so creating one inserts the
//!   ownership mark as the one document of a marker collection, [`MARKER_COLLECTION`]. A database
//!   with collections but no marker is unowned (adopted with `adopt: true`, which adds the
//!   marker); deleting drops the database, only when the marker is ours.
//! - `user`: `createUser` / `updateUser` / `dropUser` in `authDatabase` (`admin` by default), with
//!   the declared `roles` (exact). The ownership mark is a document `{_id: "user:NAME", mark}` of
//!   the marker collection of the authentication database, not the user's `customData`, which
//!   FerretDB 1.24 refuses ("support for field customData ... is not implemented yet"). The password
//!   is sent in the command body only (use TLS); rotation is judged from `passwordVersion`, as on
//!   PostgreSQL ([`crate::password`]).
//! - `grant`: `grantRolesToUser` / `revokeRolesFromUser` of `roles` to the user `role` (additive:
//!   roles the user has besides these are left alone); ownership is the user's mark.
//!
//! Every command is built by a pure function ([`commands`]) and sent with `runCommand`; names
//! and values are BSON strings in the command document, never spliced into anything.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{ClientOptions, Credential, ServerAddress, Tls, TlsOptions};
use orkestra_provider::plan::creation_changes;
use orkestra_provider::{
    Action, Blocked, Declaration, FieldChange, ManagementPolicy, Observation, Outcome, Plan,
    PlanValue, ProviderError, SecretValue, State,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::connection::{Endpoint, SslMode, CONNECT_TIMEOUT};
use crate::error::DatabaseError;
use crate::ownership::{
    blocked_outcome, delete_guard, mark, observe_guard, plan_from_changes, tags_of,
};
use crate::postgres::role::PasswordState;
use crate::schema::{mongo_roles, MongoRole};

/// The collection that makes a database exist and holds its ownership mark.
pub const MARKER_COLLECTION: &str = "orkestra_ownership";
/// The `_id` of the mark's document.
const MARKER_ID: &str = "ownership";
/// The `_id` of a user's mark in its authentication database's marker collection.
fn user_marker_id(user: &str) -> String {
    format!("user:{user}")
}

/// Open MongoDB connections, by endpoint.
#[derive(Default)]
pub struct MongoPool {
    clients: Mutex<HashMap<String, Conn>>,
}

impl fmt::Debug for MongoPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MongoPool")
    }
}

/// What [`crate::scram`] needs to authenticate a connection by hand.
#[derive(Clone)]
struct ManualAuth {
    user: String,
    password: SecretValue,
    source: String,
}

/// A client, authenticated by the driver, or (FerretDB 1.x) a one-connection client this crate
/// authenticates itself, again whenever the server says the connection is not authenticated.
#[derive(Clone)]
struct Conn {
    client: mongodb::Client,
    manual: Option<ManualAuth>,
}

/// The driver's error when the server leaves SCRAM's last round to the client (see [`crate::scram`]).
const SCRAM_NOT_DONE: &str = "expected SCRAM authentication to have completed";

impl Conn {
    /// Run `cmd` in database `db`; `what` names it in errors.
    async fn run(&self, db: &str, what: &str, cmd: Document) -> Result<Document, ProviderError> {
        match self.client.database(db).run_command(cmd.clone()).await {
            // Unauthorized: the one connection was replaced (a network error): authenticate it.
            Err(e) if self.manual.is_some() && command_code(&e) == Some(13) => {
                self.authenticate().await?;
                self.client
                    .database(db)
                    .run_command(cmd)
                    .await
                    .map_err(mongo_err(what))
            }
            r => r.map_err(mongo_err(what)),
        }
    }

    async fn authenticate(&self) -> Result<(), ProviderError> {
        let Some(m) = &self.manual else {
            return Ok(());
        };
        let mut conversation = crate::scram::Conversation::new(&m.user, m.password.expose())?;
        let db = self.client.database(&m.source);
        let first = db
            .run_command(conversation.start())
            .await
            .map_err(mongo_err("saslStart"))?;
        let last = db
            .run_command(conversation.proof(&first)?)
            .await
            .map_err(mongo_err("saslContinue"))?;
        if let Some(empty) = conversation.verify(&last)? {
            db.run_command(empty)
                .await
                .map_err(mongo_err("saslContinue"))?;
        }
        Ok(())
    }
}

fn options(ep: &Endpoint, credential: Option<Credential>, max_pool: Option<u32>) -> ClientOptions {
    let tls = match ep.sslmode {
        SslMode::Disable => None,
        mode => Some(Tls::Enabled(
            TlsOptions::builder()
                .allow_invalid_certificates(mode != SslMode::VerifyFull)
                .build(),
        )),
    };
    ClientOptions::builder()
        .hosts(vec![ServerAddress::Tcp {
            host: ep.host.clone(),
            port: Some(ep.port),
        }])
        .credential(credential)
        .tls(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .server_selection_timeout(CONNECT_TIMEOUT)
        .max_pool_size(max_pool)
        .app_name("orkestra-provider-database".to_string())
        .build()
}

impl MongoPool {
    async fn get(&self, ep: &Endpoint) -> Result<Conn, ProviderError> {
        let digest: String = Sha256::digest(ep.password.expose())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = format!(
            "{}\0{}\0{}\0{:?}\0{:?}\0{digest}",
            ep.host, ep.port, ep.username, ep.database, ep.sslmode
        );
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let password = ep.password.expose_str().ok_or_else(|| {
            ProviderError::invalid_field("connection", "the admin password is not UTF-8")
        })?;
        let source = ep.database.clone().unwrap_or_else(|| "admin".into());
        let target = format!("connect to {} as {:?}", ep.target(), ep.username);
        let credential = Credential::builder()
            .username(ep.username.clone())
            .password(password.to_string())
            .source(source.clone())
            .build();
        let client = mongodb::Client::with_options(options(ep, Some(credential), None))
            .map_err(|e| DatabaseError::mongo(target.clone(), e))?;
        // The first command opens a connection, which the driver authenticates.
        let conn = match client.database(&source).run_command(doc! {"ping": 1}).await {
            Ok(_) => Conn {
                client,
                manual: None,
            },
            Err(e) if e.to_string().contains(SCRAM_NOT_DONE) => {
                tracing::debug!(
                    "the server leaves SCRAM's last round to the client: authenticating by hand"
                );
                let client = mongodb::Client::with_options(options(ep, None, Some(1)))
                    .map_err(|e| DatabaseError::mongo(target.clone(), e))?;
                let conn = Conn {
                    client,
                    manual: Some(ManualAuth {
                        user: ep.username.clone(),
                        password: ep.password.clone(),
                        source,
                    }),
                };
                conn.authenticate().await?;
                conn
            }
            Err(e) => return Err(DatabaseError::mongo(target, e).into()),
        };
        clients.insert(key, conn.clone());
        Ok(conn)
    }
}

/// The command documents this driver sends, built without I/O (unit-tested on their own).
pub mod commands {
    use super::*;

    /// `{role, db}` documents.
    pub fn roles(roles: &[MongoRole]) -> Vec<Bson> {
        roles
            .iter()
            .map(|r| Bson::Document(doc! {"role": r.role.as_str(), "db": r.db.as_str()}))
            .collect()
    }

    /// `usersInfo` of one user.
    pub fn users_info(user: &str, db: &str) -> Document {
        doc! {"usersInfo": {"user": user, "db": db}}
    }

    /// `createUser` with its password and roles.
    pub fn create_user(user: &str, password: &str, roles: &[MongoRole]) -> Document {
        doc! {
            "createUser": user,
            "pwd": password,
            "roles": super::commands::roles(roles),
        }
    }

    /// `updateUser` of what changed.
    pub fn update_user(
        user: &str,
        password: Option<&str>,
        roles: Option<&[MongoRole]>,
    ) -> Document {
        let mut d = doc! {"updateUser": user};
        if let Some(p) = password {
            d.insert("pwd", p);
        }
        if let Some(r) = roles {
            d.insert("roles", super::commands::roles(r));
        }
        d
    }

    /// `dropUser`.
    pub fn drop_user(user: &str) -> Document {
        doc! {"dropUser": user}
    }

    /// `grantRolesToUser`.
    pub fn grant_roles(user: &str, roles: &[MongoRole]) -> Document {
        doc! {"grantRolesToUser": user, "roles": super::commands::roles(roles)}
    }

    /// `revokeRolesFromUser`.
    pub fn revoke_roles(user: &str, roles: &[MongoRole]) -> Document {
        doc! {"revokeRolesFromUser": user, "roles": super::commands::roles(roles)}
    }

    /// A marker document: `_id` names what it marks (a database's own `ownership`, a user's
    /// `user:NAME`).
    pub fn marker(id: &str, mark: &str) -> Document {
        doc! {"_id": id, "mark": mark}
    }

    /// `update` writing (or creating, and with it the database) a marker document.
    pub fn upsert_marker(id: &str, mark: &str) -> Document {
        doc! {
            "update": MARKER_COLLECTION,
            "updates": [{"q": {"_id": id}, "u": marker(id, mark), "upsert": true}],
        }
    }

    /// `find` of a marker document.
    pub fn find_marker(id: &str) -> Document {
        doc! {"find": MARKER_COLLECTION, "filter": {"_id": id}, "limit": 1}
    }

    /// `delete` of a marker document.
    pub fn delete_marker(id: &str) -> Document {
        doc! {"delete": MARKER_COLLECTION, "deletes": [{"q": {"_id": id}, "limit": 1}]}
    }

    /// `listCollections`, names only, one is enough to know the database exists.
    pub fn list_collections() -> Document {
        doc! {"listCollections": 1, "nameOnly": true, "cursor": {"batchSize": 1}}
    }
}

fn mongo_err(what: &str) -> impl FnOnce(mongodb::error::Error) -> ProviderError + '_ {
    move |e| DatabaseError::mongo(what, e).into()
}

/// The documents of a cursor reply's first batch.
fn first_batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .ok()
        .and_then(|c| c.get_array("firstBatch").ok())
        .map(|b| b.iter().filter_map(|d| d.as_document().cloned()).collect())
        .unwrap_or_default()
}

fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

fn id(ep: &Endpoint, kind: &str, name: &str) -> String {
    format!("mongodb://{}/{kind}/{name}", ep.target())
}

fn location(ep: &Endpoint) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("host".into(), json!(ep.host));
    m.insert("port".into(), json!(ep.port));
    m
}

fn auth_db(decl: &Declaration) -> &str {
    decl.str("authDatabase").unwrap_or("admin")
}

/// The grantee of a grant, the user itself otherwise.
fn user_name(decl: &Declaration) -> &str {
    if decl.kind == "grant" {
        decl.str("role").unwrap_or_default()
    } else {
        &decl.name
    }
}

fn roles_json(roles: &[MongoRole]) -> Value {
    json!(roles
        .iter()
        .map(|r| json!({"role": r.role, "db": r.db}))
        .collect::<Vec<_>>())
}

fn roles_from_json(v: Option<&Value>) -> Vec<MongoRole> {
    let mut out: Vec<MongoRole> = v
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    Some(MongoRole {
                        role: r.get("role")?.as_str()?.to_string(),
                        db: r.get("db")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The mark stored under `id` in database `db`'s marker collection.
async fn read_mark(conn: &Conn, db: &str, id: &str) -> Result<Option<String>, ProviderError> {
    let found = conn.run(db, "find", commands::find_marker(id)).await?;
    Ok(first_batch(&found)
        .first()
        .and_then(|d| d.get_str("mark").ok().map(str::to_string)))
}

/// Write the mark under `id` in database `db`'s marker collection.
async fn write_mark(conn: &Conn, db: &str, id: &str, mark: &str) -> Result<(), ProviderError> {
    let out = conn
        .run(db, "update", commands::upsert_marker(id, mark))
        .await?;
    match out.get_array("writeErrors") {
        Ok(errors) => Err(ProviderError::api(
            "update",
            None,
            format!("writing the ownership marker failed: {errors:?}"),
            true,
        )),
        Err(_) => Ok(()),
    }
}

/// Read a user (`usersInfo`): its roles and its mark.
async fn read_user(
    conn: &Conn,
    user: &str,
    db: &str,
) -> Result<Option<(Vec<MongoRole>, Option<String>)>, ProviderError> {
    let out = conn
        .run(db, "usersInfo", commands::users_info(user, db))
        .await?;
    let Ok(users) = out.get_array("users") else {
        return Ok(None);
    };
    let Some(Bson::Document(u)) = users.first() else {
        return Ok(None);
    };
    let mut roles: Vec<MongoRole> = u
        .get_array("roles")
        .map(|rs| {
            rs.iter()
                .filter_map(|r| match r {
                    Bson::Document(d) => Some(MongoRole {
                        role: d.get_str("role").ok()?.to_string(),
                        db: d.get_str("db").ok()?.to_string(),
                    }),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    Ok(Some((
        roles,
        read_mark(conn, db, &user_marker_id(user)).await?,
    )))
}

/// Observe a mongo declaration.
pub(crate) async fn observe(
    pool: &MongoPool,
    ep: &Endpoint,
    decl: &Declaration,
    password: &PasswordState,
) -> Result<Observation, ProviderError> {
    let client = pool.get(ep).await?;
    let mut obs = Observation {
        id: Some(id(ep, &decl.kind, &decl.name)),
        outputs: location(ep),
        ..Observation::default()
    };
    match decl.kind.as_str() {
        "database" => {
            let listed = client
                .run(&decl.name, "listCollections", commands::list_collections())
                .await?;
            if first_batch(&listed).is_empty() {
                return Ok(Observation::absent());
            }
            obs.exists = true;
            let mark = read_mark(&client, &decl.name, MARKER_ID).await?;
            obs.tags = tags_of(mark.as_deref());
            obs.fields.insert("name".into(), json!(decl.name));
            obs.outputs.insert("name".into(), json!(decl.name));
        }
        "user" | "grant" => {
            let user = user_name(decl);
            let Some((roles, mark)) = read_user(&client, user, auth_db(decl)).await? else {
                return Ok(Observation::absent());
            };
            obs.tags = tags_of(mark.as_deref());
            obs.fields.insert("roles".into(), roles_json(&roles));
            if decl.kind == "user" {
                obs.exists = true;
                obs.fields.insert("name".into(), json!(decl.name));
                obs.outputs.insert("name".into(), json!(decl.name));
                if let Some(desired) = &password.desired {
                    obs.fields.insert(
                        "passwordInSync".into(),
                        json!(password.recorded.as_ref() == Some(desired)),
                    );
                }
                if let Some(v) = &password.recorded {
                    obs.outputs.insert("passwordVersion".into(), json!(v));
                }
            } else {
                let want = mongo_roles(decl).unwrap_or_default();
                obs.exists = want.iter().any(|r| roles.contains(r));
                obs.outputs.insert("role".into(), json!(user));
                obs.outputs
                    .insert("privileges".into(), json!(role_list(&want)));
            }
        }
        _ => return Err(ProviderError::new(orkestra_provider::Cause::UnknownKind)),
    }
    obs.ownership = decl.owner.judge(&obs.tags);
    Ok(obs)
}

fn role_list(roles: &[MongoRole]) -> String {
    roles
        .iter()
        .map(|r| format!("{}@{}", r.role, r.db))
        .collect::<Vec<_>>()
        .join(",")
}

/// The pure diff.
pub(crate) fn diff(decl: &Declaration, obs: &Observation) -> Plan {
    let observe_only = decl.management_policy == ManagementPolicy::Observe;
    let want = mongo_roles(decl).unwrap_or_default();
    let have = roles_from_json(obs.fields.get("roles"));
    if decl.kind == "grant" {
        // The grantee exists (the id is set): its mark decides, granted anything yet or not.
        if obs.id.is_some() {
            if let Some(blocked) = observe_guard(decl, obs) {
                let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Noop);
                plan.blocked = Some(blocked);
                return plan;
            }
        }
        let missing: Vec<MongoRole> = want.iter().filter(|r| !have.contains(r)).cloned().collect();
        let action = match (obs.exists, missing.is_empty()) {
            (_, true) => Action::Noop,
            (false, false) => Action::Create,
            (true, false) => Action::Update,
        };
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, action);
        if !missing.is_empty() {
            plan.changes.push(FieldChange::new(
                "roles",
                PlanValue::Known(roles_json(&have)),
                PlanValue::Known(roles_json(
                    &have
                        .iter()
                        .chain(&missing)
                        .cloned()
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>(),
                )),
            ));
        }
        if observe_only && action != Action::Noop {
            plan.blocked = Some(Blocked::ObserveOnly);
        }
        return plan;
    }
    if !obs.exists {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Create);
        let mut fields = decl.fields.clone();
        fields.remove("connection");
        plan.changes = creation_changes(&fields, &["passwordSecret"]);
        plan.changes.push(FieldChange::new(
            if decl.kind == "user" {
                "mark"
            } else {
                "orkestra_ownership"
            },
            PlanValue::Absent,
            PlanValue::Known(json!(mark(&decl.owner))),
        ));
        if observe_only {
            plan.blocked = Some(Blocked::ObserveOnly);
        }
        return plan;
    }
    if let Some(blocked) = observe_guard(decl, obs) {
        let mut plan = Plan::new(&decl.provider, &decl.kind, &decl.name, Action::Noop);
        plan.blocked = Some(blocked);
        return plan;
    }
    let mut changes = Vec::new();
    if decl.kind == "user" {
        if decl.fields.contains_key("roles") && have != want {
            changes.push(FieldChange::new(
                "roles",
                PlanValue::Known(roles_json(&have)),
                PlanValue::Known(roles_json(&want)),
            ));
        }
        if !observe_only
            && decl.fields.contains_key("passwordSecret")
            && obs.fields.get("passwordInSync") == Some(&json!(false))
        {
            let before = if obs.outputs.contains_key("passwordVersion") {
                PlanValue::Sensitive
            } else {
                PlanValue::Absent
            };
            changes.push(FieldChange::new("password", before, PlanValue::Sensitive));
        }
    }
    if !observe_only && obs.tags != decl.owner.tags() {
        changes.push(FieldChange::new(
            "mark",
            PlanValue::Absent,
            PlanValue::Known(json!(mark(&decl.owner))),
        ));
    }
    plan_from_changes(decl, obs, changes)
}

/// Carry out `plan`.
pub(crate) async fn apply(
    pool: &MongoPool,
    ep: &Endpoint,
    decl: &Declaration,
    obs: &Observation,
    plan: &Plan,
    password: &PasswordState,
) -> Result<Outcome, ProviderError> {
    if let Some(b) = &plan.blocked {
        return Ok(blocked_outcome(obs, plan, b));
    }
    if matches!(plan.action, Action::Replace | Action::Delete) {
        return Ok(blocked_outcome(obs, plan, &Blocked::ReplacementRequired));
    }
    let mut outputs = if obs.outputs.is_empty() {
        location(ep)
    } else {
        obs.outputs.clone()
    };
    if plan.action == Action::Noop {
        return Ok(Outcome::new(State::Ready)
            .id(Some(id(ep, &decl.kind, &decl.name)))
            .outputs(outputs));
    }
    let client = pool.get(ep).await?;
    let changed = |p: &str| plan.changes.iter().any(|c| c.path == p);
    let the_mark = mark(&decl.owner);
    let mut n = 0;
    match decl.kind.as_str() {
        "database" => {
            // Creating and adopting alike: (re)write the marker, which also makes the database.
            write_mark(&client, &decl.name, MARKER_ID, &the_mark).await?;
            n += 1;
            outputs.insert("name".into(), json!(decl.name));
        }
        "user" => {
            let db = auth_db(decl);
            let roles = mongo_roles(decl)?;
            let pw = password
                .password
                .as_ref()
                .and_then(|p| p.expose_str().map(str::to_string));
            if plan.action == Action::Create {
                let pw = pw.ok_or_else(|| {
                    ProviderError::invalid_field(
                        "passwordSecret",
                        "is required to create a MongoDB user",
                    )
                })?;
                client
                    .run(
                        db,
                        "createUser",
                        commands::create_user(&decl.name, &pw, &roles),
                    )
                    .await?;
                n += 1;
                let marker = user_marker_id(&decl.name);
                if let Err(e) = write_mark(&client, db, &marker, &the_mark).await {
                    // Unmarked, it would look like someone else's next cycle: drop it again.
                    let dropped = client
                        .run(db, "dropUser", commands::drop_user(&decl.name))
                        .await
                        .is_ok();
                    tracing::warn!(dropped, error = %e, "marking a new user failed");
                    return Err(e);
                }
                n += 1;
                if let Some(v) = &password.desired {
                    outputs.insert("passwordVersion".into(), json!(v));
                }
            } else {
                let new_pw = if changed("password") { pw } else { None };
                if changed("password") && new_pw.is_none() {
                    return Err(ProviderError::invalid_field(
                        "passwordSecret",
                        "the password could not be read as UTF-8",
                    ));
                }
                if changed("mark") {
                    write_mark(&client, db, &user_marker_id(&decl.name), &the_mark).await?;
                    n += 1;
                }
                if changed("roles") || new_pw.is_some() {
                    let cmd = commands::update_user(
                        &decl.name,
                        new_pw.as_deref(),
                        changed("roles").then_some(roles.as_slice()),
                    );
                    client.run(db, "updateUser", cmd).await?;
                    n += 1;
                }
                if new_pw.is_some() {
                    if let Some(v) = &password.desired {
                        outputs.insert("passwordVersion".into(), json!(v));
                    }
                }
            }
            outputs.insert("name".into(), json!(decl.name));
        }
        "grant" => {
            if obs.id.is_none() {
                return Err(ProviderError::api(
                    "grantRolesToUser",
                    Some("UserNotFound".into()),
                    format!(
                        "user {:?} does not exist in {:?}",
                        user_name(decl),
                        auth_db(decl)
                    ),
                    true,
                ));
            }
            let want = mongo_roles(decl)?;
            let have = roles_from_json(obs.fields.get("roles"));
            let missing: Vec<MongoRole> =
                want.iter().filter(|r| !have.contains(r)).cloned().collect();
            client
                .run(
                    auth_db(decl),
                    "grantRolesToUser",
                    commands::grant_roles(user_name(decl), &missing),
                )
                .await?;
            n += 1;
        }
        _ => return Err(ProviderError::new(orkestra_provider::Cause::UnknownKind)),
    }
    Ok(Outcome::new(State::Ready)
        .id(Some(id(ep, &decl.kind, &decl.name)))
        .outputs(outputs)
        .mutations(n))
}

/// Delete (or orphan) what the declaration made.
pub(crate) async fn delete(
    pool: &MongoPool,
    ep: &Endpoint,
    decl: &Declaration,
    obs: &Observation,
) -> Result<Outcome, ProviderError> {
    if let Some(outcome) = delete_guard(decl, obs) {
        return Ok(outcome);
    }
    let client = pool.get(ep).await?;
    match decl.kind.as_str() {
        "database" => {
            client
                .run(&decl.name, "dropDatabase", doc! {"dropDatabase": 1})
                .await?;
        }
        "user" => {
            let result = client
                .run(auth_db(decl), "dropUser", commands::drop_user(&decl.name))
                .await;
            match result {
                // UserNotFound: already gone.
                Err(e) if e.code() == Some("UserNotFound") => {}
                other => {
                    other?;
                }
            }
            client
                .run(
                    auth_db(decl),
                    "delete",
                    commands::delete_marker(&user_marker_id(&decl.name)),
                )
                .await?;
        }
        "grant" => {
            let want = mongo_roles(decl)?;
            let have = roles_from_json(obs.fields.get("roles"));
            let held: Vec<MongoRole> = want.into_iter().filter(|r| have.contains(r)).collect();
            if !held.is_empty() {
                let result = client
                    .run(
                        auth_db(decl),
                        "revokeRolesFromUser",
                        commands::revoke_roles(user_name(decl), &held),
                    )
                    .await;
                match result {
                    Err(e) if e.code() == Some("UserNotFound") => {}
                    other => {
                        other?;
                    }
                }
            }
        }
        _ => return Err(ProviderError::new(orkestra_provider::Cause::UnknownKind)),
    }
    Ok(Outcome::new(State::Deleted).mutations(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::Ownership;

    fn decl(kind: &str, item: Value) -> Declaration {
        crate::fixtures::decl("mongo", kind, item)
    }

    use crate::fixtures::ours;

    #[test]
    fn commands_carry_names_as_values() {
        let r = [MongoRole {
            role: "readWrite".into(),
            db: "app\"; db.dropDatabase()".into(),
        }];
        let c = commands::create_user("u$ne", "pw", &r);
        assert_eq!(c.get_str("createUser").unwrap(), "u$ne");
        assert_eq!(c.get_str("pwd").unwrap(), "pw");
        let m = commands::upsert_marker(&user_marker_id("u$ne"), "{\"k\":\"v\"}");
        let update = m.get_array("updates").unwrap()[0].as_document().unwrap();
        assert_eq!(
            update.get_document("u").unwrap().get_str("mark").unwrap(),
            "{\"k\":\"v\"}"
        );
        assert_eq!(
            update.get_document("q").unwrap().get_str("_id").unwrap(),
            "user:u$ne"
        );
        let u = commands::update_user("u", None, Some(&r));
        assert!(u.get("pwd").is_none());
        assert_eq!(u.get_array("roles").unwrap().len(), 1);
        assert_eq!(
            commands::grant_roles("u", &r)
                .get_str("grantRolesToUser")
                .unwrap(),
            "u"
        );
        assert_eq!(
            commands::revoke_roles("u", &r)
                .get_str("revokeRolesFromUser")
                .unwrap(),
            "u"
        );
    }

    #[test]
    fn user_roles_are_exact_and_passwords_hidden() {
        let d = decl(
            "user",
            json!({"name": "u", "passwordSecret": {"name": "pw"}, "roles": ["readWrite@app"]}),
        );
        let obs = ours(
            &d,
            json!({"roles": [{"role": "read", "db": "app"}], "passwordInSync": false}),
        );
        let plan = diff(&d, &obs);
        let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["roles", "password"]);
        assert!(!plan.render().contains("pw\""), "{}", plan.render());
        let obs = ours(
            &d,
            json!({"roles": [{"role": "readWrite", "db": "app"}], "passwordInSync": true}),
        );
        assert!(diff(&d, &obs).is_noop());
    }

    #[test]
    fn grants_are_additive_and_judged_by_the_users_mark() {
        let d = decl(
            "grant",
            json!({"name": "g", "role": "u", "roles": ["read@reports"]}),
        );
        let mut obs = ours(&d, json!({"roles": [{"role": "readWrite", "db": "app"}]}));
        obs.exists = false;
        obs.id = Some("mongodb://h:27017/grant/g".into());
        assert_eq!(diff(&d, &obs).action, Action::Create);
        let held = ours(
            &d,
            json!({"roles": [{"role": "readWrite", "db": "app"}, {"role": "read", "db": "reports"}]}),
        );
        assert!(diff(&d, &held).is_noop());
        obs.ownership = Ownership::Unowned;
        assert!(matches!(diff(&d, &obs).blocked, Some(Blocked::Conflict(_))));
    }
}
