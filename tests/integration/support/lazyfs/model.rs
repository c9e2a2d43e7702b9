//! What the filesystem holds, in two views: what programs see (volatile) and what a
//! power cut would leave (durable).
//!
//! A file's durable bytes live in a store file named after its inode; its changes since
//! the last fsync are kept in memory as an ordered list of writes and truncations and
//! laid over the store file when read. fsync/fdatasync applies them. A directory keeps
//! two entry maps; fsync of the directory copies the volatile one to the durable one.
//! Metadata (modes, owners, times) is not modelled: it is as durable as it is volatile.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub type Ino = u64;
pub const ROOT: Ino = 1;

pub type Errno = i32;

enum Change {
    Write { offset: u64, data: Vec<u8> },
    Truncate(u64),
}

enum Body {
    File {
        store: File,
        /// Size as programs see it.
        size: u64,
        unsynced: Vec<Change>,
    },
    Dir {
        entries: BTreeMap<OsString, Ino>,
        durable: BTreeMap<OsString, Ino>,
    },
    /// Sockets and FIFOs: a name, no data; not recreated after a cut.
    Special {
        mode: u32,
    },
}

pub struct Inode {
    body: Body,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
    /// Volatile names of this inode.
    pub links: u32,
    open: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Socket,
    Fifo,
}

pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
    pub links: u32,
}

/// What a cut threw away.
#[derive(Debug, Default, Clone)]
pub struct CutReport {
    /// Bytes written but never synced, in files that survived the cut.
    pub unsynced_bytes: u64,
    /// Directories whose latest entries were not synced.
    pub unsynced_dirs: usize,
    /// Files whose unsynced writes were torn: (path, bytes kept, bytes unsynced).
    pub torn: Vec<(PathBuf, u64, u64)>,
    /// Files that exist after the cut.
    pub files: usize,
}

pub struct Model {
    inodes: HashMap<Ino, Inode>,
    next: Ino,
    store: PathBuf,
    /// Set by a power cut: every later operation fails.
    pub dead: bool,
}

fn store_path(store: &Path, ino: Ino) -> PathBuf {
    store.join(ino.to_string())
}

impl Model {
    /// Takes over `disk`: its files move into `store`, its directories into memory, and
    /// `disk` is left empty until [`Self::materialize`].
    pub fn load(disk: &Path, store: &Path) -> io::Result<Model> {
        let _ = fs::remove_dir_all(store);
        fs::create_dir_all(store)?;
        let mut model = Model { inodes: HashMap::new(), next: ROOT, store: store.to_path_buf(), dead: false };
        let meta = fs::metadata(disk)?;
        let root = model.new_inode(Body::Dir { entries: BTreeMap::new(), durable: BTreeMap::new() }, &meta);
        model.load_dir(disk, root)?;
        for entry in fs::read_dir(disk)? {
            let path = entry?.path();
            if path.is_dir() { fs::remove_dir_all(&path)? } else { fs::remove_file(&path)? }
        }
        if let Some(root) = model.inodes.get_mut(&ROOT) {
            root.links = 1;
        }
        Ok(model)
    }

    fn load_dir(&mut self, path: &Path, ino: Ino) -> io::Result<()> {
        let mut found = BTreeMap::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let meta = fs::symlink_metadata(entry.path())?;
            let child = if meta.is_dir() {
                let child = self.new_inode(Body::Dir { entries: BTreeMap::new(), durable: BTreeMap::new() }, &meta);
                self.load_dir(&entry.path(), child)?;
                child
            } else if meta.is_file() {
                let ino = self.next;
                let stored = store_path(&self.store, ino);
                fs::rename(entry.path(), &stored)?;
                let store = OpenOptions::new().read(true).write(true).open(&stored)?;
                self.new_inode(Body::File { store, size: meta.len(), unsynced: Vec::new() }, &meta)
            } else {
                continue;
            };
            self.inode_mut(child).links = 1;
            found.insert(entry.file_name(), child);
        }
        if let Some(Body::Dir { entries, durable }) = self.inodes.get_mut(&ino).map(|i| &mut i.body) {
            *durable = found.clone();
            *entries = found;
        }
        Ok(())
    }

    fn new_inode(&mut self, body: Body, meta: &fs::Metadata) -> Ino {
        let ino = self.next;
        self.next += 1;
        let inode = Inode {
            body,
            perm: meta.permissions().mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.modified().unwrap_or_else(|_| SystemTime::now()),
            links: 0,
            open: 0,
        };
        self.inodes.insert(ino, inode);
        ino
    }

    fn inode_mut(&mut self, ino: Ino) -> &mut Inode {
        self.inodes.get_mut(&ino).expect("inode")
    }

    fn get(&self, ino: Ino) -> Result<&Inode, Errno> {
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn get_mut(&mut self, ino: Ino) -> Result<&mut Inode, Errno> {
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<OsString, Ino>, Errno> {
        match &mut self.get_mut(dir)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            _ => Err(libc::ENOTDIR),
        }
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<OsString, Ino>, Errno> {
        match &self.get(dir)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            _ => Err(libc::ENOTDIR),
        }
    }

    pub fn attr(&self, ino: Ino) -> Result<Attr, Errno> {
        let inode = self.get(ino)?;
        let (kind, size) = match &inode.body {
            Body::File { size, .. } => (Kind::File, *size),
            Body::Dir { entries, .. } => (Kind::Dir, entries.len() as u64),
            Body::Special { mode } if mode & libc::S_IFMT == libc::S_IFIFO => (Kind::Fifo, 0),
            Body::Special { .. } => (Kind::Socket, 0),
        };
        Ok(Attr {
            ino,
            kind,
            size,
            perm: inode.perm,
            uid: inode.uid,
            gid: inode.gid,
            mtime: inode.mtime,
            links: inode.links.max(1),
        })
    }

    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Ino, Errno> {
        self.entries(parent)?.get(name).copied().ok_or(libc::ENOENT)
    }

    pub fn list(&self, dir: Ino) -> Result<Vec<(Ino, Kind, OsString)>, Errno> {
        let entries = self.entries(dir)?;
        Ok(entries.iter().filter_map(|(name, &ino)| Some((ino, self.attr(ino).ok()?.kind, name.clone()))).collect())
    }

    fn add(&mut self, parent: Ino, name: &OsStr, body: Body, perm: u32, uid: u32, gid: u32) -> Result<Ino, Errno> {
        if self.entries(parent)?.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next;
        self.next += 1;
        let inode = Inode { body, perm, uid, gid, mtime: SystemTime::now(), links: 1, open: 0 };
        self.inodes.insert(ino, inode);
        self.entries_mut(parent)?.insert(name.to_os_string(), ino);
        Ok(ino)
    }

    pub fn mkdir(&mut self, parent: Ino, name: &OsStr, perm: u32, uid: u32, gid: u32) -> Result<Ino, Errno> {
        self.add(parent, name, Body::Dir { entries: BTreeMap::new(), durable: BTreeMap::new() }, perm, uid, gid)
    }

    /// A new regular file (or socket/FIFO for `mknod`).
    pub fn create(&mut self, parent: Ino, name: &OsStr, mode: u32, uid: u32, gid: u32) -> Result<Ino, Errno> {
        let body = if mode & libc::S_IFMT == libc::S_IFREG || mode & libc::S_IFMT == 0 {
            let path = store_path(&self.store, self.next);
            let store = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
            Body::File { store, size: 0, unsynced: Vec::new() }
        } else {
            Body::Special { mode: mode & libc::S_IFMT }
        };
        self.add(parent, name, body, mode & 0o7777, uid, gid)
    }

    fn drop_link(&mut self, ino: Ino) {
        let inode = self.inode_mut(ino);
        inode.links = inode.links.saturating_sub(1);
        self.forget_if_unreachable(ino);
    }

    /// An inode without names or open handles can never be read again: its unsynced
    /// changes go (its durable bytes stay, for a durable name may still point at it).
    fn forget_if_unreachable(&mut self, ino: Ino) {
        let inode = self.inode_mut(ino);
        if inode.links == 0
            && inode.open == 0
            && let Body::File { unsynced, .. } = &mut inode.body
        {
            unsynced.clear();
            unsynced.shrink_to_fit();
        }
    }

    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if matches!(self.get(ino)?.body, Body::Dir { .. }) {
            return Err(libc::EISDIR);
        }
        self.entries_mut(parent)?.remove(name);
        self.drop_link(ino);
        Ok(())
    }

    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if !self.entries(ino)?.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.entries_mut(parent)?.remove(name);
        self.drop_link(ino);
        Ok(())
    }

    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        self.entries(new_parent)?;
        if let Ok(old) = self.lookup(new_parent, new_name) {
            if old == ino {
                return Ok(());
            }
            if no_replace {
                return Err(libc::EEXIST);
            }
            let (moving_dir, replaced_dir) =
                (matches!(self.get(ino)?.body, Body::Dir { .. }), matches!(self.get(old)?.body, Body::Dir { .. }));
            match (moving_dir, replaced_dir) {
                (true, false) => return Err(libc::ENOTDIR),
                (false, true) => return Err(libc::EISDIR),
                (true, true) if !self.entries(old)?.is_empty() => return Err(libc::ENOTEMPTY),
                _ => {}
            }
            self.drop_link(old);
        }
        self.entries_mut(parent)?.remove(name);
        self.entries_mut(new_parent)?.insert(new_name.to_os_string(), ino);
        Ok(())
    }

    pub fn open(&mut self, ino: Ino, truncate: bool) -> Result<(), Errno> {
        self.get_mut(ino)?.open += 1;
        if truncate {
            self.truncate(ino, 0)?;
        }
        Ok(())
    }

    pub fn release(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.open = inode.open.saturating_sub(1);
            self.forget_if_unreachable(ino);
        }
    }

    pub fn read(&self, ino: Ino, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let Body::File { store, size, unsynced } = &self.get(ino)?.body else { return Err(libc::EISDIR) };
        let end = (offset + len as u64).min(*size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match store.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(e.raw_os_error().unwrap_or(libc::EIO)),
            }
        }
        for change in unsynced {
            match change {
                Change::Write { offset: at, data } => {
                    let from = (*at).max(offset);
                    let to = (at + data.len() as u64).min(end);
                    if from < to {
                        buf[(from - offset) as usize..(to - offset) as usize]
                            .copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
                    }
                }
                Change::Truncate(len) if *len < end => {
                    let from = (*len).max(offset);
                    buf[(from - offset) as usize..].fill(0);
                }
                Change::Truncate(_) => {}
            }
        }
        Ok(buf)
    }

    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let inode = self.get_mut(ino)?;
        inode.mtime = SystemTime::now();
        let Body::File { size, unsynced, .. } = &mut inode.body else { return Err(libc::EISDIR) };
        *size = (*size).max(offset + data.len() as u64);
        unsynced.push(Change::Write { offset, data: data.to_vec() });
        Ok(())
    }

    pub fn truncate(&mut self, ino: Ino, len: u64) -> Result<(), Errno> {
        let inode = self.get_mut(ino)?;
        inode.mtime = SystemTime::now();
        let Body::File { size, unsynced, .. } = &mut inode.body else { return Err(libc::EISDIR) };
        *size = len;
        unsynced.push(Change::Truncate(len));
        Ok(())
    }

    pub fn set_perm(&mut self, ino: Ino, perm: u32) -> Result<(), Errno> {
        self.get_mut(ino)?.perm = perm & 0o7777;
        Ok(())
    }

    pub fn set_owner(&mut self, ino: Ino, uid: Option<u32>, gid: Option<u32>) -> Result<(), Errno> {
        let inode = self.get_mut(ino)?;
        inode.uid = uid.unwrap_or(inode.uid);
        inode.gid = gid.unwrap_or(inode.gid);
        Ok(())
    }

    /// fsync/fdatasync of a file (its data) or of a directory (its entries).
    pub fn fsync(&mut self, ino: Ino) -> Result<(), Errno> {
        match &mut self.get_mut(ino)?.body {
            Body::File { store, unsynced, .. } => {
                apply(store, unsynced.drain(..), u64::MAX).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
                Ok(())
            }
            Body::Dir { entries, durable } => {
                durable.clone_from(entries);
                Ok(())
            }
            Body::Special { .. } => Ok(()),
        }
    }

    /// Makes everything durable, as a clean shutdown's `sync` would.
    pub fn sync_all(&mut self) -> io::Result<()> {
        let inodes: Vec<Ino> = self.inodes.keys().copied().collect();
        for ino in inodes {
            self.fsync(ino).map_err(io::Error::from_raw_os_error)?;
        }
        Ok(())
    }

    /// The power cut: from now on everything fails. With `tear`, a prefix of each
    /// file's unsynced changes (cut at a byte `tear` picks) reaches the disk anyway, as
    /// a write the disk had half done.
    pub fn cut(&mut self, mut tear: Option<&mut dyn FnMut(u64) -> u64>) -> Vec<(Ino, u64, u64)> {
        self.dead = true;
        let mut torn = Vec::new();
        let mut inos: Vec<Ino> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let Body::File { store, unsynced, .. } = &mut self.inode_mut(ino).body else { continue };
            let pending: u64 = unsynced
                .iter()
                .map(|c| match c {
                    Change::Write { data, .. } => data.len() as u64,
                    Change::Truncate(_) => 0,
                })
                .sum();
            let changes = std::mem::take(unsynced);
            if let Some(pick) = tear.as_mut()
                && pending > 0
            {
                let kept = pick(pending);
                if apply(store, changes.into_iter(), kept).is_ok() {
                    torn.push((ino, kept, pending));
                }
            }
        }
        torn
    }

    /// Writes the durable tree into `disk` (empty since [`Self::load`]) and removes the
    /// store. Returns where each surviving file went.
    pub fn materialize(
        &mut self,
        disk: &Path,
        mut report: CutReport,
    ) -> io::Result<(CutReport, HashMap<Ino, PathBuf>)> {
        let mut placed: HashMap<Ino, PathBuf> = HashMap::new();
        let mut seen_dirs = HashSet::from([ROOT]);
        let mut pending = vec![(ROOT, disk.to_path_buf())];
        while let Some((dir, path)) = pending.pop() {
            let Some(Inode { body: Body::Dir { entries, durable }, .. }) = self.inodes.get(&dir) else { continue };
            if entries != durable {
                report.unsynced_dirs += 1;
            }
            for (name, &child) in durable {
                let child_path = path.join(name);
                let Some(inode) = self.inodes.get(&child) else { continue };
                match &inode.body {
                    Body::Dir { .. } => {
                        if seen_dirs.insert(child) {
                            fs::create_dir(&child_path)?;
                            fs::set_permissions(&child_path, fs::Permissions::from_mode(inode.perm))?;
                            pending.push((child, child_path));
                        }
                    }
                    Body::File { .. } => match placed.get(&child) {
                        Some(first) => fs::hard_link(first, &child_path)?,
                        None => {
                            fs::rename(store_path(&self.store, child), &child_path)?;
                            fs::set_permissions(&child_path, fs::Permissions::from_mode(inode.perm))?;
                            placed.insert(child, child_path);
                        }
                    },
                    Body::Special { .. } => {}
                }
            }
        }
        report.files = placed.len();
        fs::remove_dir_all(&self.store)?;
        Ok((report, placed))
    }

    /// Unsynced bytes of files that are durably named (what a cut would lose of them).
    pub fn unsynced_bytes(&self) -> u64 {
        self.inodes
            .values()
            .map(|inode| match &inode.body {
                Body::File { unsynced, .. } => unsynced
                    .iter()
                    .map(|c| match c {
                        Change::Write { data, .. } => data.len() as u64,
                        Change::Truncate(_) => 0,
                    })
                    .sum(),
                _ => 0,
            })
            .sum()
    }
}

/// Applies changes in order to the store file, up to the first `budget` written bytes:
/// a torn write stops part way, and nothing after it reaches the disk.
fn apply(store: &File, changes: impl Iterator<Item = Change>, mut budget: u64) -> io::Result<()> {
    for change in changes {
        if budget == 0 {
            break;
        }
        match change {
            Change::Truncate(len) => store.set_len(len)?,
            Change::Write { offset, data } => {
                let take = (data.len() as u64).min(budget) as usize;
                store.write_all_at(&data[..take], offset)?;
                budget -= take as u64;
            }
        }
    }
    Ok(())
}
