//! The container build, `deploy/container/Containerfile`: one stage builds, another runs
//! unprivileged; its environment listens on the exposed ports and its volume holds the
//! message file.

use crate::files::*;
use crate::kubernetes::manifests;

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

pub(crate) fn containerfile_uid() -> u64 {
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

pub(crate) fn containerfile_volumes() -> Vec<String> {
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
