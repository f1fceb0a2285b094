//! The outbox: what the device has to tell the server, on disk until the server acknowledges
//! it. One file per batch (`<store>/agent/outbox/<20-digit sequence>.json`), written
//! atomically, sent oldest first, removed only after the server's answer says each item is
//! stored (or a duplicate, or refused for good). A crash at any point leaves either the file
//! (sent again: the server's `(tenant, device, task_id, seq)` key makes that a duplicate) or
//! nothing to send.
//!
//! Bounded: at most [`MAX_BYTES`] on disk; past it the oldest batches are dropped and counted,
//! and the count is reported with the next sync (nothing is lost silently).

use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// The outbox's bound on disk.
pub const MAX_BYTES: u64 = 64 << 20;
/// Items per batch file (the server takes at most 1,000 per upload).
pub const MAX_ITEMS: usize = 1000;

/// One record or event, as the server's `/v1/device/reports` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub task_id: String,
    pub seq: u64,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    pub body: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Record,
    Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub items: Vec<Item>,
}

pub struct Outbox {
    dir: PathBuf,
    state: PathBuf,
}

fn read_number(path: &Path) -> u64 {
    hpl_runtime::store::read_regular_file(path, 64)
        .ok()
        .and_then(|b| String::from_utf8_lossy(&b).trim().parse().ok())
        .unwrap_or(0)
}

impl Outbox {
    pub fn open(store: &Path) -> std::io::Result<Outbox> {
        let agent = crate::identity::dir(store);
        let dir = agent.join("outbox");
        fs::create_dir_all(&dir)?;
        Ok(Outbox { dir, state: agent })
    }

    /// The next task number: it only moves up, across restarts.
    pub fn next_task(&self) -> std::io::Result<u64> {
        let path = self.state.join("task");
        let n = read_number(&path) + 1;
        crate::identity::write_atomically(&path, n.to_string().as_bytes(), false)?;
        Ok(n)
    }

    /// How many batches were dropped because the outbox was full, since the last report.
    pub fn dropped(&self) -> u64 {
        read_number(&self.state.join("dropped"))
    }

    pub fn clear_dropped(&self) -> std::io::Result<()> {
        crate::identity::write_atomically(&self.state.join("dropped"), b"0", false)
    }

    /// Queues items (in batches of at most [`MAX_ITEMS`]).
    pub fn push(&self, items: &[Item]) -> std::io::Result<()> {
        for chunk in items.chunks(MAX_ITEMS) {
            let n = {
                let path = self.state.join("batch");
                let n = read_number(&path) + 1;
                crate::identity::write_atomically(&path, n.to_string().as_bytes(), false)?;
                n
            };
            let bytes = serde_json::to_vec(&Batch {
                items: chunk.to_vec(),
            })
            .map_err(std::io::Error::other)?;
            crate::identity::write_atomically(
                &self.dir.join(format!("{n:020}.json")),
                &bytes,
                false,
            )?;
        }
        self.bound()
    }

    /// Drops the oldest batches while the outbox is over [`MAX_BYTES`].
    fn bound(&self) -> std::io::Result<()> {
        let mut files: Vec<(PathBuf, u64)> = self
            .pending()
            .into_iter()
            .map(|p| {
                let len = fs::metadata(&p).map_or(0, |m| m.len());
                (p, len)
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, l)| l).sum();
        let mut dropped = 0;
        while total > MAX_BYTES && files.len() > 1 {
            let (p, len) = files.remove(0);
            fs::remove_file(&p)?;
            total -= len;
            dropped += 1;
        }
        if dropped > 0 {
            let n = self.dropped() + dropped;
            crate::identity::write_atomically(
                &self.state.join("dropped"),
                n.to_string().as_bytes(),
                false,
            )?;
        }
        Ok(())
    }

    /// Batch files, oldest first.
    pub fn pending(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.path())
                    .filter(|p| {
                        p.extension().is_some_and(|x| x == "json")
                            && p.file_stem().is_some_and(|s| {
                                s.len() == 20
                                    && s.to_string_lossy().bytes().all(|b| b.is_ascii_digit())
                            })
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Items waiting, over every batch.
    pub fn len(&self) -> usize {
        self.pending()
            .iter()
            .filter_map(|p| Self::read(p).ok())
            .map(|b| b.items.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.pending().is_empty()
    }

    /// A batch file; an unreadable one is an error the caller reports (and keeps the file).
    pub fn read(path: &Path) -> std::io::Result<Batch> {
        let bytes = hpl_runtime::store::read_regular_file(path, MAX_BYTES)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Replaces a batch with the items still to send, or removes it when none are left.
    pub fn settle(&self, path: &Path, left: Vec<Item>) -> std::io::Result<()> {
        if left.is_empty() {
            fs::remove_file(path)
        } else {
            let bytes =
                serde_json::to_vec(&Batch { items: left }).map_err(std::io::Error::other)?;
            crate::identity::write_atomically(path, &bytes, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(i: u64, size: usize) -> Item {
        Item {
            task_id: format!("t{i}"),
            seq: 0,
            kind: Kind::Event,
            scopes: None,
            body: serde_json::json!({ "pad": "x".repeat(size) }),
        }
    }

    #[test]
    fn batches_come_back_in_order_and_settle() {
        let dir = std::env::temp_dir().join(format!("hpl-outbox-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let o = Outbox::open(&dir).unwrap();
        o.push(&[item(1, 1), item(2, 1)]).unwrap();
        o.push(&[item(3, 1)]).unwrap();
        let p = o.pending();
        assert_eq!(p.len(), 2);
        assert_eq!(Outbox::read(&p[0]).unwrap().items[0].task_id, "t1");
        o.settle(&p[0], vec![item(2, 1)]).unwrap();
        assert_eq!(o.len(), 2);
        o.settle(&p[0], vec![]).unwrap();
        assert_eq!(o.pending().len(), 1);
        assert_eq!(o.next_task().unwrap(), 1);
        assert_eq!(o.next_task().unwrap(), 2);
        // A stray file is never sent.
        fs::write(dir.join("agent/outbox/notes.txt"), "x").unwrap();
        assert_eq!(o.pending().len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_and_counts_them() {
        let dir = std::env::temp_dir().join(format!("hpl-outbox-full-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let o = Outbox::open(&dir).unwrap();
        for i in 0..5 {
            o.push(&[item(i, (MAX_BYTES / 3) as usize)]).unwrap();
        }
        assert!(o.pending().len() <= 3);
        assert_eq!(o.dropped(), 5 - o.pending().len() as u64);
        let newest = Outbox::read(o.pending().last().unwrap()).unwrap();
        assert_eq!(newest.items[0].task_id, "t4");
        fs::remove_dir_all(&dir).unwrap();
    }
}
