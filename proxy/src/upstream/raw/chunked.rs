//! Decoding a `Transfer-Encoding: chunked` response body (RFC 9112 §7.1).
//! Chunk extensions and trailer fields are read and dropped.

use std::io;

use bytes::{Buf, Bytes, BytesMut};

/// Longest chunk-size or trailer line taken.
const MAX_LINE: usize = 4096;

/// Where the decoder is in the body.
#[derive(Debug)]
pub(super) enum ChunkedDecoder {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
    Done,
}

/// What [`ChunkedDecoder::decode`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    Data(Bytes),
    /// Read more into the buffer, then call again.
    NeedMore,
    /// The body ended (the last chunk and the trailers were read).
    End,
}

impl ChunkedDecoder {
    pub(super) fn new() -> ChunkedDecoder {
        ChunkedDecoder::Size
    }

    /// Takes from `buf` what it can; data is split off without copying.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Step> {
        loop {
            match self {
                ChunkedDecoder::Size => {
                    let Some(line) = take_line(buf)? else { return Ok(Step::NeedMore) };
                    let digits = line[..].split(|&b| b == b';').next().unwrap_or_default();
                    let digits = std::str::from_utf8(digits).map_err(|_| invalid("chunk size is not ASCII"))?.trim();
                    let size =
                        u64::from_str_radix(digits, 16).map_err(|_| invalid(&format!("bad chunk size {digits:?}")))?;
                    *self = if size == 0 { ChunkedDecoder::Trailers } else { ChunkedDecoder::Data(size) };
                }
                ChunkedDecoder::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                    *left -= take as u64;
                    if *left == 0 {
                        *self = ChunkedDecoder::DataEnd;
                    }
                    return Ok(Step::Data(buf.split_to(take).freeze()));
                }
                ChunkedDecoder::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(invalid("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    *self = ChunkedDecoder::Size;
                }
                ChunkedDecoder::Trailers => {
                    let Some(line) = take_line(buf)? else { return Ok(Step::NeedMore) };
                    if line.is_empty() {
                        *self = ChunkedDecoder::Done;
                    }
                }
                ChunkedDecoder::Done => return Ok(Step::End),
            }
        }
    }
}

/// The next CRLF-ended line (without its CRLF), if the buffer has it whole.
fn take_line(buf: &mut BytesMut) -> io::Result<Option<BytesMut>> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(at) => {
            let mut line = buf.split_to(at + 2);
            line.truncate(at);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(invalid("chunk line too long")),
        None => Ok(None),
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("upstream chunked body: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` cut at `cut`, as two reads, and collects the data.
    fn decode_in_two(wire: &[u8], cut: usize) -> io::Result<(Vec<u8>, usize)> {
        let mut decoder = ChunkedDecoder::new();
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut rest = Some(&wire[cut..]);
        let mut out = Vec::new();
        loop {
            match decoder.decode(&mut buf)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::NeedMore => match rest.take() {
                    Some(more) => buf.extend_from_slice(more),
                    None => return Err(io::ErrorKind::UnexpectedEof.into()),
                },
                Step::End => return Ok((out, buf.len())),
            }
        }
    }

    #[test]
    fn decodes_whatever_the_reads_cut() {
        let wire = b"5;name=value\r\nhello\r\n0B\r\n, chunked!!\r\n0\r\nx-amz-checksum-crc32: AAAAAA==\r\n\r\nNEXT";
        let body_end = wire.len() - b"NEXT".len();
        for cut in 0..=wire.len() {
            let (data, left) = decode_in_two(wire, cut).unwrap();
            assert_eq!(data, b"hello, chunked!!", "cut at {cut}");
            // Whatever follows the body stays in the buffer.
            let after = if cut >= body_end { cut - body_end } else { 4 };
            assert_eq!(left, after, "cut at {cut}");
        }
    }

    #[test]
    fn refuses_malformed_bodies() {
        assert!(decode_in_two(b"zz\r\n", 4).is_err());
        assert!(decode_in_two(b"3\r\nabcXY0\r\n\r\n", 13).is_err());
        assert!(decode_in_two(&[b'1'; MAX_LINE + 1], MAX_LINE + 1).is_err());
        assert_eq!(decode_in_two(b"3\r\nab", 5).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
