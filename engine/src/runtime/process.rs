//! docker's rules for what a container runs: ENTRYPOINT, CMD and the
//! arguments combined; the environment merged; a user name resolved by
//! the image's own `/etc/passwd` and `/etc/group`.

use super::{Result, RuntimeError};
use serde_json::Value;
use std::path::Path;

/// The PATH a container gets when its image sets none (docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    value?.as_array().map(|items| {
        items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}

/// The command line: `--entrypoint` (which also drops the image's CMD, as
/// docker does) or the image's ENTRYPOINT, followed by the arguments
/// given, or else the image's CMD.
pub fn command(
    image_config: &Value,
    entrypoint: Option<&str>,
    args: &[String],
) -> Result<Vec<String>> {
    let (entry, cmd) = match entrypoint {
        Some("") => (Vec::new(), Vec::new()),
        Some(e) => (vec![e.to_string()], Vec::new()),
        None => (
            strings(image_config.get("Entrypoint")).unwrap_or_default(),
            strings(image_config.get("Cmd")).unwrap_or_default(),
        ),
    };
    let mut all = entry;
    if args.is_empty() {
        all.extend(cmd);
    } else {
        all.extend(args.iter().cloned());
    }
    if all.is_empty() {
        return Err(RuntimeError::Invalid(
            "No command specified: the image has no ENTRYPOINT or CMD, and none was given".into(),
        ));
    }
    Ok(all)
}

/// The image's `Env`, then each `KEY=VALUE` given (a bare `KEY` takes the
/// caller's value, or is dropped when the caller has none), then PATH and
/// HOSTNAME where missing.
pub fn environment(
    image_config: &Value,
    given: &[String],
    hostname: &str,
    tty: bool,
) -> Vec<String> {
    let mut env: Vec<String> = strings(image_config.get("Env")).unwrap_or_default();
    let mut set = |entry: String| {
        let key = entry.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    };
    for entry in given {
        if entry.contains('=') {
            set(entry.clone());
        } else if let Ok(value) = std::env::var(entry) {
            set(format!("{entry}={value}"));
        }
    }
    let has = |env: &[String], key: &str| env.iter().any(|e| e.split('=').next() == Some(key));
    if !has(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOSTNAME") {
        env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    }
    if tty && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    env
}

/// Reads `--env-file` lines: `KEY=VALUE` or `KEY`, `#` comments and blank lines skipped.
pub fn env_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(super::io(path))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// A user resolved inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// Resolves `user[:group]` (names or numbers) against `<root>/etc/passwd`
/// and `<root>/etc/group`, as docker does: a number need not exist; a
/// name must.
pub fn resolve_user(root: &Path, spec: &str) -> Result<User> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    resolve_user_in(&passwd, &group, spec)
}

/// [`resolve_user`] against the text of a passwd and a group file.
pub fn resolve_user_in(passwd: &str, group: &str, spec: &str) -> Result<User> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let found = entries
        .iter()
        .find(|f| f[0] == user_part)
        .or_else(|| entries.iter().find(|f| f[2] == user_part));
    let (uid, mut gid, home, name) = match (found, user_part.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[5].to_string(),
            Some(f[0].to_string()),
        ),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => {
            return Err(RuntimeError::Invalid(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            )))
        }
    };
    let groups_file: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(g) = group_part {
        gid = match groups_file.iter().find(|f| f[0] == g) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                RuntimeError::Invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    let mut groups = vec![gid];
    if let (Some(name), None) = (&name, group_part) {
        for f in &groups_file {
            if f[3].split(',').any(|member| member == name) {
                if let Ok(id) = f[2].parse::<u32>() {
                    if !groups.contains(&id) {
                        groups.push(id);
                    }
                }
            }
        }
    }
    Ok(User {
        uid,
        gid,
        groups,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn combines_entrypoint_cmd_and_args_as_docker_does() {
        let image = json!({"Entrypoint": ["/bin/tini", "--"], "Cmd": ["sh"]});
        assert_eq!(
            command(&image, None, &[]).unwrap(),
            ["/bin/tini", "--", "sh"]
        );
        let args = vec!["echo".to_string(), "hi".to_string()];
        assert_eq!(
            command(&image, None, &args).unwrap(),
            ["/bin/tini", "--", "echo", "hi"]
        );
        assert_eq!(command(&image, Some("env"), &[]).unwrap(), ["env"]);
        assert_eq!(command(&image, Some(""), &args).unwrap(), ["echo", "hi"]);
        assert!(command(&json!({}), None, &[]).is_err());
    }

    #[test]
    fn merges_environment() {
        let image = json!({"Env": ["PATH=/bin", "A=1"]});
        let env = environment(&image, &["A=2".into(), "B=3".into()], "box", false);
        assert_eq!(env, ["PATH=/bin", "HOSTNAME=box", "A=2", "B=3"]);
    }

    #[test]
    fn resolves_users_by_name_and_number() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:100:A:/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/group"),
            "root:x:0:\nusers:x:100:\nwheel:x:10:alice,bob\n",
        )
        .unwrap();
        let alice = resolve_user(root.path(), "alice").unwrap();
        assert_eq!(
            (alice.uid, alice.gid, alice.groups.clone()),
            (1000, 100, vec![100, 10])
        );
        assert_eq!(alice.home, "/home/alice");
        let numeric = resolve_user(root.path(), "4242:wheel").unwrap();
        assert_eq!((numeric.uid, numeric.gid), (4242, 10));
        assert!(resolve_user(root.path(), "nobody-here").is_err());
        assert!(resolve_user(root.path(), "alice:nogroup").is_err());
    }
}
