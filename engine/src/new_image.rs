//! A new image made on top of a stored one (or of nothing): layers and
//! history entries added, the config edited, then written to the store as
//! an OCI manifest and config. `commit`, `import` and the builder all make
//! their images this way.

use crate::differ::{StoredLayer, LAYER_MEDIA_TYPE};
use crate::runtime::time::{now_nanos, rfc3339};
use crate::store::{ContentStore, ImageRef, StoreError};
use roci::Digest;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum NewImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid image: {0}")]
    Invalid(String),
    #[error("{0}")]
    Change(String),
}

type Result<T> = std::result::Result<T, NewImageError>;

/// An image being made.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// The whole image config (`architecture`, `os`, `config`, `rootfs`, `history`, ...).
    pub config: Value,
    /// Layer descriptors, lowest first.
    pub layers: Vec<Value>,
}

/// The OCI media type of a layer descriptor's type (docker's map onto OCI's).
fn oci_layer_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip".into()
        }
        "application/vnd.docker.image.rootfs.diff.tar" => {
            "application/vnd.oci.image.layer.v1.tar".into()
        }
        other => other.to_string(),
    }
}

impl NewImage {
    /// An image with no layers, for this machine's platform.
    pub fn scratch() -> NewImage {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        NewImage {
            config: json!({
                "architecture": arch,
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            layers: Vec::new(),
        }
    }

    /// Starts from the stored image whose manifest is `manifest`.
    pub fn from_image(store: &ContentStore, manifest: &Digest) -> Result<NewImage> {
        let manifest: Value = serde_json::from_slice(&store.read_blob(manifest)?)
            .map_err(|e| NewImageError::Invalid(format!("manifest: {e}")))?;
        let config_digest: Digest = manifest
            .pointer("/config/digest")
            .and_then(Value::as_str)
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| NewImageError::Invalid("manifest without a config".into()))?;
        let config: Value = serde_json::from_slice(&store.read_blob(&config_digest)?)
            .map_err(|e| NewImageError::Invalid(format!("config: {e}")))?;
        let layers = manifest
            .get("layers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut layer| {
                if let Some(t) = layer.get("mediaType").and_then(Value::as_str) {
                    layer["mediaType"] = Value::String(oci_layer_type(t));
                }
                layer
            })
            .collect();
        Ok(NewImage { config, layers })
    }

    /// The `config` section (Cmd, Env, ...), created if missing.
    pub fn run_config(&mut self) -> &mut serde_json::Map<String, Value> {
        if !self.config.get("config").is_some_and(Value::is_object) {
            self.config["config"] = json!({});
        }
        self.config["config"]
            .as_object_mut()
            .expect("config section is an object")
    }

    /// Sets `KEY=value` in the run config's `Env`: an earlier `KEY` is
    /// replaced where it stands, a new one appended (docker's order). A
    /// missing or `null` Env (every `docker import` image has one) is an
    /// empty list.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let env = self.run_config().entry("Env").or_insert(Value::Null);
        if !env.is_array() {
            *env = json!([]);
        }
        if let Some(list) = env.as_array_mut() {
            let entry = Value::String(format!("{key}={value}"));
            match list
                .iter_mut()
                .find(|e| e.as_str().and_then(|e| e.split('=').next()) == Some(key))
            {
                Some(existing) => *existing = entry,
                None => list.push(entry),
            }
        }
    }

    /// Gives the image docker's default `PATH` when its `Env` has none,
    /// as docker's and buildah's builders do at every `FROM`.
    pub fn default_path(&mut self) {
        let has_path = self
            .config
            .pointer("/config/Env")
            .and_then(Value::as_array)
            .is_some_and(|env| {
                env.iter()
                    .any(|e| e.as_str().and_then(|e| e.split('=').next()) == Some("PATH"))
            });
        if !has_path {
            let env = self.run_config().entry("Env").or_insert(Value::Null);
            if !env.is_array() {
                *env = json!([]);
            }
            if let Some(list) = env.as_array_mut() {
                list.push(Value::String(format!(
                    "PATH={}",
                    crate::runtime::process::DEFAULT_PATH
                )));
            }
        }
    }

    /// Sets `key` in the run config's map `section` (`Labels`,
    /// `ExposedPorts`, `Volumes`), making the map when it is missing or
    /// not a map.
    pub fn set_in_run_config(&mut self, section: &str, key: &str, value: Value) {
        let map = self
            .run_config()
            .entry(section)
            .or_insert_with(|| json!({}));
        if !map.is_object() {
            *map = json!({});
        }
        map[key] = value;
    }

    /// Adds a history entry; the image's `created` becomes the entry's.
    fn history(&mut self, entry: Value) {
        if let Some(created) = entry.get("created") {
            self.config["created"] = created.clone();
        }
        if !self.config.get("history").is_some_and(Value::is_array) {
            self.config["history"] = json!([]);
        }
        if let Some(history) = self.config["history"].as_array_mut() {
            history.push(entry);
        }
    }

    /// Adds a layer, with its history entry.
    pub fn add_layer(&mut self, layer: &StoredLayer, created_by: &str, comment: &str) {
        self.layers.push(json!({
            "mediaType": LAYER_MEDIA_TYPE,
            "digest": layer.digest.to_string(),
            "size": layer.size,
        }));
        if !self
            .config
            .pointer("/rootfs/diff_ids")
            .is_some_and(Value::is_array)
        {
            self.config["rootfs"] = json!({"type": "layers", "diff_ids": []});
        }
        if let Some(ids) = self.config["rootfs"]["diff_ids"].as_array_mut() {
            ids.push(Value::String(layer.diff_id.to_string()));
        }
        let mut entry = json!({"created": rfc3339(now_nanos()), "created_by": created_by});
        if !comment.is_empty() {
            entry["comment"] = Value::String(comment.into());
        }
        self.history(entry);
    }

    /// Adds a history entry that changed only the config.
    pub fn add_empty_layer(&mut self, created_by: &str) {
        self.history(json!({
            "created": rfc3339(now_nanos()),
            "created_by": created_by,
            "empty_layer": true,
        }));
    }

    /// Sets `created` (now) and `author`.
    pub fn stamp(&mut self, author: &str) {
        self.config["created"] = Value::String(rfc3339(now_nanos()));
        if !author.is_empty() {
            self.config["author"] = Value::String(author.into());
        }
    }

    /// Writes config and manifest to the store, names the image `name`
    /// when given; returns (config digest, the image's store entry).
    pub fn write(&self, store: &ContentStore, name: Option<&str>) -> Result<(Digest, ImageRef)> {
        let config =
            serde_json::to_vec(&self.config).map_err(|e| NewImageError::Invalid(e.to_string()))?;
        let _session = store.write_session()?;
        let config_digest = store.put_bytes(&config)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config.len(),
            },
            "layers": self.layers,
        });
        let bytes =
            serde_json::to_vec(&manifest).map_err(|e| NewImageError::Invalid(e.to_string()))?;
        let digest = store.put_bytes(&bytes)?;
        let image = ImageRef {
            name: name.unwrap_or_default().to_string(),
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: bytes.len() as u64,
        };
        if name.is_some() {
            store.tag(&image)?;
        }
        Ok((config_digest, image))
    }

    /// Applies a Dockerfile-style config change, as `commit -c` and
    /// `import -c` take them: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
    /// VOLUME, WORKDIR, STOPSIGNAL.
    pub fn apply_change(&mut self, line: &str) -> Result<()> {
        let line = line.trim();
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let bad = |why: &str| NewImageError::Change(format!("{line:?}: {why}"));
        let config = self.run_config();
        match instruction.to_ascii_uppercase().as_str() {
            "CMD" | "ENTRYPOINT" => {
                let value = command_form(rest);
                let key = if instruction.eq_ignore_ascii_case("CMD") {
                    "Cmd"
                } else {
                    "Entrypoint"
                };
                config.insert(key.into(), json!(value));
            }
            "ENV" => {
                for (key, value) in pairs(rest).ok_or_else(|| bad("want KEY=VALUE"))? {
                    self.set_env(&key, &value);
                }
            }
            "LABEL" => {
                for (key, value) in pairs(rest).ok_or_else(|| bad("want KEY=VALUE"))? {
                    self.set_in_run_config("Labels", &key, Value::String(value));
                }
            }
            "EXPOSE" => {
                for port in rest.split_whitespace() {
                    let port = if port.contains('/') {
                        port.to_string()
                    } else {
                        format!("{port}/tcp")
                    };
                    self.set_in_run_config("ExposedPorts", &port, json!({}));
                }
            }
            "VOLUME" => {
                let paths: Vec<String> = match serde_json::from_str::<Vec<String>>(rest) {
                    Ok(list) => list,
                    Err(_) => rest.split_whitespace().map(str::to_string).collect(),
                };
                for path in paths {
                    self.set_in_run_config("Volumes", &path, json!({}));
                }
            }
            "USER" => {
                config.insert("User".into(), Value::String(rest.into()));
            }
            "WORKDIR" => {
                config.insert("WorkingDir".into(), Value::String(rest.into()));
            }
            "STOPSIGNAL" => {
                config.insert("StopSignal".into(), Value::String(rest.into()));
            }
            other => {
                return Err(bad(&format!(
                    "{other} is not a change commit or import can apply"
                )))
            }
        }
        Ok(())
    }
}

/// `["a", "b"]` as is, anything else as `/bin/sh -c TEXT` (docker's shell form).
pub fn command_form(text: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(text) {
        Ok(list) => list,
        Err(_) => vec!["/bin/sh".into(), "-c".into(), text.into()],
    }
}

/// `K=V K2="V 2"` or the old `K V` form.
fn pairs(text: &str) -> Option<Vec<(String, String)>> {
    let first = text.split_whitespace().next()?;
    if !first.contains('=') {
        let (key, value) = text.split_once(char::is_whitespace)?;
        return Some(vec![(key.to_string(), value.trim().to_string())]);
    }
    let mut found = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(found);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let mut value = String::new();
        let mut quote = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, '\\') => {
                    if let Some(next) = chars.next() {
                        value.push(next);
                    }
                }
                (_, c) => value.push(c),
            }
        }
        if key.is_empty() {
            return None;
        }
        found.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_env_takes_changes_and_a_default_path() {
        // What `docker import` writes: Env (and the other lists) null.
        let mut image = NewImage::scratch();
        image.config["config"] = json!({"Env": null, "Volumes": null, "Labels": []});
        image.apply_change("ENV X=1").unwrap();
        image.apply_change("VOLUME /v").unwrap();
        image.apply_change("LABEL a=b").unwrap();
        assert_eq!(image.config["config"]["Env"], json!(["X=1"]));
        assert_eq!(image.config["config"]["Volumes"], json!({"/v": {}}));
        assert_eq!(image.config["config"]["Labels"], json!({"a": "b"}));
        image.default_path();
        image.default_path();
        assert_eq!(
            image.config["config"]["Env"],
            json!([
                "X=1",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ])
        );
        let mut null = NewImage::scratch();
        null.config["config"]["Env"] = Value::Null;
        null.set_env("A", "1");
        assert_eq!(null.config["config"]["Env"], json!(["A=1"]));
    }

    #[test]
    fn changes_edit_the_config_as_docker_does() {
        let mut image = NewImage::scratch();
        for change in [
            "CMD [\"echo\", \"hi\"]",
            "ENTRYPOINT /bin/run me",
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "LABEL team=core",
            "EXPOSE 80 53/udp",
            "USER alice",
            "WORKDIR /srv",
            "VOLUME [\"/data\"]",
            "STOPSIGNAL SIGINT",
        ] {
            image.apply_change(change).unwrap();
        }
        let c = &image.config["config"];
        assert_eq!(c["Cmd"], json!(["echo", "hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/run me"]));
        // docker replaces a variable where it stands.
        assert_eq!(c["Env"], json!(["A=3", "B=two words"]));
        assert_eq!(c["Labels"]["team"], "core");
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(
            (c["User"].as_str(), c["WorkingDir"].as_str()),
            (Some("alice"), Some("/srv"))
        );
        assert_eq!(c["Volumes"], json!({"/data": {}}));
        assert_eq!(c["StopSignal"], "SIGINT");
        assert!(image.apply_change("RUN rm -rf /").is_err());
    }
}
