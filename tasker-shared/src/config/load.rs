//! Loading the configuration: merging the layers (defaults, files, environment
//! variables) with figment, recording which layers applied ([`ConfigSources`]), and
//! naming a bad key's origin in each error ([`ConfigError`]).

use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::model::TaskerConfig;
use super::validate::validate;

/// The layers a configuration was built from, for `config show`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigSources {
    /// `TASKER_ENV` (or `development`).
    pub environment: String,
    /// The configuration directory, if one was found.
    pub directory: Option<PathBuf>,
    /// Files that existed and were merged, in order.
    pub files: Vec<PathBuf>,
    /// Environment variables that set keys.
    pub variables: Vec<String>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is unknown, has the wrong type, or is out of range; each entry names the
    /// key and where its value came from.
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
    /// A file given with `--config` does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
}

/// Loads the configuration for this process (see the module documentation), with an
/// optional extra file.
pub fn load(extra_file: Option<&Path>) -> Result<(TaskerConfig, ConfigSources), ConfigError> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let get = |k: &str| {
        vars.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let environment = get("TASKER_ENV").unwrap_or_else(|| "development".to_string());
    let directory = get("TASKER_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("config/tasker")).filter(|p| p.is_dir()));
    load_from(directory.as_deref(), &environment, extra_file, &vars)
}

/// Like [`load`], with the directory, the environment name and the environment variables
/// given explicitly.
pub fn load_from(
    directory: Option<&Path>,
    environment: &str,
    extra_file: Option<&Path>,
    vars: &[(String, String)],
) -> Result<(TaskerConfig, ConfigSources), ConfigError> {
    let mut sources = ConfigSources {
        environment: environment.to_string(),
        directory: directory.map(Path::to_path_buf),
        ..Default::default()
    };
    let mut figment = Figment::from(Serialized::defaults(TaskerConfig::default()));
    if let Some(dir) = directory {
        for layer in [dir.join("base"), dir.join("environments").join(environment)] {
            for name in ["common.toml", "orchestration.toml", "worker.toml"] {
                let file = layer.join(name);
                if file.is_file() {
                    figment = figment.merge(Toml::file_exact(&file));
                    sources.files.push(file);
                }
            }
        }
    }
    if let Some(file) = extra_file {
        if !file.is_file() {
            return Err(ConfigError::MissingFile(file.to_path_buf()));
        }
        figment = figment.merge(Toml::file_exact(file));
        sources.files.push(file.to_path_buf());
    }
    let mut sorted: Vec<&(String, String)> = vars.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        if let Some(rest) = name.strip_prefix("TASKER__") {
            let key = rest.to_lowercase().replace("__", ".");
            let parsed: Value = value
                .parse()
                .unwrap_or_else(|e: std::convert::Infallible| match e {});
            figment = figment.merge(Var::new(name, &key, parsed));
            sources.variables.push(name.clone());
        }
    }
    for (name, key) in [
        ("DATABASE_URL", "database.url"),
        ("TASKER_WEB_BIND_ADDRESS", "web.bind_address"),
        ("TASKER_TEMPLATE_PATH", "worker.template_path"),
    ] {
        if let Some((_, value)) = vars.iter().find(|(n, v)| n == name && !v.is_empty()) {
            figment = figment.merge(Var::new(name, key, Value::from(value.clone())));
            sources.variables.push(name.to_string());
        }
    }
    let mut config: TaskerConfig = figment.extract().map_err(|e| {
        ConfigError::Invalid(
            e.into_iter()
                .map(|err| {
                    let key = err.path.join(".");
                    let origin = err.metadata.as_ref().map(origin_of).unwrap_or_default();
                    if key.is_empty() {
                        format!("{}{origin}", err.kind)
                    } else {
                        format!("{key}: {}{origin}", err.kind)
                    }
                })
                .collect(),
        )
    })?;
    config.environment = environment.to_string();
    validate(&config, |key| {
        figment
            .find_metadata(key)
            .map(origin_of)
            .unwrap_or_else(|| " (built-in default)".to_string())
    })
    .map_err(ConfigError::Invalid)?;
    Ok((config, sources))
}

fn origin_of(m: &Metadata) -> String {
    match &m.source {
        // Only the compiled-in defaults come from code.
        Some(figment::Source::Code(_)) => " (built-in default)".to_string(),
        Some(source) => format!(" (from {source})"),
        None => format!(" (from {})", m.name),
    }
}

/// One environment variable setting one key.
struct Var {
    name: String,
    key: String,
    value: Value,
}

impl Var {
    fn new(name: &str, key: &str, value: Value) -> Self {
        Self {
            name: name.to_string(),
            key: key.to_string(),
            value,
        }
    }
}

impl Provider for Var {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut parts: Vec<&str> = self.key.split('.').filter(|p| !p.is_empty()).collect();
        let Some(last) = parts.pop() else {
            return Ok(Map::new());
        };
        let mut value = self.value.clone();
        let mut dict = Dict::new();
        dict.insert(last.to_string(), value);
        while let Some(part) = parts.pop() {
            value = Value::from(dict);
            dict = Dict::new();
            dict.insert(part.to_string(), value);
        }
        Ok(Profile::Default.collect(dict))
    }
}
