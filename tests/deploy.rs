//! Checks of the deployment files under `deploy/`: the Kubernetes manifests, the container
//! build, the systemd unit and the reverse-proxy snippets. Each file is parsed and checked
//! against the others and against the real v8help (its flags, its document validation, the
//! built binary), and the tools that can judge a file (systemd-analyze, nginx, apache2) are run.
//!
//! Debian packages these tests need (CI: `apt-get install -y systemd procps nginx apache2`):
//! - `systemd`  — `systemd-analyze verify` on the unit;
//! - `procps`   — `/bin/kill`, which `systemd-analyze verify` checks for ExecReload=;
//! - `nginx`    — `nginx -t` on the example site, and serving through it;
//! - `apache2`  — `apache2 -t` on the example virtual host, and serving through it.
//!
//! A missing tool fails its test with a message saying what to install, unless the matching
//! variable says it is known to be absent: `V8HELP_SKIP_SYSTEMD=1`, `V8HELP_SKIP_NGINX=1`,
//! `V8HELP_SKIP_APACHE=1`.

mod common_deploy;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use v8help::document::{Document, State};
use v8help::time::Zone;

use common_deploy::*;

// ───────────────────────────── Kubernetes ─────────────────────────────

/// The manifests kustomization.yaml lists, one of each kind.
struct Manifests {
    kustomization: Value,
    deployment: Value,
    service: Value,
    configmap: Value,
    pdb: Value,
}

fn manifests() -> Manifests {
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

    fn config(&self) -> v8help::config::ServeConfig {
        resolve_env(&self.env()).unwrap_or_else(|e| panic!("Deployment env is not a valid v8help configuration: {e}"))
    }

    /// containerPort numbers by port name.
    fn container_ports(&self) -> BTreeMap<String, u16> {
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

/// Writes `files` into `dir` the way the kubelet's atomic writer does: a timestamped
/// directory, a `..data` symlink to it, and per-key symlinks through `..data`.
fn kubelet_write(dir: &Path, generation: u32, files: &[(&str, &str)]) {
    let stamp = format!("..2026_01_01_00_00_00.{generation:09}");
    let payload = dir.join(&stamp);
    std::fs::create_dir_all(&payload).expect("payload dir");
    for (name, text) in files {
        std::fs::write(payload.join(name), text).expect("write payload");
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp).expect("..data_tmp symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).expect("key symlink");
        }
    }
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let n = entry.file_name().to_string_lossy().into_owned();
        if n.starts_with("..2") && n != stamp {
            std::fs::remove_dir_all(entry.path()).expect("remove old payload");
        }
    }
}

#[test]
fn configmap_update_by_the_kubelet_goes_live_without_a_restart() {
    let m = manifests();
    let cert = test_cert();
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
    kubelet_write(&message_dir, 1, &[(&file, &example)]);
    let (cert_path, key_path) = config.tls_files.clone().expect("tls files");
    std::fs::create_dir_all(cert_path.parent().expect("tls dir")).expect("tls dir");
    std::fs::write(&cert_path, &cert.cert_pem).expect("cert");
    std::fs::write(&key_path, &cert.key_pem).expect("key");

    let server = start_v8help(&env);
    // The readiness probe as the kubelet sends it.
    let probe = at(m.container(), "/readinessProbe/httpGet", "readinessProbe");
    let probe_path = str_at(probe, "/path", "readinessProbe");
    let health = https_get(server.https, &cert, "localhost", probe_path, &[]);
    assert_eq!(
        health.status,
        200,
        "readiness probe: {}",
        String::from_utf8_lossy(&health.body)
    );
    let before = https_get(server.https, &cert, "localhost", "/", &[]);
    assert_eq!(before.json()["userMessage"], "", "the expired example is not served");

    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let text = format!(r#"{{"userMessage": "Maintenance until 14:00 (kubelet test)", "expires": "{expires}"}}"#);
    kubelet_write(&message_dir, 2, &[(&file, &text)]);
    let live = wait_for(Duration::from_secs(5), || {
        let r = https_get(server.https, &cert, "localhost", "/message.json", &[]);
        (r.json()["userMessage"] == "Maintenance until 14:00 (kubelet test)").then_some(r)
    });
    assert!(
        live.is_some(),
        "a ConfigMap update (..data swap) did not reach v8help within 5 s"
    );
}

// ───────────────────────────── Container ─────────────────────────────

/// The Containerfile's instructions (keyword in upper case, arguments), with line
/// continuations joined and comments dropped.
fn containerfile() -> Vec<(String, String)> {
    let text = read("container/Containerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current.split_once(char::is_whitespace).unwrap_or((&current, ""));
                out.push((keyword.to_ascii_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    assert!(current.is_empty(), "Containerfile ends inside a line continuation");
    out
}

/// The instructions of the last stage (after the last FROM).
fn final_stage() -> Vec<(String, String)> {
    let all = containerfile();
    let last_from = all.iter().rposition(|(k, _)| k == "FROM").expect("a FROM");
    all[last_from..].to_vec()
}

fn containerfile_env() -> Vec<(String, String)> {
    final_stage()
        .iter()
        .filter(|(k, _)| k == "ENV")
        .flat_map(|(_, args)| {
            args.split_whitespace()
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("ENV in KEY=value form");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn containerfile_uid() -> u64 {
    let stage = final_stage();
    let user = stage
        .iter()
        .rev()
        .find(|(k, _)| k == "USER")
        .map(|(_, a)| a.clone())
        .expect("the final stage sets USER");
    let uid = user.split(':').next().unwrap_or_default();
    uid.parse()
        .unwrap_or_else(|_| panic!("USER {user} must be numeric, or Kubernetes runAsNonRoot cannot check it"))
}

fn containerfile_volumes() -> Vec<String> {
    final_stage()
        .iter()
        .filter(|(k, _)| k == "VOLUME")
        .flat_map(|(_, args)| match serde_json::from_str::<Vec<String>>(args) {
            Ok(list) => list,
            Err(_) => args.split_whitespace().map(str::to_string).collect(),
        })
        .collect()
}

/// The Debian release number an image reference names (bookworm = 12).
fn debian_release(image: &str) -> u32 {
    for (codename, n) in [("bullseye", 11), ("bookworm", 12), ("trixie", 13)] {
        if image.contains(codename) {
            return n;
        }
    }
    regex::Regex::new(r"debian(\d+)")
        .expect("regex")
        .captures(image)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("cannot tell the Debian release of image {image}; name it in the tag"))
}

#[test]
fn containerfile_builds_in_one_stage_and_runs_unprivileged_in_another() {
    let all = containerfile();
    let froms: Vec<&String> = all.iter().filter(|(k, _)| k == "FROM").map(|(_, a)| a).collect();
    assert!(
        froms.len() >= 2,
        "multi-stage build: expected at least 2 FROM, found {}",
        froms.len()
    );
    let build: Vec<&str> = froms[0].split_whitespace().collect();
    assert!(
        build[0].contains("rust"),
        "the build stage uses the official rust image, not {}",
        build[0]
    );
    assert!(
        build.len() == 3 && build[1].eq_ignore_ascii_case("as"),
        "the build stage is named (FROM … AS build)"
    );
    let stage_name = build[2];
    let runtime = froms.last().expect("runtime").split_whitespace().next().expect("image");
    assert_eq!(
        debian_release(build[0]),
        debian_release(runtime),
        "build image {} and runtime image {runtime} must be the same Debian release, or the binary may need a newer glibc than the runtime has",
        build[0]
    );

    let stage = final_stage();
    let uid = containerfile_uid();
    assert_ne!(uid, 0, "the final stage must not run as root");
    let copy = stage
        .iter()
        .find(|(k, a)| k == "COPY" && a.starts_with(&format!("--from={stage_name} ")))
        .unwrap_or_else(|| panic!("the final stage copies the binary with COPY --from={stage_name}"));
    let destination = copy.1.split_whitespace().last().expect("COPY destination").to_string();
    let entrypoint = stage
        .iter()
        .find(|(k, _)| k == "ENTRYPOINT")
        .map(|(_, a)| {
            serde_json::from_str::<Vec<String>>(a).expect("ENTRYPOINT in exec form (a JSON list): signals reach v8help")
        })
        .expect("ENTRYPOINT");
    assert_eq!(entrypoint[0], destination, "ENTRYPOINT must run the copied binary");
    let build_cmd = all
        .iter()
        .any(|(k, a)| k == "RUN" && a.contains("cargo build") && a.contains("--release") && a.contains("--locked"));
    assert!(build_cmd, "the build stage runs cargo build --release --locked");
}

#[test]
fn containerfile_env_listens_on_exposed_ports_and_mounts_the_message_dir() {
    let env = containerfile_env();
    let config = resolve_env(&env).unwrap_or_else(|e| panic!("Containerfile ENV is not a valid configuration: {e}"));
    assert!(
        config.listen.ip().is_unspecified(),
        "ENV V8HELP_LISTEN {} must be 0.0.0.0 or [::] inside a container",
        config.listen
    );
    let exposed: Vec<u16> = final_stage()
        .iter()
        .filter(|(k, _)| k == "EXPOSE")
        .flat_map(|(_, a)| {
            a.split_whitespace()
                .map(|p| p.split('/').next().unwrap_or(p).parse::<u16>().expect("port"))
        })
        .collect();
    assert!(
        exposed.contains(&config.listen.port()),
        "EXPOSE {exposed:?} lacks the HTTPS port {}",
        config.listen.port()
    );
    let m = manifests();
    for port in m.container_ports().values() {
        assert!(
            exposed.contains(port),
            "the Deployment's container port {port} is not EXPOSEd by the image"
        );
    }
    let dir = config
        .message
        .parent()
        .expect("message dir")
        .to_string_lossy()
        .into_owned();
    assert!(
        containerfile_volumes().contains(&dir),
        "VOLUME must be the message directory {dir} (v8help watches the directory)"
    );
    assert_eq!(
        m.config().message,
        config.message,
        "the image and the Deployment agree on V8HELP_MESSAGE"
    );
    let ignore = read("container/Containerfile.dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "target"),
        "Containerfile.dockerignore keeps target/ out of the build context"
    );
}

// ───────────────────────────── systemd ─────────────────────────────

/// One `Key=value` line of a unit file, with whether a comment explains it: a comment line
/// directly above it or above the run of settings it belongs to.
#[derive(Debug)]
struct UnitEntry {
    section: String,
    key: String,
    value: String,
    explained: bool,
}

fn unit_entries(text: &str) -> Vec<UnitEntry> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut explained = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('[') {
            explained = false;
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
            }
        } else if line.starts_with('#') || line.starts_with(';') {
            explained = true;
        } else if let Some((key, value)) = line.split_once('=') {
            out.push(UnitEntry {
                section: section.clone(),
                key: key.trim().to_string(),
                value: value.trim().to_string(),
                explained,
            });
        }
    }
    out
}

fn unit_values(entries: &[UnitEntry], key: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e.section == "Service" && e.key == key)
        .map(|e| e.value.clone())
        .collect()
}

const UNIT: &str = "systemd/v8help.service";
const UNIT_BINARY: &str = "/usr/local/bin/v8help";

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze", "systemd", "V8HELP_SKIP_SYSTEMD") else {
        return;
    };
    let text = read(UNIT);
    assert!(
        text.contains(&format!("ExecStart={UNIT_BINARY} ")),
        "the unit runs {UNIT_BINARY}; this test points that path at the built binary"
    );
    // verify checks that ExecStart's binary exists: point it at the one cargo built.
    let tmp = tempfile::tempdir().expect("tempdir");
    let binary = tmp.path().join("v8help");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_v8help"), &binary).expect("symlink the binary");
    let unit = tmp.path().join("v8help.service");
    std::fs::write(&unit, text.replace(UNIT_BINARY, &binary.to_string_lossy())).expect("write unit");
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&unit)
        .env("SYSTEMD_LOG_COLOR", "0")
        .stdin(Stdio::null())
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Warnings about this unit (unknown keys, bad values) do not always change the exit code.
    let about_unit: Vec<&str> = stderr.lines().filter(|l| l.contains("v8help.service")).collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify {UNIT} failed ({}):\n{stderr}{stdout}",
        out.status
    );

    // The offline security review: the hardening must keep the exposure low.
    let out = Command::new(tool("systemd-analyze", "systemd", "V8HELP_SKIP_SYSTEMD").expect("found above"))
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("run systemd-analyze security");
    let report = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = regex::Regex::new(r"Overall exposure level for \S+: ([0-9.]+)")
        .expect("regex")
        .captures(&report)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{report}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        exposure <= 2.0,
        "systemd-analyze security rates the unit {exposure} (want ≤ 2.0, OK):\n{report}"
    );
}

#[test]
fn systemd_unit_has_the_required_settings_each_explained() {
    let text = read(UNIT);
    let entries = unit_entries(&text);
    let one = |key: &str| -> String {
        let v = unit_values(&entries, key);
        assert!(!v.is_empty(), "[Service] {key}= is missing");
        v.last().expect("value").clone()
    };
    assert_eq!(one("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("LimitNOFILE"), "65536");
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(
        one("CapabilityBoundingSet"),
        "CAP_NET_BIND_SERVICE",
        "only the capability to bind 443"
    );
    assert_eq!(one("AmbientCapabilities"), "CAP_NET_BIND_SERVICE");
    // The rest of the hardening, each checked against what v8help does (a strace of a
    // serving, reloading, stopping v8help used only @system-service calls, AF_INET
    // sockets, no W+X memory, and /proc/self plus cgroup files under /sys).
    for (key, want) in [
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("SystemCallArchitectures", "native"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ] {
        assert_eq!(one(key), want, "[Service] {key}=");
    }
    assert!(
        unit_values(&entries, "SystemCallFilter").contains(&"@system-service".to_string()),
        "SystemCallFilter=@system-service (an allow-list, not only deny-lists)"
    );
    assert!(one("ExecStart").ends_with(" serve"), "ExecStart runs `v8help serve`");
    let user = unit_values(&entries, "User");
    let dynamic = unit_values(&entries, "DynamicUser");
    assert!(
        user.iter().any(|u| u != "root") || dynamic.iter().any(|d| d == "yes"),
        "the service runs as a dedicated (User=) or dynamic (DynamicUser=yes) user"
    );

    // The message lives in the configuration directory systemd manages.
    let env: Vec<(String, String)> = unit_values(&entries, "Environment")
        .iter()
        .map(|v| {
            let (k, v) = v.split_once('=').expect("Environment=KEY=value");
            (k.to_string(), v.to_string())
        })
        .collect();
    let config = resolve_env(&env).unwrap_or_else(|e| panic!("the unit's Environment= is not valid: {e}"));
    let conf_dir = Path::new("/etc").join(one("ConfigurationDirectory"));
    assert_eq!(
        config.message.parent(),
        Some(conf_dir.as_path()),
        "V8HELP_MESSAGE must be in the ConfigurationDirectory"
    );
    assert!(
        unit_values(&entries, "EnvironmentFile")
            .iter()
            .any(|f| Path::new(f.trim_start_matches('-')).parent() == Some(conf_dir.as_path())),
        "EnvironmentFile= in {}",
        conf_dir.display()
    );
    // Stopping waits for v8help's own graceful-shutdown deadline.
    let stop: f64 = one("TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .expect("TimeoutStopSec in seconds");
    assert!(
        stop > config.shutdown_timeout.as_secs_f64(),
        "TimeoutStopSec must exceed the shutdown timeout"
    );

    for e in entries.iter().filter(|e| e.section == "Service") {
        assert!(e.explained, "[Service] {}= has no comment saying why", e.key);
    }
}

#[test]
fn systemd_env_example_holds_only_real_settings_with_valid_values() {
    let text = read("systemd/v8help.env");
    let known = serve_env_vars();
    let mut active = Vec::new();
    let mut mentioned = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        let (commented, body) = match line.strip_prefix('#') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let Some((name, value)) = body.split_once('=') else {
            assert!(commented || body.is_empty(), "v8help.env: not KEY=value: {line}");
            continue;
        };
        if !name.starts_with("V8HELP_") || name.contains(' ') {
            assert!(commented, "v8help.env: unexpected line {line}");
            continue;
        }
        assert!(
            known.contains_key(name) || OTHER_ENV_VARS.contains(&name),
            "v8help.env names {name}, which v8help does not read"
        );
        mentioned.insert(name.to_string());
        if !commented {
            active.push((name.to_string(), value.to_string()));
        }
    }
    let config = resolve_env(&active).unwrap_or_else(|e| panic!("v8help.env is not a valid configuration: {e}"));
    assert_eq!(
        config.listen.port(),
        443,
        "the example serves HTTPS on 443 (the unit grants the capability for it)"
    );
    assert!(config.tls_files.is_some(), "the example names a certificate and key");
    for name in known.keys().filter(|n| *n != "V8HELP_CONFIG") {
        assert!(mentioned.contains(name), "v8help.env does not show {name}");
    }
}

#[test]
fn sysusers_entry_creates_the_units_user() {
    let entries = unit_entries(&read(UNIT));
    let user = unit_values(&entries, "User").pop().expect("User=");
    let sysusers = read("systemd/v8help.sysusers");
    let created = sysusers
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("u")).then(|| f.next()).flatten()
        })
        .collect::<Vec<_>>();
    assert_eq!(created, vec![user.as_str()], "v8help.sysusers creates the unit's User=");
}

// ───────────────────────────── Reverse proxies ─────────────────────────────

/// Where the reverse-proxy snippets send requests: v8help's plain HTTP listener.
const UPSTREAM: &str = "127.0.0.1:8080";

/// Replaces every match of `pattern` in `text`, asserting there is exactly `count` of them
/// (so that a changed example fails loudly instead of testing something else).
fn replace(text: &str, pattern: &str, with: &str, count: usize, file: &str) -> String {
    let re = regex::Regex::new(pattern).expect("regex");
    let found = re.find_iter(text).count();
    assert_eq!(
        found, count,
        "{file}: expected {count} match(es) of {pattern}, found {found}"
    );
    re.replace_all(text, regex::NoExpand(with)).into_owned()
}

/// A scratch directory for a web server (writable and traversable by its worker user), a
/// certificate for `localhost`, and a message v8help serves in two languages.
struct Scratch {
    dir: tempfile::TempDir,
    cert: TestCert,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let cert = test_cert();
        std::fs::write(dir.path().join("cert.pem"), &cert.cert_pem).expect("cert");
        std::fs::write(dir.path().join("key.pem"), &cert.key_pem).expect("key");
        Scratch { dir, cert }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts v8help with a live message in English and Kazakh and plain HTTP on loopback.
    fn start_v8help(&self) -> V8help {
        let message = self.path("message.json");
        let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        std::fs::write(
            &message,
            format!(
                r#"{{"userMessage": "Maintenance until 14:00", "userMessages": {{"kk": "Жұмыстар 14:00-ге дейін"}}, "expires": "{expires}"}}"#
            ),
        )
        .expect("message");
        let server = start_v8help(&[
            ("V8HELP_LISTEN".into(), "127.0.0.1:0".into()),
            ("V8HELP_HTTP_LISTEN".into(), "127.0.0.1:0".into()),
            ("V8HELP_MESSAGE".into(), message.to_string_lossy().into_owned()),
        ]);
        assert!(server.http.is_some(), "v8help reported no plain HTTP address");
        server
    }
}

/// What every proxy must do for the message: the paths of the publication reach v8help's
/// paths, with the language and cache headers intact; metrics stay private.
fn check_published(front: SocketAddr, cert: &TestCert, proxy: &str) {
    let get = |path: &str, headers: &[(&str, &str)]| https_get(front, cert, "localhost", path, headers);
    for path in ["/v8help/", "/v8help/message.json", "/v8help/message.json?lang=kk"] {
        let r = get(path, &[("Accept-Language", "kk-KZ, ru;q=0.8")]);
        assert_eq!(r.status, 200, "{proxy} {path}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(
            r.json()["userMessage"],
            "Жұмыстар 14:00-ге дейін",
            "{proxy} {path}: the Kazakh text (Accept-Language must reach v8help)"
        );
        for header in ["etag", "cache-control", "vary", "access-control-allow-origin"] {
            assert!(
                r.header(header).is_some(),
                "{proxy} {path}: v8help's {header} header was lost"
            );
        }
        assert!(
            r.header("cache-control").is_some_and(|v| v.contains("max-age=")),
            "{proxy} {path}: Cache-Control"
        );
    }
    let english = get("/v8help/message.json", &[("Accept-Language", "en")]);
    assert_eq!(
        english.json()["userMessage"],
        "Maintenance until 14:00",
        "{proxy}: default text for en"
    );

    let health = get("/v8help/healthz", &[]);
    assert_eq!(health.status, 200, "{proxy} /v8help/healthz");
    assert_eq!(health.json()["state"], "active", "{proxy} /v8help/healthz state");

    let metrics = get("/v8help/metrics", &[]);
    assert!(
        matches!(metrics.status, 403 | 404) && serde_json::from_slice::<Value>(&metrics.body).is_err(),
        "{proxy}: /v8help/metrics must be refused by the proxy, got {} {}",
        metrics.status,
        String::from_utf8_lossy(&metrics.body)
    );
    let bare = get("/v8help", &[]);
    assert!(
        bare.status == 301 && bare.header("location").is_some_and(|l| l.ends_with("/v8help/")),
        "{proxy}: /v8help must redirect to /v8help/, got {} {:?}",
        bare.status,
        bare.header("location")
    );
}

/// v8help's response headers a proxy must pass on unchanged (absent stays absent).
const PASSED_THROUGH: &[&str] = &[
    "content-type",
    "x-content-type-options",
    "cache-control",
    "etag",
    "vary",
    "access-control-allow-origin",
    "content-security-policy",
    "referrer-policy",
    "service-worker-allowed",
];

/// `name` resolved the way a browser resolves a relative URL against `script`'s address:
/// in the script's folder. The web files use only plain relative names (so that a proxy may
/// put them under any prefix); anything else would need a URL parser, and fails here.
fn beside(script: &str, name: &str) -> String {
    let name = name.strip_prefix("./").unwrap_or(name);
    assert!(
        !name.is_empty() && !name.starts_with('/') && !name.contains(':') && !name.contains(".."),
        "{script} loads {name:?}, which is not a plain name relative to its folder"
    );
    let folder = &script[..=script.rfind('/').expect("an absolute path")];
    format!("{folder}{name}")
}

/// The worker `register.js` registers: `new URL('<name>', source)`, relative to the script's
/// own address.
fn registered_worker(register_js: &str) -> String {
    let re = regex::Regex::new(r"new URL\('([^']+)', source\)").expect("regex");
    let caps = re
        .captures(register_js)
        .expect("register.js makes the worker's URL with new URL('…', source); update this reader if that changed");
    caps[1].to_string()
}

/// The files `sw.js` loads from its own folder: its precache list (`const ASSETS = [...]`) and
/// what it imports (`importScripts`), read from its text so that a file added to either is
/// checked too.
fn worker_files(sw_js: &str) -> Vec<String> {
    let list = sw_js
        .lines()
        .find_map(|l| l.strip_prefix("const ASSETS = ["))
        .expect("sw.js has its precache list on a line `const ASSETS = [...]`; update this reader if that changed");
    let mut files: Vec<String> = list
        .split(']')
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().trim_matches('\'').to_string())
        .collect();
    assert!(
        files.contains(&"help".to_string()),
        "sw.js precaches no help page: {files:?}"
    );
    // The first quoted name on each line that calls importScripts.
    for name in sw_js
        .lines()
        .filter(|l| l.starts_with("importScripts("))
        .filter_map(|l| l.split('\'').nth(1))
    {
        if !files.iter().any(|f| f == name) {
            files.push(name.to_string());
        }
    }
    files
}

/// `web/<name>` in this repository.
fn web_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// What every proxy must do for the web client: the files reach the browser the way it asks
/// for them — the page's `/v8help/register.js`, the `sw.js` that registers from its own folder
/// (with `Service-Worker-Allowed: /`, so that its scope may be `/`), and every file that
/// `sw.js` precaches or imports from its folder — each answering 200 with v8help's own body
/// and headers. And no `sw.js` or `register.js` at the site root: a worker registered from
/// there looks for its files at the root, its precache fails and it never installs.
fn check_worker_published(p: &Published, proxy: &str) {
    let get = |path: &str| https_get(p.front, &p.scratch.cert, "localhost", path, &[]);
    let fetch = |path: &str| {
        let r = get(path);
        assert_eq!(
            r.status,
            200,
            "{proxy} {path}: the web client needs it: {}",
            String::from_utf8_lossy(&r.body)
        );
        let back = path.strip_prefix("/v8help").expect("published under /v8help/");
        let own = http_get(p.direct, back);
        assert_eq!(own.status, 200, "v8help {back}");
        assert!(r.body == own.body, "{proxy} {path}: not the body of v8help's {back}");
        for header in PASSED_THROUGH {
            assert_eq!(
                r.header(header),
                own.header(header),
                "{proxy} {path}: v8help's {header} header must pass through unchanged"
            );
        }
        r
    };
    let text = |r: &Response| String::from_utf8_lossy(&r.body).into_owned();

    let register = "/v8help/register.js";
    let sw = beside(register, &registered_worker(&text(&fetch(register))));
    let worker = fetch(&sw);
    assert_eq!(
        worker.header("service-worker-allowed"),
        Some("/"),
        "{proxy} {sw}: Service-Worker-Allowed: / lets the worker in /v8help/ take scope /"
    );
    let files = worker_files(&text(&worker));
    for name in &files {
        fetch(&beside(&sw, name));
    }
    eprintln!("{proxy}: {register}, {sw} and what it loads ({files:?}) are published");

    for path in ["/sw.js", "/register.js"] {
        let r = get(path);
        let v8help_error = serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| v.get("path").is_some());
        assert!(
            r.status != 200 && r.header("service-worker-allowed").is_none() && !v8help_error,
            "{proxy}: {path} at the site root must not reach v8help (the worker lives in /v8help/), \
             got {} {:?} {:.200}",
            r.status,
            r.headers,
            String::from_utf8_lossy(&r.body)
        );
    }
}

/// v8help running behind a web server started from the example files.
struct Published {
    /// The web server's HTTPS address.
    front: SocketAddr,
    /// v8help's own plain HTTP address, to compare with what the web server passes on.
    direct: SocketAddr,
    // Dropped in this order: the web server, v8help, then their files.
    _proxy: Running,
    _v8help: V8help,
    scratch: Scratch,
}

/// A complete nginx.conf around `example-site.conf`, the upstream pointed at `v8help`.
fn nginx_conf(s: &Scratch, v8help: SocketAddr, https_port: u16) -> PathBuf {
    let file = "reverse-proxy/nginx/example-site.conf";
    let mut site = read(file);
    site = replace(
        &site,
        r"listen 80;",
        &format!("listen 127.0.0.1:{};", free_port()),
        1,
        file,
    );
    site = replace(
        &site,
        r"listen 443 ",
        &format!("listen 127.0.0.1:{https_port} "),
        1,
        file,
    );
    site = replace(
        &site,
        r"ssl_certificate /\S+;",
        &format!("ssl_certificate {};", s.path("cert.pem").display()),
        1,
        file,
    );
    site = replace(
        &site,
        r"ssl_certificate_key /\S+;",
        &format!("ssl_certificate_key {};", s.path("key.pem").display()),
        1,
        file,
    );
    site = replace(
        &site,
        r"include \S*/v8help-locations\.conf;",
        &format!(
            "include {};",
            deploy_path("reverse-proxy/nginx/v8help-locations.conf").display()
        ),
        1,
        file,
    );
    let upstream = replace(
        &read("reverse-proxy/nginx/v8help-upstream.conf"),
        &regex::escape(&format!("server {UPSTREAM};")),
        &format!("server {v8help};"),
        1,
        "v8help-upstream.conf",
    );
    let d = s.dir.path().display();
    let conf = format!(
        "pid {d}/nginx.pid;\nerror_log stderr warn;\ndaemon off;\nworker_processes 1;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/client_body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         {upstream}\n{site}\n}}\n"
    );
    let path = s.path("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    path
}

/// v8help behind nginx running `example-site.conf` (after `nginx -t` accepts it), or `None`
/// when nginx is known to be absent.
fn publish_with_nginx() -> Option<Published> {
    let nginx = tool("nginx", "nginx", "V8HELP_SKIP_NGINX")?;
    let s = Scratch::new();
    let server = s.start_v8help();
    let direct = server.http.expect("http");
    let https_port = free_port();
    let conf = nginx_conf(&s, direct, https_port);
    let out = Command::new(&nginx)
        .arg("-t")
        .arg("-p")
        .arg(s.dir.path())
        .arg("-c")
        .arg(&conf)
        .args(["-e", "stderr"])
        .output()
        .expect("run nginx -t");
    assert!(
        out.status.success(),
        "nginx -t rejects deploy/reverse-proxy/nginx:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let child = Command::new(&nginx)
        .arg("-p")
        .arg(s.dir.path())
        .arg("-c")
        .arg(&conf)
        .args(["-e", "stderr"])
        .stdin(Stdio::null())
        .spawn()
        .expect("start nginx");
    let proxy = Running { child, name: "nginx" };
    let front = SocketAddr::from(([127, 0, 0, 1], https_port));
    wait_for(Duration::from_secs(10), || std::net::TcpStream::connect(front).ok()).expect("nginx listens");
    Some(Published {
        front,
        direct,
        _proxy: proxy,
        _v8help: server,
        scratch: s,
    })
}

#[test]
fn nginx_accepts_the_example_site_and_publishes_v8help_through_it() {
    let Some(p) = publish_with_nginx() else {
        return;
    };
    check_published(p.front, &p.scratch.cert, "nginx");
}

#[test]
fn nginx_publishes_sw_js_beside_every_file_it_precaches_and_not_at_the_root() {
    let Some(p) = publish_with_nginx() else {
        return;
    };
    check_worker_published(&p, "nginx");
}

/// v8help behind Apache running `example-vhost.conf` with `v8help.conf` (after `apache2 -t`
/// accepts them), or `None` when Apache is known to be absent.
fn publish_with_apache() -> Option<Published> {
    let apache = tool("apache2", "apache2", "V8HELP_SKIP_APACHE")?;
    let modules = [
        "/usr/lib/apache2/modules",
        "/usr/lib64/httpd/modules",
        "/usr/libexec/apache2",
    ]
    .into_iter()
    .map(Path::new)
    .find(|d| d.join("mod_proxy.so").is_file())
    .expect("the Apache modules directory (mod_proxy.so)");
    let s = Scratch::new();
    let server = s.start_v8help();
    let direct = server.http.expect("http");
    let https_port = free_port();
    // Every rule that reaches v8help (ProxyPass and ProxyPassReverse at least) is pointed at
    // this one, so a rule added for another path is served, and judged, like the others.
    let conf = read("reverse-proxy/apache/v8help.conf");
    let upstream = regex::escape(&format!("http://{UPSTREAM}/"));
    let uses = regex::Regex::new(&upstream).expect("regex").find_iter(&conf).count();
    assert!(
        uses >= 2,
        "apache/v8help.conf: ProxyPass and ProxyPassReverse name http://{UPSTREAM}/"
    );
    let snippet = replace(
        &conf,
        &upstream,
        &format!("http://{direct}/"),
        uses,
        "apache/v8help.conf",
    );
    std::fs::write(s.path("v8help.conf"), snippet).expect("snippet");
    let file = "apache/example-vhost.conf";
    let mut vhost = read(&format!("reverse-proxy/{file}"));
    vhost = replace(
        &vhost,
        r"<VirtualHost \*:443>",
        &format!("<VirtualHost 127.0.0.1:{https_port}>"),
        1,
        file,
    );
    vhost = replace(
        &vhost,
        r"SSLCertificateFile /\S+",
        &format!("SSLCertificateFile {}", s.path("cert.pem").display()),
        1,
        file,
    );
    vhost = replace(
        &vhost,
        r"SSLCertificateKeyFile /\S+",
        &format!("SSLCertificateKeyFile {}", s.path("key.pem").display()),
        1,
        file,
    );
    vhost = replace(
        &vhost,
        r"Include \S*/v8help\.conf",
        &format!("Include {}", s.path("v8help.conf").display()),
        1,
        file,
    );
    let d = s.dir.path().display();
    let m = modules.display();
    let load: String = [
        ("mpm_event", "mod_mpm_event"),
        ("authz_core", "mod_authz_core"),
        ("alias", "mod_alias"),
        ("headers", "mod_headers"),
        ("proxy", "mod_proxy"),
        ("proxy_http", "mod_proxy_http"),
        ("ssl", "mod_ssl"),
        ("expires", "mod_expires"),
    ]
    .iter()
    .map(|(name, so)| format!("LoadModule {name}_module {m}/{so}.so\n"))
    .collect();
    let conf = format!(
        "ServerRoot {d}\nListen 127.0.0.1:{https_port}\n{load}PidFile {d}/httpd.pid\nDefaultRuntimeDir {d}\n\
         ErrorLog /proc/self/fd/2\nLogLevel error authz_core:crit\nServerName localhost\nUser nobody\nGroup nogroup\n{vhost}\n"
    );
    let conf_path = s.path("httpd.conf");
    std::fs::write(&conf_path, conf).expect("httpd.conf");
    let out = Command::new(&apache)
        .arg("-t")
        .arg("-f")
        .arg(&conf_path)
        .output()
        .expect("run apache2 -t");
    assert!(
        out.status.success(),
        "apache2 -t rejects deploy/reverse-proxy/apache:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // -X: one process in the foreground, ended with the test.
    let child = Command::new(&apache)
        .arg("-X")
        .arg("-f")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .spawn()
        .expect("start apache2");
    let proxy = Running { child, name: "apache2" };
    let front = SocketAddr::from(([127, 0, 0, 1], https_port));
    wait_for(Duration::from_secs(10), || std::net::TcpStream::connect(front).ok()).expect("apache2 listens");
    Some(Published {
        front,
        direct,
        _proxy: proxy,
        _v8help: server,
        scratch: s,
    })
}

#[test]
fn apache_accepts_the_example_vhost_and_publishes_v8help_through_it() {
    let Some(p) = publish_with_apache() else {
        return;
    };
    check_published(p.front, &p.scratch.cert, "apache2");
}

#[test]
fn apache_publishes_sw_js_beside_every_file_it_precaches_and_not_at_the_root() {
    let Some(p) = publish_with_apache() else {
        return;
    };
    check_worker_published(&p, "apache2");
}

/// What IIS URL Rewrite does with a request path: the first matching rule decides.
#[derive(Debug, PartialEq)]
enum IisOutcome {
    Rewrite(String),
    Redirect(String),
    Status(u16),
    Untouched,
}

/// Runs the web.config rules over `path` (URL Rewrite matches the path without its leading
/// `/`; `{R:n}` are the match groups; `{HTTPS}` is given).
fn iis_route(doc: &roxmltree::Document, path: &str, https: bool) -> IisOutcome {
    let rules = doc.descendants().filter(|n| n.has_tag_name("rule"));
    for rule in rules {
        let name = rule.attribute("name").unwrap_or("?");
        let pattern = rule
            .children()
            .find(|n| n.has_tag_name("match"))
            .and_then(|m| m.attribute("url"))
            .unwrap_or_else(|| panic!("rule {name} has no <match url>"));
        let re = regex::Regex::new(&format!("(?i){pattern}")).unwrap_or_else(|e| panic!("rule {name}: {e}"));
        let Some(caps) = re.captures(path.trim_start_matches('/')) else {
            continue;
        };
        let conditions_hold = rule.descendants().filter(|n| n.has_tag_name("add")).all(|c| {
            let input = c.attribute("input").expect("condition input");
            assert_eq!(
                input, "{HTTPS}",
                "rule {name}: the simulation knows only {{HTTPS}} conditions"
            );
            let value = if https { "on" } else { "off" };
            regex::Regex::new(&format!("(?i){}", c.attribute("pattern").expect("pattern")))
                .expect("condition regex")
                .is_match(value)
        });
        if !conditions_hold {
            continue;
        }
        assert_eq!(
            rule.attribute("stopProcessing"),
            Some("true"),
            "rule {name} must stop processing"
        );
        let action = rule
            .children()
            .find(|n| n.has_tag_name("action"))
            .unwrap_or_else(|| panic!("rule {name} has no action"));
        let mut url = action.attribute("url").unwrap_or_default().to_string();
        for (i, g) in caps.iter().enumerate() {
            url = url.replace(&format!("{{R:{i}}}"), g.map_or("", |m| m.as_str()));
        }
        return match action.attribute("type") {
            Some("Rewrite") => IisOutcome::Rewrite(url),
            Some("Redirect") => IisOutcome::Redirect(url),
            Some("CustomResponse") => IisOutcome::Status(
                action
                    .attribute("statusCode")
                    .and_then(|s| s.parse().ok())
                    .expect("statusCode"),
            ),
            other => panic!("rule {name}: unexpected action type {other:?}"),
        };
    }
    IisOutcome::Untouched
}

#[test]
fn iis_rules_route_the_same_paths_as_nginx_and_apache() {
    let text = read("reverse-proxy/iis/web.config");
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("web.config is not well-formed XML: {e}"));
    assert!(
        doc.root_element().has_tag_name("configuration"),
        "web.config's root is <configuration>"
    );
    let up = format!("http://{UPSTREAM}");
    use IisOutcome::*;
    let mut cases = vec![
        ("/v8help/".to_string(), true, Rewrite(format!("{up}/"))),
        (
            "/v8help/message.json".into(),
            true,
            Rewrite(format!("{up}/message.json")),
        ),
        ("/v8help/healthz".into(), true, Rewrite(format!("{up}/healthz"))),
        ("/v8help/metrics".into(), true, Status(404)),
        ("/v8help".into(), true, Redirect("/v8help/".into())),
        (
            "/v8help/message.json".into(),
            false,
            Redirect("https://{HTTP_HOST}{REQUEST_URI}".into()),
        ),
        (
            "/v8help/sw.js".into(),
            false,
            Redirect("https://{HTTP_HOST}{REQUEST_URI}".into()),
        ),
        // The worker lives in /v8help/ only (its files are relative to it): nothing at the root.
        ("/sw.js".into(), true, Untouched),
        ("/register.js".into(), true, Untouched),
        ("/sw.js".into(), false, Untouched),
        // The publication itself, and look-alikes, are left alone.
        ("/erp/ru_RU/".into(), true, Untouched),
        ("/erp/sw.js".into(), true, Untouched),
        ("/v8helpdesk/".into(), true, Untouched),
    ];
    // The web client's files as the browser asks for them (the same reading of register.js
    // and sw.js as the live nginx and Apache checks, here from web/).
    let register = "/v8help/register.js";
    let sw = beside(register, &registered_worker(&web_file("register.js")));
    let mut worker_needs = vec![register.to_string(), sw.clone()];
    worker_needs.extend(worker_files(&web_file("sw.js")).iter().map(|name| beside(&sw, name)));
    assert!(worker_needs.len() >= 6, "{worker_needs:?}");
    for path in worker_needs {
        let back = path.strip_prefix("/v8help").expect("under /v8help/").to_string();
        cases.push((path, true, Rewrite(format!("{up}{back}"))));
    }
    for (path, https, want) in cases {
        assert_eq!(
            iis_route(&doc, &path, https),
            want,
            "web.config routes {path} (https: {https})"
        );
    }
}

#[test]
fn every_proxy_snippet_and_the_env_example_agree_on_the_upstream() {
    let env = read("systemd/v8help.env");
    assert!(
        env.contains(&format!("V8HELP_HTTP_LISTEN={UPSTREAM}")),
        "v8help.env shows V8HELP_HTTP_LISTEN={UPSTREAM}, the address the proxy snippets use"
    );
    for file in [
        "reverse-proxy/nginx/v8help-upstream.conf",
        "reverse-proxy/apache/v8help.conf",
        "reverse-proxy/iis/web.config",
    ] {
        assert!(read(file).contains(UPSTREAM), "{file} does not proxy to {UPSTREAM}");
    }
    let readme = read("reverse-proxy/README.md");
    for needle in [
        "Service-Worker-Allowed: /",
        "scope",
        "same origin",
        "/v8help/sw.js",
        "/v8help/register.js",
    ] {
        assert!(
            readme.contains(needle),
            "deploy/reverse-proxy/README.md should explain `{needle}`"
        );
    }
    // The README's curl checks: the worker is asked for where the snippets publish it, and
    // the site root only to show that nothing of v8help is there.
    let url = regex::Regex::new(r#"https://erp\.example\.com(/[^\s"']*)"#).expect("regex");
    let asked: Vec<(&str, &str)> = readme
        .lines()
        .filter(|l| l.trim_start().starts_with("curl "))
        .flat_map(|l| {
            url.captures_iter(l)
                .map(move |c| (c.get(1).map_or("", |m| m.as_str()), l))
        })
        .collect();
    assert!(
        asked.iter().any(|(path, _)| *path == "/v8help/sw.js"),
        "README checks /v8help/sw.js: {asked:?}"
    );
    for (path, line) in asked {
        assert!(
            path.starts_with("/v8help/") || (path == "/sw.js" && line.contains("grep -i service-worker-allowed")),
            "deploy/reverse-proxy/README.md checks {path}, which the snippets do not publish: {line}"
        );
    }
}

// ───────────────────────────── All files ─────────────────────────────

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_deploy_file_starts_with_a_comment_saying_what_it_is_for() {
    let mut files = Vec::new();
    files_under(&deploy_path(""), &mut files);
    assert!(files.len() >= 15, "deploy/ has only {} files", files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let first = text.lines().next().unwrap_or_default();
        let ok = match path.extension().and_then(|e| e.to_str()) {
            Some("md") => first.starts_with("# "),
            Some("config") => first.starts_with("<!--"),
            _ => first.starts_with("# "),
        };
        assert!(
            ok,
            "{} must start with a comment saying what it is for, not {first:?}",
            path.display()
        );
    }
}
