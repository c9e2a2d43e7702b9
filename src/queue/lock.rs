//! One server per queue: the owner holds an exclusive flock on `<queue>/lock`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

#[derive(Debug)]
pub struct QueueLock {
    _file: File,
}

impl QueueLock {
    /// Takes the lock, failing at once if another process holds it.
    pub fn acquire(path: &Path) -> io::Result<QueueLock> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        // SAFETY: flock on a descriptor we own; the lock goes with the descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("the queue is in use by another process ({})", path.display()),
                )
            } else {
                e
            });
        }
        Ok(QueueLock { _file: file })
    }
}
