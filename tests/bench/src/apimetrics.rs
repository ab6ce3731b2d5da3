//! Write requests counted by kube-apiserver itself (`apiserver_request_total` on its /metrics).

use std::collections::BTreeMap;

use crate::error::{Context, Result};

/// Verbs that change state (APPLY is server-side apply's PATCH).
pub const WRITE_VERBS: &[&str] = &[
    "POST",
    "PUT",
    "PATCH",
    "APPLY",
    "DELETE",
    "DELETECOLLECTION",
];

/// Write-request counters by "VERB resource[/subresource]".
pub type Writes = BTreeMap<String, u64>;

/// Scrapes kube-apiserver's /metrics with the admin client and sums write requests by verb and
/// resource.
pub async fn scrape_writes(client: &kube::Client) -> Result<Writes> {
    let req = hyper::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| crate::Error::msg(format!("building GET /metrics: {e}")))?;
    let text = client
        .request_text(req)
        .await
        .ctx(|| "GET kube-apiserver /metrics".into())?;
    Ok(parse_writes(&text))
}

/// Parses `apiserver_request_total{...} value` lines.
pub fn parse_writes(text: &str) -> Writes {
    let mut out = Writes::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| -> String {
            let key = format!("{name}=\"");
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&key))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let verb = label("verb");
        if !WRITE_VERBS.contains(&verb.as_str()) {
            continue;
        }
        let mut res = label("resource");
        let sub = label("subresource");
        if !sub.is_empty() {
            res = format!("{res}/{sub}");
        }
        let v: f64 = value.trim().parse().unwrap_or(0.0);
        *out.entry(format!("{verb} {res}")).or_insert(0) += v as u64;
    }
    out
}

/// `after - before`, keeping only non-zero entries.
pub fn diff(before: &Writes, after: &Writes) -> Writes {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(*before.get(k).unwrap_or(&0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// Total of a diff.
pub fn total(w: &Writes) -> u64 {
    w.values().sum()
}
