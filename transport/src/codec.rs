//! How the runner turns a machine's messages into bytes and back.

use idlegrid_primitives::{DEFAULT_MAX_DECODE_LEN, DecodeError, decode, encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes and decodes a machine's `Message` type. Decoding takes untrusted
/// bytes: it must return an error, never panic.
pub trait Codec<M>: Send + Sync {
    /// The wire bytes of `msg`.
    fn encode(&self, msg: &M) -> Vec<u8>;
    /// The message in `bytes`, or why not.
    fn decode(&self, bytes: &[u8]) -> Result<M, DecodeError>;
}

/// The workspace's canonical encoding ([`idlegrid_primitives::encode`] /
/// [`idlegrid_primitives::decode`]) with a size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostcardCodec {
    max_len: usize,
}

impl PostcardCodec {
    /// A codec rejecting messages longer than `max_len` bytes.
    pub const fn new(max_len: usize) -> Self {
        Self { max_len }
    }
    /// The limit in bytes.
    pub const fn max_len(&self) -> usize {
        self.max_len
    }
}

impl Default for PostcardCodec {
    /// Limited to [`DEFAULT_MAX_DECODE_LEN`].
    fn default() -> Self {
        Self::new(DEFAULT_MAX_DECODE_LEN)
    }
}

impl<M: Serialize + DeserializeOwned> Codec<M> for PostcardCodec {
    fn encode(&self, msg: &M) -> Vec<u8> {
        encode(msg)
    }
    fn decode(&self, bytes: &[u8]) -> Result<M, DecodeError> {
        decode(bytes, self.max_len)
    }
}

/// A codec from two closures, for message types with their own encoding.
#[derive(Debug, Clone, Copy)]
pub struct FnCodec<E, D> {
    encode: E,
    decode: D,
}

impl<E, D> FnCodec<E, D> {
    /// Wraps an encoder and a decoder.
    pub const fn new(encode: E, decode: D) -> Self {
        Self { encode, decode }
    }
}

impl<M, E, D> Codec<M> for FnCodec<E, D>
where
    E: Fn(&M) -> Vec<u8> + Send + Sync,
    D: Fn(&[u8]) -> Result<M, DecodeError> + Send + Sync,
{
    fn encode(&self, msg: &M) -> Vec<u8> {
        (self.encode)(msg)
    }
    fn decode(&self, bytes: &[u8]) -> Result<M, DecodeError> {
        (self.decode)(bytes)
    }
}
