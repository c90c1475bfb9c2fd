//! `-p [IP:]HOSTPORT:CONTAINERPORT`: what docker-proxy does, without a
//! bridge. The monitor listens on the host (loopback by default); each
//! connection is relayed to `127.0.0.1:CONTAINERPORT` inside the
//! container's network namespace, reached by a thread that `setns`es into
//! it to connect. The relays end with the monitor, when the container ends.

use super::config::PortConfig;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

/// Parses `-p` values: `8080:80`, `127.0.0.1:8080:80`, `8080:80/tcp`.
pub fn parse(text: &str) -> Result<PortConfig, String> {
    let bad = || format!("invalid port mapping {text:?} (want [IP:]HOSTPORT:CONTAINERPORT[/tcp])");
    let text_ports = match text.rsplit_once('/') {
        Some((ports, "tcp")) => ports,
        Some((_, proto)) => return Err(format!("{text}: only tcp is relayed, not {proto}")),
        None => text,
    };
    let parts: Vec<&str> = text_ports.rsplitn(3, ':').collect();
    let (container, host, ip) = match parts.as_slice() {
        [c, h] => (*c, *h, "127.0.0.1"),
        [c, h, ip] => (*c, *h, ip.trim_start_matches('[').trim_end_matches(']')),
        _ => return Err(bad()),
    };
    let ip = if ip.is_empty() { "127.0.0.1" } else { ip };
    ip.parse::<std::net::IpAddr>().map_err(|_| bad())?;
    Ok(PortConfig {
        host_ip: ip.to_string(),
        host_port: host.parse().map_err(|_| bad())?,
        container_port: container.parse().map_err(|_| bad())?,
    })
}

/// Binds every host listener (before the container starts, so a port in
/// use is an error of the start).
pub fn bind(ports: &[PortConfig]) -> Result<Vec<(TcpListener, u16)>, String> {
    ports
        .iter()
        .map(|p| {
            let ip: std::net::IpAddr = p.host_ip.parse().map_err(|e| format!("{}: {e}", p.host_ip))?;
            TcpListener::bind((ip, p.host_port))
                .map(|l| (l, p.container_port))
                .map_err(|e| {
                    format!(
                        "driver failed programming external connectivity: Bind for {}:{} failed: {e}",
                        p.host_ip, p.host_port
                    )
                })
        })
        .collect()
}

/// Serves the listeners for the container whose PID 1 is `pid`.
pub fn serve(pid: i32, listeners: Vec<(TcpListener, u16)>) {
    for (listener, port) in listeners {
        let netns = format!("/proc/{pid}/ns/net");
        let Ok(netns) = std::fs::File::open(&netns) else {
            tracing::warn!("{netns}: cannot open; port {port} is not relayed");
            continue;
        };
        let netns = std::sync::Arc::new(netns);
        std::thread::spawn(move || {
            for incoming in listener.incoming() {
                let Ok(client) = incoming else { continue };
                let netns = netns.clone();
                std::thread::spawn(move || {
                    if let Ok(upstream) = connect_inside(&netns, port) {
                        relay(client, upstream);
                    }
                });
            }
        });
    }
}

/// Connects to `127.0.0.1:port` in the namespace: from a thread of its
/// own, since `setns` moves only the calling thread, for good.
fn connect_inside(netns: &std::fs::File, port: u16) -> std::io::Result<TcpStream> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                TcpStream::connect(("127.0.0.1", port))
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("relay thread panicked")))
    })
}

/// Copies both ways until each side has closed.
fn relay(client: TcpStream, upstream: TcpStream) {
    let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let one = std::thread::spawn(move || pipe(client, upstream));
    pipe(upstream2, client2);
    let _ = one.join();
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_port_mappings() {
        let p = super::parse("8080:80").unwrap();
        assert_eq!(
            (p.host_ip.as_str(), p.host_port, p.container_port),
            ("127.0.0.1", 8080, 80)
        );
        let p = super::parse("127.0.0.2:81:82/tcp").unwrap();
        assert_eq!(
            (p.host_ip.as_str(), p.host_port, p.container_port),
            ("127.0.0.2", 81, 82)
        );
        assert!(super::parse("80").is_err());
        assert!(super::parse("1:2/udp").is_err());
        assert!(super::parse("x:1:2").is_err());
    }
}
