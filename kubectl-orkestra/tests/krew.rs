//! The release archive and krew: `scripts/release.sh` packs the plugin with its LICENSE and
//! fills the sha256 into the krew manifest; kubectl finds the plugin, installed by krew (built by
//! tests/cluster/build-deps.sh) into a temporary KREW_ROOT, and runs `kubectl orkestra version`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn kubectl() -> PathBuf {
    // The kubectl the test systems use (PATH, or the pinned build); no cluster needed here.
    std::env::var_os("KUBECTL").map_or_else(|| PathBuf::from("kubectl"), PathBuf::from)
}

fn release(out: &Path) -> PathBuf {
    let o = Command::new(repo().join("scripts/release.sh"))
        .args(["--out"])
        .arg(out)
        .env("ORKESTRA_RELEASE_BIN", BIN)
        .output()
        .expect("scripts/release.sh");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut parts = vec![dir.to_path_buf()];
    parts.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(parts).unwrap()
}

#[test]
fn release_archive_holds_the_plugin_and_license_and_the_manifest_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let archive = release(dir.path());
    let o = Command::new("tar")
        .arg("tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&o.stdout);
    let mut files: Vec<&str> = listing.lines().collect();
    files.sort();
    assert_eq!(files, vec!["LICENSE", "kubectl-orkestra"]);
    let o = Command::new("sha256sum").arg(&archive).output().unwrap();
    let sha = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let manifest = std::fs::read_to_string(dir.path().join("krew-manifest.yaml")).unwrap();
    assert!(
        manifest.contains(&format!("sha256: \"{sha}\"")),
        "{manifest}"
    );
    assert!(
        manifest.contains(&format!("version: v{}", env!("CARGO_PKG_VERSION"))),
        "{manifest}"
    );
    // Reproducible: the same binary gives the same archive.
    let again = tempfile::tempdir().unwrap();
    let second = release(again.path());
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(&second).unwrap()
    );

    // kubectl's own plugin discovery finds the unpacked plugin on PATH.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let o = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&bin)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = Command::new(kubectl())
        .args(["orkestra", "version"])
        .env("PATH", path_with(&bin))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("kubectl-orkestra {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// krew itself, built by tests/cluster/build-deps.sh at the pinned v0.4.3 (the Go module proxy
/// here refuses v0.4.5): the release archive installed with the real `kubectl krew install
/// --manifest --archive` into a temporary KREW_ROOT, the plugin run through kubectl's plugin
/// lookup (`version` and `lint`), then `kubectl krew uninstall`. A krew that cannot be built
/// fails this test.
#[test]
fn krew_installs_the_archive_and_kubectl_runs_the_plugin() {
    let o = Command::new(repo().join("tests/cluster/build-deps.sh"))
        .arg("krew")
        .output()
        .expect("build-deps.sh");
    assert!(
        o.status.success(),
        "krew could not be built by tests/cluster/build-deps.sh krew: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let cache = std::env::var_os("ORKESTRA_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/orkestra")
        });
    let krew = std::fs::read_dir(cache.join("bin"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("krew-") && !n.contains(".tmp."))
        })
        .map(|d| d.join("krew"))
        .expect("krew in the cache after build-deps.sh krew");
    let dir = tempfile::tempdir().unwrap();
    let archive = release(dir.path());
    // kubectl finds krew as the kubectl-krew plugin.
    let tools = dir.path().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    std::os::unix::fs::symlink(&krew, tools.join("kubectl-krew")).unwrap();
    let krew_root = dir.path().join("krew-root");
    // kubectl with this KREW_ROOT, finding plugins in `bin`; the command must succeed.
    let kubectl_ok = |bin: &Path, args: &[&std::ffi::OsStr]| {
        let o = Command::new(kubectl())
            .args(args)
            .env("KREW_ROOT", &krew_root)
            .env("PATH", path_with(bin))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    let manifest = format!(
        "--manifest={}",
        dir.path().join("krew-manifest.yaml").display()
    );
    let archive = format!("--archive={}", archive.display());
    kubectl_ok(
        &tools,
        &[
            "krew".as_ref(),
            "install".as_ref(),
            manifest.as_ref(),
            archive.as_ref(),
        ],
    );
    let plugins = krew_root.join("bin");
    let o = kubectl_ok(&plugins, &["orkestra".as_ref(), "version".as_ref()]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("kubectl-orkestra {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert!(krew_root.join("store/orkestra").exists());

    // lint through kubectl's plugin lookup, on the examples of this repository.
    let katalogs = repo().join("katalogs");
    let o = kubectl_ok(
        &plugins,
        &[
            "orkestra".as_ref(),
            "lint".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
            katalogs.as_os_str(),
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report}");

    // krew refuses every command but install without an initialized plugin index, and
    // `kubectl krew update` clones krew-index from GitHub, which cannot be reached here: the
    // default index is a local git repository holding our manifest, as a private index would be.
    let index = krew_root.join("index/default");
    std::fs::create_dir_all(index.join("plugins")).unwrap();
    std::fs::copy(
        dir.path().join("krew-manifest.yaml"),
        index.join("plugins/orkestra.yaml"),
    )
    .unwrap();
    let o = Command::new("git")
        .args(["init", "-q"])
        .arg(&index)
        .output()
        .expect("git");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    kubectl_ok(
        &tools,
        &["krew".as_ref(), "uninstall".as_ref(), "orkestra".as_ref()],
    );
    assert!(!krew_root.join("store/orkestra").exists());
    assert!(!krew_root.join("bin/kubectl-orkestra").exists());
}
