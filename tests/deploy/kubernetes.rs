//! The Kubernetes manifests under `deploy/kubernetes/`: what kustomization lists, the
//! Deployment's probes, resources and privileges, its environment as a real configuration,
//! the ConfigMap as a valid message mounted where v8help reads it, the Service and PDB
//! selectors, and a kubelet-style ConfigMap update reaching a running v8help.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use v8help::document::{Document, State};
use v8help::time::Zone;

use crate::common::Binary;
use crate::common::client::blocking_https_get;
use crate::common::pki::Pki;
use crate::common::saves::ConfigMapDir;
use crate::common::wait::{POLL, try_wait_blocking};
use crate::container::{containerfile_uid, containerfile_volumes};
use crate::files::*;

/// The manifests kustomization.yaml lists, one of each kind.
pub(crate) struct Manifests {
    kustomization: Value,
    pub(crate) deployment: Value,
    pub(crate) service: Value,
    configmap: Value,
    pdb: Value,
}

pub(crate) fn manifests() -> Manifests {
    let kustomization = yaml_docs("kubernetes/kustomization.yaml").remove(0);
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for resource in resources(&kustomization) {
        for doc in yaml_docs(&format!("kubernetes/{resource}")) {
            let kind = str_at(&doc, "/kind", &resource).to_string();
            by_kind.entry(kind).or_default().push(doc);
        }
    }
    let mut one = |kind: &str| {
        let mut docs = by_kind.remove(kind).unwrap_or_default();
        assert_eq!(
            docs.len(),
            1,
            "expected exactly one {kind} among the kustomization's resources"
        );
        docs.remove(0)
    };
    Manifests {
        deployment: one("Deployment"),
        service: one("Service"),
        configmap: one("ConfigMap"),
        pdb: one("PodDisruptionBudget"),
        kustomization,
    }
}

fn resources(kustomization: &Value) -> Vec<String> {
    at(kustomization, "/resources", "kustomization.yaml")
        .as_array()
        .expect("resources is a list")
        .iter()
        .map(|r| r.as_str().expect("resource is a file name").to_string())
        .collect()
}

impl Manifests {
    fn container(&self) -> &Value {
        let containers = at(&self.deployment, "/spec/template/spec/containers", "Deployment")
            .as_array()
            .expect("containers is a list");
        assert_eq!(containers.len(), 1, "the Deployment runs exactly one container");
        &containers[0]
    }

    fn pod_labels(&self) -> BTreeMap<String, String> {
        labels(at(
            &self.deployment,
            "/spec/template/metadata/labels",
            "Deployment pod template",
        ))
    }

    /// The container's environment; every variable must have a literal value.
    fn env(&self) -> Vec<(String, String)> {
        at(self.container(), "/env", "container")
            .as_array()
            .expect("env is a list")
            .iter()
            .map(|e| {
                let name = str_at(e, "/name", "env entry").to_string();
                let value = str_at(e, "/value", &format!("env {name} (valueFrom is not checked here)")).to_string();
                (name, value)
            })
            .collect()
    }

    pub(crate) fn config(&self) -> v8help::config::ServeConfig {
        resolve_env(&self.env()).unwrap_or_else(|e| panic!("Deployment env is not a valid v8help configuration: {e}"))
    }

    /// containerPort numbers by port name.
    pub(crate) fn container_ports(&self) -> BTreeMap<String, u16> {
        at(self.container(), "/ports", "container")
            .as_array()
            .expect("ports is a list")
            .iter()
            .map(|p| {
                let name = str_at(p, "/name", "container port").to_string();
                let number = at(p, "/containerPort", "container port")
                    .as_u64()
                    .expect("containerPort is a number");
                (name, number as u16)
            })
            .collect()
    }

    /// A port reference (a number or a port name) resolved to a containerPort, or a panic.
    fn resolve_port(&self, port: &Value, what: &str) -> u16 {
        let ports = self.container_ports();
        match port {
            Value::String(name) => *ports
                .get(name)
                .unwrap_or_else(|| panic!("{what}: no container port is named {name:?} (ports: {ports:?})")),
            Value::Number(n) => {
                let n = n.as_u64().expect("port number") as u16;
                assert!(
                    ports.values().any(|&p| p == n),
                    "{what}: port {n} is not a container port ({ports:?})"
                );
                n
            }
            other => panic!("{what}: port {other} is neither a name nor a number"),
        }
    }

    fn volumes(&self) -> &Vec<Value> {
        at(&self.deployment, "/spec/template/spec/volumes", "Deployment")
            .as_array()
            .expect("volumes is a list")
    }

    fn mounts(&self) -> &Vec<Value> {
        at(self.container(), "/volumeMounts", "container")
            .as_array()
            .expect("volumeMounts is a list")
    }

    /// The mount of the volume whose source has `pointer` equal to `name`.
    fn mount_of(&self, pointer: &str, name: &str) -> &Value {
        let volume = self
            .volumes()
            .iter()
            .find(|v| v.pointer(pointer).and_then(Value::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no volume has {pointer} = {name}"));
        let volume_name = str_at(volume, "/name", "volume");
        let mounts: Vec<&Value> = self
            .mounts()
            .iter()
            .filter(|m| m.pointer("/name").and_then(Value::as_str) == Some(volume_name))
            .collect();
        assert_eq!(mounts.len(), 1, "volume {volume_name} must be mounted exactly once");
        mounts[0]
    }

    fn configmap_name(&self) -> &str {
        str_at(&self.configmap, "/metadata/name", "ConfigMap")
    }
}

fn labels(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .expect("labels are a map")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("label value is a string").to_string()))
        .collect()
}

fn assert_selects(selector: &BTreeMap<String, String>, pods: &BTreeMap<String, String>, what: &str) {
    assert!(!selector.is_empty(), "{what}: empty selector would match every pod");
    for (k, v) in selector {
        assert_eq!(
            pods.get(k),
            Some(v),
            "{what}: selector {k}={v} does not match the Deployment's pod labels {pods:?}"
        );
    }
}

#[test]
fn kustomization_lists_every_manifest_in_the_directory() {
    let m = manifests();
    let listed: BTreeSet<String> = resources(&m.kustomization).into_iter().collect();
    let present: BTreeSet<String> = std::fs::read_dir(deploy_path("kubernetes"))
        .expect("deploy/kubernetes")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|n| (n.ends_with(".yaml") || n.ends_with(".yml")) && n != "kustomization.yaml")
        .collect();
    assert_eq!(
        listed, present,
        "kustomization.yaml resources vs. the YAML files beside it"
    );
    // The image kustomize retags must be the one the Deployment uses.
    let image = str_at(m.container(), "/image", "container");
    let name = str_at(&m.kustomization, "/images/0/name", "kustomization images");
    assert!(
        image.starts_with(&format!("{name}:")) || image == name,
        "kustomization images[0].name {name} does not match the Deployment image {image}"
    );
}

#[test]
fn deployment_runs_replicas_with_healthz_probes_resources_and_no_privileges() {
    let m = manifests();
    let d = &m.deployment;
    let replicas = at(d, "/spec/replicas", "Deployment")
        .as_u64()
        .expect("replicas is a number");
    assert!(
        replicas >= 2,
        "Deployment replicas = {replicas}; at least 2 keep the message up during a rollout or drain"
    );

    let c = m.container();
    let config = m.config();
    for probe in ["readinessProbe", "livenessProbe"] {
        let what = format!("container {probe}");
        let get = at(c, &format!("/{probe}/httpGet"), &what);
        assert_eq!(str_at(get, "/path", &what), "/healthz", "{what} must ask /healthz");
        let port = m.resolve_port(at(get, "/port", &what), &what);
        let scheme = get.pointer("/scheme").and_then(Value::as_str).unwrap_or("HTTP");
        match scheme {
            "HTTPS" => assert_eq!(
                port,
                config.listen.port(),
                "{what}: HTTPS probe must use the V8HELP_LISTEN port"
            ),
            "HTTP" => assert_eq!(
                Some(port),
                config.http_listen.map(|a| a.port()),
                "{what}: an HTTP probe must use the V8HELP_HTTP_LISTEN port (v8help's plain listener)"
            ),
            other => panic!("{what}: unknown scheme {other}"),
        }
    }

    for pointer in [
        "/resources/requests/cpu",
        "/resources/requests/memory",
        "/resources/limits/cpu",
        "/resources/limits/memory",
    ] {
        at(c, pointer, "container");
    }

    let pod_sc = d
        .pointer("/spec/template/spec/securityContext")
        .cloned()
        .unwrap_or(Value::Null);
    let sc = at(c, "/securityContext", "container");
    let effective = |key: &str| sc.get(key).or_else(|| pod_sc.get(key)).cloned();
    assert_eq!(
        effective("runAsNonRoot"),
        Some(Value::Bool(true)),
        "runAsNonRoot must be true"
    );
    let uid = effective("runAsUser").and_then(|v| v.as_u64());
    assert!(
        uid.is_some_and(|u| u != 0),
        "runAsUser must be set and not 0, got {uid:?}"
    );
    assert_eq!(
        sc.get("readOnlyRootFilesystem"),
        Some(&Value::Bool(true)),
        "readOnlyRootFilesystem"
    );
    assert_eq!(
        sc.get("allowPrivilegeEscalation"),
        Some(&Value::Bool(false)),
        "allowPrivilegeEscalation"
    );
    let drop = at(sc, "/capabilities/drop", "container securityContext");
    assert!(
        drop.as_array().is_some_and(|d| d.iter().any(|c| c == "ALL")),
        "capabilities.drop must contain ALL, got {drop}"
    );
    assert!(
        sc.pointer("/capabilities/add").is_none(),
        "no capability may be added back (v8help listens on ports above 1024 in the pod)"
    );
    // The same user as the image, so that files the image and the volumes provide agree.
    assert_eq!(uid, Some(containerfile_uid()), "runAsUser vs. the Containerfile's USER");
}

#[test]
fn deployment_env_is_a_valid_configuration_listening_where_the_ports_say() {
    let m = manifests();
    let config = m.config();
    assert!(
        config.listen.ip().is_unspecified(),
        "V8HELP_LISTEN {} must be 0.0.0.0 or [::]: a loopback address is unreachable from the Service",
        config.listen
    );
    let ports = m.container_ports();
    let mut listening = vec![config.listen.port()];
    if let Some(http) = config.http_listen {
        assert!(
            http.ip().is_unspecified(),
            "V8HELP_HTTP_LISTEN {http} must be 0.0.0.0 or [::]"
        );
        listening.push(http.port());
        assert_eq!(
            ports.get("http"),
            Some(&http.port()),
            "container port `http` vs. V8HELP_HTTP_LISTEN"
        );
    }
    assert_eq!(
        ports.get("https"),
        Some(&config.listen.port()),
        "container port `https` vs. V8HELP_LISTEN"
    );
    for (name, port) in &ports {
        assert!(
            listening.contains(port),
            "container port {name}={port} is not a port v8help listens on"
        );
    }

    // TLS from a kubernetes.io/tls Secret: the files are its keys tls.crt and tls.key.
    let (cert, key) = config.tls_files.clone().expect("V8HELP_CERT and V8HELP_KEY are set");
    let tls_volume = m
        .volumes()
        .iter()
        .find(|v| v.pointer("/secret/secretName").is_some())
        .expect("a Secret volume holds the TLS certificate");
    let secret = str_at(tls_volume, "/secret/secretName", "TLS volume");
    let mount = Path::new(str_at(
        m.mount_of("/secret/secretName", secret),
        "/mountPath",
        "TLS mount",
    ));
    assert_eq!(
        cert,
        mount.join("tls.crt"),
        "V8HELP_CERT must be tls.crt of the mounted Secret"
    );
    assert_eq!(
        key,
        mount.join("tls.key"),
        "V8HELP_KEY must be tls.key of the mounted Secret"
    );
    assert!(
        tls_volume.pointer("/secret/optional") != Some(&Value::Bool(true)),
        "the TLS Secret must not be optional: v8help refuses to start without the files it names"
    );
}

#[test]
fn configmap_is_mounted_as_a_directory_holding_the_message_file() {
    let m = manifests();
    let config = m.config();
    let name = m.configmap_name();
    let mount = m.mount_of("/configMap/name", name);
    assert!(
        mount.get("subPath").is_none() && mount.get("subPathExpr").is_none(),
        "the ConfigMap must be mounted as a directory: a subPath mount never receives updates"
    );
    assert_eq!(
        mount.get("readOnly"),
        Some(&Value::Bool(true)),
        "mount the message read-only"
    );
    let mount_path = Path::new(str_at(mount, "/mountPath", "ConfigMap mount"));
    assert_eq!(
        config.message.parent(),
        Some(mount_path),
        "V8HELP_MESSAGE must be a file directly inside the ConfigMap mount"
    );
    let file = config
        .message
        .file_name()
        .expect("message file name")
        .to_string_lossy()
        .into_owned();
    at(&m.configmap, &format!("/data/{file}"), "ConfigMap");
    let volume = m
        .volumes()
        .iter()
        .find(|v| v.pointer("/configMap/name").and_then(Value::as_str) == Some(name))
        .expect("ConfigMap volume");
    if let Some(items) = volume.pointer("/configMap/items").and_then(Value::as_array) {
        assert!(
            items
                .iter()
                .any(|i| i["key"] == file.as_str() && i["path"] == file.as_str()),
            "configMap items must project {file} under its own name"
        );
    }
    // The image declares the same directory as its volume.
    assert!(
        containerfile_volumes().contains(&mount_path.to_string_lossy().into_owned()),
        "the Containerfile's VOLUME must be the directory the ConfigMap is mounted at ({})",
        mount_path.display()
    );
}

#[test]
fn configmap_message_is_a_valid_document_that_is_not_live() {
    let m = manifests();
    let file = m
        .config()
        .message
        .file_name()
        .expect("file")
        .to_string_lossy()
        .into_owned();
    let text = str_at(&m.configmap, &format!("/data/{file}"), "ConfigMap data");
    let json: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("ConfigMap {file} is not JSON: {e}"));
    assert!(json.is_object(), "ConfigMap {file} must be a JSON object");
    let doc = Document::parse(text.as_bytes(), Zone::UTC)
        .unwrap_or_else(|e| panic!("ConfigMap {file} is not a valid v8help document: {e}"));
    assert!(
        !doc.user_message.is_empty(),
        "the example should show admins a userMessage to edit"
    );
    // Applying the example must not put a stale message in front of users.
    let state = doc.state(chrono::Utc::now());
    assert_ne!(
        state,
        State::Active,
        "the example message in the ConfigMap is live; let it expire"
    );
}

#[test]
fn service_and_pdb_select_the_pods_and_the_service_targets_their_ports() {
    let m = manifests();
    let pods = m.pod_labels();
    let deployment_selector = labels(at(&m.deployment, "/spec/selector/matchLabels", "Deployment"));
    assert_selects(&deployment_selector, &pods, "Deployment selector");

    let service_selector = labels(at(&m.service, "/spec/selector", "Service"));
    assert_selects(&service_selector, &pods, "Service");
    let config = m.config();
    let ports = at(&m.service, "/spec/ports", "Service").as_array().expect("ports");
    assert!(!ports.is_empty(), "the Service exposes no port");
    for p in ports {
        let name = str_at(p, "/name", "Service port");
        let target = p.get("targetPort").or_else(|| p.get("port")).expect("port");
        let container_port = m.resolve_port(target, &format!("Service port {name}"));
        if name == "https" {
            assert_eq!(
                container_port,
                config.listen.port(),
                "Service https must reach the HTTPS listener"
            );
        }
    }

    let pdb_selector = labels(at(&m.pdb, "/spec/selector/matchLabels", "PodDisruptionBudget"));
    assert_selects(&pdb_selector, &pods, "PodDisruptionBudget");
    let replicas = m.deployment["spec"]["replicas"].as_u64().expect("replicas");
    if let Some(min) = m.pdb.pointer("/spec/minAvailable") {
        let min = min.as_u64().expect("minAvailable as a number of pods");
        assert!(min >= 1, "minAvailable 0 protects nothing");
        assert!(
            min < replicas,
            "minAvailable {min} >= replicas {replicas}: no node could ever be drained"
        );
    } else {
        let max = at(&m.pdb, "/spec/maxUnavailable", "PodDisruptionBudget")
            .as_u64()
            .expect("number");
        assert!(
            max >= 1 && max < replicas,
            "maxUnavailable {max} with {replicas} replicas"
        );
    }
}

#[test]
fn kubernetes_readme_shows_how_to_edit_the_message_with_the_real_names() {
    let m = manifests();
    let readme = read("kubernetes/README.md");
    let name = m.configmap_name();
    let file = m
        .config()
        .message
        .file_name()
        .expect("file")
        .to_string_lossy()
        .into_owned();
    let tls = m
        .volumes()
        .iter()
        .find_map(|v| v.pointer("/secret/secretName").and_then(Value::as_str))
        .expect("TLS secret");
    for needle in [
        format!("kubectl edit configmap {name}"),
        format!("kubectl create configmap {name} --from-file={file}"),
        "--dry-run=client -o yaml | kubectl apply -f -".to_string(),
        format!("kubectl create secret tls {tls}"),
        "subPath".to_string(),
        "..data".to_string(),
    ] {
        assert!(
            readme.contains(&needle),
            "deploy/kubernetes/README.md should mention `{needle}`"
        );
    }
}

#[test]
fn configmap_update_by_the_kubelet_goes_live_without_a_restart() {
    let m = manifests();
    let cert = Pki::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    // Every mounted volume becomes a directory under tmp; env paths follow their mounts.
    let mut env = Vec::new();
    for (name, value) in m.env() {
        let mut value = value;
        for mount in m.mounts() {
            let mount_path = str_at(mount, "/mountPath", "mount");
            if let Some(rest) = value.strip_prefix(mount_path) {
                value = format!("{}{rest}", tmp.path().join(str_at(mount, "/name", "mount")).display());
            }
        }
        if name.ends_with("LISTEN") {
            value = "127.0.0.1:0".into();
        }
        env.push((name, value));
    }
    // Only the directory watch can make the test pass: the periodic re-read is an hour away.
    env.push(("V8HELP_RECHECK_INTERVAL".into(), "3600".into()));
    let config = resolve_env(&env).expect("rewritten env");
    let message_dir = config.message.parent().expect("message dir").to_path_buf();
    let file = config.message.file_name().expect("file").to_string_lossy().into_owned();
    std::fs::create_dir_all(&message_dir).expect("message dir");
    let example = str_at(&m.configmap, &format!("/data/{file}"), "ConfigMap").to_string();
    let mut mount = ConfigMapDir::with_key(&message_dir, &file, example.as_bytes());
    let (cert_path, key_path) = config.tls_files.clone().expect("tls files");
    std::fs::create_dir_all(cert_path.parent().expect("tls dir")).expect("tls dir");
    std::fs::write(&cert_path, &cert.cert_pem).expect("cert");
    std::fs::write(&key_path, &cert.key_pem).expect("key");

    let server = Binary::serve_env(&env);
    // The readiness probe as the kubelet sends it.
    let probe = at(m.container(), "/readinessProbe/httpGet", "readinessProbe");
    let probe_path = str_at(probe, "/path", "readinessProbe");
    let health = blocking_https_get(server.https, &cert.ca, "localhost", probe_path, &[]);
    assert_eq!(
        health.status,
        200,
        "readiness probe: {}",
        String::from_utf8_lossy(&health.body)
    );
    let before = blocking_https_get(server.https, &cert.ca, "localhost", "/", &[]);
    assert_eq!(before.json()["userMessage"], "", "the expired example is not served");

    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let text = format!(r#"{{"userMessage": "Maintenance until 14:00 (kubelet test)", "expires": "{expires}"}}"#);
    mount.update(text.as_bytes());
    let live = try_wait_blocking(Duration::from_secs(5), POLL, || {
        let r = blocking_https_get(server.https, &cert.ca, "localhost", "/message.json", &[]);
        (r.json()["userMessage"] == "Maintenance until 14:00 (kubelet test)").then_some(r)
    });
    assert!(
        live.is_some(),
        "a ConfigMap update (..data swap) did not reach v8help within 5 s"
    );
}
