//! Where inputs come from: files, directories (walked recursively, in name order), Maildir folders,
//! mbox files and standard input (`-`); IMAP mailboxes in [`imap`]; reverse DNS names of
//! source IPs in [`rdns`].
//!
//! [`Inputs`] is a lazy iterator: it yields one input at a time and never holds more than one mbox
//! message in memory, so memory stays flat however many inputs there are. Files are not read here but by
//! the parsing workers ([`read_file`]), so reading is parallel too. An mbox is recognised by content (a
//! first line starting `From `), whatever its name; a Maildir is a directory holding `cur/` and `new/`.

pub mod imap;
pub mod oauth2;
pub mod probe;
pub mod rdns;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One unit of work for the pipeline.
#[derive(Debug)]
pub enum Input {
    /// A file, to be read (bounded) by a worker.
    File(PathBuf),
    /// A file opened already, its first bytes read (`head`), to be read on (bounded) by a worker:
    /// what walking a directory gives, which looks at each file's start to tell an mbox, so that
    /// the file is opened once (issue 21: every file was opened twice, once on the serial walk).
    Opened {
        path: PathBuf,
        file: File,
        head: Vec<u8>,
    },
    /// Bytes already read: one message of an mbox, or standard input.
    Bytes { origin: String, data: Vec<u8> },
    /// An input that could not be read at all; it becomes a reject.
    Unreadable { origin: String, reason: String },
}

/// A file's origin as inputs name it: its path as text ([`Path::display`]; a path that is UTF-8,
/// as nearly all are, copied as it is rather than formatted, which checked it piece by piece:
/// 0.4% of an `ingest`'s CPU time over 5,000 small files).
fn origin_of(path: &Path) -> String {
    match path.to_str() {
        Some(text) => text.to_owned(),
        None => path.display().to_string(),
    }
}

impl Input {
    pub fn origin(&self) -> String {
        match self {
            Input::File(p) | Input::Opened { path: p, .. } => origin_of(p),
            Input::Bytes { origin, .. } | Input::Unreadable { origin, .. } => origin.clone(),
        }
    }

    /// The input's bytes, read where they were not read already, at most `limit` of them; else
    /// why not.
    pub fn read(self, limit: u64) -> Result<Vec<u8>, String> {
        match self {
            Input::File(path) => read_file(&path, limit).map_err(|e| e.to_string()),
            Input::Opened { file, head, .. } => {
                let mut data = Vec::with_capacity(size_hint(&file, limit));
                data.extend_from_slice(&head);
                read_bounded(file, data, limit).map_err(|e| e.to_string())
            }
            Input::Bytes { data, .. } => Ok(data),
            Input::Unreadable { reason, .. } => Err(reason),
        }
    }
}

/// A buffer's size for `file`'s bytes: its size now, one byte more (to see the end without
/// growing it), within `limit`.
fn size_hint(file: &File, limit: u64) -> usize {
    file.metadata()
        .map_or(0, |m| m.len().min(limit).saturating_add(1)) as usize
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "input exceeds the limit of {limit} bytes (raise --max-message-size / DMARC_WARDEN_MAX_MESSAGE_SIZE)"
    )]
    TooLarge { limit: u64 },
}

/// Reads a whole file, refusing one larger than `limit` without reading past `limit + 1` bytes.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = File::open(path)?;
    let data = Vec::with_capacity(size_hint(&file, limit));
    read_bounded(file, data, limit)
}

/// `data` (what was read already) and the rest of `reader`, refused past `limit` bytes in all.
fn read_bounded(reader: impl Read, mut data: Vec<u8>, limit: u64) -> Result<Vec<u8>, ReadError> {
    reader
        .take(limit.saturating_add(1).saturating_sub(data.len() as u64))
        .read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(data)
}

type Source = Box<dyn BufRead + Send>;
type KeepEntry = fn(&walkdir::DirEntry) -> bool;

/// The inputs named on the command line, expanded lazily.
pub struct Inputs {
    roots: std::vec::IntoIter<PathBuf>,
    walk: Option<walkdir::FilterEntry<walkdir::IntoIter, KeepEntry>>,
    mbox: Option<Mbox<Source>>,
    limit: u64,
    /// The directory of the last file walked, and whether it is a Maildir: asked once a
    /// directory, not once a file (two `stat` calls a file, in the serial part of `ingest`).
    last_dir: Option<(PathBuf, bool)>,
}

impl Inputs {
    /// `paths` may name files, directories, Maildirs, mbox files, or `-` for standard input.
    /// `limit` is the most bytes one input (file or message) may have.
    pub fn new(paths: Vec<PathBuf>, limit: u64) -> Self {
        Inputs {
            roots: paths.into_iter(),
            walk: None,
            mbox: None,
            limit,
            last_dir: None,
        }
    }

    /// Whether `path`, a file walked, is beside a Maildir's `cur/` and `new/`: the mail server's
    /// bookkeeping (`dovecot-uidlist`, `maildirfolder`, index files), not a message.
    fn maildir_metadata(&mut self, path: &Path) -> bool {
        let Some(dir) = path.parent() else {
            return false;
        };
        match &self.last_dir {
            Some((last, answer)) if last == dir => *answer,
            _ => {
                let answer = is_maildir(dir);
                self.last_dir = Some((dir.to_owned(), answer));
                answer
            }
        }
    }

    /// A plain file is handed over as a path, to be read by a worker; an mbox is opened and split
    /// here. This runs in the serial part of the pipeline, so it reads only the 5 bytes that tell.
    fn file(&mut self, path: &Path) -> Option<Input> {
        let origin = || origin_of(path);
        let opened = File::open(path).and_then(|mut f| {
            let mut head = Vec::with_capacity(5);
            (&mut f).take(5).read_to_end(&mut head)?;
            Ok((f, head))
        });
        match opened {
            Ok((mut f, head)) if head == b"From " => match f.seek(SeekFrom::Start(0)) {
                Ok(_) => {
                    let reader = BufReader::with_capacity(64 << 10, f);
                    self.mbox = Some(Mbox::new(Box::new(reader), origin(), self.limit));
                    None
                }
                Err(e) => Some(Input::Unreadable {
                    origin: origin(),
                    reason: ReadError::Io(e).to_string(),
                }),
            },
            Ok((file, head)) => Some(Input::Opened {
                path: path.to_owned(),
                file,
                head,
            }),
            Err(e) => Some(Input::Unreadable {
                origin: origin(),
                reason: ReadError::Io(e).to_string(),
            }),
        }
    }

    fn stdin(&mut self) -> Option<Input> {
        let mut reader = BufReader::with_capacity(64 << 10, std::io::stdin());
        match reader.fill_buf() {
            Ok(head) if head.starts_with(b"From ") => {
                self.mbox = Some(Mbox::new(Box::new(reader), "-".into(), self.limit));
                None
            }
            Ok(_) => Some(match read_bounded(reader, Vec::new(), self.limit) {
                Ok(data) => Input::Bytes {
                    origin: "-".into(),
                    data,
                },
                Err(e) => Input::Unreadable {
                    origin: "-".into(),
                    reason: e.to_string(),
                },
            }),
            Err(e) => Some(Input::Unreadable {
                origin: "-".into(),
                reason: ReadError::Io(e).to_string(),
            }),
        }
    }
}

impl Iterator for Inputs {
    type Item = Input;

    fn next(&mut self) -> Option<Input> {
        loop {
            if let Some(mbox) = &mut self.mbox {
                match mbox.next() {
                    Some(input) => return Some(input),
                    None => self.mbox = None,
                }
            }
            if let Some(walk) = &mut self.walk {
                match walk.next() {
                    Some(Ok(entry)) => {
                        if entry.file_type().is_file()
                            && !self.maildir_metadata(entry.path())
                            && let Some(input) = self.file(entry.path())
                        {
                            return Some(input);
                        }
                        continue;
                    }
                    Some(Err(e)) => {
                        let origin = e.path().map_or_else(String::new, origin_of);
                        return Some(Input::Unreadable {
                            origin,
                            reason: format!("cannot read: {e}"),
                        });
                    }
                    None => {
                        self.walk = None;
                        continue;
                    }
                }
            }
            let root = self.roots.next()?;
            if root.as_os_str() == "-" {
                if let Some(input) = self.stdin() {
                    return Some(input);
                }
                continue;
            }
            match std::fs::metadata(&root) {
                Ok(m) if m.is_dir() => {
                    let keep: KeepEntry = |e| !is_maildir_tmp(e);
                    self.walk = Some(
                        walkdir::WalkDir::new(&root)
                            .sort_by_file_name()
                            .into_iter()
                            .filter_entry(keep),
                    );
                }
                Ok(_) => {
                    if let Some(input) = self.file(&root) {
                        return Some(input);
                    }
                }
                Err(e) => {
                    return Some(Input::Unreadable {
                        origin: origin_of(&root),
                        reason: ReadError::Io(e).to_string(),
                    });
                }
            }
        }
    }
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() && dir.join("new").is_dir()
}

/// A Maildir's `tmp/` holds messages still being delivered: never read them.
fn is_maildir_tmp(entry: &walkdir::DirEntry) -> bool {
    entry.file_type().is_dir()
        && entry.file_name() == "tmp"
        && entry.path().parent().is_some_and(is_maildir)
}

/// Splits an mbox into messages, one at a time.
///
/// A message starts at a `From ` line that opens the file or follows an empty line (mboxo/mboxrd);
/// `>From ` quoting is undone (mboxrd). A message larger than the limit is skipped to its end and
/// reported, never held in memory.
struct Mbox<R> {
    reader: R,
    origin: String,
    limit: u64,
    index: usize,
    line: Vec<u8>,
    /// The `From ` line of the next message was consumed by the previous call.
    separator_read: bool,
    done: bool,
}

impl<R: BufRead> Mbox<R> {
    fn new(reader: R, origin: String, limit: u64) -> Self {
        Mbox {
            reader,
            origin,
            limit,
            index: 0,
            line: Vec::new(),
            separator_read: false,
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for Mbox<R> {
    type Item = Input;

    fn next(&mut self) -> Option<Input> {
        if self.done {
            return None;
        }
        let mut message = Vec::new();
        let mut oversized = false;
        let mut started = std::mem::take(&mut self.separator_read);
        let mut previous_blank = true;
        loop {
            self.line.clear();
            let read = match self.reader.read_until(b'\n', &mut self.line) {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    self.index += 1;
                    return Some(Input::Unreadable {
                        origin: format!("{}#{}", self.origin, self.index),
                        reason: ReadError::Io(e).to_string(),
                    });
                }
            };
            if read == 0 {
                self.done = true;
                if !started {
                    return None;
                }
                break;
            }
            let is_separator = previous_blank && self.line.starts_with(b"From ");
            previous_blank = self.line == b"\n" || self.line == b"\r\n";
            if is_separator {
                if started {
                    // This separator opens the next message.
                    self.separator_read = true;
                    break;
                }
                started = true;
                continue;
            }
            started = true;
            let unquoted = unquote_from(&self.line);
            if message.len() as u64 + unquoted.len() as u64 > self.limit {
                oversized = true;
                message = Vec::new();
            }
            if !oversized {
                message.extend_from_slice(unquoted);
            }
        }
        self.index += 1;
        let origin = format!("{}#{}", self.origin, self.index);
        if oversized {
            return Some(Input::Unreadable {
                origin,
                reason: ReadError::TooLarge { limit: self.limit }.to_string(),
            });
        }
        Some(Input::Bytes {
            origin,
            data: message,
        })
    }
}

/// mboxrd: a line `>From `, `>>From `… had one `>` added when written; remove it.
fn unquote_from(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    if quotes > 0 && line[quotes..].starts_with(b"From ") {
        &line[1..]
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(mbox: &str, limit: u64) -> Vec<Result<String, String>> {
        Mbox::new(mbox.as_bytes(), "m".into(), limit)
            .map(|i| i.read(limit).map(|data| String::from_utf8(data).unwrap()))
            .collect()
    }

    /// A walked file is opened once: the walk reads its first bytes to tell an mbox, and the
    /// worker reads on from there, within the limit counted over the whole file.
    #[test]
    fn a_walked_file_is_read_whole_from_where_the_walk_stopped() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("a", "<feedback/>"),
            ("b", "abc"),
            ("c", ""),
            ("d", "0123456789"),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut read: Vec<(String, Result<String, String>)> =
            Inputs::new(vec![dir.path().into()], 10)
                .map(|i| {
                    assert!(matches!(i, Input::Opened { .. }), "{i:?}");
                    let name = i.origin().rsplit('/').next().unwrap().to_owned();
                    (name, i.read(10).map(|d| String::from_utf8(d).unwrap()))
                })
                .collect();
        read.sort();
        assert_eq!(
            read[0],
            (
                "a".into(),
                Err(ReadError::TooLarge { limit: 10 }.to_string())
            )
        );
        assert_eq!(read[1], ("b".into(), Ok("abc".into())));
        assert_eq!(read[2], ("c".into(), Ok(String::new())));
        assert_eq!(read[3], ("d".into(), Ok("0123456789".into())));
    }

    #[test]
    fn mbox_split_and_unquote() {
        let m = "From a Mon\nSubject: 1\n\nbody\nFrom me to you\n>From x\n\nFrom b Tue\nSubject: 2\n\nz\n";
        assert_eq!(
            split(m, 1000),
            vec![
                Ok("Subject: 1\n\nbody\nFrom me to you\nFrom x\n\n".into()),
                Ok("Subject: 2\n\nz\n".into())
            ]
        );
    }

    #[test]
    fn mbox_oversized_message_is_reported_and_skipped() {
        let m = "From a\nSubject: 1\n\nlong long long\n\nFrom b\nS: 2\n\n";
        let got = split(m, 20);
        assert!(got[0].as_ref().unwrap_err().contains("--max-message-size"));
        assert_eq!(got[1], Ok("S: 2\n\n".into()));
    }
}
