//! The machine's own limits, measured in the run: sha256 on one core,
//! sequential write to the data disk (with fsync), sequential read from it
//! (page cache dropped; as root), and TCP over loopback.
//! Transfers are reported as a share of these.

use crate::blob::{BlobSource, PIECE};
use crate::report::Limit;
use crate::{Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const GIB: u64 = 1 << 30;

pub fn measure(work: &Path, pattern: &Arc<Vec<u8>>) -> Result<Vec<Limit>> {
    let blob = BlobSource::new(pattern.clone(), GIB, u64::MAX);
    let mut limits = vec![
        Limit {
            key: "sha256",
            name: "sha256, one core",
            mb_per_s: sha256(&blob),
        },
        Limit {
            key: "disk_write",
            name: "disk write, sequential with fsync",
            mb_per_s: disk_write(work, &blob)?,
        },
    ];
    if let Some(mb_per_s) = disk_read(work, &blob)? {
        limits.push(Limit {
            key: "disk_read",
            name: "disk read, sequential, page cache dropped",
            mb_per_s,
        });
    }
    limits.push(Limit {
        key: "loopback",
        name: "TCP over loopback, one connection",
        mb_per_s: loopback(pattern)?,
    });
    Ok(limits)
}

/// A 1 GiB file written, the page cache dropped, the file read back in
/// 1 MiB reads; `None` when the cache cannot be dropped (not root).
fn disk_read(work: &Path, blob: &BlobSource) -> Result<Option<f64>> {
    let path = work.join("disk-read-test");
    let mut file = std::fs::File::create(&path).context("creating the disk test file")?;
    for segment in blob.segments(0, blob.size) {
        file.write_all(segment)
            .context("writing the disk test file")?;
    }
    file.sync_all().context("syncing the disk test file")?;
    drop(file);
    nix::unistd::sync();
    if std::fs::write("/proc/sys/vm/drop_caches", "3").is_err() {
        std::fs::remove_file(&path).context("removing the disk test file")?;
        return Ok(None);
    }
    let started = Instant::now();
    let mut file = std::fs::File::open(&path).context("opening the disk test file")?;
    let mut buffer = vec![0u8; 1024 * 1024];
    let mut seen = 0u64;
    loop {
        match file
            .read(&mut buffer)
            .context("reading the disk test file")?
        {
            0 => break,
            n => seen += n as u64,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    std::fs::remove_file(&path).context("removing the disk test file")?;
    Ok(Some(seen as f64 / 1e6 / seconds))
}

fn sha256(blob: &BlobSource) -> f64 {
    let started = Instant::now();
    let _ = blob.digest();
    blob.size as f64 / 1e6 / started.elapsed().as_secs_f64()
}

/// The better of two writes of 1 GiB with `fsync`, each after a `sync`
/// (this machine's disk varies from one write to the next).
fn disk_write(work: &Path, blob: &BlobSource) -> Result<f64> {
    let first = disk_write_once(work, blob)?;
    Ok(first.max(disk_write_once(work, blob)?))
}

fn disk_write_once(work: &Path, blob: &BlobSource) -> Result<f64> {
    nix::unistd::sync();
    let path = work.join("disk-write-test");
    let started = Instant::now();
    let mut file = std::fs::File::create(&path).context("creating the disk test file")?;
    for segment in blob.segments(0, blob.size) {
        file.write_all(segment)
            .context("writing the disk test file")?;
    }
    file.sync_all().context("syncing the disk test file")?;
    let seconds = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path).context("removing the disk test file")?;
    Ok(blob.size as f64 / 1e6 / seconds)
}

fn loopback(pattern: &Arc<Vec<u8>>) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback socket")?;
    let addr = listener.local_addr()?;
    let total = 4 * GIB;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut buffer = vec![0u8; 256 * 1024];
        let mut seen = 0;
        loop {
            match stream.read(&mut buffer)? {
                0 => return Ok(seen),
                n => seen += n as u64,
            }
        }
    });
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).context("connecting over loopback")?;
    let mut sent = 0;
    while sent < total {
        let piece = &pattern[..(PIECE.min(total - sent)) as usize];
        stream.write_all(piece)?;
        sent += piece.len() as u64;
    }
    drop(stream);
    let seen = reader
        .join()
        .map_err(|_| "the loopback reader panicked")??;
    if seen != total {
        return Err(format!("loopback test read {seen} of {total} bytes").into());
    }
    Ok(total as f64 / 1e6 / started.elapsed().as_secs_f64())
}
