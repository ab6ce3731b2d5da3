//! The reads of an entry's `operatorBox.cross`: what to read is the engine's
//! ([`orkestra_engine::cross::requests`]); this module asks the API server and hands what it
//! found back to the engine, which puts it under `.cross` for rendering. A CR that is not there
//! is not an error (templates see `found: false`); a read the API server refuses is.

use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;

use crate::controller::EntryCtx;
use crate::error::{Error, KubeContext};

/// `cr` with `.cross` filled, or `None` when the entry reads nothing.
pub async fn read(ctx: &EntryCtx, cr: &Value, who: &str) -> Result<Option<Value>, Error> {
    if ctx.entry.cross.is_empty() {
        return Ok(None);
    }
    let requests = orkestra_engine::cross::requests(&ctx.katalog, &ctx.entry, cr)
        .map_err(|e| crate::reconcile::render_error(who, e))?;
    let mut found = Vec::with_capacity(requests.len());
    for r in &requests {
        let resolved = ctx
            .agent
            .apis
            .resolve(&r.api.api_version(), &r.api.kind)
            .await?;
        let api: Api<DynamicObject> = match &r.namespace {
            Some(ns) if resolved.namespaced => {
                Api::namespaced_with(ctx.agent.client.clone(), ns, &resolved.resource)
            }
            _ => Api::all_with(ctx.agent.client.clone(), &resolved.resource),
        };
        let what = format!("cross read {} of {}", r.alias, r.api.kind);
        let objects: Vec<DynamicObject> = match &r.name {
            Some(name) => api
                .get_opt(name)
                .await
                .ctx(|| format!("{what} {name}"))?
                .into_iter()
                .collect(),
            None => {
                let params = ListParams::default()
                    .labels(&r.label_selector())
                    .limit(r.list_limit());
                api.list(&params)
                    .await
                    .ctx(|| format!("{what} ({})", r.label_selector()))?
                    .items
            }
        };
        found.push(objects);
    }
    Ok(Some(orkestra_engine::cross::with_found(
        cr, &requests, &found,
    )))
}
