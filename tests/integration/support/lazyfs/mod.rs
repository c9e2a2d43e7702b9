//! A filesystem that forgets what was not fsynced, for power-loss tests (the idea of
//! LazyFS and SQLite's crash VFS).
//!
//! Mounted over a backing directory, it shows that directory's contents and takes
//! every write, create, rename, unlink and truncate in memory. File data becomes durable
//! only at fsync/fdatasync of that file; a directory entry (create, rename, unlink) only
//! at fsync of its directory: the strict POSIX model. [`LazyFs::cut_power`] throws away
//! everything not yet durable (optionally tearing the unsynced writes of each file at a
//! random byte), unmounts, and leaves in the backing directory exactly what a machine
//! would find on its disk after the cut, to be used plainly or mounted again.
//!
//! Metadata (modes, owners, times) is not modelled, nor are hard links made through the
//! mount; sockets and FIFOs do not survive a cut.

mod fuse;
mod model;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use model::CutReport;
use model::Model;

/// Cuts the power from any thread: the moment of the cut is the moment of the call.
#[derive(Clone)]
pub struct Switch {
    model: Arc<Mutex<Model>>,
    cut_at: Arc<Mutex<Option<Instant>>>,
    /// Processes on the machine that loses power: they stop with it (SIGKILL), so
    /// nothing they do after the cut (a delivery from cached data) is seen.
    machine: Arc<Mutex<Vec<u32>>>,
}

impl Switch {
    /// Stops the machine: its processes are killed and the disk frozen; nothing later
    /// becomes durable and every operation fails with EIO. Returns the moment of the
    /// cut (the first one, if cut already).
    pub fn cut(&self) -> Instant {
        let mut model = self.model.lock().unwrap_or_else(|p| p.into_inner());
        for &pid in self.machine.lock().unwrap().iter() {
            // SAFETY: kill(2) on a process the test started and has not reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        model.dead = true;
        *self.cut_at.lock().unwrap().get_or_insert_with(Instant::now)
    }

    /// `pid` runs on the machine: a cut kills it. The caller reaps it.
    pub fn runs(&self, pid: u32) {
        self.machine.lock().unwrap().push(pid);
    }
}

pub struct LazyFs {
    disk: PathBuf,
    mountpoint: PathBuf,
    switch: Switch,
    session: Option<fuser::BackgroundSession>,
}

/// A small xorshift, so a failing run can be repeated from its printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

impl LazyFs {
    /// Mounts over `disk` at `mountpoint` (an empty directory). Files of `disk` are kept
    /// in `<disk>.lazyfs-store` while mounted.
    pub fn mount(disk: &Path, mountpoint: &Path) -> std::io::Result<LazyFs> {
        let store = disk.with_extension("lazyfs-store");
        let model = Arc::new(Mutex::new(Model::load(disk, &store)?));
        let mut config = fuser::Config::default();
        config.mount_options = vec![fuser::MountOption::FSName("lazyfs".into()), fuser::MountOption::RW];
        let fs = fuse::LazyFuse { model: Arc::clone(&model) };
        let session = match fuser::spawn_mount(fs, mountpoint, &config) {
            Ok(session) => session,
            Err(e) => {
                // Put the files back where they were.
                let mut model = model.lock().unwrap();
                let _ = model.sync_all();
                let _ = model.materialize(disk, CutReport::default());
                return Err(e);
            }
        };
        Ok(LazyFs {
            disk: disk.to_path_buf(),
            mountpoint: mountpoint.to_path_buf(),
            switch: Switch { model, cut_at: Arc::default(), machine: Arc::default() },
            session: Some(session),
        })
    }

    pub fn switch(&self) -> Switch {
        self.switch.clone()
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The power cut (if [`Switch::cut`] did not come first), then unmounting, then the
    /// durable state written to the backing directory. `tear`: a random generator that
    /// picks how much of each file's unsynced writes the disk got.
    pub fn cut_power(mut self, tear: Option<&mut Rng>) -> CutReport {
        self.switch.cut();
        self.unmount();
        let mut model = self.switch.model.lock().unwrap_or_else(|p| p.into_inner());
        let report = CutReport { unsynced_bytes: model.unsynced_bytes(), ..CutReport::default() };
        let mut pick = tear.map(|rng| move |pending: u64| rng.below(pending + 1));
        let torn = model.cut(pick.as_mut().map(|p| p as &mut dyn FnMut(u64) -> u64));
        let (mut report, placed) = model.materialize(&self.disk, report).expect("write the durable state");
        report.torn =
            torn.into_iter().filter_map(|(ino, kept, of)| Some((placed.get(&ino)?.clone(), kept, of))).collect();
        report
    }

    /// A clean shutdown: everything becomes durable, then the filesystem is unmounted.
    pub fn unmount_cleanly(mut self) {
        self.switch.model.lock().unwrap().sync_all().expect("sync");
        self.switch.cut();
        self.unmount();
        let mut model = self.switch.model.lock().unwrap();
        model.materialize(&self.disk, CutReport::default()).expect("write the state");
    }

    fn unmount(&mut self) {
        let Some(session) = self.session.take() else { return };
        if session.umount_and_join().is_err() {
            // Still busy (a process holds files open): detach it; the kernel finishes
            // the unmount once the last file is closed.
            let _ = std::process::Command::new("fusermount3").arg("-uz").arg(&self.mountpoint).status();
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.mountpoint).status();
        }
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        // A test that panicked while mounted: leave no mount behind.
        if self.session.is_some() {
            self.switch.cut();
            self.unmount();
        }
    }
}
