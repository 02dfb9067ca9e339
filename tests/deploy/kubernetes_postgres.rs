//! The PostgreSQL-backed variant `deploy/kubernetes/postgres/`: a kustomization over the
//! base whose Deployment patch (merged here the way kustomize's strategic merge does for
//! these fields: lists of named entries merge by name) resolves to a real configuration with
//! reports in PostgreSQL, the password in a mounted Secret, the spool on a writable volume
//! and the console on its own port; that port only on the ClusterIP `v8help-admin` Service,
//! never on the public one; and the README creating every Secret the manifests name.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::files::*;
use crate::kubernetes::manifests;

const DIR: &str = "kubernetes/postgres";

/// Lists whose entries kustomize merges by `name` in a Deployment.
const MERGED_BY_NAME: &[&str] = &["containers", "env", "ports", "volumeMounts", "volumes"];

fn merge(base: &mut Value, patch: &Value) {
    let (Value::Object(b), Value::Object(p)) = (base, patch) else {
        return;
    };
    for (key, value) in p {
        match (b.get_mut(key), value) {
            (_, Value::Null) => {
                b.remove(key);
            }
            (Some(Value::Array(list)), Value::Array(add)) if MERGED_BY_NAME.contains(&key.as_str()) => {
                for entry in add {
                    let name = entry.get("name");
                    match list.iter_mut().find(|e| e.get("name") == name) {
                        Some(existing) => merge(existing, entry),
                        None => list.push(entry.clone()),
                    }
                }
            }
            (Some(existing @ Value::Object(_)), Value::Object(_)) => merge(existing, value),
            _ => {
                b.insert(key.clone(), value.clone());
            }
        }
    }
}

struct Variant {
    kustomization: Value,
    deployment: Value,
    admin: Value,
    public: Value,
}

fn variant() -> Variant {
    let kustomization = yaml_docs(&format!("{DIR}/kustomization.yaml")).remove(0);
    let base = manifests();
    let mut deployment = base.deployment.clone();
    for p in at(&kustomization, "/patches", "kustomization")
        .as_array()
        .expect("patches")
    {
        let patch = yaml_docs(&format!("{DIR}/{}", str_at(p, "/path", "patch"))).remove(0);
        assert_eq!(patch["kind"], "Deployment", "the patch is of the Deployment");
        assert_eq!(patch["metadata"]["name"], deployment["metadata"]["name"]);
        merge(&mut deployment, &patch);
    }
    let mut admin = None;
    for r in at(&kustomization, "/resources", "kustomization")
        .as_array()
        .expect("resources")
    {
        let r = r.as_str().expect("a resource name");
        if r.ends_with('/') || r == ".." {
            continue;
        }
        for doc in yaml_docs(&format!("{DIR}/{r}")) {
            let kind = str_at(&doc, "/kind", r);
            assert_ne!(kind, "Secret", "{r}: Secrets are created by hand, never committed");
            assert_ne!(
                kind, "Ingress",
                "{r}: nothing of the console goes behind an Ingress here"
            );
            if kind == "Service" {
                admin = Some(doc);
            }
        }
    }
    Variant {
        kustomization,
        deployment,
        admin: admin.expect("an admin Service among the resources"),
        public: base.service.clone(),
    }
}

impl Variant {
    fn container(&self) -> &Value {
        &self.deployment["spec"]["template"]["spec"]["containers"][0]
    }

    fn list(&self, pointer: &str) -> Vec<Value> {
        self.deployment
            .pointer(pointer)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The volume mounted at the directory holding `file`.
    fn volume_holding(&self, file: &Path) -> Value {
        let dir = file.parent().expect("a file in a directory");
        let mounts = self.list("/spec/template/spec/containers/0/volumeMounts");
        let mount = mounts
            .iter()
            .find(|m| {
                Path::new(str_at(m, "/mountPath", "mount")) == dir || file.starts_with(str_at(m, "/mountPath", "mount"))
            })
            .unwrap_or_else(|| panic!("no volume is mounted where {} is", file.display()));
        let name = &mount["name"];
        self.list("/spec/template/spec/volumes")
            .into_iter()
            .find(|v| &v["name"] == name)
            .unwrap_or_else(|| panic!("volume {name} is mounted but not declared"))
    }

    /// The environment, with each Secret reference replaced by an example of its value.
    fn env(&self) -> (Vec<(String, String)>, Vec<String>) {
        let mut vars = Vec::new();
        let mut secrets = Vec::new();
        for e in at(self.container(), "/env", "container").as_array().expect("env") {
            let name = str_at(e, "/name", "env").to_string();
            match (e.get("value"), e.pointer("/valueFrom/secretKeyRef")) {
                (Some(v), None) => vars.push((name, v.as_str().expect("a string value").to_string())),
                (None, Some(r)) => {
                    assert_eq!(r["optional"], true, "{name}: forwarding is optional, so is its Secret");
                    secrets.push(str_at(r, "/name", &name).to_string());
                    let example = match name.as_str() {
                        "V8HELP_FORWARD_SENTRY" => "https://key@sentry.example.ru/42",
                        _ => "https://chat.example.ru/hooks/TOKEN",
                    };
                    vars.push((name, example.to_string()));
                }
                _ => panic!("{name}: exactly one of value and valueFrom.secretKeyRef (the patch must not leave both)"),
            }
        }
        (vars, secrets)
    }
}

#[test]
fn postgres_variant_builds_on_the_base_and_lists_its_files() {
    let v = variant();
    let resources: Vec<&str> = v.kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(resources.contains(&"../"), "the base is a resource: {resources:?}");
    let mut listed: BTreeSet<String> = resources
        .iter()
        .filter(|r| !r.ends_with('/'))
        .map(|r| r.to_string())
        .collect();
    for p in v.kustomization["patches"].as_array().unwrap() {
        listed.insert(str_at(p, "/path", "patch").to_string());
    }
    let present: BTreeSet<String> = std::fs::read_dir(deploy_path(DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "every YAML beside the kustomization is used");
}

#[test]
fn postgres_variant_env_takes_reports_into_postgres_with_the_password_from_a_secret() {
    let v = variant();
    let (vars, _) = v.env();
    let config = resolve_env(&vars).unwrap_or_else(|e| panic!("the patched env is not a valid configuration: {e}"));
    let reports = config.reports.clone().expect("reports are taken");
    assert!(reports.db.starts_with("postgres://"), "{}", reports.db);
    let userinfo = reports.db["postgres://".len()..].split('@').next().unwrap_or("");
    assert!(!userinfo.contains(':'), "no password in the URL: {}", reports.db);
    let password = reports.db_password_file.expect("V8HELP_REPORTS_DB_PASSWORD_FILE");
    let volume = v.volume_holding(&password);
    assert!(
        volume.pointer("/secret/secretName").is_some(),
        "the password file comes from a Secret: {volume}"
    );
    // The root file system is read-only: the spool must be on a writable volume.
    let spool = v.volume_holding(&reports.spool.join("x"));
    assert!(
        spool.get("emptyDir").is_some() || spool.get("persistentVolumeClaim").is_some(),
        "spool volume {spool}"
    );
    let console = config.console.clone().expect("the console is served");
    assert!(
        console.listen.ip().is_unspecified(),
        "the console must be reachable from its Service"
    );
    let users = v.volume_holding(&console.users);
    assert!(
        users.pointer("/secret/secretName").is_some(),
        "the users file comes from a Secret"
    );
    let ports = v.list("/spec/template/spec/containers/0/ports");
    let admin = ports
        .iter()
        .find(|p| p["name"] == "admin")
        .expect("a container port named admin");
    assert_eq!(admin["containerPort"].as_u64(), Some(u64::from(console.listen.port())));
    assert!(reports.forward.sentry.is_some() && reports.forward.webhooks.len() == 1);
    assert!(
        reports.forward.console_url.is_some(),
        "links in forwarded events need V8HELP_CONSOLE_URL"
    );
    assert!(reports.forward.threshold.is_some());
}

#[test]
fn the_console_has_its_own_cluster_ip_service_and_the_public_one_does_not_carry_it() {
    let v = variant();
    assert_eq!(str_at(&v.admin, "/spec/type", "admin Service"), "ClusterIP");
    let pods = &v.deployment["spec"]["template"]["metadata"]["labels"];
    for (k, want) in v.admin["spec"]["selector"].as_object().expect("a selector") {
        assert_eq!(&pods[k], want, "the admin Service selects the pods ({k})");
    }
    let ports = v.admin["spec"]["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1, "the admin Service carries the console only");
    assert_eq!(ports[0]["targetPort"], "admin");
    for p in v.public["spec"]["ports"].as_array().expect("public ports") {
        assert_ne!(
            p["targetPort"], "admin",
            "the public Service must not reach the console"
        );
        assert_ne!(p["targetPort"].as_u64(), Some(8444));
    }
    assert_ne!(v.public["spec"]["type"], "LoadBalancer");
}

#[test]
fn postgres_readme_creates_every_secret_the_manifests_name() {
    let v = variant();
    let readme = read(&format!("{DIR}/README.md"));
    let (_, mut secrets) = v.env();
    for vol in v.list("/spec/template/spec/volumes") {
        if let Some(name) = vol.pointer("/secret/secretName").and_then(Value::as_str) {
            secrets.push(name.to_string());
        }
    }
    secrets.sort();
    secrets.dedup();
    assert!(secrets.len() >= 4, "{secrets:?}");
    for s in secrets {
        assert!(
            readme.contains(&format!("kubectl create secret generic {s} "))
                || readme.contains(&format!("kubectl create secret tls {s} ")),
            "deploy/{DIR}/README.md should create the Secret {s}"
        );
    }
    assert!(readme.contains("kubectl port-forward service/v8help-admin"));
    assert!(readme.contains("kubectl apply -k deploy/kubernetes/postgres"));
}
