//! The whole loop on its channels, with no API server: a pod event starts a pod task that
//! scrapes a loopback endpoint, and its evaluation comes out as a gate update for the writer.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::controller::Settings;
use crate::decision::engine::PodInfo;
use crate::kube::watch::PodSnapshot;
use crate::rules::load_str;
use crate::telemetry::metrics::Metrics;

const GATE: &str = "podgate.dev/queue-ok";

/// Serves `body` as a metrics page to every connection on a loopback port; returns the port.
async fn metrics_endpoint(body: &'static str) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

fn pod(port: u16) -> PodSnapshot {
    PodSnapshot {
        key: PodKey::new("shop", "web-1"),
        info: PodInfo {
            uid: "uid-1".to_string(),
            labels: BTreeMap::new(),
            gates: vec![GATE.to_string()],
            containers_ready_since: Some(crate::time::now_ms() - 60_000),
            override_by: None,
            conditions: BTreeMap::new(),
            condition_since: BTreeMap::new(),
        },
        phase: Some("Running".to_string()),
        pod_ip: Some(Ipv4Addr::LOCALHOST.into()),
        node_name: None,
        deleting: false,
        prometheus_port: Some(port.to_string()),
        prometheus_path: None,
        container_ports: Vec::new(),
        owner: None,
    }
}

#[tokio::test]
async fn a_pod_event_leads_to_an_evaluation_and_a_gate_update() {
    let port = metrics_endpoint("# TYPE work_queue_depth gauge\nwork_queue_depth 3\n").await;
    let rules = load_str(
        "queue.yaml",
        &format!(
            "rules:\n  - name: queue\n    conditionType: {GATE}\n    interval: 1s\n    \
             timeout: 500ms\n    vars:\n      queue: {{scrape: 'max(work_queue_depth)'}}\n    \
             expr: 'queue < 100'\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (metrics, _registry) = Metrics::new();
    let shared = Shared::new(&Settings::default(), metrics, None).expect("HTTP clients");
    let (updates_tx, mut updates_rx) = mpsc::channel(16);
    let controller = Controller::new(
        PathBuf::from("/nonexistent"),
        rules,
        Arc::new(shared),
        Arc::new(Health::default()),
        updates_tx,
    );
    let (pods_tx, pods) = mpsc::channel(16);
    let (_reloads_tx, reloads) = mpsc::channel(1);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let running = tokio::spawn(controller.run(Inputs {
        pods,
        reloads,
        shutdown,
    }));

    pods_tx
        .send(PodEvent::Upsert(pod(port)))
        .await
        .expect("the loop listens");
    let decided = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match updates_rx.recv().await {
                Some(u) if u.condition.status_str() == "True" => break u,
                Some(_) => continue,
                None => panic!("the loop stopped"),
            }
        }
    })
    .await
    .expect("a True gate update within 10s");
    assert_eq!(decided.condition_type, GATE);
    assert_eq!(decided.uid, "uid-1");

    shutdown_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the loop stops on shutdown")
        .expect("the loop did not panic");
}
