//! `redis-trib lab`: detached nodes started, listed and stopped by pid.

use crate::support::*;
use redis_trib::lab::Lab;
use std::net::TcpListener;

fn free_base_port(count: u16) -> u16 {
    let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
    (0..500)
        .map(|_| fastrand::u16(40000..45000))
        .find(|&b| (b..b + count).all(|p| free(p) && free(p + 10000)))
        .expect("a free port range")
}

#[test]
fn lab_up_status_down() {
    let dir = tempfile::tempdir().unwrap();
    let lab_dir = dir.path().join("lab");
    let base = free_base_port(2);
    let run = |args: &[&str]| {
        let mut c = bin();
        c.args(args).env("REDIS_TRIB_LAB_DIR", &lab_dir);
        Run::from(c.output().unwrap())
    };
    let up = run(&["lab", "up", "2", "--base-port", &base.to_string()]);
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
