//! ChainIDs, the overlay2 layout, and whole images unpacked through it:
//! in parallel and one at a time, whiteouts and opaque directories seen
//! through a real overlay mount, DiffIDs checked, unused layers collected.

use super::*;
use crate::applier::ApplyOptions;
use crate::store::ContentStore;
use crate::unpack::{unpack_image, UnpackError};
use serde_json::json;
use std::collections::HashSet;
use tar::{EntryType, Header};

fn digest(text: &str) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, text.as_bytes())
}

#[test]
fn chain_ids_follow_the_spec() {
    let (a, b, c) = (digest("a"), digest("b"), digest("c"));
    let chain = chain_ids(&[a.clone(), b.clone(), c.clone()]);
    assert_eq!(chain[0], a);
    assert_eq!(
        chain[1],
        Digest::of_bytes(Algorithm::Sha256, format!("{a} {b}").as_bytes())
    );
    assert_eq!(
        chain[2],
        Digest::of_bytes(Algorithm::Sha256, format!("{} {c}", chain[1]).as_bytes())
    );
    let ids: HashSet<String> = chain.iter().map(short_id).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| id.len() == 26
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))));
}

fn entry(builder: &mut tar::Builder<Vec<u8>>, path: &str, kind: EntryType, data: &[u8]) {
    let mut header = Header::new_gnu();
    header.set_path(path).unwrap();
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_mtime(1_600_000_000);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

/// A three-layer image: the second deletes a file and replaces a directory.
fn three_layer_image(
    store: &ContentStore,
    config_diff_ids: Option<Vec<Digest>>,
) -> (Digest, Vec<Digest>) {
    let mut l0 = tar::Builder::new(Vec::new());
    entry(&mut l0, "a/", EntryType::Directory, b"");
    entry(&mut l0, "a/one", EntryType::Regular, b"1");
    entry(&mut l0, "a/two", EntryType::Regular, b"2");
    entry(&mut l0, "dir/", EntryType::Directory, b"");
    entry(&mut l0, "dir/x", EntryType::Regular, b"x");
    let mut l1 = tar::Builder::new(Vec::new());
    entry(&mut l1, "a/", EntryType::Directory, b"");
    entry(&mut l1, "a/.wh.one", EntryType::Regular, b"");
    entry(&mut l1, "dir/", EntryType::Directory, b"");
    entry(&mut l1, "dir/.wh..wh..opq", EntryType::Regular, b"");
    entry(&mut l1, "dir/z", EntryType::Regular, b"z");
    let mut l2 = tar::Builder::new(Vec::new());
    entry(&mut l2, "b", EntryType::Regular, b"b");
    let tars: Vec<Vec<u8>> = [l0, l1, l2]
        .into_iter()
        .map(|b| b.into_inner().unwrap())
        .collect();
    let layers: Vec<Digest> = tars.iter().map(|t| store.put_bytes(t).unwrap()).collect();
    let diff_ids = config_diff_ids.unwrap_or_else(|| layers.clone());
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(Digest::to_string).collect::<Vec<_>>()}});
    let config = store.put_bytes(config.to_string().as_bytes()).unwrap();
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 1},
        "layers": layers.iter().map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l.to_string(), "size": 1})).collect::<Vec<_>>()})
    .to_string();
    (
        store.put_bytes(manifest.as_bytes()).unwrap(),
        chain_ids(&diff_ids),
    )
}

fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIPPED {test}: needs root (whiteouts are device nodes; overlay mounts)");
    false
}

#[test]
fn images_unpack_in_parallel_and_mount_with_whiteouts() {
    if !root_or_skip("images_unpack_in_parallel_and_mount_with_whiteouts") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("store")).unwrap();
    let (manifest, chain) = three_layer_image(&store, None);
    let options = ApplyOptions::for_current_user();

    let parallel = Snapshotter::open(dir.path().join("parallel")).unwrap();
    let unpacked = unpack_image(&store, &parallel, &manifest, 3, options).unwrap();
    assert_eq!(
        (unpacked.layers, unpacked.unpacked, unpacked.top.as_ref()),
        (3, 3, chain.last())
    );
    let again = unpack_image(&store, &parallel, &manifest, 3, options).unwrap();
    assert_eq!(again.unpacked, 0, "unpacked layers were unpacked again");
    let serial = Snapshotter::open(dir.path().join("serial")).unwrap();
    unpack_image(&store, &serial, &manifest, 1, options).unwrap();

    for snapshots in [&parallel, &serial] {
        // overlay2's layout: link, lower (topmost first), work/ for layers with parents, l/ links.
        let top = chain.last().unwrap();
        let lower = std::fs::read_to_string(snapshots.root.join(top.hex()).join("lower")).unwrap();
        assert_eq!(
            lower,
            format!("l/{}:l/{}", short_id(&chain[1]), short_id(&chain[0]))
        );
        assert!(!snapshots.root.join(chain[0].hex()).join("lower").exists());
        assert!(snapshots.root.join(top.hex()).join("work").is_dir());
        let link = snapshots.root.join("l").join(short_id(&chain[0]));
        assert_eq!(std::fs::read_to_string(link.join("a/two")).unwrap(), "2");
        assert!(std::fs::read_dir(snapshots.root.join(".staging"))
            .unwrap()
            .next()
            .is_none());

        // Mounted, the whiteout hides a/one and the opaque dir hides dir/x.
        let target = tempfile::tempdir().unwrap();
        let lowerdir: Vec<String> = snapshots
            .lower_paths(top)
            .unwrap()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "overlay",
                "overlay",
                "-o",
                &format!("lowerdir={}", lowerdir.join(":")),
            ])
            .arg(target.path())
            .status()
            .unwrap();
        assert!(status.success(), "overlay mount failed");
        let seen = |p: &str| target.path().join(p).exists();
        let result = (
            seen("a/one"),
            seen("a/two"),
            seen("dir/x"),
            seen("dir/z"),
            seen("b"),
        );
        let _ = std::process::Command::new("umount")
            .arg(target.path())
            .status();
        assert_eq!(
            result,
            (false, true, false, true, true),
            "(a/one, a/two, dir/x, dir/z, b) through the overlay"
        );
    }

    // Nothing uses the image any more: its layers go.
    let removed = parallel.collect(&HashSet::new()).unwrap();
    assert_eq!(removed.len(), 3);
    assert!(std::fs::read_dir(parallel.root.join("l"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn a_wrong_diff_id_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("store")).unwrap();
    let wrong = vec![digest("x"), digest("y"), digest("z")];
    let (manifest, _) = three_layer_image(&store, Some(wrong));
    let snapshots = Snapshotter::open(dir.path().join("snapshots")).unwrap();
    let options = ApplyOptions {
        allow_devices: false,
        preserve_owners: false,
    };
    let err = unpack_image(&store, &snapshots, &manifest, 2, options).unwrap_err();
    // Without root the whiteout fails first; either way nothing is published.
    assert!(
        matches!(err, UnpackError::DiffId { .. } | UnpackError::Apply { .. }),
        "{err}"
    );
    let published = std::fs::read_dir(&snapshots.root).unwrap().filter(|e| {
        let name = e.as_ref().unwrap().file_name();
        name != "l" && name != ".staging"
    });
    assert_eq!(published.count(), 0);
    assert!(
        std::fs::read_dir(snapshots.root.join(".staging"))
            .unwrap()
            .next()
            .is_none(),
        "staging left behind"
    );
}
