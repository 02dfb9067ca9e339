//! Reading the files under `deploy/` (text, YAML as JSON values) and turning `V8HELP_*`
//! variables into the configuration `v8help serve` would resolve from them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use serde::Deserialize;
use serde_json::Value;

/// `deploy/<rel>` in this repository.
pub fn deploy_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(rel)
}

/// The text of `deploy/<rel>`.
pub fn read(rel: &str) -> String {
    let path = deploy_path(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every YAML document of `deploy/<rel>`, as JSON values (so that JSON pointers work).
pub fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = read(rel);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("deploy/{rel}: invalid YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// `value[pointer]`, or a panic naming what is missing.
pub fn at<'a>(value: &'a Value, pointer: &str, what: &str) -> &'a Value {
    value
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{what}: {pointer} is missing"))
}

/// `value[pointer]` as a string, or a panic.
pub fn str_at<'a>(value: &'a Value, pointer: &str, what: &str) -> &'a str {
    at(value, pointer, what)
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {pointer} is not a string"))
}

/// What `v8help serve` knows about one environment variable.
#[derive(Debug, Clone)]
pub struct Setting {
    pub flag: String,
    pub takes_value: bool,
}

/// Every environment variable `v8help serve` reads, from its clap definition.
pub fn serve_env_vars() -> BTreeMap<String, Setting> {
    let cli = v8help::cli::Cli::command();
    let serve = cli
        .get_subcommands()
        .find(|c| c.get_name() == "serve")
        .expect("v8help has a serve sub-command");
    serve
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?.to_string();
            let flag = format!("--{}", arg.get_long()?);
            Some((
                env,
                Setting {
                    flag,
                    takes_value: arg.get_action().takes_values(),
                },
            ))
        })
        .collect()
}

/// Variables read by the binary itself rather than by `serve`'s flags.
pub const OTHER_ENV_VARS: &[&str] = &["V8HELP_LOG"];

/// Resolves `V8HELP_*` settings the way `v8help serve` would (through its real flag parser
/// and [`v8help::config::ServeConfig::resolve`]), without starting anything.
pub fn resolve_env(vars: &[(String, String)]) -> Result<v8help::config::ServeConfig, String> {
    let known = serve_env_vars();
    let mut argv = vec!["v8help".to_string(), "serve".to_string()];
    for (name, value) in vars {
        if OTHER_ENV_VARS.contains(&name.as_str()) {
            continue;
        }
        let setting = known
            .get(name)
            .ok_or_else(|| format!("{name} is not a setting of v8help serve (known: {known:?})"))?;
        if setting.takes_value {
            argv.push(setting.flag.clone());
            argv.push(value.clone());
        } else if !matches!(
            value.to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off" | "n" | "f"
        ) {
            argv.push(setting.flag.clone());
        }
    }
    let cli = v8help::cli::Cli::try_parse_from(&argv).map_err(|e| format!("{argv:?}: {e}"))?;
    match cli.command {
        v8help::cli::Command::Serve(args) => {
            v8help::config::ServeConfig::resolve(&args).map_err(|e| format!("{argv:?}: {e}"))
        }
        _ => unreachable!("parsed as serve"),
    }
}
