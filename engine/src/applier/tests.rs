//! The applier against layers made here: every entry kind with its
//! metadata, overlay whiteouts, gzip with its DiffID, and each hostile
//! case, checked for nothing written outside the layer directory.

use super::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use tar::{EntryType, Header};

const MTIME: u64 = 1_600_000_000;

/// A header with a raw path (so hostile paths can be written at all).
fn header(path: &str, kind: EntryType, size: u64, mode: u32) -> Header {
    let mut header = Header::new_gnu();
    header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    header
}

fn with_link(mut header: Header, target: &str) -> Header {
    header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
    header.set_cksum();
    header
}

fn layer(entries: Vec<(Header, &[u8])>) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (header, data) in entries {
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn require_root(test: &str) -> bool {
    if root() {
        return true;
    }
    eprintln!("SKIPPED {test}: needs root (mknod, trusted.* xattrs, chown)");
    false
}

/// A layer directory with an `outside` sibling that nothing may reach.
struct Sandbox {
    _dir: tempfile::TempDir,
    layer: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let layer = dir.path().join("layer");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&layer).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "keep out").unwrap();
    Sandbox {
        _dir: dir,
        layer,
        outside,
    }
}

fn untouched(sandbox: &Sandbox) {
    let names: Vec<_> = std::fs::read_dir(&sandbox.outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec!["secret"],
        "something was written outside the layer"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.outside.join("secret")).unwrap(),
        "keep out"
    );
}

fn xattr(path: &Path, key: &str) -> Option<Vec<u8>> {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let key = std::ffi::CString::new(key).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings and a buffer of the length passed.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| {
        buf.truncate(n as usize);
        buf
    })
}

const USER: ApplyOptions = ApplyOptions {
    allow_devices: false,
    preserve_owners: false,
};

#[test]
fn unpacks_every_kind_with_metadata() {
    let s = sandbox();
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append(&header("etc/", EntryType::Directory, 0, 0o750), &[][..])
        .unwrap();
    builder
        .append_pax_extensions([("SCHILY.xattr.user.note", &b"kept"[..])])
        .unwrap();
    let mut file = header("etc/hello", EntryType::Regular, 2, 0o4755);
    file.set_uid(1234);
    file.set_gid(4321);
    file.set_cksum();
    builder.append(&file, &b"hi"[..]).unwrap();
    builder
        .append(
            &with_link(header("etc/link", EntryType::Symlink, 0, 0o777), "hello"),
            &[][..],
        )
        .unwrap();
    builder
        .append(
            &with_link(header("etc/hard", EntryType::Link, 0, 0o644), "etc/hello"),
            &[][..],
        )
        .unwrap();
    builder
        .append(&header("run/fifo", EntryType::Fifo, 0, 0o600), &[][..])
        .unwrap();
    let tar = builder.into_inner().unwrap();

    let options = ApplyOptions::for_current_user();
    let applied = apply_layer(&tar[..], &s.layer, options).unwrap();
    assert_eq!(applied.diff_id, Digest::of_bytes(Algorithm::Sha256, &tar));
    let hello = s.layer.join("etc/hello");
    assert_eq!(std::fs::read_to_string(&hello).unwrap(), "hi");
    let meta = std::fs::metadata(&hello).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o4755,
        "mode or setuid bit lost"
    );
    assert_eq!(meta.mtime(), MTIME as i64);
    if options.preserve_owners {
        assert_eq!((meta.uid(), meta.gid()), (1234, 4321));
    }
    assert_eq!(xattr(&hello, "user.note").as_deref(), Some(&b"kept"[..]));
    assert_eq!(
        std::fs::read_link(s.layer.join("etc/link")).unwrap(),
        Path::new("hello")
    );
    assert_eq!(
        std::fs::metadata(s.layer.join("etc/hard")).unwrap().ino(),
        meta.ino(),
        "hardlink is a copy"
    );
    assert!(std::fs::symlink_metadata(s.layer.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let etc = std::fs::metadata(s.layer.join("etc")).unwrap();
    assert_eq!(
        (etc.permissions().mode() & 0o777, etc.mtime()),
        (0o750, MTIME as i64)
    );
    untouched(&s);
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    if !require_root("whiteouts_become_overlay_whiteouts") {
        return;
    }
    let s = sandbox();
    let tar = layer(vec![
        (header(".wh.gone", EntryType::Regular, 0, 0o644), &[]),
        (header("dir/", EntryType::Directory, 0, 0o755), &[]),
        (
            header("dir/.wh..wh..opq", EntryType::Regular, 0, 0o644),
            &[],
        ),
        (header("dir/kept", EntryType::Regular, 1, 0o644), b"k"),
    ]);
    apply_layer(&tar[..], &s.layer, ApplyOptions::for_current_user()).unwrap();
    let gone = std::fs::symlink_metadata(s.layer.join("gone")).unwrap();
    assert!(
        gone.file_type().is_char_device() && gone.rdev() == 0,
        "not a 0/0 whiteout"
    );
    assert!(!s.layer.join(".wh.gone").exists());
    assert_eq!(
        xattr(&s.layer.join("dir"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!s.layer.join("dir/.wh..wh..opq").exists());
    assert_eq!(
        std::fs::read_to_string(s.layer.join("dir/kept")).unwrap(),
        "k"
    );
}

#[test]
fn gzip_and_zstd_layers_and_their_diff_id() {
    use std::io::Write;
    let s = sandbox();
    let tar = layer(vec![(header("a/b", EntryType::Regular, 3, 0o644), b"abc")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let applied = apply_layer(&gz[..], &s.layer, USER).unwrap();
    assert_eq!(
        applied.diff_id,
        Digest::of_bytes(Algorithm::Sha256, &tar),
        "DiffID is not of the uncompressed tar"
    );
    assert_eq!(std::fs::read_to_string(s.layer.join("a/b")).unwrap(), "abc");
    let s = sandbox();
    let zstd =
        ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
    let applied = apply_layer(&zstd[..], &s.layer, USER).unwrap();
    assert_eq!(applied.diff_id, Digest::of_bytes(Algorithm::Sha256, &tar));
    assert_eq!(std::fs::read_to_string(s.layer.join("a/b")).unwrap(), "abc");
}

fn hostile(entries: Vec<(Header, &[u8])>) -> (Sandbox, Result<Applied, ApplyError>) {
    let s = sandbox();
    let tar = layer(entries);
    let result = apply_layer(&tar[..], &s.layer, USER);
    untouched(&s);
    (s, result)
}

#[test]
fn dot_dot_is_refused() {
    let (_, result) = hostile(vec![(
        header("../outside/pwned", EntryType::Regular, 1, 0o644),
        b"x",
    )]);
    assert!(
        matches!(result, Err(ApplyError::Hostile { .. })),
        "{result:?}"
    );
}

#[test]
fn absolute_paths_land_inside() {
    let (s, result) = hostile(vec![(
        header("/abs/file", EntryType::Regular, 1, 0o644),
        b"x",
    )]);
    result.unwrap();
    assert!(s.layer.join("abs/file").exists());
    assert!(!Path::new("/abs/file").exists());
}

#[test]
fn writes_through_symlinks_are_refused() {
    let s = sandbox();
    let absolute = s.outside.display().to_string();
    for target in [absolute.as_str(), "../outside", "../../outside"] {
        let (_, result) = hostile(vec![
            (
                with_link(header("esc", EntryType::Symlink, 0, 0o777), target),
                &[],
            ),
            (header("esc/pwned", EntryType::Regular, 1, 0o644), b"x"),
        ]);
        assert!(
            matches!(result, Err(ApplyError::Hostile { .. })),
            "through {target}: {result:?}"
        );
    }
    // A later entry of the same name replaces the symlink itself, not its target.
    let (s, result) = hostile(vec![
        (
            with_link(header("esc", EntryType::Symlink, 0, 0o777), &absolute),
            &[],
        ),
        (header("esc", EntryType::Regular, 1, 0o644), b"x"),
    ]);
    result.unwrap();
    assert!(std::fs::symlink_metadata(s.layer.join("esc"))
        .unwrap()
        .is_file());
}

#[test]
fn hardlinks_outside_the_layer_are_refused() {
    for target in ["/etc/passwd", "../outside/secret", "missing/file"] {
        let (s, result) = hostile(vec![(
            with_link(header("hl", EntryType::Link, 0, 0o644), target),
            &[],
        )]);
        assert!(
            matches!(result, Err(ApplyError::Hostile { .. })),
            "to {target}: {result:?}"
        );
        assert!(!s.layer.join("hl").exists());
    }
}

#[test]
fn devices_are_skipped_unless_allowed() {
    let (s, result) = hostile(vec![(header("dev/sda", EntryType::Block, 0, 0o660), &[])]);
    let applied = result.unwrap();
    assert_eq!(applied.skipped, vec!["dev/sda"]);
    assert!(!s.layer.join("dev/sda").exists());
    if require_root("devices_are_skipped_unless_allowed (allowed part)") {
        let s = sandbox();
        let mut null = header("dev/null", EntryType::Char, 0, 0o666);
        null.set_device_major(1).unwrap();
        null.set_device_minor(3).unwrap();
        null.set_cksum();
        let tar = layer(vec![(null, &[])]);
        apply_layer(
            &tar[..],
            &s.layer,
            ApplyOptions {
                allow_devices: true,
                preserve_owners: true,
            },
        )
        .unwrap();
        let meta = std::fs::symlink_metadata(s.layer.join("dev/null")).unwrap();
        assert!(meta.file_type().is_char_device());
        assert_eq!(meta.rdev(), nix::sys::stat::makedev(1, 3));
    }
}
