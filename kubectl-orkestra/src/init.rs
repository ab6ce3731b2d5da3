//! `kubectl orkestra init`: write a Katalog, its CRD and a sample CR that pass lint.
//!
//! On a terminal it asks (dialoguer), offering the flags' values as defaults; off a terminal (or
//! with `--yes`) the flags are the answers, and a missing required one is an error, never a prompt.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use orkestra_engine::lint::{lint, Input};
use orkestra_engine::{load_file, SourceFile};
use serde_json::{json, Map, Value};

/// Kubernetes blocks the wizard offers.
const BLOCKS: &[&str] = &["deployments", "services", "configMaps"];
/// Provider resources the wizard offers.
const RESOURCES: &[&str] = &["aws.s3", "aws.rds"];
/// Field types the CRD schema can say.
const TYPES: &[&str] = &["string", "integer", "boolean"];

/// Arguments of `init`.
#[derive(clap::Args)]
pub struct Args {
    /// Kind of the new CRD (e.g. Website).
    #[arg(long)]
    kind: Option<String>,
    /// API group (e.g. demo.example.io).
    #[arg(long)]
    group: Option<String>,
    /// API version.
    #[arg(long = "api-version", default_value = "v1alpha1")]
    api_version: String,
    /// Spec fields as NAME:TYPE (string, integer, boolean), comma-separated or repeated.
    #[arg(long = "field", value_delimiter = ',', default_values_t = ["image:string".to_string(), "replicas:integer".to_string()])]
    fields: Vec<String>,
    /// Kubernetes blocks to generate, comma-separated (deployments, services, configMaps).
    #[arg(long = "blocks", value_delimiter = ',', default_values_t = ["deployments".to_string(), "services".to_string()])]
    blocks: Vec<String>,
    /// Provider resources, comma-separated (aws.s3, aws.rds); none by default.
    #[arg(long = "resources", value_delimiter = ',')]
    resources: Vec<String>,
    /// Folder to write katalog.yaml, crd.yaml and cr-sample.yaml into.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    /// Do not ask; take the flags as the answers.
    #[arg(short = 'y', long)]
    yes: bool,
}

/// The answers, however they were given.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub kind: String,
    pub group: String,
    pub version: String,
    pub fields: Vec<(String, String)>,
    pub blocks: Vec<String>,
    pub resources: Vec<String>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let interactive = !a.yes && crate::progress::interactive_terminal();
    let answers = if interactive {
        ask(&a)?
    } else {
        from_flags(&a)?
    };
    let files = generate(&answers)?;
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    for (name, _) in &files {
        let p = a.dir.join(name);
        if p.exists() && !a.force {
            bail!(
                "{} exists; pass --force to overwrite it or --dir to write elsewhere",
                p.display()
            );
        }
    }
    for (name, text) in &files {
        let p = a.dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("cannot write {}", p.display()))?;
        eprintln!("wrote {}", p.display());
    }
    let k = a.dir.join("katalog.yaml");
    eprintln!(
        "next: kubectl orkestra lint {} --crd {}\n      kubectl orkestra apply -f {}\n      kubectl apply -f {}",
        k.display(),
        a.dir.join("crd.yaml").display(),
        k.display(),
        a.dir.join("cr-sample.yaml").display()
    );
    Ok(0)
}

fn parse_field(s: &str) -> anyhow::Result<(String, String)> {
    let (name, ty) = s.split_once(':').unwrap_or((s, "string"));
    let name = name.trim();
    let ty = ty.trim();
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        bail!("field {s:?}: the name must be letters, digits or _ (like replicas or imageTag)");
    }
    if !TYPES.contains(&ty) {
        bail!("field {s:?}: the type must be one of {}", TYPES.join(", "));
    }
    Ok((name.to_string(), ty.to_string()))
}

fn check_kind(kind: &str) -> anyhow::Result<()> {
    let ok = kind.starts_with(|c: char| c.is_ascii_uppercase())
        && kind.chars().all(|c| c.is_ascii_alphanumeric());
    if !ok {
        bail!("kind {kind:?} must be CamelCase letters and digits, starting upper-case (like Website)");
    }
    Ok(())
}

fn check_group(group: &str) -> anyhow::Result<()> {
    let ok = group.contains('.')
        && group.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if !ok {
        bail!("group {group:?} must be a lower-case DNS name with a dot (like demo.example.io)");
    }
    Ok(())
}

fn from_flags(a: &Args) -> anyhow::Result<Answers> {
    let kind = a
        .kind
        .clone()
        .ok_or_else(|| anyhow!("--kind is required when not on a terminal (no prompts here)"))?;
    let group = a
        .group
        .clone()
        .ok_or_else(|| anyhow!("--group is required when not on a terminal (no prompts here)"))?;
    check_kind(&kind)?;
    check_group(&group)?;
    let fields = a
        .fields
        .iter()
        .filter(|f| !f.trim().is_empty())
        .map(|f| parse_field(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for b in &a.blocks {
        if !BLOCKS.contains(&b.as_str()) {
            bail!("--blocks: {b:?} is not one of {}", BLOCKS.join(", "));
        }
    }
    for r in &a.resources {
        if !RESOURCES.contains(&r.as_str()) {
            bail!("--resources: {r:?} is not one of {}", RESOURCES.join(", "));
        }
    }
    Ok(Answers {
        kind,
        group,
        version: a.api_version.clone(),
        fields,
        blocks: a.blocks.clone(),
        resources: a.resources.clone(),
    })
}

fn ask(a: &Args) -> anyhow::Result<Answers> {
    use dialoguer::{Input, MultiSelect};
    let theme = dialoguer::theme::SimpleTheme;
    let err = |e: dialoguer::Error| anyhow!("prompt failed: {e}");
    let kind: String = Input::with_theme(&theme)
        .with_prompt("Kind of the new resource (CamelCase)")
        .with_initial_text(a.kind.clone().unwrap_or_default())
        .validate_with(|s: &String| check_kind(s).map_err(|e| e.to_string()))
        .interact_text()
        .map_err(err)?;
    let group: String = Input::with_theme(&theme)
        .with_prompt("API group")
        .default(a.group.clone().unwrap_or_else(|| "demo.example.io".into()))
        .validate_with(|s: &String| check_group(s).map_err(|e| e.to_string()))
        .interact_text()
        .map_err(err)?;
    let version: String = Input::with_theme(&theme)
        .with_prompt("API version")
        .default(a.api_version.clone())
        .interact_text()
        .map_err(err)?;
    let fields_text: String = Input::with_theme(&theme)
        .with_prompt("Spec fields (NAME:TYPE, comma-separated)")
        .default(a.fields.join(","))
        .validate_with(|s: &String| {
            s.split(',')
                .filter(|f| !f.trim().is_empty())
                .try_for_each(|f| parse_field(f).map(|_| ()))
                .map_err(|e| e.to_string())
        })
        .interact_text()
        .map_err(err)?;
    let fields = fields_text
        .split(',')
        .filter(|f| !f.trim().is_empty())
        .map(parse_field)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let defaults: Vec<bool> = BLOCKS
        .iter()
        .map(|b| a.blocks.iter().any(|x| x == b))
        .collect();
    let picked = MultiSelect::with_theme(&theme)
        .with_prompt("Kubernetes objects per resource (space toggles, enter accepts)")
        .items(BLOCKS)
        .defaults(&defaults)
        .interact()
        .map_err(err)?;
    let defaults: Vec<bool> = RESOURCES
        .iter()
        .map(|r| a.resources.iter().any(|x| x == r))
        .collect();
    let resources = MultiSelect::with_theme(&theme)
        .with_prompt("Resources outside the cluster (space toggles, enter accepts)")
        .items(RESOURCES)
        .defaults(&defaults)
        .interact()
        .map_err(err)?;
    Ok(Answers {
        kind,
        group,
        version,
        fields,
        blocks: picked.into_iter().map(|i| BLOCKS[i].to_string()).collect(),
        resources: resources
            .into_iter()
            .map(|i| RESOURCES[i].to_string())
            .collect(),
    })
}

fn has(a: &Answers, name: &str, ty: &str) -> bool {
    a.fields.iter().any(|(n, t)| n == name && t == ty)
}

/// The three files: katalog.yaml, crd.yaml, cr-sample.yaml. They are linted together before
/// being returned, so init never writes a Katalog that lint refuses.
pub fn generate(a: &Answers) -> anyhow::Result<Vec<(&'static str, String)>> {
    let lower = a.kind.to_ascii_lowercase();
    let plural = if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    };
    let katalog_name = format!("{lower}-operator");
    let mut on_create = Map::new();
    if a.blocks.iter().any(|b| b == "deployments") {
        let mut d = Map::new();
        d.insert("name".into(), json!("{{ .metadata.name }}"));
        d.insert(
            "image".into(),
            if has(a, "image", "string") {
                json!("{{ .spec.image }}")
            } else {
                json!("nginx:1.27")
            },
        );
        d.insert(
            "replicas".into(),
            if has(a, "replicas", "integer") {
                json!("{{ .spec.replicas }}")
            } else {
                json!(1)
            },
        );
        d.insert("reconcile".into(), json!(true));
        on_create.insert("deployments".into(), json!([d]));
    }
    if a.blocks.iter().any(|b| b == "services") {
        let target = if has(a, "port", "integer") {
            json!("{{ .spec.port }}")
        } else {
            json!(80)
        };
        on_create.insert(
            "services".into(),
            json!([{"name": "{{ .metadata.name }}", "port": 80, "targetPort": target, "reconcile": true}]),
        );
    }
    if a.blocks.iter().any(|b| b == "configMaps") {
        let mut data = Map::new();
        for (n, _) in &a.fields {
            data.insert(n.clone(), json!(format!("{{{{ .spec.{n} }}}}")));
        }
        data.insert("owner".into(), json!("{{ .metadata.name }}"));
        on_create.insert(
            "configMaps".into(),
            json!([{"name": "{{ .metadata.name }}-config", "data": data}]),
        );
    }
    let mut aws = Vec::new();
    if a.resources.iter().any(|r| r == "aws.s3") {
        aws.push(json!({"s3": {"bucket": "{{ .metadata.name }}-{{ .metadata.namespace }}-data", "region": "us-east-1", "versioning": true}}));
    }
    if a.resources.iter().any(|r| r == "aws.rds") {
        aws.push(json!({"rds": {
            "identifier": "{{ .metadata.name }}-{{ .metadata.namespace }}",
            "region": "us-east-1", "instanceClass": "db.t3.micro", "engine": "postgres",
            "allocatedStorage": 20, "masterUsername": "app",
            "masterPasswordSecret": {"name": "{{ .metadata.name }}-db", "key": "password"},
        }}));
    }
    if !aws.is_empty() {
        on_create.insert("aws".into(), Value::Array(aws));
    }
    let mut spec = json!({"crds": [{
        "name": lower,
        "apiTypes": {"group": a.group, "version": a.version, "kind": a.kind, "plural": plural},
        "operatorBox": {"default": true, "onCreate": on_create},
    }]});
    if !a.resources.is_empty() {
        spec["providers"] = json!([{"name": "aws", "required": true}]);
    }
    let katalog = json!({
        "apiVersion": "orkestra.orkspace.io/v1",
        "kind": "Katalog",
        "metadata": {"name": katalog_name, "description": format!("{} operator (written by kubectl orkestra init)", a.kind), "version": "0.1.0"},
        "spec": spec,
    });
    let katalog_text = format!(
        "# A {kind} CR becomes {what}.\n# Check: kubectl orkestra lint katalog.yaml --crd crd.yaml\n{}",
        serde_yaml_ng::to_string(&katalog)?,
        kind = a.kind,
        what = describe(a),
    );

    // The CRD: the schema says the fields' types, so lint checks template paths against it.
    let file = SourceFile::new("katalog.yaml", katalog_text.clone());
    let schemas = crate::registry::schemas();
    let loaded = load_file(&file, &schemas);
    let mut entry = loaded
        .katalog
        .as_ref()
        .and_then(|k| k.entries.first().cloned())
        .ok_or_else(|| {
            anyhow!(
                "internal: the generated Katalog does not load: {:?}",
                loaded.diagnostics
            )
        })?;
    let mut props = Map::new();
    for (n, t) in &a.fields {
        props.insert(n.clone(), json!({"type": t}));
    }
    entry.schema = Some(
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}),
    );
    let crd_text =
        serde_yaml_ng::to_string(&orkestra_engine::crd::generate(&entry, &katalog_name))?;

    let mut sample_spec = Map::new();
    for (n, t) in &a.fields {
        sample_spec.insert(n.clone(), sample_value(n, t));
    }
    let cr = json!({
        "apiVersion": format!("{}/{}", a.group, a.version),
        "kind": a.kind,
        "metadata": {"name": format!("{lower}-sample"), "namespace": "default"},
        "spec": sample_spec,
    });
    let cr_text = serde_yaml_ng::to_string(&cr)?;

    let report = lint(
        &[Input {
            file: file.clone(),
            explicit: true,
        }],
        &[SourceFile::new("crd.yaml", crd_text.clone())],
        &schemas,
    );
    if report.errors() > 0 || report.warnings() > 0 {
        let lines: Vec<String> = report
            .diagnostics
            .iter()
            .map(|d| d.render(Some(&file)))
            .collect();
        bail!(
            "internal: the generated Katalog does not pass lint:\n{}",
            lines.join("")
        );
    }
    Ok(vec![
        ("katalog.yaml", katalog_text),
        ("crd.yaml", crd_text),
        ("cr-sample.yaml", cr_text),
    ])
}

fn describe(a: &Answers) -> String {
    let mut parts: Vec<&str> = a
        .blocks
        .iter()
        .map(|b| match b.as_str() {
            "deployments" => "a Deployment",
            "services" => "a Service",
            "configMaps" => "a ConfigMap",
            _ => "an object",
        })
        .collect();
    parts.extend(a.resources.iter().map(|r| {
        if r == "aws.s3" {
            "an S3 bucket"
        } else {
            "an RDS instance"
        }
    }));
    match parts.split_last() {
        None => "a status only".to_string(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn sample_value(name: &str, ty: &str) -> Value {
    match (name, ty) {
        ("image", "string") => json!("nginx:1.27"),
        ("replicas", "integer") => json!(2),
        ("port", "integer") => json!(80),
        (_, "integer") => json!(1),
        (_, "boolean") => json!(true),
        _ => json!("example"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_passes_lint() {
        for blocks in [
            vec![],
            vec!["deployments"],
            vec!["deployments", "services", "configMaps"],
        ] {
            for resources in [vec![], vec!["aws.s3"], vec!["aws.s3", "aws.rds"]] {
                for fields in [
                    vec![],
                    vec![
                        ("image", "string"),
                        ("replicas", "integer"),
                        ("port", "integer"),
                        ("debug", "boolean"),
                    ],
                ] {
                    let a = Answers {
                        kind: "Shop".into(),
                        group: "demo.example.io".into(),
                        version: "v1".into(),
                        fields: fields
                            .iter()
                            .map(|(n, t)| (n.to_string(), t.to_string()))
                            .collect(),
                        blocks: blocks.iter().map(|s| s.to_string()).collect(),
                        resources: resources.iter().map(|s| s.to_string()).collect(),
                    };
                    let files = generate(&a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
                    assert_eq!(files.len(), 3);
                }
            }
        }
    }
}
