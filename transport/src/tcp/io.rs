//! Reading and writing frames on a byte stream, with deadlines.

use std::time::Duration;

use std::pin::Pin;

use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::time::timeout;

use super::link::{OpenFrames, SealFrames};
use crate::error::TransportError;
use crate::frame::{
    Envelope, FrameLimit, HEADER_LEN, check_version, decode_body, encode_frame, parse_header,
};
use crate::session::{Opened, SealKind, SessionError};

/// Deadlines for reading one frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadDeadlines {
    /// How long to wait for the first byte of a frame (idle peer).
    pub idle: Duration,
    /// How long the rest of a frame may take once it has started
    /// (slowloris defence).
    pub frame: Duration,
}

/// Reads one frame. Never over-reads (so a stream can change hands after the
/// handshake), allocates only as body bytes actually arrive, and checks the
/// version on the first byte.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: FrameLimit,
    deadlines: ReadDeadlines,
) -> Result<Envelope, TransportError> {
    let mut header = [0u8; HEADER_LEN];
    timeout(deadlines.idle, r.read_exact(&mut header[..1]))
        .await
        .map_err(|_| TransportError::Timeout("peer sent nothing within the idle timeout"))??;
    check_version(header[0])?;
    timeout(deadlines.frame, async {
        r.read_exact(&mut header[1..]).await?;
        let h = parse_header(&header, limit)?;
        let len = h.body_len();
        // Grow with the bytes that arrive, not with the announced length.
        let mut body = Vec::with_capacity(len.min(64 << 10));
        r.take(len as u64).read_to_end(&mut body).await?;
        Ok::<_, TransportError>(decode_body(h, body)?)
    })
    .await
    .map_err(|_| TransportError::Timeout("a frame did not complete within the frame timeout"))?
}

/// Writes one (handshake) envelope in the clear (no flush).
pub(crate) async fn write_envelope<W: AsyncWrite + Unpin>(
    w: &mut W,
    env: &Envelope,
    limit: FrameLimit,
) -> Result<(), TransportError> {
    let bytes = encode_frame(env, limit)?;
    w.write_all(&bytes).await?;
    Ok(())
}

/// Reads and opens one sealed frame of the session. A frame already whole
/// in the read buffer (the common case under load: one read brings many
/// small frames) is opened from there, with no timer; otherwise, like
/// [`read_frame`], it waits under the deadlines, never over-reads and
/// allocates only as body bytes arrive; a frame cut short by the peer's
/// close fails as truncated.
pub(crate) async fn read_sealed<R: AsyncRead + Unpin, O: OpenFrames>(
    r: &mut BufReader<R>,
    opener: &mut O,
    deadlines: ReadDeadlines,
) -> Result<Opened, TransportError> {
    if let Some(opened) = take_buffered(r, opener)? {
        return Ok(opened);
    }
    let mut header = [0u8; HEADER_LEN];
    timeout(deadlines.idle, r.read_exact(&mut header[..1]))
        .await
        .map_err(|_| TransportError::Timeout("peer sent nothing within the idle timeout"))??;
    check_version(header[0]).map_err(SessionError::from)?;
    timeout(deadlines.frame, async {
        r.read_exact(&mut header[1..]).await?;
        let (h, len) = opener.parse_header(&header)?;
        let mut body = Vec::with_capacity(len.min(64 << 10));
        r.take(len as u64).read_to_end(&mut body).await?;
        Ok::<_, TransportError>(opener.open(h, body)?)
    })
    .await
    .map_err(|_| TransportError::Timeout("a frame did not complete within the frame timeout"))?
}

/// Opens the frame at the head of `r`'s buffer if the buffer holds all of
/// it; `None` if more bytes are needed (the session stays open).
fn take_buffered<R: AsyncRead + Unpin, O: OpenFrames>(
    r: &mut BufReader<R>,
    opener: &mut O,
) -> Result<Option<Opened>, TransportError> {
    match opener.decode(r.buffer()) {
        Ok((opened, used)) => {
            Pin::new(r).consume(used);
            Ok(Some(opened))
        }
        Err(SessionError::Frame(crate::frame::FrameError::Truncated { .. })) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Seals `body` in place and writes the frame (no flush).
pub(crate) async fn write_sealed<W: AsyncWrite + Unpin, S: SealFrames>(
    w: &mut W,
    sealer: &mut S,
    kind: SealKind,
    mut body: Vec<u8>,
) -> Result<(), TransportError> {
    let header = sealer.seal(kind, &mut body)?;
    w.write_all(&header).await?;
    w.write_all(&body).await?;
    Ok(())
}
