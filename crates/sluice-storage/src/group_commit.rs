//! One flush of the whole file system shared by many writers: the durable local store's uploads without a
//! file flush and a directory flush each.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

/// Makes completed writes under a folder durable, sharing each flush among every writer waiting at the time.
///
/// A writer that has finished its unflushed writes calls [`GroupCommit::commit`]. One flush of the folder's
/// file system (`syncfs`: file contents, new names and folders alike) covers every write finished before it
/// began, so writers that arrive while a flush runs wait for the next one together instead of queueing a
/// flush each. The disk's flush rate then bounds flushes, not uploads.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    folder: Arc<std::fs::File>,
    /// Commits asked for so far; a caller's ticket is this count right after its own request.
    requested: AtomicU64,
    /// The highest ticket known to be durable; held by the caller whose flush runs.
    durable: Mutex<u64>,
    /// Flushes run so far.
    flushes: AtomicU64,
}

impl GroupCommit {
    /// Flushes the file system holding `folder`; `None` where the system cannot flush one file system alone.
    pub(crate) fn open(folder: &std::path::Path) -> Option<std::io::Result<Self>> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        Some(std::fs::File::open(folder).map(|folder| Self {
            folder: Arc::new(folder),
            requested: AtomicU64::new(0),
            durable: Mutex::new(0),
            flushes: AtomicU64::new(0),
        }))
    }

    /// Returns once every write the caller completed before calling is on the disk.
    pub(crate) async fn commit(&self) -> std::io::Result<()> {
        let ticket = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let mut durable = self.durable.lock().await;
        if *durable >= ticket {
            return Ok(());
        }
        // Every ticket taken so far is a caller whose writes are complete: this flush covers them all.
        let covered = self.requested.load(Ordering::Acquire);
        let folder = Arc::clone(&self.folder);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || flush_file_system(&folder)).await.map_err(std::io::Error::other)??;
        *durable = covered;
        Ok(())
    }

    /// Flushes run so far.
    #[cfg(test)]
    fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

#[cfg(target_os = "linux")]
fn flush_file_system(folder: &std::fs::File) -> std::io::Result<()> {
    rustix::fs::syncfs(folder).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn flush_file_system(_folder: &std::fs::File) -> std::io::Result<()> {
    Err(std::io::Error::other("no file-system flush on this system"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_waiting_together_share_one_flush() {
        let dir = tempfile::tempdir().unwrap();
        let commit = Arc::new(GroupCommit::open(dir.path()).unwrap().unwrap());
        // Hold the flush while 40 writers finish and ask to commit, as writers do while a flush runs.
        let running = commit.durable.lock().await;
        let writers: Vec<_> = (0..40)
            .map(|n| {
                let commit = Arc::clone(&commit);
                let path = dir.path().join(format!("{n}.bin"));
                tokio::spawn(async move {
                    std::fs::write(path, [n as u8; 1000])?;
                    commit.commit().await
                })
            })
            .collect();
        for _ in 0..1000 {
            if commit.requested.load(Ordering::Acquire) == 40 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(commit.requested.load(Ordering::Acquire), 40);
        drop(running);
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(commit.flushes(), 1, "one flush covers every writer that was waiting");
    }

    #[tokio::test]
    async fn a_commit_after_a_flush_gets_a_flush_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let commit = GroupCommit::open(dir.path()).unwrap().unwrap();
        for expected in 1..=3 {
            std::fs::write(dir.path().join(format!("{expected}.bin")), b"bytes").unwrap();
            commit.commit().await.unwrap();
            assert_eq!(commit.flushes(), expected, "a write after the last flush was not covered by it");
        }
    }
}
