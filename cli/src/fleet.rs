//! Reading a fleet's inventories: streamed from a directory or a JSON-lines file, evaluated
//! on one worker per core, folded on the calling thread. `hpl report` and `hpl diff
//! --inventories` share it; neither holds more than a few inventories at a time.

use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// How far the reader is: bytes of inventories read, of how many (0 while unknown).
#[derive(Debug, Default)]
pub struct Progress {
    pub read: AtomicU64,
    pub total: AtomicU64,
}

impl Progress {
    fn add(&self, bytes: u64) {
        self.read.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// The progress line: a bar when the total is known, then devices and their rate.
pub fn progress_line(read: u64, total: u64, devices: u64, per_second: f64) -> String {
    const WIDTH: u64 = 24;
    let read = u128::from(read.min(total));
    let share = |scale: u128| read.saturating_mul(scale).checked_div(u128::from(total));
    let bar = match (share(u128::from(WIDTH)), share(100)) {
        (Some(done), Some(percent)) => {
            let done = done as usize;
            format!(
                "[{}{}] {percent:>3}%  ",
                "█".repeat(done),
                "░".repeat(WIDTH as usize - done)
            )
        }
        _ => String::new(),
    };
    format!("{bar}{devices} devices, {per_second:.0}/s")
}

/// The longest inventory line or file read.
const MAX_INVENTORY_BYTES: u64 = crate::io::MAX_TEXT_BYTES;

/// One inventory to evaluate, or why it could not be read.
pub enum Item {
    Text { source: String, text: String },
    Unreadable { source: String, error: String },
}

/// Streams the inventories of `path` to `send`, one at a time; `Err` when `path` itself cannot
/// be opened. `send` returns false to stop.
pub fn stream(
    path: &Path,
    progress: &Progress,
    send: &mut dyn FnMut(Item) -> bool,
) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        // The sizes first (one listing, nothing kept), for the progress bar.
        let total: u64 = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(Result::ok)
            .filter(|e| {
                let p = e.path();
                matches!(
                    p.extension().and_then(|x| x.to_str()),
                    Some("json" | "jsonl")
                )
            })
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        progress.total.store(total, Ordering::Relaxed);
        let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let p = entry.path();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            match p.extension().and_then(|e| e.to_str()) {
                Some("json") if is_file => {
                    let source = p.display().to_string();
                    let item = match hpl_runtime::store::read_regular_file(&p, MAX_INVENTORY_BYTES)
                        .map_err(|e| e.to_string())
                        .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
                    {
                        Ok(text) => {
                            progress.add(text.len() as u64);
                            Item::Text { source, text }
                        }
                        Err(error) => Item::Unreadable { source, error },
                    };
                    if !send(item) {
                        return Ok(());
                    }
                }
                Some("jsonl") if is_file => stream_lines(&p, progress, send)?,
                _ => {}
            }
        }
        Ok(())
    } else if meta.is_file() {
        progress.total.store(meta.len(), Ordering::Relaxed);
        stream_lines(path, progress, send)
    } else {
        Err(format!(
            "{}: not a directory or a regular file",
            path.display()
        ))
    }
}

/// A JSON-lines file, line by line, each line at most [`MAX_INVENTORY_BYTES`].
fn stream_lines(
    path: &Path,
    progress: &Progress,
    send: &mut dyn FnMut(Item) -> bool,
) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    for n in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_INVENTORY_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{}:{n}: {e}", path.display()))?;
        if read == 0 {
            break;
        }
        progress.add(read as u64);
        let source = format!("{}:{n}", path.display());
        if line.len() as u64 > MAX_INVENTORY_BYTES {
            // Skip the rest of the over-long line; it is one unreadable inventory.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let r = (&mut reader)
                    .take(1 << 20)
                    .read_until(b'\n', &mut rest)
                    .map_err(|e| format!("{source}: {e}"))?;
                if r == 0 || rest.ends_with(b"\n") {
                    break;
                }
            }
            if !send(Item::Unreadable {
                source,
                error: format!("longer than {MAX_INVENTORY_BYTES} bytes"),
            }) {
                return Ok(());
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        let item = match std::str::from_utf8(&line) {
            Ok(t) => Item::Text {
                source,
                text: t.to_string(),
            },
            Err(e) => Item::Unreadable {
                source,
                error: e.to_string(),
            },
        };
        if !send(item) {
            return Ok(());
        }
    }
    Ok(())
}

pub use hpl_runtime::summary::scope_labels;

/// Streams the inventories of `path` to `jobs` workers running `work`, and folds their results
/// with `fold` on this thread, in the order they finish. A progress line (devices, rate) goes
/// to `progress` when given.
pub fn par_fold<T: Send>(
    path: &Path,
    jobs: usize,
    mut progress: Option<&mut dyn std::io::Write>,
    work: impl Fn(Item) -> T + Sync,
    mut fold: impl FnMut(T),
) -> Result<(), String> {
    let jobs = jobs.max(1);
    let (items_tx, items_rx) = mpsc::sync_channel::<Item>(jobs * 4);
    let items_rx = std::sync::Mutex::new(items_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<T>(jobs * 4);
    let started = std::time::Instant::now();
    let read = Progress::default();
    std::thread::scope(|scope| {
        let reader_progress = &read;
        let reader = scope.spawn(move || {
            let mut send = |item: Item| items_tx.send(item).is_ok();
            stream(path, reader_progress, &mut send)
        });
        for _ in 0..jobs {
            let done_tx = done_tx.clone();
            let (items_rx, work) = (&items_rx, &work);
            scope.spawn(move || loop {
                let item = match items_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(item) = item else { return };
                if done_tx.send(work(item)).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut n: u64 = 0;
        let mut last = std::time::Instant::now();
        for result in done_rx {
            fold(result);
            n += 1;
            if let Some(p) = progress.as_mut() {
                if last.elapsed().as_millis() >= 200 {
                    last = std::time::Instant::now();
                    let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
                    let line = progress_line(
                        read.read.load(Ordering::Relaxed),
                        read.total.load(Ordering::Relaxed),
                        n,
                        rate,
                    );
                    let _ = write!(p, "\r{}: {line}", path.display());
                    let _ = p.flush();
                }
            }
        }
        if let Some(p) = progress.as_mut() {
            // Clear the line, then say what was done.
            let _ = writeln!(p, "\r\x1b[2K{}: {n} devices", path.display());
        }
        reader
            .join()
            .unwrap_or_else(|_| Err("the reader failed".into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_has_a_bar_when_the_total_is_known() {
        assert_eq!(
            progress_line(50, 100, 4_500, 1_510.4),
            "[████████████░░░░░░░░░░░░]  50%  4500 devices, 1510/s"
        );
        assert_eq!(progress_line(7, 0, 3, 2.0), "3 devices, 2/s");
        assert!(progress_line(200, 100, 1, 1.0).contains("100%"));
    }
}
