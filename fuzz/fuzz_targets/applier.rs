#![no_main]
//! The layer applier (`rengine::applier::apply_layer`): whatever the layer,
//! nothing is written outside the directory it is applied to.
//!
//! Input: either a raw layer (tar, gzip or zstd, recognised by its first
//! bytes), or text lines that describe entries, built into a tar here so
//! the fuzzer need not find tar checksums:
//! `<kind> <path> [<arg>] [<octal mode>]`, kind `f` file (arg: contents),
//! `d` directory, `l` symlink and `h` hardlink (arg: target), `p` fifo,
//! `c`/`b` devices, `x` a pax `SCHILY.xattr.<arg>` record for the next entry.
//! Paths go into the header as written (`..` and absolute ones included).
//!
//! Each run applies into `<fresh parent>/root` beside `<parent>/beside`
//! (holding one sentinel file); afterwards the parent holds exactly those
//! two, the sentinel and its directory are untouched (contents, mode,
//! owner, times, links, extended attributes), and no file in `root` shares
//! its inode with a file outside it.

use libfuzzer_sys::fuzz_target;
use rengine::applier::{apply_layer, ApplyOptions};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const SENTINEL: &[u8] = b"must stay as it is";

fn raw_layer(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
        || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || data.get(257..262) == Some(b"ustar")
}

/// A header whose name and link name are the raw bytes given (cut to fit).
fn header(kind: tar::EntryType, path: &[u8], link: &[u8], size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    let old = header.as_old_mut();
    let n = path.len().min(old.name.len());
    old.name[..n].copy_from_slice(&path[..n]);
    let n = link.len().min(old.linkname.len());
    old.linkname[..n].copy_from_slice(&link[..n]);
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(1_600_000_000);
    header.set_uid(1000);
    header.set_gid(1000);
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        let _ = header.set_device_major(1);
        let _ = header.set_device_minor(3);
    }
    header.set_cksum();
    header
}

/// Builds a tar from the text description.
fn described_layer(data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for line in data.split(|&b| b == b'\n') {
        let mut fields = line.splitn(4, |&b| b == b' ');
        let (Some(kind), Some(path)) = (fields.next(), fields.next()) else {
            continue;
        };
        let arg = fields.next().unwrap_or_default();
        let mode = fields
            .next()
            .and_then(|m| std::str::from_utf8(m).ok())
            .and_then(|m| u32::from_str_radix(m.trim(), 8).ok());
        let (kind, body, link, default_mode): (_, &[u8], &[u8], u32) = match kind {
            b"f" => (tar::EntryType::Regular, arg, b"", 0o644),
            b"d" => (tar::EntryType::Directory, b"", b"", 0o755),
            b"l" => (tar::EntryType::Symlink, b"", arg, 0o777),
            b"h" => (tar::EntryType::Link, b"", arg, 0o644),
            b"p" => (tar::EntryType::Fifo, b"", b"", 0o644),
            b"c" => (tar::EntryType::Char, b"", b"", 0o644),
            b"b" => (tar::EntryType::Block, b"", b"", 0o644),
            b"x" => {
                let mut key = b"SCHILY.xattr.".to_vec();
                key.extend_from_slice(path);
                let Ok(key) = std::str::from_utf8(&key) else {
                    continue;
                };
                let _ = builder.append_pax_extensions([(key, arg)]);
                continue;
            }
            _ => continue,
        };
        let header = header(
            kind,
            path,
            link,
            body.len() as u64,
            mode.unwrap_or(default_mode),
        );
        let _ = builder.append(&header, body);
    }
    builder.into_inner().unwrap_or_default()
}

/// Every entry under `dir` (not following symlinks): path and metadata.
fn walk(dir: &Path, found: &mut Vec<(std::path::PathBuf, std::fs::Metadata)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let is_dir = meta.is_dir();
        found.push((path.clone(), meta));
        if is_dir {
            walk(&path, found);
        }
    }
}

/// What a write through an escaping path would change.
fn fingerprint(path: &Path) -> (u32, u32, u32, i64, i64, u64, Vec<u8>) {
    let meta = std::fs::symlink_metadata(path).expect("the harness's own file");
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    let mut xattrs = vec![0u8; 4096];
    // SAFETY: a NUL-terminated path and a buffer of the length passed.
    let n = unsafe { libc::llistxattr(c_path.as_ptr(), xattrs.as_mut_ptr().cast(), xattrs.len()) };
    xattrs.truncate(usize::try_from(n).unwrap_or(0));
    (
        meta.mode(),
        meta.uid(),
        meta.gid(),
        meta.mtime(),
        meta.ctime(),
        meta.nlink(),
        xattrs,
    )
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the harness's own directory reads")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fuzz_target!(|data: &[u8]| {
    let layer = if raw_layer(data) {
        data.to_vec()
    } else {
        described_layer(data)
    };
    let parent = rfuzz::scratch("rfuzz-applier-");
    let root = parent.path().join("root");
    let beside = parent.path().join("beside");
    std::fs::create_dir(&root).expect("scratch root");
    std::fs::create_dir(&beside).expect("scratch sibling");
    std::fs::write(beside.join("sentinel"), SENTINEL).expect("sentinel");
    let before = (fingerprint(&beside), fingerprint(&beside.join("sentinel")));

    let options = ApplyOptions {
        allow_devices: false,
        ..ApplyOptions::for_current_user()
    };
    let _ = apply_layer(layer.as_slice(), &root, options);

    assert_eq!(names(parent.path()), ["beside", "root"]);
    assert_eq!(names(&beside), ["sentinel"]);
    assert_eq!(
        std::fs::read(beside.join("sentinel")).expect("sentinel reads"),
        SENTINEL
    );
    assert_eq!(
        (fingerprint(&beside), fingerprint(&beside.join("sentinel"))),
        before
    );
    // A file linked from outside would show more links than `root` holds.
    let mut found = Vec::new();
    walk(&root, &mut found);
    let mut seen: HashMap<u64, u64> = HashMap::new();
    for (_, meta) in found.iter().filter(|(_, m)| !m.is_dir()) {
        *seen.entry(meta.ino()).or_default() += 1;
    }
    for (path, meta) in found.iter().filter(|(_, m)| !m.is_dir()) {
        assert_eq!(
            meta.nlink(),
            seen[&meta.ino()],
            "{} is linked from outside the layer",
            path.display()
        );
    }
    // Make sure the scratch directory can go, whatever modes the layer set.
    for (path, meta) in &found {
        if meta.is_dir() {
            let _ =
                std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        }
    }
});
