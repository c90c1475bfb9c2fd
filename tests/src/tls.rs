//! Test certificates made with openssl: a CA, and a server certificate
//! signed by it for 127.0.0.1, localhost and any extra DNS names.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The files of a test PKI.
pub struct TestCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes a CA and a server certificate in `dir`.
pub fn make_certs(dir: &Path, extra_dns: &[&str]) -> TestCerts {
    let mut names = vec!["IP:127.0.0.1".to_string(), "DNS:localhost".to_string()];
    names.extend(extra_dns.iter().map(|n| format!("DNS:{n}")));
    let script = format!(
        "set -e; cd {dir}; \
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
           -subj /CN=test-ca -keyout ca.key -out ca.pem; \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
           -keyout key.pem -out server.csr; \
         printf 'subjectAltName={names}\\nbasicConstraints=CA:FALSE\\n' > ext.cnf; \
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
           -extfile ext.cnf -out cert.pem",
        dir = dir.display(),
        names = names.join(",")
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(
        status.success(),
        "openssl could not make the test certificates"
    );
    TestCerts {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}
