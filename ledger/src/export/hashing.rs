//! Hashing I/O, on threads: the three streamed files of a bundle (`ledger.bin`,
//! `entries.jsonl`, `entries.csv`) are written and read by a thread of their own that takes
//! the SHA-256 of every byte for `MANIFEST`, so hashing overlaps with rendering and checking.

use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc;
use std::thread;

use sha2::{Digest, Sha256};

use crate::merkle::Hash;

use super::{ENTRIES_CSV, ENTRIES_JSONL, LEDGER_BIN};

/// The size of the chunks the I/O threads pass around.
const CHUNK: usize = 1 << 20;

/// Indexes of the three streamed files.
pub(super) const BIN: usize = 0;
pub(super) const JSONL: usize = 1;
pub(super) const CSV: usize = 2;
pub(super) const STREAMED: [&str; 3] = [LEDGER_BIN, ENTRIES_JSONL, ENTRIES_CSV];

/// The three streamed files of a bundle being written. The caller renders into one buffer per
/// file; full buffers go to a writer thread that hashes and writes them, so that hashing the
/// output (a SHA-256 of every byte, for `MANIFEST`) overlaps with reading and rendering.
pub(super) struct StreamWriter {
    pub(super) bufs: [Vec<u8>; 3],
    tx: Option<mpsc::SyncSender<(usize, Vec<u8>)>>,
    recycled: mpsc::Receiver<Vec<u8>>,
    worker: Option<thread::JoinHandle<StreamResult>>,
}

/// The hashes of the three streamed files, or which one failed and why.
pub(super) type StreamResult = Result<[Hash; 3], (usize, io::Error)>;

impl StreamWriter {
    pub(super) fn new(files: [File; 3]) -> StreamWriter {
        let (tx, rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(4);
        let (back, recycled) = mpsc::sync_channel::<Vec<u8>>(8);
        let worker = thread::spawn(move || {
            let mut files = files;
            let mut hashes = [Sha256::new(), Sha256::new(), Sha256::new()];
            for (i, mut chunk) in rx {
                hashes[i].update(&chunk);
                files[i].write_all(&chunk).map_err(|e| (i, e))?;
                chunk.clear();
                let _ = back.try_send(chunk);
            }
            for (i, file) in files.iter_mut().enumerate() {
                file.sync_all().map_err(|e| (i, e))?;
            }
            Ok(hashes.map(|h| h.finalize().into()))
        });
        StreamWriter {
            bufs: [(); 3].map(|()| Vec::with_capacity(CHUNK + CHUNK / 4)),
            tx: Some(tx),
            recycled,
            worker: Some(worker),
        }
    }

    /// Hands stream `i`'s buffer to the writer thread once it holds a chunk.
    pub(super) fn ship_if_full(&mut self, i: usize) -> Result<(), (usize, io::Error)> {
        if self.bufs[i].len() >= CHUNK {
            self.ship(i)
        } else {
            Ok(())
        }
    }

    fn ship(&mut self, i: usize) -> Result<(), (usize, io::Error)> {
        let fresh = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK + CHUNK / 4));
        let full = std::mem::replace(&mut self.bufs[i], fresh);
        match self.tx.as_ref().map(|tx| tx.send((i, full))) {
            Some(Ok(())) => Ok(()),
            // The writer thread stopped: it failed, and says why when joined.
            _ => Err(self.join().err().unwrap_or((
                i,
                io::Error::other("the writer thread stopped without an error"),
            ))),
        }
    }

    /// Writes what is left, syncs the files, and returns their hashes.
    pub(super) fn finish(&mut self) -> StreamResult {
        for i in 0..3 {
            if !self.bufs[i].is_empty() {
                self.ship(i)?;
            }
        }
        self.join()
    }

    pub(super) fn join(&mut self) -> StreamResult {
        self.tx = None;
        match self.worker.take().map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err((0, io::Error::other("the writer thread panicked"))),
            None => Err((0, io::Error::other("the files were already closed"))),
        }
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// A file read on its own thread, which hashes every byte and passes the bytes on in chunks:
/// the hash covers exactly the bytes that are checked, and hashing overlaps with checking.
pub(super) struct ChunkReader {
    rx: Option<mpsc::Receiver<io::Result<Vec<u8>>>>,
    back: mpsc::SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    worker: Option<thread::JoinHandle<io::Result<Hash>>>,
}

impl ChunkReader {
    pub(super) fn open(file: File) -> ChunkReader {
        let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
        let (back, recycled) = mpsc::sync_channel::<Vec<u8>>(8);
        let worker = thread::spawn(move || {
            let mut file = file;
            let mut hash = Sha256::new();
            let mut listening = true;
            loop {
                let mut chunk = recycled.try_recv().unwrap_or_default();
                chunk.resize(CHUNK, 0);
                let n = match read_full(&mut file, &mut chunk) {
                    Ok(n) => n,
                    Err(e) => {
                        if listening {
                            let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        }
                        return Err(e);
                    }
                };
                if n == 0 {
                    return Ok(hash.finalize().into());
                }
                chunk.truncate(n);
                hash.update(&chunk);
                // Once the checker stops listening, keep reading for the hash alone.
                if listening && tx.send(Ok(chunk)).is_err() {
                    listening = false;
                }
            }
        });
        ChunkReader {
            rx: Some(rx),
            back,
            chunk: Vec::new(),
            pos: 0,
            worker: Some(worker),
        }
    }

    /// Stops handing out bytes and returns the SHA-256 of the whole file.
    pub(super) fn finish(mut self) -> io::Result<Hash> {
        self.rx = None;
        match self.worker.take().map(thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(io::Error::other("the reader thread panicked")),
        }
    }
}

impl Drop for ChunkReader {
    fn drop(&mut self) {
        self.rx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChunkReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.chunk.len() {
            let Some(rx) = &self.rx else { break };
            match rx.recv() {
                Ok(Ok(next)) => {
                    let used = std::mem::replace(&mut self.chunk, next);
                    let _ = self.back.try_send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.rx = None;
                    return Err(e);
                }
                Err(_) => self.rx = None,
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.chunk.len());
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
