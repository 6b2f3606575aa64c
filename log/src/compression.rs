//! The record codecs of RecordBatch v2 (attribute bits 0..3), for the log cleaner: it
//! has to read the keys inside a compressed batch and write the records it keeps back
//! with the same codec. Nothing else in the log opens a compressed batch.
//!
//! ```text
//!  codec   framing of the records field, as Kafka's clients write it
//!  gzip    a gzip member (RFC 1952)
//!  snappy  xerial framing: 16-byte header, then (length u32, raw snappy block)*;
//!          a records field without the header is read as one raw snappy block
//!          (librdkafka writes that)
//!  lz4     the LZ4 frame format; written with independent 64 KiB blocks and no
//!          checksums, which every Kafka client reads
//!  zstd    one zstd frame
//! ```
//!
//! Pure computation over byte slices. Decompressed output is bounded by
//! [`RECORDS_DECOMPRESSED_BYTES_MAX`]: a batch that inflates beyond it is refused, not
//! allocated.

use std::io::{Read, Write};

use crate::batch::Compression;
use crate::constants::RECORDS_DECOMPRESSED_BYTES_MAX;

/// Why a records field could not be compressed or decompressed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompressionError {
    /// The bytes are not valid for the codec.
    #[error("{codec:?} records do not decompress: {reason}")]
    Malformed {
        /// The codec.
        codec: Compression,
        /// What the decoder said.
        reason: String,
    },
    /// The records decompress to more than [`RECORDS_DECOMPRESSED_BYTES_MAX`].
    #[error("{codec:?} records decompress to more than {max} bytes")]
    TooLarge {
        /// The codec.
        codec: Compression,
        /// The bound.
        max: usize,
    },
    /// The encoder failed (only an out-of-memory condition would make it).
    #[error("{codec:?} compression failed: {reason}")]
    Encode {
        /// The codec.
        codec: Compression,
        /// What the encoder said.
        reason: String,
    },
}

/// The header the Java client's snappy stream (xerial) writes first: magic, then
/// version 1 and compatible version 1.
const XERIAL_HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];
/// Bytes of the xerial magic (the versions after it are not checked on read).
const XERIAL_MAGIC_BYTES: usize = 8;
/// Uncompressed bytes per xerial chunk, as the Java client writes them.
const XERIAL_CHUNK_BYTES: usize = 32 * 1024;
/// zstd level used when writing (zstd's own default).
const ZSTD_LEVEL: i32 = 3;

/// The records field `bytes` compressed with `codec` (a copy for `None`).
pub fn compress(codec: Compression, bytes: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let encode = |reason: std::io::Error| CompressionError::Encode {
        codec,
        reason: reason.to_string(),
    };
    match codec {
        Compression::None => Ok(bytes.to_vec()),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(bytes).map_err(encode)?;
            encoder.finish().map_err(encode)
        }
        Compression::Snappy => snappy_xerial(bytes),
        Compression::Lz4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::new())
                .map_err(encode)?;
            encoder.write_all(bytes).map_err(encode)?;
            let (out, result) = encoder.finish();
            result.map_err(encode)?;
            Ok(out)
        }
        Compression::Zstd => zstd::bulk::compress(bytes, ZSTD_LEVEL).map_err(encode),
    }
}

/// The records field `bytes`, compressed with `codec`, decompressed.
pub fn decompress(codec: Compression, bytes: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let malformed = |reason: String| CompressionError::Malformed { codec, reason };
    match codec {
        Compression::None => Ok(bytes.to_vec()),
        Compression::Gzip => read_bounded(codec, flate2::read::GzDecoder::new(bytes)),
        Compression::Snappy if bytes.starts_with(&XERIAL_HEADER[..XERIAL_MAGIC_BYTES]) => {
            unsnappy_xerial(&bytes[XERIAL_HEADER.len().min(bytes.len())..])
        }
        Compression::Snappy => {
            let mut out = Vec::new();
            unsnappy_block(bytes, &mut out)?;
            Ok(out)
        }
        Compression::Lz4 => {
            let decoder = lz4::Decoder::new(bytes).map_err(|e| malformed(e.to_string()))?;
            read_bounded(codec, decoder)
        }
        Compression::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(bytes).map_err(|e| malformed(e.to_string()))?;
            read_bounded(codec, decoder)
        }
    }
}

/// Everything `reader` yields, refused past the bound.
fn read_bounded(codec: Compression, reader: impl Read) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    let limit = RECORDS_DECOMPRESSED_BYTES_MAX as u64 + 1;
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|error| CompressionError::Malformed {
            codec,
            reason: error.to_string(),
        })?;
    if out.len() > RECORDS_DECOMPRESSED_BYTES_MAX {
        return Err(CompressionError::TooLarge {
            codec,
            max: RECORDS_DECOMPRESSED_BYTES_MAX,
        });
    }
    Ok(out)
}

fn snappy_xerial(bytes: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let mut out = XERIAL_HEADER.to_vec();
    let mut encoder = snap::raw::Encoder::new();
    for chunk in bytes.chunks(XERIAL_CHUNK_BYTES) {
        let block = encoder
            .compress_vec(chunk)
            .map_err(|error| CompressionError::Encode {
                codec: Compression::Snappy,
                reason: error.to_string(),
            })?;
        let length = u32::try_from(block.len()).expect("a chunk compresses to under 4 GiB");
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&block);
    }
    Ok(out)
}

fn unsnappy_xerial(mut chunks: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    while !chunks.is_empty() {
        let Some((length, rest)) = chunks.split_first_chunk::<4>() else {
            return Err(CompressionError::Malformed {
                codec: Compression::Snappy,
                reason: "a chunk length is cut short".to_string(),
            });
        };
        let length = u32::from_be_bytes(*length) as usize;
        if length > rest.len() {
            return Err(CompressionError::Malformed {
                codec: Compression::Snappy,
                reason: format!("a chunk of {length} bytes runs past the records"),
            });
        }
        unsnappy_block(&rest[..length], &mut out)?;
        chunks = &rest[length..];
    }
    Ok(out)
}

/// Appends one raw snappy block, decompressed, to `out`, within the bound.
fn unsnappy_block(block: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    let malformed = |error: snap::Error| CompressionError::Malformed {
        codec: Compression::Snappy,
        reason: error.to_string(),
    };
    let length = snap::raw::decompress_len(block).map_err(malformed)?;
    if out.len() + length > RECORDS_DECOMPRESSED_BYTES_MAX {
        return Err(CompressionError::TooLarge {
            codec: Compression::Snappy,
            max: RECORDS_DECOMPRESSED_BYTES_MAX,
        });
    }
    let start = out.len();
    out.resize(start + length, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(malformed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(bytes: usize) -> Vec<u8> {
        (0..bytes).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn every_codec_round_trips_empty_small_and_multi_block_records() {
        for codec in CODECS {
            for size in [0, 1, 100, 70_000, 200_000] {
                let bytes = sample(size);
                let packed = compress(codec, &bytes).expect("compresses");
                assert_eq!(
                    decompress(codec, &packed).expect("decompresses"),
                    bytes,
                    "{codec:?} {size}"
                );
            }
        }
    }

    #[test]
    fn snappy_writes_the_java_clients_framing_and_reads_raw_blocks_too() {
        let bytes = sample(1000);
        let packed = compress(Compression::Snappy, &bytes).unwrap();
        assert_eq!(&packed[..16], &XERIAL_HEADER);
        let raw = snap::raw::Encoder::new().compress_vec(&bytes).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw).unwrap(), bytes);
    }

    #[test]
    fn lz4_writes_a_standard_frame() {
        let packed = compress(Compression::Lz4, b"hello").unwrap();
        // LZ4 frame magic, little-endian 0x184D2204.
        assert_eq!(&packed[..4], &[0x04, 0x22, 0x4d, 0x18]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in CODECS.into_iter().skip(1) {
            let packed = compress(codec, &sample(5000)).unwrap();
            for cut in [1, packed.len() / 2, packed.len() - 1] {
                let _ = decompress(codec, &packed[..cut]);
            }
            assert!(decompress(codec, b"\x00\x01 not compressed at all").is_err());
        }
    }

    #[test]
    fn a_bomb_is_refused_at_the_bound() {
        let huge = vec![0u8; RECORDS_DECOMPRESSED_BYTES_MAX + 1];
        for codec in [Compression::Gzip, Compression::Zstd, Compression::Lz4] {
            let packed = compress(codec, &huge).unwrap();
            assert!(matches!(
                decompress(codec, &packed),
                Err(CompressionError::TooLarge { .. })
            ));
        }
    }
}
