//! `aws.route53` and `aws.route53Zone` against the real moto server. Every test makes its own
//! hosted zone (a unique name) directly through the SDK and counts mutating requests at moto's
//! side by that zone's id or name, so tests sharing one moto never see each other's calls.
//!
//! What moto does not do like Route 53 (found by trying): it answers every change INSYNC at
//! once (the PENDING path is in route53_mocks.rs), lets a CNAME stand beside other records at
//! its name (so the CNAME rule is orkestra's own check here, not AWS's rejection), accepts a
//! CallerReference twice, and keeps names in the case they were written.

mod common;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use common::*;
use orkestra_provider::ownership::TAG_OWNER_UID;
use orkestra_provider::{
    Action, Declaration, KubeReader, ProviderContext, RunReport, State, StatusRow,
};
use orkestra_testsupport::unique_name;
use serde_json::{json, Value};

/// A fresh public zone `NAME.orkestra.test` made behind the provider's back: (name, id).
async fn zone(h: &Harness, prefix: &str) -> (String, String) {
    let name = format!("{}.orkestra.test", unique_name(prefix));
    let out = h
        .route53
        .create_hosted_zone()
        .name(&name)
        .caller_reference(unique_name("ref"))
        .send()
        .await
        .expect("CreateHostedZone");
    let id = out.hosted_zone().expect("zone").id();
    let id = id.strip_prefix("/hostedzone/").unwrap_or(id).to_string();
    (name, id)
}

/// Every record set in the zone as (name without dot, type, values).
async fn records(h: &Harness, zone_id: &str) -> Vec<(String, String, Vec<String>)> {
    let out = h
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .expect("ListResourceRecordSets");
    out.resource_record_sets()
        .iter()
        .map(|s| {
            (
                s.name.trim_end_matches('.').to_ascii_lowercase(),
                s.r#type.as_str().to_string(),
                s.resource_records()
                    .iter()
                    .map(|r| r.value().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// The values of the record set `name`/`rtype`, if it exists.
async fn values(h: &Harness, zone_id: &str, name: &str, rtype: &str) -> Option<Vec<String>> {
    records(h, zone_id)
        .await
        .into_iter()
        .find(|(n, t, _)| n == name && t == rtype)
        .map(|(_, _, v)| v)
}

/// UPSERT a record directly (someone else's record).
async fn put(h: &Harness, zone_id: &str, name: &str, rtype: &str, vals: &[&str]) {
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::from(rtype))
        .ttl(60)
        .set_resource_records(Some(
            vals.iter()
                .map(|v| ResourceRecord::builder().value(*v).build().unwrap())
                .collect(),
        ))
        .build()
        .unwrap();
    h.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(set)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("ChangeResourceRecordSets");
}

/// Mutating requests moto served that mention `needle`.
fn moto_mutations(h: &Harness, needle: &str) -> Vec<String> {
    h.moto.mutating_requests(needle).expect("moto's recording")
}

fn record(name: &str, zone: &str, extra: Value) -> Value {
    let mut v = json!({"name": name, "zone": zone, "type": "A", "ttl": 60,
                       "values": ["192.0.2.10", "192.0.2.11"]});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

/// A context whose CR's status holds `rows` (what the previous pass wrote).
fn ctx_after(rows: &[StatusRow]) -> ProviderContext {
    ProviderContext::new(
        unique_name("req"),
        json!({"status": {"external": rows}}),
        KubeReader::empty(),
    )
}

async fn reconcile(h: &Harness, d: &Declaration) -> RunReport {
    h.runtime.reconcile(&ctx(), std::slice::from_ref(d)).await
}

async fn delete(h: &Harness, d: &Declaration) -> RunReport {
    h.runtime.delete_all(&ctx(), std::slice::from_ref(d)).await
}

#[tokio::test]
async fn record_create_noop_update_delete() {
    let h = harness().await;
    let (zone_name, zone_id) = zone(&h, "rec").await;
    let me = owner("web");
    let name = format!("www.{zone_name}");
    let d = decl("route53", record(&name, &zone_name, json!({})), &me);

    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await;
    let (_, plan) = plans[0].as_ref().expect("plan");
    assert_eq!(plan.action, Action::Create);
    let text = plan.render();
    assert!(text.contains("+ ownershipRecord"), "{text}");
    assert!(
        text.contains("+ values") && text.contains("192.0.2.10"),
        "{text}"
    );

    let report = reconcile(&h, &d).await;
    assert_declared_outputs("route53", row(&report));
    let r = row(&report);
    assert_eq!(r.outputs.get("fqdn"), Some(&json!(name)));
    assert_eq!(r.outputs.get("zoneId"), Some(&json!(zone_id)));
    assert_eq!(r.outputs.get("type"), Some(&json!("A")));
    assert_eq!(
        r.id.as_deref(),
        Some(format!("{zone_id}/{name}/A").as_str())
    );
    assert_eq!(mutating_ops(&h.log), ["ChangeResourceRecordSets"]);
    assert_eq!(
        values(&h, &zone_id, &name, "A").await,
        Some(vec!["192.0.2.10".into(), "192.0.2.11".into()])
    );
    let mark = values(&h, &zone_id, &format!("_orkestra-a.{name}"), "TXT")
        .await
        .expect("ownership TXT record");
    assert_eq!(
        mark,
        [format!(
            "\"heritage=orkestra,orkestra/owner-uid={},orkestra/owner=shop/web,orkestra/katalog=shop-katalog\"",
            me.uid
        )]
    );

    // Nothing changed: no mutating call, counted at the client and at moto (which did see the
    // create, so the count is not vacuous).
    let before = moto_mutations(&h, &zone_id).len();
    assert!(
        moto_mutations(&h, &zone_id)
            .iter()
            .any(|op| op.starts_with("POST ") && op.ends_with("/rrset")),
        "moto's recording does not show the create"
    );
    h.log.clear();
    let report = reconcile(&h, &d).await;
    assert_state(&report, State::Ready);
    assert_declared_outputs("route53", row(&report));
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(moto_mutations(&h, &zone_id).len(), before);

    // Same values in another order and spelling: still nothing to do.
    let reordered = decl(
        "route53",
        record(
            &name.to_ascii_uppercase(),
            &zone_name,
            json!({"values": ["192.0.2.11", " 192.0.2.10"]}),
        ),
        &me,
    );
    let plans = h
        .runtime
        .plan(&ctx(), std::slice::from_ref(&reordered))
        .await;
    assert_eq!(plans[0].as_ref().unwrap().1.action, Action::Noop);

    // TTL and values change in place, in one batch.
    let changed = decl(
        "route53",
        record(
            &name,
            &zone_name,
            json!({"ttl": 120, "values": ["192.0.2.20"]}),
        ),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&changed)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Update);
    let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["ttl", "values"]);
    h.log.clear();
    let report = reconcile(&h, &changed).await;
    assert_state(&report, State::Ready);
    assert_eq!(mutating_ops(&h.log), ["ChangeResourceRecordSets"]);
    assert_eq!(
        values(&h, &zone_id, &name, "A").await,
        Some(vec!["192.0.2.20".into()])
    );
    h.log.clear();
    assert_state(&reconcile(&h, &changed).await, State::Ready);
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());

    // Delete removes the record and its mark together; a second delete finds nothing.
    let report = delete(&h, &changed).await;
    assert_state(&report, State::Deleted);
    assert_eq!(mutating_ops(&h.log), ["ChangeResourceRecordSets"]);
    let left: Vec<_> = records(&h, &zone_id)
        .await
        .into_iter()
        .filter(|(_, t, _)| t != "NS" && t != "SOA")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    h.log.clear();
    assert_state(&delete(&h, &changed).await, State::Deleted);
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
}

#[tokio::test]
async fn a_type_change_is_a_replacement_and_changes_nothing() {
    let h = harness().await;
    let (zone_name, zone_id) = zone(&h, "retype").await;
    let me = owner("web");
    let name = format!("api.{zone_name}");
    assert_state(
        &reconcile(
            &h,
            &decl("route53", record(&name, &zone_name, json!({})), &me),
        )
        .await,
        State::Ready,
    );

    let cname = decl(
        "route53",
        record(
            &name,
            &zone_name,
            json!({"type": "CNAME", "values": ["lb.example.org"]}),
        ),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&cname)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Replace);
    assert!(
        plan.render().contains("# forces replacement"),
        "{}",
        plan.render()
    );
    let before = moto_mutations(&h, &zone_id).len();
    h.log.clear();
    let report = reconcile(&h, &cname).await;
    assert_state(&report, State::Error);
    assert!(
        row(&report)
            .message
            .starts_with("requires replacement: type \"A\" -> \"CNAME\""),
        "{:?}",
        row(&report)
    );
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(moto_mutations(&h, &zone_id).len(), before);
    assert!(values(&h, &zone_id, &name, "CNAME").await.is_none());
    assert!(values(&h, &zone_id, &name, "A").await.is_some());
}

#[tokio::test]
async fn foreign_records_are_never_modified_or_deleted() {
    let h = harness().await;
    let (zone_name, zone_id) = zone(&h, "foreign").await;
    let me = owner("web");
    let name = format!("shop.{zone_name}");
    put(&h, &zone_id, &name, "A", &["198.51.100.1"]).await;
    let d = decl("route53", record(&name, &zone_name, json!({})), &me);

    let before = moto_mutations(&h, &zone_id).len();
    h.log.clear();
    let report = reconcile(&h, &d).await;
    assert_state(&report, State::Conflict);
    assert!(
        row(&report).message.contains(&format!(
            "no ownership TXT record _orkestra-a.{name}); set adopt: true"
        )),
        "{:?}",
        row(&report)
    );
    let report = delete(&h, &d).await;
    assert_state(&report, State::Conflict);
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(moto_mutations(&h, &zone_id).len(), before);
    assert_eq!(
        values(&h, &zone_id, &name, "A").await,
        Some(vec!["198.51.100.1".into()])
    );

    // Another CR's record (its mark names another uid): a Conflict even with adopt.
    let other = owner("api");
    let theirs = format!("theirs.{zone_name}");
    assert_state(
        &reconcile(
            &h,
            &decl("route53", record(&theirs, &zone_name, json!({})), &other),
        )
        .await,
        State::Ready,
    );
    let grab = decl(
        "route53",
        record(&theirs, &zone_name, json!({"adopt": true, "ttl": 30})),
        &me,
    );
    let before = moto_mutations(&h, &zone_id).len();
    let report = reconcile(&h, &grab).await;
    assert_state(&report, State::Conflict);
    assert!(
        row(&report)
            .message
            .contains(&format!("belongs to shop/api (owner uid {})", other.uid)),
        "{:?}",
        row(&report)
    );
    assert_state(&delete(&h, &grab).await, State::Conflict);
    assert_eq!(moto_mutations(&h, &zone_id).len(), before);
    assert!(values(&h, &zone_id, &theirs, "A").await.is_some());
}

#[tokio::test]
async fn adopting_writes_the_ownership_record() {
    let h = harness().await;
    let (zone_name, zone_id) = zone(&h, "adopt").await;
    let me = owner("web");
    let name = format!("legacy.{zone_name}");
    put(&h, &zone_id, &name, "A", &["192.0.2.10", "192.0.2.11"]).await;

    let d = decl(
        "route53",
        record(&name, &zone_name, json!({"adopt": true})),
        &me,
    );
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Update);
    let paths: Vec<&str> = plan.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["ownershipRecord"]);
    h.log.clear();
    assert_state(&reconcile(&h, &d).await, State::Ready);
    assert_eq!(mutating_ops(&h.log), ["ChangeResourceRecordSets"]);
    let mark = values(&h, &zone_id, &format!("_orkestra-a.{name}"), "TXT")
        .await
        .expect("mark written");
    assert!(mark[0].contains(&me.uid), "{mark:?}");

    // Now ours: managed without adopt, and deleted with its mark.
    let owned = decl("route53", record(&name, &zone_name, json!({})), &me);
    h.log.clear();
    assert_state(&reconcile(&h, &owned).await, State::Ready);
    assert!(h.log.mutating().is_empty());
    assert_state(&delete(&h, &owned).await, State::Deleted);
    assert!(values(&h, &zone_id, &name, "A").await.is_none());
    assert!(values(&h, &zone_id, &format!("_orkestra-a.{name}"), "TXT")
        .await
        .is_none());
}

#[tokio::test]
async fn observe_only_reads_and_orphan_leaves_both_records() {
    let h = harness().await;
    let (zone_name, zone_id) = zone(&h, "observe").await;
    let me = owner("web");
    let name = format!("seen.{zone_name}");
    put(&h, &zone_id, &name, "A", &["192.0.2.1"]).await;
    let before = moto_mutations(&h, &zone_id).len();

    let watching = decl(
        "route53",
        record(&name, &zone_name, json!({"managementPolicy": "Observe"})),
        &me,
    );
    h.log.clear();
    let report = reconcile(&h, &watching).await;
    assert_state(&report, State::Ready);
    assert!(
        row(&report)
            .message
            .contains("drift not corrected (managementPolicy: Observe)"),
        "{:?}",
        row(&report)
    );
    assert_declared_outputs("route53", row(&report));
    assert_state(&delete(&h, &watching).await, State::Orphaned);
    let missing = decl(
        "route53",
        record(
            &format!("nothere.{zone_name}"),
            &zone_name,
            json!({"managementPolicy": "Observe"}),
        ),
        &me,
    );
    assert_state(&reconcile(&h, &missing).await, State::Error);
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(moto_mutations(&h, &zone_id).len(), before);
    assert_eq!(
        values(&h, &zone_id, &name, "A").await,
        Some(vec!["192.0.2.1".into()])
    );

    // Orphan: deleting the CR leaves the record and its mark.
    let kept_name = format!("kept.{zone_name}");
    let kept = decl(
        "route53",
        record(&kept_name, &zone_name, json!({"deletionPolicy": "Orphan"})),
        &me,
    );
    assert_state(&reconcile(&h, &kept).await, State::Ready);
    h.log.clear();
    assert_state(&delete(&h, &kept).await, State::Orphaned);
    assert!(h.log.mutating().is_empty());
    assert!(values(&h, &zone_id, &kept_name, "A").await.is_some());
    assert!(
        values(&h, &zone_id, &format!("_orkestra-a.{kept_name}"), "TXT")
            .await
            .is_some()
    );
}

#[tokio::test]
async fn cname_txt_and_mx_records() {
    let h = harness().await;
    let (zone_name, zone_id) = zone(&h, "types").await;
    let me = owner("web");

    // A CNAME's mark lives at the prefixed name, never beside the CNAME.
    let alias_name = format!("docs.{zone_name}");
    let cname = decl(
        "route53",
        json!({"name": alias_name, "zone": zone_name, "type": "CNAME", "values": ["Docs.Example.org."]}),
        &me,
    );
    let report = reconcile(&h, &cname).await;
    assert_declared_outputs("route53", row(&report));
    assert_eq!(
        values(&h, &zone_id, &alias_name, "CNAME").await,
        Some(vec!["docs.example.org".into()])
    );
    assert!(values(&h, &zone_id, &alias_name, "TXT").await.is_none());
    assert!(values(
        &h,
        &zone_id,
        &format!("_orkestra-cname.{alias_name}"),
        "TXT"
    )
    .await
    .is_some());

    // TXT text is quoted for Route 53; MX values are "priority host"; both stay no-ops.
    let txt = decl(
        "route53",
        json!({"name": zone_name, "zone": zone_name, "type": "TXT", "values": ["v=spf1 -all"]}),
        &me,
    );
    let mx = decl(
        "route53",
        json!({"name": zone_name, "zone": zone_name, "type": "MX", "ttl": 3600,
               "values": ["10 mx1.example.org", "20 mx2.example.org"]}),
        &me,
    );
    let both = [txt.clone(), mx.clone()];
    let report = h.runtime.reconcile(&ctx(), &both).await;
    assert!(report.all_ready(), "{report:?}");
    assert_eq!(
        values(&h, &zone_id, &zone_name, "TXT").await,
        Some(vec!["\"v=spf1 -all\"".into()])
    );
    assert_eq!(
        values(&h, &zone_id, &zone_name, "MX")
            .await
            .map(|v| v.len()),
        Some(2)
    );
    let before = moto_mutations(&h, &zone_id).len();
    h.log.clear();
    let report = h.runtime.reconcile(&ctx(), &both).await;
    assert!(report.all_ready(), "{report:?}");
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(moto_mutations(&h, &zone_id).len(), before);

    let report = h.runtime.delete_all(&ctx(), &both).await;
    assert!(
        report.rows.iter().all(|r| r.state == State::Deleted),
        "{report:?}"
    );
    assert!(values(&h, &zone_id, &zone_name, "TXT").await.is_none());
    assert!(values(&h, &zone_id, &zone_name, "MX").await.is_none());
    assert_state(&delete(&h, &cname).await, State::Deleted);
}

#[tokio::test]
async fn alias_and_wildcard_records() {
    let h = harness().await;
    let (zone_name, zone_id) = zone(&h, "alias").await;
    let me = owner("web");
    let apex = decl(
        "route53",
        json!({"name": zone_name, "zone": zone_name, "type": "A",
               "alias": {"dnsName": "d111111abcdef8.cloudfront.net", "hostedZoneId": "Z2FDTNDATAQYW2"}}),
        &me,
    );
    let wildcard_name = format!("*.{zone_name}");
    let wildcard = decl(
        "route53",
        record(&wildcard_name, &zone_name, json!({})),
        &me,
    );
    let both = [apex, wildcard];
    let report = h.runtime.reconcile(&ctx(), &both).await;
    assert!(report.all_ready(), "{report:?}");
    assert!(values(
        &h,
        &zone_id,
        &format!("_orkestra-a-wildcard.{zone_name}"),
        "TXT"
    )
    .await
    .is_some());
    let before = moto_mutations(&h, &zone_id).len();
    h.log.clear();
    assert!(h.runtime.reconcile(&ctx(), &both).await.all_ready());
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(moto_mutations(&h, &zone_id).len(), before);
    let report = h.runtime.delete_all(&ctx(), &both).await;
    assert!(
        report.rows.iter().all(|r| r.state == State::Deleted),
        "{report:?}"
    );
    let left: Vec<_> = records(&h, &zone_id)
        .await
        .into_iter()
        .filter(|(_, t, _)| t != "NS" && t != "SOA")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn zone_errors_name_the_zone() {
    let h = harness().await;
    let me = owner("web");
    let ghost = format!("{}.orkestra.test", unique_name("ghost"));
    let d = decl(
        "route53",
        record(&format!("www.{ghost}"), &ghost, json!({})),
        &me,
    );
    let report = reconcile(&h, &d).await;
    assert_state(&report, State::Error);
    assert_eq!(
        row(&report).message,
        format!("field zone: no hosted zone is named {ghost}")
    );
    assert!(h.log.mutating().is_empty());
    // Deleting a record whose zone is gone is success.
    assert_state(&delete(&h, &d).await, State::Deleted);

    // An id that names no zone: AWS's own code.
    let by_id = decl(
        "route53",
        json!({"name": "www.example.com", "zoneId": "Z0NOSUCHZONE0", "type": "A", "values": ["192.0.2.1"]}),
        &me,
    );
    let report = reconcile(&h, &by_id).await;
    assert_state(&report, State::Error);
    assert!(
        row(&report)
            .message
            .starts_with("GetHostedZone failed: NoSuchHostedZone:"),
        "{:?}",
        row(&report)
    );
    assert_state(&delete(&h, &by_id).await, State::Deleted);

    // A name outside the zone is refused before any change.
    let (zone_name, _) = zone(&h, "outside").await;
    let outside = decl(
        "route53",
        record("www.elsewhere.test", &zone_name, json!({})),
        &me,
    );
    let report = reconcile(&h, &outside).await;
    assert_state(&report, State::Error);
    assert!(
        row(&report)
            .message
            .contains("is not inside the hosted zone"),
        "{:?}",
        row(&report)
    );
}

#[tokio::test]
async fn moving_a_record_to_another_zone_is_a_replacement() {
    let h = harness().await;
    // Two zones of one name (public and private in real life; moto allows two public ones).
    let (zone_name, first) = zone(&h, "move").await;
    let second = h
        .route53
        .create_hosted_zone()
        .name(&zone_name)
        .caller_reference(unique_name("ref"))
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    let me = owner("web");
    let name = format!("www.{zone_name}");
    let item = |zone_id: &str| json!({"name": name, "zoneId": zone_id, "type": "A", "values": ["192.0.2.1"]});
    let report = reconcile(&h, &decl("route53", item(&first), &me)).await;
    assert_state(&report, State::Ready);

    let moved = decl("route53", item(&second), &me);
    let ctx = ctx_after(&report.rows);
    let before = moto_mutations(&h, &second).len();
    let report = h
        .runtime
        .reconcile(&ctx, std::slice::from_ref(&moved))
        .await;
    assert_state(&report, State::Error);
    assert!(
        row(&report).message.starts_with(&format!(
            "requires replacement: zoneId \"{first}\" -> \"{second}\""
        )),
        "{:?}",
        row(&report)
    );
    assert_eq!(moto_mutations(&h, &second).len(), before);
    assert!(values(&h, &second, &name, "A").await.is_none());
}

#[tokio::test]
async fn a_record_known_only_by_its_status_row_is_deleted() {
    let h = harness().await;
    let (zone_name, zone_id) = zone(&h, "fromrow").await;
    let me = owner("web");
    let name = format!("old.{zone_name}");
    let report = reconcile(
        &h,
        &decl("route53", record(&name, &zone_name, json!({})), &me),
    )
    .await;
    assert_state(&report, State::Ready);

    // The Katalog no longer renders: only the row's name is known (zone and type are found).
    let schema = orkestra_provider_aws::schema();
    let from_row = Declaration::from_row(row(&report), schema.kind("route53").unwrap(), me.clone());
    let report = delete(&h, &from_row).await;
    assert_state(&report, State::Deleted);
    assert!(values(&h, &zone_id, &name, "A").await.is_none());
    assert!(values(&h, &zone_id, &format!("_orkestra-a.{name}"), "TXT")
        .await
        .is_none());

    // Someone else's record under that name is not touched.
    put(&h, &zone_id, &name, "A", &["203.0.113.1"]).await;
    assert_state(&delete(&h, &from_row).await, State::Conflict);
    assert!(values(&h, &zone_id, &name, "A").await.is_some());
}

async fn zone_tags(h: &Harness, id: &str) -> Vec<(String, String)> {
    h.route53
        .list_tags_for_resource()
        .resource_type(aws_sdk_route53::types::TagResourceType::Hostedzone)
        .resource_id(id)
        .send()
        .await
        .expect("ListTagsForResource")
        .resource_tag_set()
        .map(|s| {
            s.tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn zone_ids_named(h: &Harness, name: &str) -> Vec<String> {
    h.route53
        .list_hosted_zones_by_name()
        .dns_name(name)
        .send()
        .await
        .unwrap()
        .hosted_zones()
        .iter()
        .filter(|z| z.name().trim_end_matches('.') == name)
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .collect()
}

#[tokio::test]
async fn zone_create_noop_update_delete() {
    let h = harness().await;
    let me = owner("web");
    let name = format!("{}.orkestra.test", unique_name("zone"));
    let d = decl(
        "route53Zone",
        json!({"zoneName": name, "comment": "shop zone", "tags": {"team": "web"}}),
        &me,
    );
    let report = reconcile(&h, &d).await;
    assert_declared_outputs("route53Zone", row(&report));
    let id = row(&report).outputs["zoneId"].as_str().unwrap().to_string();
    assert_eq!(zone_ids_named(&h, &name).await, std::slice::from_ref(&id));
    assert_eq!(
        mutating_ops(&h.log),
        ["CreateHostedZone", "ChangeTagsForResource"]
    );
    let tags = zone_tags(&h, &id).await;
    assert!(
        tags.contains(&(TAG_OWNER_UID.to_string(), me.uid.clone())),
        "{tags:?}"
    );
    assert!(
        tags.contains(&("team".to_string(), "web".to_string())),
        "{tags:?}"
    );

    let before = moto_mutations(&h, &id).len() + moto_mutations(&h, &name).len();
    assert!(
        before >= 2,
        "moto's recording does not show the create and the tagging"
    );
    h.log.clear();
    let report = reconcile(&h, &d).await;
    assert_state(&report, State::Ready);
    assert_declared_outputs("route53Zone", row(&report));
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());
    assert_eq!(
        moto_mutations(&h, &id).len() + moto_mutations(&h, &name).len(),
        before
    );

    let changed = decl(
        "route53Zone",
        json!({"zoneName": name, "comment": "the shop's zone", "tags": {"team": "shop"}}),
        &me,
    );
    h.log.clear();
    assert_state(&reconcile(&h, &changed).await, State::Ready);
    assert_eq!(
        mutating_ops(&h.log),
        ["UpdateHostedZoneComment", "ChangeTagsForResource"]
    );
    assert!(zone_tags(&h, &id)
        .await
        .contains(&("team".to_string(), "shop".to_string())));
    h.log.clear();
    assert_state(&reconcile(&h, &changed).await, State::Ready);
    assert!(h.log.mutating().is_empty(), "{:?}", h.log.mutating());

    // A zone holding only orkestra's records, deleted after them (reverse declared order).
    let rec = decl(
        "route53",
        record(&format!("www.{name}"), &name, json!({})),
        &me,
    );
    let both = [changed.clone(), rec];
    assert!(h.runtime.reconcile(&ctx(), &both).await.all_ready());
    let report = h.runtime.delete_all(&ctx(), &both).await;
    assert!(
        report.rows.iter().all(|r| r.state == State::Deleted),
        "{report:?}"
    );
    assert!(zone_ids_named(&h, &name).await.is_empty());
    assert_state(&delete(&h, &changed).await, State::Deleted);
}

#[tokio::test]
async fn a_zone_with_foreign_records_is_not_deleted() {
    let h = harness().await;
    let me = owner("web");
    let name = format!("{}.orkestra.test", unique_name("busy"));
    let d = decl("route53Zone", json!({"zoneName": name}), &me);
    let report = reconcile(&h, &d).await;
    assert_state(&report, State::Ready);
    let id = row(&report).outputs["zoneId"].as_str().unwrap().to_string();
    put(&h, &id, &format!("mail.{name}"), "A", &["192.0.2.25"]).await;

    let report = delete(&h, &d).await;
    assert_state(&report, State::Deleting);
    let r = row(&report);
    assert!(
        r.message
            .starts_with("not deleted: DeleteHostedZone failed: HostedZoneNotEmpty:"),
        "{r:?}"
    );
    assert!(report.requeue_after.is_some());
    assert_eq!(zone_ids_named(&h, &name).await, std::slice::from_ref(&id));

    // Someone else's zone of the same name is never ours to delete.
    let stranger = owner("other");
    assert_state(
        &delete(
            &h,
            &decl("route53Zone", json!({"zoneName": name}), &stranger),
        )
        .await,
        State::Conflict,
    );
    // Orphan leaves it.
    let keep = decl(
        "route53Zone",
        json!({"zoneName": name, "deletionPolicy": "Orphan"}),
        &me,
    );
    assert_state(&delete(&h, &keep).await, State::Orphaned);
    assert_eq!(zone_ids_named(&h, &name).await, [id]);
}

#[tokio::test]
async fn an_untagged_zone_from_an_interrupted_create_is_claimed() {
    let h = harness().await;
    let me = owner("web");
    let name = format!("{}.orkestra.test", unique_name("crash"));
    // The create went through, the process died before tagging: only the reference says whose.
    let reference = orkestra_provider_aws::route53::zone::caller_reference(&me, &name);
    h.route53
        .create_hosted_zone()
        .name(&name)
        .caller_reference(reference)
        .send()
        .await
        .unwrap();
    let d = decl("route53Zone", json!({"zoneName": name}), &me);
    let plans = h.runtime.plan(&ctx(), std::slice::from_ref(&d)).await;
    let (_, plan) = plans[0].as_ref().unwrap();
    assert_eq!(plan.action, Action::Update, "{plan:?}");
    assert!(
        plan.notes.iter().any(|n| n.starts_with("claimed:")),
        "{plan:?}"
    );
    h.log.clear();
    let report = reconcile(&h, &d).await;
    assert_state(&report, State::Ready);
    assert_eq!(mutating_ops(&h.log), ["ChangeTagsForResource"]);
    assert_eq!(zone_ids_named(&h, &name).await.len(), 1);

    // Without the reference, an untagged zone of that name is somebody else's.
    let other_name = format!("{}.orkestra.test", unique_name("manual"));
    h.route53
        .create_hosted_zone()
        .name(&other_name)
        .caller_reference(unique_name("ref"))
        .send()
        .await
        .unwrap();
    let report = reconcile(
        &h,
        &decl("route53Zone", json!({"zoneName": other_name}), &me),
    )
    .await;
    assert_state(&report, State::Conflict);
}
