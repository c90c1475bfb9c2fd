//! The configuration types, one struct per section of Distribution's
//! `config.yml`, with the defaults a zero-config start uses.
//!
//! Unknown keys are refused (`deny_unknown_fields`) so that a typo never
//! silently falls back to a default. Sections Distribution knows but that do
//! nothing here (`health`, `storage.cache`, `log.fields`, ...) are accepted
//! and reported by [`Config::ignored`] so the binary can warn about them.

use crate::duration::GoDuration;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file format version; Distribution's files say `0.1`.
    #[serde(default, deserialize_with = "version_string")]
    pub version: Option<String>,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub http: Http,
    /// Distribution's storage health checks: accepted, not used.
    #[serde(default)]
    pub health: Option<serde_yaml::Value>,
    #[serde(default)]
    pub auth: crate::auth::Auth,
    #[serde(default)]
    pub validation: Validation,
}

/// `log`: how much the server says, and how.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    #[serde(default)]
    pub level: LogLevel,
    /// `text` (default) or `json`.
    #[serde(default)]
    pub formatter: LogFormatter,
    /// Extra fields Distribution adds to each line: accepted, not used.
    #[serde(default)]
    pub fields: Option<BTreeMap<String, serde_yaml::Value>>,
    #[serde(default)]
    pub accesslog: AccessLog,
}

/// `log.level`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    #[serde(alias = "warning")]
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The level's name as `tracing` filters spell it.
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `log.formatter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormatter {
    #[default]
    Text,
    Json,
}

/// `log.accesslog`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    #[serde(default)]
    pub disabled: bool,
}

/// `storage`: one driver section plus the options shared by all drivers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// The filesystem driver; the default when no driver is named.
    #[serde(default)]
    pub filesystem: Option<Filesystem>,
    #[serde(default)]
    pub delete: Delete,
    #[serde(default)]
    pub maintenance: Maintenance,
    /// Distribution's blob descriptor cache: accepted, not used.
    #[serde(default)]
    pub cache: Option<serde_yaml::Value>,
    /// Distribution's redirect switch: accepted, not used by the filesystem driver.
    #[serde(default)]
    pub redirect: Option<serde_yaml::Value>,
}

impl Storage {
    /// The filesystem root: the configured one, or `./data`.
    pub fn root_directory(&self) -> PathBuf {
        self.filesystem
            .as_ref()
            .map(|fs| fs.rootdirectory.clone())
            .unwrap_or_else(default_root)
    }
}

/// `storage.filesystem`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filesystem {
    #[serde(default = "default_root")]
    pub rootdirectory: PathBuf,
    /// Distribution's cap on blocking threads: accepted, not used.
    #[serde(default)]
    pub maxthreads: Option<u32>,
}

fn default_root() -> PathBuf {
    PathBuf::from("./data")
}

/// `storage.delete`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delete {
    #[serde(default)]
    pub enabled: bool,
}

/// `storage.maintenance`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    #[serde(default)]
    pub uploadpurging: UploadPurging,
    #[serde(default)]
    pub readonly: ReadOnly,
}

/// `storage.maintenance.uploadpurging`: removal of abandoned uploads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadPurging {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Uploads untouched for this long are removed.
    #[serde(default = "default_purge_age")]
    pub age: GoDuration,
    /// How often the purge runs.
    #[serde(default = "default_purge_interval")]
    pub interval: GoDuration,
    /// Log what would be removed without removing it.
    #[serde(default)]
    pub dryrun: bool,
}

impl Default for UploadPurging {
    fn default() -> Self {
        UploadPurging {
            enabled: true,
            age: default_purge_age(),
            interval: default_purge_interval(),
            dryrun: false,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_purge_age() -> GoDuration {
    GoDuration(Duration::from_secs(168 * 3600))
}
fn default_purge_interval() -> GoDuration {
    GoDuration(Duration::from_secs(24 * 3600))
}

/// `storage.maintenance.readonly`: refuse every write.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadOnly {
    #[serde(default)]
    pub enabled: bool,
}

/// `http`: where and how the server listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// `host:port` or `:port`.
    #[serde(default = "default_addr")]
    pub addr: String,
    /// Only `tcp` is served.
    #[serde(default)]
    pub net: Option<String>,
    /// Headers added to every response.
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub tls: Option<Tls>,
    /// How long in-flight requests may run after SIGTERM/SIGINT.
    #[serde(default = "default_drain")]
    pub draintimeout: GoDuration,
    /// Distribution's upload-state HMAC secret: accepted, not needed here.
    #[serde(default)]
    pub secret: Option<String>,
    /// Locations are always relative here: accepted for compatibility.
    #[serde(default)]
    pub relativeurls: Option<bool>,
    /// Distribution's debug server: accepted, not used.
    #[serde(default)]
    pub debug: Option<serde_yaml::Value>,
    /// Distribution's HTTP/2 switch: accepted, not used.
    #[serde(default)]
    pub http2: Option<serde_yaml::Value>,
    /// How long a connection may take or wait (our extension).
    #[serde(default)]
    pub timeout: Timeouts,
    /// The most connections served at once (our extension); further ones
    /// wait in the listen queue until one closes.
    #[serde(default = "default_max_connections")]
    pub maxconnections: usize,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            addr: default_addr(),
            net: None,
            headers: BTreeMap::new(),
            tls: None,
            draintimeout: default_drain(),
            secret: None,
            relativeurls: None,
            debug: None,
            http2: None,
            timeout: Timeouts::default(),
            maxconnections: default_max_connections(),
        }
    }
}

fn default_max_connections() -> usize {
    4096
}

/// `http.timeout` (our extension): what a connection may hold without
/// making progress. Each must be above zero.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// From accepting a connection, or from the first byte of a later
    /// request on it, until the request's headers are complete.
    #[serde(default = "default_header_timeout")]
    pub header: GoDuration,
    /// Between requests on a kept-alive connection.
    #[serde(default = "default_idle_timeout")]
    pub idle: GoDuration,
    /// Within a request: the longest wait for the next piece of its body,
    /// or for the client to take the next piece of the response.
    #[serde(default = "default_body_timeout")]
    pub body: GoDuration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: default_header_timeout(),
            idle: default_idle_timeout(),
            body: default_body_timeout(),
        }
    }
}

fn default_header_timeout() -> GoDuration {
    GoDuration(Duration::from_secs(30))
}
fn default_idle_timeout() -> GoDuration {
    GoDuration(Duration::from_secs(120))
}
fn default_body_timeout() -> GoDuration {
    GoDuration(Duration::from_secs(60))
}

fn default_addr() -> String {
    ":5000".to_string()
}
fn default_drain() -> GoDuration {
    GoDuration(Duration::from_secs(30))
}

/// `http.tls`: serve HTTPS with this certificate chain and key (PEM files).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// `validation`: what the registry checks in pushed content.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    #[serde(default)]
    pub manifests: ManifestValidation,
}

/// `validation.manifests`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestValidation {
    #[serde(default)]
    pub indexes: IndexValidation,
}

/// `validation.manifests.indexes`: which child manifests of a pushed index
/// must already be in the repository, in Distribution 3's shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexValidation {
    /// `all` (the default, as in Distribution), `none`, `list` (the
    /// platforms of `platformlist`), or the list of platforms itself.
    #[serde(default)]
    pub platforms: Option<serde_yaml::Value>,
    /// The platforms whose children must exist, with `platforms: list`.
    #[serde(default)]
    pub platformlist: Option<Vec<Platform>>,
}

/// A platform of `validation.manifests.indexes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
}

/// Which children of an index must exist when the index is pushed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IndexChildren {
    /// Every child (Distribution's default, and the only behaviour of 2.x).
    #[default]
    All,
    /// None: sparse indexes are accepted as they are.
    None,
    /// Children whose platform is one of these (others may be absent).
    Platforms(Vec<Platform>),
}

impl IndexValidation {
    /// The rule these keys give, or the key at fault and why.
    pub fn children(&self) -> Result<IndexChildren, (String, String)> {
        const PLATFORMS: &str = "validation.manifests.indexes.platforms";
        const LIST: &str = "validation.manifests.indexes.platformlist";
        let listed = |platforms: &[Platform], key: &str| {
            if platforms.is_empty() {
                return Err((
                    key.to_string(),
                    "must name at least one platform ({os, architecture})".to_string(),
                ));
            }
            if let Some(bad) = platforms
                .iter()
                .find(|p| p.os.trim().is_empty() || p.architecture.trim().is_empty())
            {
                return Err((
                    key.to_string(),
                    format!("platform {bad:?} needs both os and architecture"),
                ));
            }
            Ok(IndexChildren::Platforms(platforms.to_vec()))
        };
        let rule = match &self.platforms {
            None => IndexChildren::All,
            Some(serde_yaml::Value::String(word)) => match word.to_ascii_lowercase().as_str() {
                "all" => IndexChildren::All,
                "none" => IndexChildren::None,
                "list" => {
                    return listed(self.platformlist.as_deref().unwrap_or_default(), LIST);
                }
                other => {
                    return Err((
                        PLATFORMS.to_string(),
                        format!("unknown value {other:?}: expected all, none, list (with platformlist) or a list of {{os, architecture}}"),
                    ))
                }
            },
            Some(value @ serde_yaml::Value::Sequence(_)) => {
                let platforms: Vec<Platform> = serde_yaml::from_value(value.clone())
                    .map_err(|e| (PLATFORMS.to_string(), format!("not a list of {{os, architecture}}: {e}")))?;
                if self.platformlist.is_some() {
                    return Err((LIST.to_string(), "given with a list in platforms: keep one of them".to_string()));
                }
                return listed(&platforms, PLATFORMS);
            }
            Some(other) => {
                return Err((
                    PLATFORMS.to_string(),
                    format!("expected all, none, list or a list of {{os, architecture}}, not {other:?}"),
                ))
            }
        };
        if self.platformlist.is_some() {
            return Err((
                LIST.to_string(),
                "is read only with platforms: list".to_string(),
            ));
        }
        Ok(rule)
    }
}

impl Config {
    /// Keys that were given but have no effect in this server, for a startup warning.
    pub fn ignored(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let present = [
            (self.health.is_some(), "health"),
            (self.log.fields.is_some(), "log.fields"),
            (self.storage.cache.is_some(), "storage.cache"),
            (self.storage.redirect.is_some(), "storage.redirect"),
            (
                self.storage
                    .filesystem
                    .as_ref()
                    .is_some_and(|fs| fs.maxthreads.is_some()),
                "storage.filesystem.maxthreads",
            ),
            (self.http.secret.is_some(), "http.secret"),
            (self.http.relativeurls.is_some(), "http.relativeurls"),
            (self.http.debug.is_some(), "http.debug"),
            (self.http.http2.is_some(), "http.http2"),
        ];
        for (is_present, key) in present {
            if is_present {
                keys.push(key);
            }
        }
        keys
    }
}

/// `version` is written `0.1`, which YAML reads as a number: take either.
fn version_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_yaml::Value>::deserialize(deserializer)?;
    match value {
        None | Some(serde_yaml::Value::Null) => Ok(None),
        Some(serde_yaml::Value::String(text)) => Ok(Some(text)),
        Some(serde_yaml::Value::Number(number)) => Ok(Some(number.to_string())),
        Some(_) => Err(serde::de::Error::custom("expected a version such as 0.1")),
    }
}
