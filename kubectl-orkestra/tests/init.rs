//! `kubectl orkestra init`: the wizard answered in a real terminal (tmux), and the same answers
//! as flags off a terminal; what it writes passes lint and the API server takes it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

struct Tmux(String);

impl Tmux {
    fn start(cmd: &str) -> Self {
        let name = id("orkinit");
        let o = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "160",
                "-y",
                "50",
                cmd,
            ])
            .output()
            .expect("tmux");
        assert!(
            o.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmux(name)
    }
    fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    async fn wait_for_text(&self, text: &str) {
        let r = orkestra_testsupport::wait_for(
            &format!("{text:?} on the terminal"),
            Duration::from_secs(20),
            || async { self.screen().contains(text) },
        )
        .await;
        if let Err(e) = r {
            panic!("{e}; the screen:\n{}", self.screen());
        }
    }
    fn keys(&self, keys: &[&str]) {
        let o = Command::new("tmux")
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .output()
            .expect("tmux");
        assert!(o.status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

fn check_outputs(env: &orkestra_testsupport::TestEnv, dir: &Path, group: &str) {
    let o = run({
        let mut c = plugin(env);
        c.arg("lint")
            .arg(dir.join("katalog.yaml"))
            .arg("--crd")
            .arg(dir.join("crd.yaml"));
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("0 error(s), 0 warning(s)"),
        "{}",
        stderr(&o)
    );
    // The API server takes the CRD, and then the sample CR (server-side dry run for the CR).
    let o = env
        .kubectl()
        .args(["apply", "-f"])
        .arg(dir.join("crd.yaml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = env
        .kubectl()
        .args([
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            &format!("crd/shops.{group}"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = env
        .kubectl()
        .args(["apply", "--dry-run=server", "-f"])
        .arg(dir.join("cr-sample.yaml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[tokio::test]
async fn the_wizard_answered_in_a_terminal_writes_files_that_pass_lint() {
    let env = orkestra_testsupport::cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let group = format!("{}.wizard.example.io", id("g"));
    let t = Tmux::start(&format!(
        "{BIN} init --dir {}; echo EXIT=$?; sleep 60",
        out.display()
    ));
    t.wait_for_text("Kind of the new resource").await;
    t.keys(&["Shop", "Enter"]);
    t.wait_for_text("API group").await;
    t.keys(&[&group, "Enter"]);
    t.wait_for_text("API version").await;
    t.keys(&["Enter"]);
    t.wait_for_text("Spec fields").await;
    // Replace the offered default with our own list.
    t.keys(&["C-u"]);
    t.keys(&[
        "image:string,replicas:integer,port:integer,debug:boolean",
        "Enter",
    ]);
    t.wait_for_text("Kubernetes objects per resource").await;
    // deployments and services are preselected; add configMaps.
    t.keys(&["Down", "Down", "Space", "Enter"]);
    t.wait_for_text("Resources outside the cluster").await;
    t.keys(&["Space", "Enter"]);
    t.wait_for_text("EXIT=").await;
    assert!(t.screen().contains("EXIT=0"), "{}", t.screen());
    let katalog = std::fs::read_to_string(out.join("katalog.yaml")).unwrap();
    assert!(katalog.contains("kind: Shop"), "{katalog}");
    assert!(katalog.contains("configMaps:"), "{katalog}");
    assert!(katalog.contains("- s3:"), "{katalog}");
    assert!(
        katalog.contains("targetPort: '{{ .spec.port }}'"),
        "{katalog}"
    );
    check_outputs(env, &out, &group);
}

#[tokio::test]
async fn flags_give_the_same_answers_off_a_terminal() {
    let env = orkestra_testsupport::cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let group = format!("{}.flags.example.io", id("g"));
    let o = run({
        let mut c = plugin(env);
        c.args([
            "init",
            "--kind",
            "Shop",
            "--group",
            &group,
            "--field",
            "image:string,replicas:integer,port:integer,debug:boolean",
        ])
        .args([
            "--blocks",
            "deployments,services,configMaps",
            "--resources",
            "aws.s3",
            "--dir",
        ])
        .arg(dir.path());
        c
    });
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    check_outputs(env, dir.path(), &group);
    // Off a terminal a missing answer is an error, not a prompt; existing files are kept.
    let o = run({
        let mut c = plugin(env);
        c.args(["init", "--group", &group, "--dir"]).arg(dir.path());
        c
    });
    assert_one_line_error(&o, "--kind is required when not on a terminal");
    let o = run({
        let mut c = plugin(env);
        c.args(["init", "--kind", "Shop", "--group", &group, "--dir"])
            .arg(dir.path());
        c
    });
    assert_one_line_error(&o, "exists; pass --force");
}
