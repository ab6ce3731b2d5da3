//! The two AWS examples end to end, with the real agent (in this process) against the private
//! control plane and moto: `plan` before anything exists shows what is not known yet, the agent
//! composes the resources in graph order, `status` shows them Ready, `plan` then agrees nothing is
//! left to do, and deleting the CR deletes every resource.
//!
//! - `katalogs/message-queue`: an SQS queue whose redrive names its dead-letter queue's ARN, and
//!   an IAM policy whose Resource is the queue's ARN;
//! - `katalogs/database-cluster`: an RDS instance and a Route 53 CNAME to its endpoint.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use orkestra_testsupport::{wait_for, TestEnv};
use serde_json::Value;

fn example(dir: &str, file: &str) -> String {
    std::fs::read_to_string(repo().join("katalogs").join(dir).join(file)).unwrap()
}

/// Run the plugin off the test's runtime; its stdout and exit code.
async fn plugin_run(env: &TestEnv, args: &[&str], katalog: &Path) -> (i32, String) {
    let mut c = plugin(env);
    c.args(args).arg("-f").arg(katalog);
    let o = run_async(c).await;
    (
        o.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&o), stderr(&o)),
    )
}

async fn kubectl_apply(env: &TestEnv, file: &Path) {
    let mut c = env.kubectl();
    c.args(["apply", "-f"]).arg(file);
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

async fn kubectl_delete(env: &TestEnv, file: &Path) {
    let mut c = env.kubectl();
    c.args(["delete", "--wait=false", "-f"]).arg(file);
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The CR as the cluster has it (for a failure message).
async fn cr_yaml(env: &TestEnv, target: &str, ns: &str) -> String {
    let mut c = env.kubectl();
    c.args(["get", target, "-n", ns, "-o", "yaml"]);
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    format!("{}{}", stdout(&o), stderr(&o))
}

/// Wait until `status KIND/NAME` shows the CR Ready with `rows` external rows, all Ready.
async fn wait_ready(env: &TestEnv, target: &str, ns: &str, rows: usize) -> Value {
    wait_for(
        &format!("{target} Ready with {rows} external rows"),
        Duration::from_secs(120),
        || async {
            let v = status_json(env, target, ns).await;
            let item = v["items"][0].clone();
            let external = item["external"].as_array().cloned().unwrap_or_default();
            (item["ready"] == true
                && external.len() == rows
                && external.iter().all(|r| r["state"] == "Ready"))
            .then_some(item)
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!("{e}");
    })
}

/// Wait until `plan TARGET --detailed-exitcode` reports no changes.
async fn wait_plan_converged(env: &TestEnv, katalog: &Path, target: &str, ns: &str) {
    let (code, text) = plugin_run(
        env,
        &["plan", target, "-n", ns, "--detailed-exitcode"],
        katalog,
    )
    .await;
    assert_eq!(code, 0, "plan after the agent converged:\n{text}");
    assert!(text.contains("no changes"), "{text}");
}

#[tokio::test]
async fn message_queue_composes_queue_dead_letter_queue_and_policy() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("mq").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("mq");
    let katalog = write(
        dir.path(),
        "katalog.yaml",
        &labelled(&example("message-queue", "katalog.yaml"), &id),
    );
    let cr = write(
        dir.path(),
        "cr.yaml",
        &example("message-queue", "cr-orders.yaml")
            .replace("namespace: team-a", &format!("namespace: {}", ns.name())),
    );
    let queue = format!("{}-orders", ns.name());
    let dlq = format!("{queue}-dlq");
    let policy = format!("{queue}-consume");

    // Before anything exists: three creates, the ARNs they pass on known only after apply.
    let cr_arg = cr.display().to_string();
    let (code, text) = plugin_run(
        env,
        &["plan", "--cr", &cr_arg, "--detailed-exitcode"],
        &katalog,
    )
    .await;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains(&format!("+ aws.sqs \"{dlq}\"")), "{text}");
    assert!(
        text.contains("(known after apply: dlq.outputs.arn)"),
        "{text}"
    );
    assert!(
        text.contains("(known after apply: queue.outputs.arn)"),
        "{text}"
    );
    assert!(text.contains("to create"), "{text}");

    let agent = Agent::start(env, &id, ns.name(), true).await;
    let (code, text) = plugin_run(env, &["apply", "--wait", "--timeout", "90s"], &katalog).await;
    assert_eq!(code, 0, "{text}");
    kubectl_apply(env, &cr).await;

    let item = wait_ready(env, "messagequeue/orders", ns.name(), 3).await;
    let rows = item["external"].as_array().unwrap();
    let output = |kind: &str, name: &str, key: &str| -> String {
        rows.iter()
            .find(|r| r["kind"] == kind && r["name"] == name)
            .and_then(|r| r["outputs"][key].as_str())
            .unwrap_or_else(|| panic!("no {kind} {name} output {key}: {item}"))
            .to_string()
    };
    let dlq_arn = output("sqs", &dlq, "arn");
    let queue_arn = output("sqs", &queue, "arn");
    let queue_url = output("sqs", &queue, "url");

    // In moto: the redrive names the dead-letter queue; the policy's Resource is the queue.
    let sqs = env.aws.sqs_client().await;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let redrive = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
        .cloned()
        .unwrap_or_default();
    let redrive: Value = serde_json::from_str(&redrive).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], dlq_arn.as_str());
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "3"
    );
    let iam = env.aws.iam_client().await;
    let policy_arn = output("iamPolicy", &policy, "arn");
    let version = iam
        .get_policy_version()
        .policy_arn(&policy_arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    let doc = version
        .policy_version()
        .and_then(|v| v.document())
        .unwrap_or_default()
        .to_string();
    assert!(
        doc.contains(&queue_arn) || doc.contains(&queue_arn.replace(':', "%3A")),
        "{doc}"
    );
    // The ConfigMap hands the URL on.
    let cm = {
        let mut c = env.kubectl();
        c.args([
            "get",
            "configmap",
            "orders-queue",
            "-n",
            ns.name(),
            "-o",
            "jsonpath={.data.url}",
        ]);
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    };
    assert_eq!(stdout(&cm), queue_url);

    wait_plan_converged(env, &katalog, "messagequeue/orders", ns.name()).await;

    // Deleting the CR deletes the policy, the queue and the dead-letter queue.
    kubectl_delete(env, &cr).await;
    let deleted = wait_for(
        "the queues and the policy deleted",
        Duration::from_secs(120),
        || {
            let (sqs, iam, queue, dlq, policy_arn) = (
                sqs.clone(),
                iam.clone(),
                queue.clone(),
                dlq.clone(),
                policy_arn.clone(),
            );
            async move {
                let gone = |r: bool| !r;
                gone(sqs.get_queue_url().queue_name(&queue).send().await.is_ok())
                    && gone(sqs.get_queue_url().queue_name(&dlq).send().await.is_ok())
                    && gone(
                        iam.get_policy()
                            .policy_arn(&policy_arn)
                            .send()
                            .await
                            .is_ok(),
                    )
            }
        },
    )
    .await;
    if let Err(e) = deleted {
        panic!(
            "{e}:\n{}",
            cr_yaml(env, "messagequeue/orders", ns.name()).await
        );
    }
    agent.stop().await;
    remove_applied_katalog(env, "message-queue");
    let _ = ns.cleanup().await;
}

#[tokio::test]
async fn database_cluster_points_a_cname_at_the_instance() {
    let env = orkestra_testsupport::cluster().await;
    install_katalog_crd(env);
    let ns = env.namespace("dbc").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = id("dbc");
    let zone = format!("{id}.example.com");
    let route53 = env.aws.route53_client().await;
    let created = route53
        .create_hosted_zone()
        .name(&zone)
        .caller_reference(&id)
        .send()
        .await
        .unwrap();
    let zone_id = created
        .hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .unwrap();
    let katalog = write(
        dir.path(),
        "katalog.yaml",
        &labelled(&example("database-cluster", "katalog.yaml"), &id),
    );
    let cr = write(
        dir.path(),
        "cr.yaml",
        &example("database-cluster", "cr-orders.yaml")
            .replace("namespace: team-a", &format!("namespace: {}", ns.name()))
            .replace("zone: db.example.com", &format!("zone: {zone}")),
    );
    let fqdn = format!("orders-db.{zone}");

    let cr_arg = cr.display().to_string();
    let (code, text) = plugin_run(
        env,
        &["plan", "--cr", &cr_arg, "--detailed-exitcode"],
        &katalog,
    )
    .await;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains(&format!("+ aws.route53 \"{fqdn}")), "{text}");
    assert!(
        text.contains("(known after apply: db.outputs.endpoint)"),
        "{text}"
    );

    let agent = Agent::start(env, &id, ns.name(), true).await;
    let (code, text) = plugin_run(env, &["apply", "--wait", "--timeout", "90s"], &katalog).await;
    assert_eq!(code, 0, "{text}");
    kubectl_apply(env, &cr).await;

    let item = wait_ready(env, "databasecluster/orders-db", ns.name(), 2).await;
    let rows = item["external"].as_array().unwrap();
    let endpoint = rows
        .iter()
        .find(|r| r["kind"] == "rds")
        .and_then(|r| r["outputs"]["endpoint"].as_str())
        .unwrap_or_else(|| panic!("no endpoint: {item}"))
        .to_string();
    let record = rows.iter().find(|r| r["kind"] == "route53").unwrap();
    assert_eq!(record["outputs"]["fqdn"], fqdn.as_str(), "{item}");
    assert_eq!(record["outputs"]["zoneId"], zone_id.as_str(), "{item}");

    // In moto: the CNAME points at the endpoint, its ownership TXT beside it.
    let sets = route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .send()
        .await
        .unwrap();
    let cname = sets
        .resource_record_sets()
        .iter()
        .find(|s| s.name().trim_end_matches('.') == fqdn && s.r#type().as_str() == "CNAME")
        .unwrap_or_else(|| panic!("no CNAME {fqdn}: {sets:?}"));
    let values: Vec<&str> = cname.resource_records().iter().map(|r| r.value()).collect();
    assert_eq!(values, [endpoint.as_str()]);
    assert!(
        sets.resource_record_sets()
            .iter()
            .any(|s| s.name().starts_with("_orkestra-cname.") && s.r#type().as_str() == "TXT"),
        "{sets:?}"
    );

    wait_plan_converged(env, &katalog, "databasecluster/orders-db", ns.name()).await;

    kubectl_delete(env, &cr).await;
    let rds = env.rds_client().await;
    let identifier = format!("{}-orders-db", ns.name());
    let deleted = wait_for(
        "the record and the instance deleted",
        Duration::from_secs(120),
        || {
            let (route53, rds, zone_id, identifier) = (
                route53.clone(),
                rds.clone(),
                zone_id.clone(),
                identifier.clone(),
            );
            async move {
                let sets = route53
                    .list_resource_record_sets()
                    .hosted_zone_id(&zone_id)
                    .send()
                    .await
                    .ok()?;
                let only_zone_records = sets
                    .resource_record_sets()
                    .iter()
                    .all(|s| matches!(s.r#type().as_str(), "SOA" | "NS"));
                let instance_gone = rds
                    .describe_db_instances()
                    .db_instance_identifier(&identifier)
                    .send()
                    .await
                    .is_err();
                (only_zone_records && instance_gone).then_some(())
            }
        },
    )
    .await;
    if let Err(e) = deleted {
        panic!(
            "{e}:\n{}",
            cr_yaml(env, "databasecluster/orders-db", ns.name()).await
        );
    }
    agent.stop().await;
    remove_applied_katalog(env, "database-cluster");
    let _ = route53.delete_hosted_zone().id(&zone_id).send().await;
    let _ = ns.cleanup().await;
}
