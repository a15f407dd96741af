//! A plugin's stderr, kept only as its last few KiB.
//!
//! A panicking guest prints its message last, so the tail is what an attempt's
//! reason quotes. Writing never fails: a chatty plugin loses its oldest lines,
//! not its call. The tail can be cleared, so an instance kept for another call
//! (`calls_per_instance`) starts that call with nothing from the one before,
//! even though the guest keeps the stream it opened once.

use bytes::{Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Shared between the WASI context and the call that reads it after a trap.
#[derive(Clone)]
pub struct LastWords {
    tail: Arc<Mutex<BytesMut>>,
    capacity: usize,
}

impl LastWords {
    pub fn new(capacity: usize) -> Self {
        LastWords {
            tail: Arc::new(Mutex::new(BytesMut::with_capacity(capacity))),
            capacity,
        }
    }

    pub fn contents(&self) -> Bytes {
        self.lock().clone().freeze()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn append(&self, bytes: &[u8]) {
        let mut tail = self.lock();
        let bytes = &bytes[bytes.len().saturating_sub(self.capacity)..];
        let overflow = (tail.len() + bytes.len()).saturating_sub(self.capacity);
        if overflow > 0 {
            let _ = tail.split_to(overflow);
        }
        tail.extend_from_slice(bytes);
    }

    /// A poisoned lock only means another writer panicked mid-append: the
    /// bytes are still bytes.
    fn lock(&self) -> std::sync::MutexGuard<'_, BytesMut> {
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl IsTerminal for LastWords {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LastWords {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for LastWords {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(self.capacity)
    }
}

#[async_trait::async_trait]
impl Pollable for LastWords {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LastWords {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_forgets_on_clear() {
        let words = LastWords::new(8);
        words.append(b"hello ");
        words.append(b"world");
        assert_eq!(&words.contents()[..], b"lo world");
        words.append(b"a much longer line than fits");
        assert_eq!(&words.contents()[..], b"han fits");
        words.clear();
        assert!(words.contents().is_empty());
    }
}
