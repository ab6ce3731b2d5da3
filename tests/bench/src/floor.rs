//! The floor: a minimal client issuing the same writes the agent makes for each CR, with no
//! controller around them. Per CR: POST the CR, server-side apply the Deployment and the Service
//! rendered by `kubectl orkestra render` (the exact objects the agent applies), then S3
//! CreateBucket, PutBucketTagging, PutBucketVersioning and PutPublicAccessBlock (the mutating
//! calls the agent makes for an application-stack bucket). Then, like the agent before it marks a
//! CR Ready, it waits until every Deployment is Available for its generation, by the rule of
//! the engine's readiness rule ([`deployment_ready`]), seen by one watch on the namespace. Run at
//! several concurrencies; the best is the floor.

use std::time::{Duration, Instant};

use aws_sdk_s3::types::{
    BucketVersioningStatus, PublicAccessBlockConfiguration, Tag, Tagging, VersioningConfiguration,
};
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

use crate::error::{Context, Error, Result};
use crate::workload;

/// What one CR turns into.
#[derive(Debug, Clone)]
pub struct Item {
    /// The CR itself.
    pub cr: Value,
    /// Kubernetes children (rendered).
    pub objects: Vec<Value>,
    /// Buckets with their declared tags.
    pub buckets: Vec<(String, Vec<(String, String)>)>,
}

/// Renders the CRs offline with the plugin and returns one [`Item`] per CR.
pub async fn render_items(
    plugin: &std::path::Path,
    katalog: &std::path::Path,
    workdir: &std::path::Path,
    crs: &[Value],
) -> Result<Vec<Item>> {
    let docs: Vec<String> = crs
        .iter()
        .map(|c| serde_yaml_ng::to_string(c).unwrap_or_default())
        .collect();
    let file = workload::write_file(workdir, "floor-crs.yaml", &docs.join("---\n"))?;
    let out = tokio::process::Command::new(plugin)
        .args(["render", "-o", "json", "-f"])
        .arg(katalog)
        .arg("--cr")
        .arg(&file)
        .output()
        .await
        .ctx(|| "kubectl orkestra render".into())?;
    if !out.status.success() {
        return Err(Error::msg(format!(
            "kubectl orkestra render failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::msg(format!("render output is not JSON: {e}")))?;
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.len() != crs.len() {
        return Err(Error::msg(format!(
            "render gave {} items for {} CRs",
            items.len(),
            crs.len()
        )));
    }
    Ok(items
        .into_iter()
        .zip(crs)
        .map(|(it, cr)| Item {
            cr: cr.clone(),
            objects: it
                .get("objects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            buckets: it
                .get("external")
                .and_then(Value::as_array)
                .map(|rows| {
                    rows.iter()
                        .filter_map(|r| {
                            let f = r.get("fields")?;
                            let b = f.get("bucket")?.as_str()?.to_string();
                            let tags = f
                                .get("tags")
                                .and_then(Value::as_object)
                                .map(|m| {
                                    m.iter()
                                        .map(|(k, v)| {
                                            (k.clone(), v.as_str().unwrap_or("").to_string())
                                        })
                                        .collect()
                                })
                                .unwrap_or_default();
                            Some((b, tags))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect())
}

fn api_for(client: &kube::Client, obj: &Value) -> Result<(Api<DynamicObject>, String)> {
    let av = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let (g, v) = av.split_once('/').unwrap_or(("", av));
    let plural = match kind {
        "Deployment" => "deployments".to_string(),
        "Service" => "services".to_string(),
        "ApplicationStack" => "applicationstacks".to_string(),
        k => format!("{}s", k.to_lowercase()),
    };
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, kind), &plural);
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok((Api::namespaced_with(client.clone(), ns, &ar), name))
}

async fn one(client: &kube::Client, s3: &aws_sdk_s3::Client, item: &Item) -> Result<()> {
    let (api, name) = api_for(client, &item.cr)?;
    let cr: DynamicObject = serde_json::from_value(item.cr.clone())
        .map_err(|e| Error::msg(format!("CR {name}: {e}")))?;
    let created = api
        .create(&PostParams::default(), &cr)
        .await
        .ctx(|| format!("floor: creating CR {name}"))?;
    let uid = created.metadata.uid.clone().unwrap_or_default();
    let pp = PatchParams::apply("orkestra-bench-floor").force();
    for obj in &item.objects {
        let (api, oname) = api_for(client, obj)?;
        api.patch(&oname, &pp, &Patch::Apply(obj))
            .await
            .ctx(|| format!("floor: applying {oname}"))?;
    }
    let ns = item
        .cr
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    for (bucket, declared) in &item.buckets {
        let aws = |what: &str, e: String| Error::msg(format!("floor: {what} {bucket}: {e}"));
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| {
                aws(
                    "CreateBucket",
                    aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                )
            })?;
        let mut tags = vec![
            ("orkestra.orkspace.io/owner-uid".to_string(), uid.clone()),
            (
                "orkestra.orkspace.io/owner".to_string(),
                format!("{ns}/{name}"),
            ),
            (
                "orkestra.orkspace.io/katalog".to_string(),
                "application-stack".to_string(),
            ),
        ];
        tags.extend(declared.iter().cloned());
        let tag_set = tags
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| aws("building tags", e.to_string()))?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(tag_set))
            .build()
            .map_err(|e| aws("building tagging", e.to_string()))?;
        s3.put_bucket_tagging()
            .bucket(bucket)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| {
                aws(
                    "PutBucketTagging",
                    aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                )
            })?;
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                aws(
                    "PutBucketVersioning",
                    aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                )
            })?;
        s3.put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                aws(
                    "PutPublicAccessBlock",
                    aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                )
            })?;
    }
    Ok(())
}

/// Whether a Deployment is ready by the agent's own rule (`orkestra_engine::readiness`, the
/// function the agent calls): the floor waits for exactly the condition the agent waits for.
pub fn deployment_ready(v: &Value) -> bool {
    orkestra_engine::readiness::of("Deployment", v).is_ready()
}

/// The floor's wall times for one run, both from the first write.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Until every write (Kubernetes and S3) has returned.
    pub writes: Duration,
    /// Until that and every Deployment ready ([`deployment_ready`]): the floor's figure.
    pub ready: Duration,
}

/// Issues every item's writes with `concurrency` CRs in flight, then waits (at most `timeout`)
/// until a watch on the items' namespace has seen every Deployment ready; returns the times.
pub async fn run(
    client: &kube::Client,
    s3: &aws_sdk_s3::Client,
    items: &[Item],
    concurrency: usize,
    timeout: Duration,
) -> Result<Timing> {
    let ns = items
        .first()
        .and_then(|i| i.cr.pointer("/metadata/namespace"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    let deployments: Vec<String> = items
        .iter()
        .flat_map(|i| i.objects.iter())
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Deployment"))
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let deploy_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps", "v1", "Deployment"),
        "deployments",
    );
    let tracker = workload::Tracker::start(
        Api::namespaced_with(client.clone(), &ns, &deploy_ar),
        deployment_ready,
    );
    // Let the watch list the (empty) namespace before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(items)
        .map(|it| one(client, s3, it))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let writes = t.elapsed();
    let written: Result<()> = results.into_iter().collect();
    let ready = match written {
        Ok(()) => {
            workload::wait_until(
                &format!("floor: {} Deployments in {ns} Available", deployments.len()),
                timeout,
                Duration::from_millis(20),
                || {
                    let r = tracker.all_at(&deployments);
                    async move { r }
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    tracker.stop();
    let ready = ready?.duration_since(t).max(writes);
    Ok(Timing { writes, ready })
}

/// Deletes the floor's buckets (not timed).
pub async fn delete_buckets(s3: &aws_sdk_s3::Client, items: &[Item]) {
    let names: Vec<String> = items
        .iter()
        .flat_map(|i| i.buckets.iter().map(|b| b.0.clone()))
        .collect();
    futures::stream::iter(names)
        .map(|b| async move {
            let _ = s3.delete_bucket().bucket(b).send().await;
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}
