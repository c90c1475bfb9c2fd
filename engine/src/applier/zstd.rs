//! zstd layers: a reader over every frame of a stream (concatenated
//! frames are common: pzstd output, zstd:chunked), skipping skippable
//! frames (zstd:chunked keeps its metadata in them).

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use std::io::{BufRead, Read};

/// Decodes all frames of a zstd stream.
pub struct ZstdReader<R: BufRead> {
    decoder: Option<StreamingDecoder<R, FrameDecoder>>,
}

/// Skips skippable frames at the front of `source`; `false` at the end of input.
fn skip_skippable<R: BufRead>(source: &mut R) -> std::io::Result<bool> {
    loop {
        let head = source.fill_buf()?;
        if head.is_empty() {
            return Ok(false);
        }
        if head.len() < 8 {
            return Ok(true); // too short for a skippable frame header: let the decoder judge it
        }
        let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if magic & 0xFFFF_FFF0 != 0x184D_2A50 {
            return Ok(true);
        }
        let length = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        source.consume(8);
        let skipped = std::io::copy(&mut source.by_ref().take(length), &mut std::io::sink())?;
        if skipped != length {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "truncated skippable zstd frame",
            ));
        }
    }
}

impl<R: BufRead> ZstdReader<R> {
    pub fn new(mut source: R) -> std::io::Result<ZstdReader<R>> {
        if !skip_skippable(&mut source)? {
            return Ok(ZstdReader { decoder: None });
        }
        let decoder = StreamingDecoder::new(source).map_err(std::io::Error::other)?;
        Ok(ZstdReader {
            decoder: Some(decoder),
        })
    }
}

impl<R: BufRead> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // This frame is done; another may follow.
            let Some(finished) = self.decoder.take() else {
                return Ok(0);
            };
            let mut source = finished.into_inner();
            if !skip_skippable(&mut source)? {
                return Ok(0);
            }
            self.decoder = Some(StreamingDecoder::new(source).map_err(std::io::Error::other)?);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruzstd::encoding::{compress_to_vec, CompressionLevel};

    #[test]
    fn reads_every_frame_and_skips_skippable_ones() {
        let one = compress_to_vec(&b"first frame, "[..], CompressionLevel::Fastest);
        let two = compress_to_vec(&b"second frame"[..], CompressionLevel::Fastest);
        let mut stream = one.clone();
        stream.extend_from_slice(&0x184D_2A5Au32.to_le_bytes());
        stream.extend_from_slice(&3u32.to_le_bytes());
        stream.extend_from_slice(b"abc");
        stream.extend_from_slice(&two);
        let mut out = String::new();
        ZstdReader::new(&stream[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "first frame, second frame");
        let mut garbage = one;
        garbage.extend_from_slice(b"not zstd at all");
        assert!(ZstdReader::new(&garbage[..])
            .unwrap()
            .read_to_end(&mut Vec::new())
            .is_err());
    }
}
