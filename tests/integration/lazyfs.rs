//! The power-loss filesystem on its own: a cut loses exactly what was not fsynced
//! (file data without an fsync of the file, names without an fsync of their directory)
//! and keeps everything that was.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::support::lazyfs::{LazyFs, Rng};

pub struct Mounted {
    pub _dir: tempfile::TempDir,
    pub disk: PathBuf,
    pub mnt: PathBuf,
}

/// A backing directory (with `prepare` run on it first) and an empty mountpoint.
pub fn backing(prepare: impl FnOnce(&Path)) -> Mounted {
    let dir = tempfile::tempdir().unwrap();
    let (disk, mnt) = (dir.path().join("disk"), dir.path().join("mnt"));
    fs::create_dir(&disk).unwrap();
    fs::create_dir(&mnt).unwrap();
    prepare(&disk);
    Mounted { _dir: dir, disk, mnt }
}

/// Whether this machine can mount FUSE filesystems at all.
pub fn fuse_available() -> bool {
    let ok = Path::new("/dev/fuse").exists()
        && std::process::Command::new("sh")
            .args(["-c", "command -v fusermount3"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: no /dev/fuse or fusermount3 (apt-get install fuse3)");
    }
    ok
}

fn sync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_file_never_synced_is_gone_after_the_cut() {
    if !fuse_available() {
        return;
    }
    let m = backing(|_| {});
    let fs_ = LazyFs::mount(&m.disk, &m.mnt).unwrap();
    fs::write(m.mnt.join("unsynced"), b"lost").unwrap();
    // Data synced but not the directory: the name is not durable.
    let mut f = File::create(m.mnt.join("nameless")).unwrap();
    f.write_all(b"data").unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(fs::read(m.mnt.join("unsynced")).unwrap(), b"lost", "visible before the cut");
    fs_.cut_power(None);
    assert!(names(&m.disk).is_empty(), "{:?}", names(&m.disk));
}

#[test]
fn a_synced_file_in_a_synced_directory_survives_and_its_unsynced_tail_does_not() {
    if !fuse_available() {
        return;
    }
    let m = backing(|_| {});
    let fs_ = LazyFs::mount(&m.disk, &m.mnt).unwrap();
    let mut f = File::create(m.mnt.join("kept")).unwrap();
    f.write_all(b"durable").unwrap();
    f.sync_data().unwrap();
    f.write_all(b" and not").unwrap();
    drop(f);
    // A name made durable before its data was synced: the file is there, empty.
    fs::write(m.mnt.join("empty"), b"never synced").unwrap();
    sync_dir(&m.mnt);
    assert_eq!(fs::read(m.mnt.join("kept")).unwrap(), b"durable and not");
    fs_.cut_power(None);
    assert_eq!(fs::read(m.disk.join("kept")).unwrap(), b"durable");
    assert_eq!(fs::read(m.disk.join("empty")).unwrap(), b"");
}

#[test]
fn rename_and_unlink_without_a_directory_fsync_are_undone() {
    if !fuse_available() {
        return;
    }
    let m = backing(|disk| {
        fs::write(disk.join("old"), b"content").unwrap();
        fs::write(disk.join("doomed"), b"still here").unwrap();
        fs::create_dir(disk.join("other")).unwrap();
    });
    let fs_ = LazyFs::mount(&m.disk, &m.mnt).unwrap();
    assert_eq!(fs::read(m.mnt.join("old")).unwrap(), b"content", "the backing directory shows through");
    // Moved into another directory, only that one synced: durable under both names.
    fs::write(m.mnt.join("moved"), b"m").unwrap();
    File::open(m.mnt.join("moved")).unwrap().sync_all().unwrap();
    sync_dir(&m.mnt);
    fs::rename(m.mnt.join("moved"), m.mnt.join("other/moved")).unwrap();
    sync_dir(&m.mnt.join("other"));
    fs::rename(m.mnt.join("old"), m.mnt.join("new")).unwrap();
    fs::remove_file(m.mnt.join("doomed")).unwrap();
    assert_eq!(names(&m.mnt), ["new", "other"]);
    fs_.cut_power(None);
    assert_eq!(names(&m.disk), ["doomed", "moved", "old", "other"]);
    assert_eq!(fs::read(m.disk.join("old")).unwrap(), b"content");
    assert_eq!(fs::read(m.disk.join("doomed")).unwrap(), b"still here");
    assert_eq!(fs::read(m.disk.join("other/moved")).unwrap(), b"m");
    assert_eq!(fs::read(m.disk.join("moved")).unwrap(), b"m");
}

#[test]
fn synced_renames_and_unlinks_last() {
    if !fuse_available() {
        return;
    }
    let m = backing(|disk| {
        fs::write(disk.join("old"), b"content").unwrap();
        fs::write(disk.join("doomed"), b"x").unwrap();
    });
    let fs_ = LazyFs::mount(&m.disk, &m.mnt).unwrap();
    fs::rename(m.mnt.join("old"), m.mnt.join("new")).unwrap();
    fs::remove_file(m.mnt.join("doomed")).unwrap();
    sync_dir(&m.mnt);
    fs_.cut_power(None);
    assert_eq!(names(&m.disk), ["new"]);
    assert_eq!(fs::read(m.disk.join("new")).unwrap(), b"content");
}

#[test]
fn truncation_and_overwrites_are_lost_unless_synced() {
    if !fuse_available() {
        return;
    }
    let base: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let m = backing(|disk| {
        fs::write(disk.join("truncated"), &base).unwrap();
        fs::write(disk.join("synced"), &base).unwrap();
    });
    let fs_ = LazyFs::mount(&m.disk, &m.mnt).unwrap();
    for name in ["truncated", "synced"] {
        let f = OpenOptions::new().write(true).open(m.mnt.join(name)).unwrap();
        f.set_len(10).unwrap();
        f.write_all_at(b"zz", 2).unwrap();
        if name == "synced" {
            f.sync_data().unwrap();
        }
    }
    assert_eq!(fs::read(m.mnt.join("truncated")).unwrap(), [0, 1, b'z', b'z', 4, 5, 6, 7, 8, 9]);
    fs_.cut_power(None);
    assert!(fs::read(m.disk.join("truncated")).unwrap() == base, "the truncation was never synced");
    assert_eq!(fs::read(m.disk.join("synced")).unwrap(), [0, 1, b'z', b'z', 4, 5, 6, 7, 8, 9]);
}

#[test]
fn a_torn_write_keeps_a_prefix_of_what_was_not_synced() {
    if !fuse_available() {
        return;
    }
    let base: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let m = backing(|disk| fs::write(disk.join("torn"), &base).unwrap());
    let fs_ = LazyFs::mount(&m.disk, &m.mnt).unwrap();
    let f = OpenOptions::new().append(true).open(m.mnt.join("torn")).unwrap();
    // Several FUSE writes (128 KiB each at most): the tear may fall in any of them.
    let tail: Vec<u8> = (0..400_000u32).map(|i| b'A' + (i % 26) as u8).collect();
    (&f).write_all(&tail).unwrap();
    drop(f);
    let report = fs_.cut_power(Some(&mut Rng(0x5eed)));
    let torn = fs::read(m.disk.join("torn")).unwrap();
    assert!(torn.len() >= base.len() && torn.len() <= base.len() + tail.len());
    assert!(torn[..base.len()] == base[..], "the synced part is intact");
    assert!(torn[base.len()..] == tail[..torn.len() - base.len()], "a prefix of the unsynced write");
    let kept = report.torn.iter().find(|(p, _, _)| p.ends_with("torn")).map(|t| t.1).unwrap();
    assert_eq!(kept, (torn.len() - base.len()) as u64, "{report:?}");
}

#[test]
fn new_directories_need_their_parent_synced_which_create_dir_all_durable_does() {
    if !fuse_available() {
        return;
    }
    let m = backing(|disk| {
        fs::create_dir(disk.join("a")).unwrap();
        fs::create_dir(disk.join("b")).unwrap();
    });
    let fs_ = LazyFs::mount(&m.disk, &m.mnt).unwrap();
    // What `QueueDir::create` did before: create_dir_all, then fsync the new directory
    // itself (its entries), never its parent.
    fs::create_dir_all(m.mnt.join("a/spool/queue")).unwrap();
    sync_dir(&m.mnt.join("a/spool/queue"));
    sync_dir(&m.mnt.join("a/spool"));
    sluice::fsync::create_dir_all_durable(&m.mnt.join("b/spool/queue")).unwrap();
    fs_.cut_power(None);
    assert!(names(&m.disk.join("a")).is_empty(), "spool/ in a/ never got a durable name");
    assert!(m.disk.join("b/spool/queue").is_dir());
}

#[test]
fn what_survived_mounts_again() {
    if !fuse_available() {
        return;
    }
    let m = backing(|disk| fs::create_dir(disk.join("sub")).unwrap());
    let fs_ = LazyFs::mount(&m.disk, &m.mnt).unwrap();
    let mut f = File::create(m.mnt.join("sub/file")).unwrap();
    f.write_all(b"one").unwrap();
    f.sync_all().unwrap();
    sync_dir(&m.mnt.join("sub"));
    fs_.cut_power(None);
    let fs_ = LazyFs::mount(&m.disk, &m.mnt).unwrap();
    assert_eq!(fs::read(m.mnt.join("sub/file")).unwrap(), b"one");
    fs::write(m.mnt.join("sub/second"), b"two").unwrap();
    fs_.unmount_cleanly();
    assert_eq!(names(&m.disk.join("sub")), ["file", "second"]);
    assert_eq!(fs::read(m.disk.join("sub/second")).unwrap(), b"two");
}
