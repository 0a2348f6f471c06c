//! `redis-trib lab`: detached nodes started, listed and stopped by pid.

use crate::support::*;
use redis_trib::lab::Lab;

#[test]
fn lab_up_status_down() {
    let dir = tempfile::tempdir().unwrap();
    let lab_dir = dir.path().join("lab");
    let run = |args: &[&str]| {
        let mut c = bin();
        c.args(args).env("REDIS_TRIB_LAB_DIR", &lab_dir);
        Run::from(c.output().unwrap())
    };
    // A random base, again while another test's lab holds one of its ports (`lab up`
    // says so and leaves nothing behind): no port is probed, released and reused.
    let (base, up) = (0..20)
        .map(|_| {
            let base = fastrand::u16(20000..29000);
            (
                base,
                run(&["lab", "up", "2", "--base-port", &base.to_string()]),
            )
        })
        .find(|(_, up)| {
            let taken = up.code != 0
                && (up.stderr.contains("is in use") || up.stderr.contains("could not listen"));
            if taken {
                assert!(
                    !lab_dir.join("lab.json").exists(),
                    "a failed lab up left state"
                );
            }
            !taken
        })
        .expect("a free pair of ports within 20 tries");
    // Whatever happens next, the nodes go away with the test.
    struct Down(std::path::PathBuf);
    impl Drop for Down {
        fn drop(&mut self) {
            if let Ok(mut lab) = Lab::load(&self.0) {
                let _ = lab.stop();
            }
        }
    }
    let _down = Down(lab_dir.clone());
    let listed = up.ok().lines().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        listed,
        vec![
            format!("127.0.0.1:{base}"),
            format!("127.0.0.1:{}", base + 1)
        ]
    );
    let lab = Lab::load(&lab_dir).unwrap();
    assert!(lab.nodes.iter().all(Lab::is_running));
    // Free, cluster-enabled nodes.
    let info = text(raw(&lab.nodes[0].addr(), None, &["CLUSTER", "INFO"]).unwrap());
    assert!(info.contains("cluster_known_nodes:1"));

    run(&["lab", "up", "2", "--base-port", &base.to_string()]).fails_with("already running");
    assert!(run(&["lab", "status"]).ok().contains("running"));
    run(&["lab", "down"]).ok();
    assert!(lab.nodes.iter().all(|n| !Lab::is_running(n)));
    assert!(!lab_dir.exists());
    run(&["lab", "down"]).fails_with("no lab in");
}
