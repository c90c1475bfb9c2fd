//! Credentials in docker's `config.json` (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`), so `docker login` and `rctl login` share
//! logins: `auths{host: {auth: base64(user:password), identitytoken}}`,
//! and credential helpers (`credHelpers{host: name}`, else `credsStore`)
//! run as `docker-credential-<name> get|store|erase`.

use base64::Engine;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a registry login holds.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password, sent as Basic auth or to a token endpoint.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token a token server gave at login (docker's `identitytoken`).
    IdentityToken { username: String, token: String },
}

impl std::fmt::Debug for Credential {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <password>)"),
            Credential::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username}, <token>)")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("credential helper docker-credential-{helper}: {message}")]
    Helper { helper: String, message: String },
}

/// The docker config file holding logins.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn from_env() -> CredentialStore {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        CredentialStore {
            path: dir.join("config.json"),
        }
    }

    pub fn at(path: impl Into<PathBuf>) -> CredentialStore {
        CredentialStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file_error(&self, message: impl ToString) -> CredentialError {
        CredentialError::File {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    fn read(&self) -> Result<Map<String, Value>, CredentialError> {
        match std::fs::read(&self.path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(self.file_error("not a JSON object")),
                Err(e) => Err(self.file_error(e)),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(self.file_error(e)),
        }
    }

    /// Writes the whole file atomically (0600), keeping every other field.
    fn write(&self, config: &Map<String, Value>) -> Result<(), CredentialError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.file_error(e))?;
        let bytes = serde_json::to_vec_pretty(config).map_err(|e| self.file_error(e))?;
        let mut file = roci::atomic::AtomicFile::with_mode(&self.path, 0o600)
            .map_err(|e| self.file_error(e))?;
        file.write_all(&bytes).map_err(|e| self.file_error(e))?;
        file.commit().map_err(|e| self.file_error(e))
    }

    /// The helper that holds `host`'s credentials, if any.
    fn helper_for(config: &Map<String, Value>, host: &str) -> Option<String> {
        config
            .get("credHelpers")
            .and_then(|helpers| helpers.get(host))
            .or_else(|| config.get("credsStore"))
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
    }

    /// The login stored for `host`, if any.
    pub fn get(&self, host: &str) -> Result<Option<Credential>, CredentialError> {
        let config = self.read()?;
        if let Some(helper) = Self::helper_for(&config, host) {
            return helper_get(&helper, host);
        }
        let Some(entry) = auth_entry(&config, host) else {
            return Ok(None);
        };
        let identity = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        let (username, password) = match entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            Some(auth) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|e| self.file_error(format!("auths.{host}.auth: {e}")))?;
                let decoded = String::from_utf8(decoded)
                    .map_err(|e| self.file_error(format!("auths.{host}.auth: {e}")))?;
                let (user, pass) = decoded.split_once(':').ok_or_else(|| {
                    self.file_error(format!("auths.{host}.auth is not user:password"))
                })?;
                (user.to_string(), pass.to_string())
            }
            None => (String::new(), String::new()),
        };
        Ok(match identity {
            Some(token) => Some(Credential::IdentityToken {
                username,
                token: token.to_string(),
            }),
            None if !username.is_empty() => Some(Credential::Basic { username, password }),
            None => None,
        })
    }

    /// Stores a login for `host` (in its helper when one is configured).
    pub fn store(&self, host: &str, credential: &Credential) -> Result<(), CredentialError> {
        let mut config = self.read()?;
        if let Some(helper) = Self::helper_for(&config, host) {
            return helper_store(&helper, host, credential);
        }
        let entry = match credential {
            Credential::Basic { username, password } => {
                json!({ "auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")) })
            }
            Credential::IdentityToken { username, token } => json!({
                "auth": base64::engine::general_purpose::STANDARD.encode(format!("{username}:")),
                "identitytoken": token,
            }),
        };
        let auths = config.entry("auths").or_insert_with(|| json!({}));
        if !auths.is_object() {
            *auths = json!({});
        }
        if let Some(map) = auths.as_object_mut() {
            map.insert(host.to_string(), entry);
        }
        self.write(&config)
    }

    /// Removes the login for `host`; `false` when there was none.
    pub fn erase(&self, host: &str) -> Result<bool, CredentialError> {
        let mut config = self.read()?;
        if let Some(helper) = Self::helper_for(&config, host) {
            return helper_erase(&helper, host);
        }
        let removed = config
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .map(|auths| {
                let keys: Vec<String> = auth_keys(host)
                    .into_iter()
                    .filter(|k| auths.contains_key(k))
                    .collect();
                for key in &keys {
                    auths.remove(key);
                }
                !keys.is_empty()
            })
            .unwrap_or(false);
        if removed {
            self.write(&config)?;
        }
        Ok(removed)
    }
}

/// The keys docker may have used for `host` in `auths`.
fn auth_keys(host: &str) -> Vec<String> {
    vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
    ]
}

fn auth_entry<'a>(config: &'a Map<String, Value>, host: &str) -> Option<&'a Value> {
    let auths = config.get("auths")?;
    auth_keys(host).iter().find_map(|key| auths.get(key))
}

fn run_helper(helper: &str, verb: &str, input: &str) -> Result<(bool, String), CredentialError> {
    let program = format!("docker-credential-{helper}");
    let fail = |message: String| CredentialError::Helper {
        helper: helper.to_string(),
        message,
    };
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper may answer without reading its input (and be gone
        // already): its exit status and output say how it went.
        match stdin.write_all(input.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(fail(e.to_string()))
            }
            _ => {}
        }
    }
    let output = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() && text.trim().is_empty() {
        text = String::from_utf8_lossy(&output.stderr).into_owned();
    }
    Ok((output.status.success(), text))
}

fn helper_get(helper: &str, host: &str) -> Result<Option<Credential>, CredentialError> {
    let (ok, out) = run_helper(helper, "get", host)?;
    if !ok {
        if out.to_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(CredentialError::Helper {
            helper: helper.to_string(),
            message: out.trim().to_string(),
        });
    }
    let value: Value = serde_json::from_str(&out).map_err(|e| CredentialError::Helper {
        helper: helper.to_string(),
        message: format!("bad answer: {e}"),
    })?;
    let username = value["Username"].as_str().unwrap_or_default().to_string();
    let secret = value["Secret"].as_str().unwrap_or_default().to_string();
    Ok(Some(if username == "<token>" {
        Credential::IdentityToken {
            username,
            token: secret,
        }
    } else {
        Credential::Basic {
            username,
            password: secret,
        }
    }))
}

fn helper_store(helper: &str, host: &str, credential: &Credential) -> Result<(), CredentialError> {
    let (username, secret) = match credential {
        Credential::Basic { username, password } => (username.as_str(), password.as_str()),
        Credential::IdentityToken { token, .. } => ("<token>", token.as_str()),
    };
    let input = json!({ "ServerURL": host, "Username": username, "Secret": secret }).to_string();
    let (ok, out) = run_helper(helper, "store", &input)?;
    if ok {
        Ok(())
    } else {
        Err(CredentialError::Helper {
            helper: helper.to_string(),
            message: out.trim().to_string(),
        })
    }
}

fn helper_erase(helper: &str, host: &str) -> Result<bool, CredentialError> {
    let (ok, out) = run_helper(helper, "erase", host)?;
    if ok {
        Ok(true)
    } else if out.to_lowercase().contains("not found") {
        Ok(false)
    } else {
        Err(CredentialError::Helper {
            helper: helper.to_string(),
            message: out.trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_written_config_and_keeps_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        // As `docker login` writes it (user:secret), with fields of its own.
        std::fs::write(
            &path,
            r#"{"auths":{"localhost:5000":{"auth":"dXNlcjpzM2NyZXQ6d2l0aDpjb2xvbnM="},
                "https://tok.example":{"auth":"Ym9iOg==","identitytoken":"refresh-me"}},
               "psFormat":"table {{.ID}}"}"#,
        )
        .unwrap();
        let store = CredentialStore::at(&path);
        assert_eq!(
            store.get("localhost:5000").unwrap(),
            Some(Credential::Basic {
                username: "user".into(),
                password: "s3cret:with:colons".into()
            })
        );
        assert_eq!(
            store.get("tok.example").unwrap(),
            Some(Credential::IdentityToken {
                username: "bob".into(),
                token: "refresh-me".into()
            })
        );
        assert_eq!(store.get("elsewhere:1").unwrap(), None);

        store
            .store(
                "127.0.0.1:6000",
                &Credential::Basic {
                    username: "a".into(),
                    password: "b".into(),
                },
            )
            .unwrap();
        let raw: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw["psFormat"], "table {{.ID}}");
        assert_eq!(raw["auths"]["127.0.0.1:6000"]["auth"], "YTpi");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        assert!(store.erase("localhost:5000").unwrap());
        assert!(!store.erase("localhost:5000").unwrap());
        assert_eq!(store.get("localhost:5000").unwrap(), None);
        assert!(format!("{:?}", store.get("127.0.0.1:6000").unwrap()).contains("<password>"));
    }

    #[test]
    fn helpers_are_run_for_their_hosts() {
        let dir = tempfile::tempdir().unwrap();
        // A helper that keeps one secret in a file, as real helpers keep them elsewhere.
        let helper = dir.path().join("docker-credential-testhelper");
        let vault = dir.path().join("vault");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\ncase \"$1\" in\n get) if [ -f {v} ]; then cat {v}; else echo 'credentials not found in native keychain'; exit 1; fi;;\n store) cat > {v};;\n erase) rm {v};;\nesac\n",
                v = vault.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers":{"secure.example":"testhelper"}}"#).unwrap();
        let old_path = std::env::var("PATH").unwrap_or_default();
        // No other test of this crate starts processes, so changing PATH here is safe.
        std::env::set_var("PATH", format!("{}:{old_path}", dir.path().display()));

        let store = CredentialStore::at(&path);
        assert_eq!(store.get("secure.example").unwrap(), None);
        let login = Credential::Basic {
            username: "ci".into(),
            password: "pw".into(),
        };
        store.store("secure.example", &login).unwrap();
        assert!(vault.exists(), "the helper did not store");
        assert_eq!(store.get("secure.example").unwrap(), Some(login));
        let raw = std::fs::read_to_string(&path).unwrap();
        assert!(
            !raw.contains("pw"),
            "secret written to config.json despite the helper"
        );
        assert!(store.erase("secure.example").unwrap());
        assert_eq!(store.get("secure.example").unwrap(), None);
    }
}
