//! The vfs archive reader: whatever `Archive::parse` accepts, every accessor and a full walk
//! work on, visiting each node at most once with paths within the bound.
#![no_main]

use kiln_vfs_archive::{Archive, MAX_PATH_LEN, NodeKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(archive) = Archive::parse(data) else {
        return;
    };
    let mut visited = 0usize;
    for (path, node) in archive.walk() {
        visited += 1;
        assert!(visited <= archive.node_count(), "a node visited twice");
        assert!(path.len() <= MAX_PATH_LEN, "{} bytes", path.len());
        let _ = (archive.name(node), archive.parent(node));
        match archive.kind(node) {
            NodeKind::File => {
                let _ = archive.contents(node).len();
            }
            NodeKind::Directory => {
                for child in archive.children(node) {
                    assert_eq!(archive.parent(child), node);
                }
            }
        }
    }
    for (mount, root) in archive.mounts() {
        let _ = archive.resolve(root, mount);
        let _ = archive.resolve(root, "../a/./b/../c");
    }
});
