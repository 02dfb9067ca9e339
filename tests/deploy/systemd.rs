//! The systemd unit under `deploy/systemd/`: `systemd-analyze verify` accepts it, every
//! required setting is there and explained, the environment example holds only real
//! settings, and the sysusers entry creates the unit's user.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::tools::Suite;
use crate::files::*;

/// What `systemd-analyze verify` needs: systemd itself, and procps for `/bin/kill`.
const SYSTEMD: Suite = Suite {
    name: "systemd",
    test: "deploy",
    packages: "systemd procps",
};

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
    let Some(analyze) = SYSTEMD.tool("systemd-analyze") else {
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
    let out = Command::new(SYSTEMD.tool("systemd-analyze").expect("found above"))
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
