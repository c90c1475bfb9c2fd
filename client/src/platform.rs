//! Platforms (`os/arch[/variant]`) and picking one from an index.

use serde_json::Value;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform, in OCI's names.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Whether an index entry's `platform` is this one (a variant is only
    /// compared when this platform names one).
    pub fn matches(&self, platform: &Value) -> bool {
        platform.get("os").and_then(Value::as_str) == Some(self.os.as_str())
            && platform.get("architecture").and_then(Value::as_str)
                == Some(self.architecture.as_str())
            && self
                .variant
                .as_ref()
                .is_none_or(|v| platform.get("variant").and_then(Value::as_str) == Some(v.as_str()))
    }

    /// How an index entry's platform reads, for error messages.
    pub fn describe(platform: &Value) -> String {
        let part = |key: &str| {
            platform
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        };
        match platform.get("variant").and_then(Value::as_str) {
            Some(variant) => format!("{}/{}/{variant}", part("os"), part("architecture")),
            None => format!("{}/{}", part("os"), part("architecture")),
        }
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform {
                    os: os.to_string(),
                    architecture: arch.to_string(),
                    variant: Some(variant.to_string()),
                })
            }
            _ => Err(format!(
                "invalid platform {text:?}: expected os/arch[/variant]"
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_match() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(p.matches(&json!({"os": "linux", "architecture": "arm64", "variant": "v8"})));
        assert!(!p.matches(&json!({"os": "linux", "architecture": "arm64", "variant": "v9"})));
        let any_variant: Platform = "linux/arm64".parse().unwrap();
        assert!(
            any_variant.matches(&json!({"os": "linux", "architecture": "arm64", "variant": "v8"}))
        );
        assert!(!any_variant.matches(&json!({"os": "windows", "architecture": "arm64"})));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//".parse::<Platform>().is_err());
    }
}
