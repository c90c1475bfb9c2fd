//! Loading: the YAML file (optional), then `REGISTRY_*` environment
//! overrides, then deserialisation into [`Config`] and validation. Every
//! error names the key (or variable) at fault.

use crate::model::Config;
use serde_yaml::{Mapping, Value};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The environment variable Distribution reads the config path from.
pub const CONFIG_PATH_VAR: &str = "REGISTRY_CONFIGURATION_PATH";
const ENV_PREFIX: &str = "REGISTRY_";

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("configuration key {key}: {message}")]
    Invalid { key: String, message: String },
}

/// Loads the configuration from `path` (when given) and the environment.
pub fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let (text, origin) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            (text, format!("file {}", path.display()))
        }
        None => (String::new(), "defaults".to_string()),
    };
    load_from_str(&text, &origin, env)
}

/// Loads the configuration from YAML text and the environment.
pub fn load_from_str(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut tree: Value = if text.trim().is_empty() {
        Value::Mapping(Mapping::new())
    } else {
        serde_yaml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?
    };
    if tree.is_null() {
        tree = Value::Mapping(Mapping::new());
    }
    let mut overrides = Vec::new();
    for (var, value) in env {
        let Some(path) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if var == CONFIG_PATH_VAR || path.is_empty() {
            continue;
        }
        let keys: Vec<String> = path.split('_').map(|k| k.to_ascii_lowercase()).collect();
        set_path(&mut tree, &keys, parse_scalar(&value)).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
        overrides.push(var);
    }
    let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        let mut message = if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        };
        if !overrides.is_empty() {
            message.push_str(&format!(
                " (after environment overrides {})",
                overrides.join(", ")
            ));
        }
        ConfigError::Parse {
            origin: origin.to_string(),
            message,
        }
    })?;
    validate(&config)?;
    Ok(config)
}

/// An override's value is read as YAML, so `true`, `5000` and `[a, b]` keep
/// their types; anything YAML cannot read stays a string.
fn parse_scalar(text: &str) -> Value {
    match serde_yaml::from_str::<Value>(text) {
        Ok(Value::Null) if !text.trim().is_empty() && text.trim() != "null" => {
            Value::String(text.to_string())
        }
        Ok(value) => value,
        Err(_) => Value::String(text.to_string()),
    }
}

fn set_path(tree: &mut Value, keys: &[String], value: Value) -> Result<(), String> {
    let Some((first, rest)) = keys.split_first() else {
        *tree = value;
        return Ok(());
    };
    if tree.is_null() {
        *tree = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = tree else {
        return Err(format!(
            "cannot set {first:?} inside a value that is not a section"
        ));
    };
    let child = map
        .entry(Value::String(first.clone()))
        .or_insert(Value::Null);
    set_path(child, rest, value)
}

fn validate(config: &Config) -> Result<(), ConfigError> {
    if let Some(version) = &config.version {
        if version != "0.1" {
            return Err(invalid(
                "version",
                format!("unsupported version {version:?}, expected 0.1"),
            ));
        }
    }
    if let Some(net) = &config.http.net {
        if net != "tcp" {
            return Err(invalid(
                "http.net",
                format!("unsupported network {net:?}, only tcp is served"),
            ));
        }
    }
    listen_addr(&config.http.addr).map_err(|message| invalid("http.addr", message))?;
    for name in config.http.headers.keys() {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(invalid(
                "http.headers",
                format!("invalid header name {name:?}"),
            ));
        }
    }
    let timeouts = &config.http.timeout;
    for (key, value) in [
        ("http.timeout.header", timeouts.header),
        ("http.timeout.idle", timeouts.idle),
        ("http.timeout.body", timeouts.body),
    ] {
        if value.0.is_zero() {
            return Err(invalid(key, "must be above zero".to_string()));
        }
    }
    if config.http.maxconnections == 0 {
        return Err(invalid(
            "http.maxconnections",
            "must be above zero".to_string(),
        ));
    }
    let purging = &config.storage.maintenance.uploadpurging;
    if purging.enabled && purging.interval.0.is_zero() {
        return Err(invalid(
            "storage.maintenance.uploadpurging.interval",
            "must be above zero when purging is enabled".to_string(),
        ));
    }
    config
        .validation
        .manifests
        .indexes
        .children()
        .map_err(|(key, message)| invalid(&key, message))?;
    config
        .auth
        .validate()
        .map_err(|(key, message)| invalid(&key, message))?;
    if let Some(fs) = &config.storage.filesystem {
        if fs.rootdirectory.as_os_str().is_empty() {
            return Err(invalid(
                "storage.filesystem.rootdirectory",
                "must not be empty".to_string(),
            ));
        }
    }
    Ok(())
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message,
    }
}

/// Resolves `http.addr` (`:5000`, `127.0.0.1:5000`, `localhost:5000`,
/// `[::1]:5000`) to the socket address to bind. An empty host means every
/// IPv4 interface, as Distribution's `:5000` does.
pub fn listen_addr(addr: &str) -> Result<SocketAddr, String> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.to_socket_addrs()
        .map_err(|e| format!("invalid listen address {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("listen address {addr:?} resolves to nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let config = load(None, env(&[])).unwrap();
        assert_eq!(config.http.addr, ":5000");
        assert_eq!(config.storage.root_directory(), PathBuf::from("./data"));
        assert!(!config.storage.delete.enabled);
        assert!(config.storage.maintenance.uploadpurging.enabled);
        assert_eq!(
            config.storage.maintenance.uploadpurging.age.0,
            Duration::from_secs(168 * 3600)
        );
    }

    #[test]
    fn reads_distribution_shape() {
        let text = r#"
version: 0.1
log:
  level: debug
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: true
      age: 2h
      interval: 10m
      dryrun: false
http:
  addr: 127.0.0.1:5001
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"#;
        let config = load_from_str(text, "test", env(&[])).unwrap();
        assert_eq!(config.log.level, crate::LogLevel::Debug);
        assert_eq!(
            config.storage.root_directory(),
            PathBuf::from("/var/lib/registry")
        );
        assert!(config.storage.delete.enabled);
        assert_eq!(
            config.storage.maintenance.uploadpurging.age.0,
            Duration::from_secs(7200)
        );
        assert_eq!(
            config.http.headers["X-Content-Type-Options"],
            vec!["nosniff"]
        );
        assert_eq!(
            config.ignored(),
            vec!["health", "log.fields", "storage.cache"]
        );
    }

    #[test]
    fn environment_overrides_file() {
        let text = "storage:\n  filesystem:\n    rootdirectory: /a\nhttp:\n  addr: :5000\n";
        let config = load_from_str(
            text,
            "test",
            env(&[
                ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/b"),
                ("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
                ("REGISTRY_HTTP_ADDR", "127.0.0.1:6000"),
                ("REGISTRY_LOG_LEVEL", "warn"),
                ("REGISTRY_CONFIGURATION_PATH", "/ignored.yml"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(config.storage.root_directory(), PathBuf::from("/b"));
        assert!(config.storage.delete.enabled);
        assert_eq!(config.http.addr, "127.0.0.1:6000");
        assert_eq!(config.log.level, crate::LogLevel::Warn);
    }

    #[test]
    fn unknown_key_names_the_key() {
        let err = load_from_str(
            "storage:\n  filesystem:\n    rootdir: /x\n",
            "test",
            env(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("rootdir"), "{err}");
        assert!(err.contains("storage.filesystem"), "{err}");

        let err = load_from_str("", "test", env(&[("REGISTRY_STORAGE_FOO", "1")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("foo") && err.contains("REGISTRY_STORAGE_FOO"),
            "{err}"
        );

        let err = load_from_str("auth:\n  htpasswd: {}\n", "test", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth.htpasswd") && err.contains("realm"),
            "{err}"
        );
    }

    #[test]
    fn timeouts_and_connection_limit() {
        let config = load(None, env(&[])).unwrap();
        assert_eq!(config.http.timeout.header.0, Duration::from_secs(30));
        assert_eq!(config.http.timeout.idle.0, Duration::from_secs(120));
        assert_eq!(config.http.timeout.body.0, Duration::from_secs(60));
        assert_eq!(config.http.maxconnections, 4096);
        let text = "http:\n  timeout:\n    header: 2s\n    idle: 1m\n  maxconnections: 10\n";
        let config =
            load_from_str(text, "test", env(&[("REGISTRY_HTTP_TIMEOUT_BODY", "5s")])).unwrap();
        assert_eq!(config.http.timeout.header.0, Duration::from_secs(2));
        assert_eq!(config.http.timeout.idle.0, Duration::from_secs(60));
        assert_eq!(config.http.timeout.body.0, Duration::from_secs(5));
        assert_eq!(config.http.maxconnections, 10);
        let err = load_from_str("http:\n  timeout:\n    read: 1s\n", "test", env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("read") && err.contains("http.timeout"),
            "{err}"
        );
        for text in [
            "http:\n  timeout:\n    header: 0s\n",
            "http:\n  maxconnections: 0\n",
        ] {
            let err = load_from_str(text, "test", env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("above zero"), "{text}: {err}");
        }
    }

    #[test]
    fn auth_section_is_read_and_checked() {
        let text = "auth:\n  token:\n    realm: https://r.example/token\n    service: r.example\n    issuer: r.example\n    issue:\n      key: /k.pem\n      htpasswd: /h\n      expiration: 10m\n  access:\n    groups:\n      admins: [a]\n    rules:\n      - repositories: [\"**\"]\n        groups: [admins]\n        actions: [\"*\"]\n";
        let config = load_from_str(text, "test", env(&[])).unwrap();
        let token = config.auth.token.as_ref().unwrap();
        let issue = token.issue.as_ref().unwrap();
        assert_eq!(issue.expiration.0, Duration::from_secs(600));
        assert_eq!(issue.refreshexpiration.0, Duration::from_secs(720 * 3600));
        assert_eq!(config.auth.access.as_ref().unwrap().rules.len(), 1);

        let cases = [
            (
                "auth:\n  htpasswd:\n    realm: r\n    path: /h\n  token:\n    realm: http://x/t\n    service: s\n    issuer: i\n    jwks: /j\n",
                "exclusive",
            ),
            (
                "auth:\n  token:\n    realm: http://x/t\n    service: s\n    issuer: i\n",
                "no key",
            ),
            (
                "auth:\n  token:\n    realm: http://x/t\n    service: s\n    issuer: i\n    jwks: /j\n    signingalgorithms: [HS256]\n",
                "HS256",
            ),
            (
                "auth:\n  token:\n    realm: x/t\n    service: s\n    issuer: i\n    jwks: /j\n",
                "auth.token.realm",
            ),
            (
                "auth:\n  access:\n    rules:\n      - repositories: [a]\n        actions: [pull]\n",
                "names nobody",
            ),
            (
                "auth:\n  access:\n    rules:\n      - repositories: [a]\n        users: [u]\n        actions: [write]\n",
                "write",
            ),
            (
                "auth:\n  access:\n    rules:\n      - repositories: [a]\n        groups: [nobody]\n        actions: [pull]\n",
                "nobody",
            ),
            (
                "auth:\n  access:\n    rules:\n      - users: [u]\n        actions: [pull]\n",
                "catalog",
            ),
        ];
        for (text, expected) in cases {
            let err = load_from_str(text, "test", env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{text:?} gave {err}");
        }
    }

    #[test]
    fn malformed_values_name_the_key() {
        let cases = [
            ("http:\n  addr: not-an-address\n", "http.addr"),
            (
                "storage:\n  delete:\n    enabled: maybe\n",
                "storage.delete.enabled",
            ),
            ("log:\n  level: loud\n", "log.level"),
            (
                "storage:\n  maintenance:\n    uploadpurging:\n      age: ten\n",
                "age",
            ),
            ("version: 0.2\n", "version"),
            ("http:\n  net: unix\n", "http.net"),
        ];
        for (text, key) in cases {
            let err = load_from_str(text, "test", env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text:?} gave {err}");
        }
    }

    #[test]
    fn index_validation_modes_and_bad_values() {
        use crate::{IndexChildren, Platform};
        let rule = |yaml: &str| {
            load_from_str(yaml, "test", env(&[]))
                .map(|c| c.validation.manifests.indexes.children().unwrap())
        };
        assert_eq!(rule("").unwrap(), IndexChildren::All);
        let indexes = |body: &str| format!("validation:\n  manifests:\n    indexes:\n{body}");
        assert_eq!(
            rule(&indexes("      platforms: none\n")).unwrap(),
            IndexChildren::None
        );
        assert_eq!(
            rule(&indexes("      platforms: All\n")).unwrap(),
            IndexChildren::All
        );
        let amd64 = vec![Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
        }];
        let distribution_shape = indexes(
            "      platforms: list\n      platformlist:\n        - os: linux\n          architecture: amd64\n",
        );
        assert_eq!(
            rule(&distribution_shape).unwrap(),
            IndexChildren::Platforms(amd64.clone())
        );
        let short = indexes("      platforms:\n        - {os: linux, architecture: amd64}\n");
        assert_eq!(rule(&short).unwrap(), IndexChildren::Platforms(amd64));
        // The environment overrides it as Distribution's variables do.
        let from_env = load_from_str(
            "",
            "test",
            env(&[("REGISTRY_VALIDATION_MANIFESTS_INDEXES_PLATFORMS", "none")]),
        )
        .unwrap();
        assert_eq!(
            from_env.validation.manifests.indexes.children().unwrap(),
            IndexChildren::None
        );
        for (body, key) in [
            ("      platforms: some\n", "validation.manifests.indexes.platforms"),
            ("      platforms: 3\n", "validation.manifests.indexes.platforms"),
            ("      platforms: list\n", "validation.manifests.indexes.platformlist"),
            ("      platforms: list\n      platformlist: []\n", "validation.manifests.indexes.platformlist"),
            ("      platforms:\n        - {os: linux}\n", "validation.manifests.indexes.platforms"),
            ("      platforms: none\n      platformlist:\n        - {os: linux, architecture: arm64}\n", "validation.manifests.indexes.platformlist"),
        ] {
            let err = rule(&indexes(body)).unwrap_err().to_string();
            assert!(err.contains(key), "{body:?}: {err}");
        }
    }
}
