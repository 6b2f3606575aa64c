//! Kafka's wire format at the edge: size-prefixed frames, request headers, the request
//! bodies the node needs, and response frames. All codecs are `kafka-protocol`'s; this
//! file only decides what to decode, with which version, and what to refuse.
//!
//! ```text
//! frame    = size:i32 (big-endian, excludes itself) | header | body
//! header   = api_key:i16 | api_version:i16 | correlation_id:i32 | client_id:nullable string
//!            | tagged fields (flexible header v2 only)
//! response = size:i32 | correlation_id:i32 | tagged fields (header v1 only) | body
//! ```

use anyhow::{Context, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::guard;
use crate::versions::{self, SUPPORTED};

/// Bytes before the first field a frame must have: api_key, api_version, correlation_id.
/// Anything shorter cannot even be answered with an error, so the connection closes.
pub const FRAME_BYTES_MIN: i32 = 2 + 2 + 4;

/// Kafka's error code `UNSUPPORTED_VERSION`.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// The first eight bytes of every request, readable before anything is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preamble {
    /// The raw API key (may be one Kafka does not know).
    pub api_key: i16,
    /// The version the client asked for.
    pub api_version: i16,
    /// Echoed in the response so the client can match it.
    pub correlation_id: i32,
}

/// What the front end does with one request frame.
#[derive(Debug)]
// Built once per request and taken apart at once; boxing the body would only add an
// allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum Inbound {
    /// Answer at once with these encoded response bytes (a whole frame, size included).
    Reply(Bytes),
    /// Hand to the node; encode its answer with `api_version` and `correlation_id`.
    Node {
        /// The request's preamble.
        preamble: Preamble,
        /// The request's API.
        api_key: ApiKey,
        /// From the request header, for logs.
        client_id: Option<String>,
        /// The decoded body.
        body: RequestKind,
    },
}

/// Why a connection is closed instead of answered (Apache Kafka closes the connection
/// for all of these too).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The API key is not one Kafka defines.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// A known API, but not one this broker serves, or not at this version.
    #[error("unsupported {key:?} v{version}")]
    Unsupported {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The header or body did not parse.
    #[error("malformed {key:?} v{version} request: {reason:#}")]
    Malformed {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
        /// What went wrong.
        reason: anyhow::Error,
    },
}

/// Reads the preamble; `frame` must hold at least [`FRAME_BYTES_MIN`] bytes.
pub fn preamble(frame: &[u8]) -> Preamble {
    let mut head = &frame[..FRAME_BYTES_MIN as usize];
    Preamble {
        api_key: head.get_i16(),
        api_version: head.get_i16(),
        correlation_id: head.get_i32(),
    }
}

/// Decides what to do with one request frame (the bytes after the size prefix).
pub fn parse_request(frame: Bytes) -> Result<Inbound, Refusal> {
    assert!(
        frame.len() >= FRAME_BYTES_MIN as usize,
        "frame size is checked when it is read"
    );
    let preamble = preamble(&frame);
    let version = preamble.api_version;
    let key = ApiKey::try_from(preamble.api_key)
        .map_err(|()| Refusal::UnknownApiKey(preamble.api_key))?;
    if !versions::is_supported(key, version) {
        if key == ApiKey::ApiVersions {
            // KIP-511: answer with the v0 body so that any client can read which
            // versions to retry with (librdkafka sends v3 first and falls back).
            let response = unsupported_api_versions_response();
            let frame = encode_response(
                preamble.correlation_id,
                0,
                &ResponseKind::ApiVersions(response),
            )
            .expect("a v0 ApiVersions response always encodes");
            return Ok(Inbound::Reply(frame));
        }
        return Err(Refusal::Unsupported { key, version });
    }
    let malformed = |reason: anyhow::Error| Refusal::Malformed {
        key,
        version,
        reason,
    };
    let mut buf = frame;
    let header =
        RequestHeader::decode(&mut buf, key.request_header_version(version)).map_err(malformed)?;
    guard::check(key, version, &buf).map_err(|error| malformed(error.into()))?;
    let body = RequestKind::decode(key, &mut buf, version).map_err(malformed)?;
    if key == ApiKey::ApiVersions {
        let response = api_versions_response();
        let frame = encode_response(
            preamble.correlation_id,
            version,
            &ResponseKind::ApiVersions(response),
        )
        .map_err(malformed)?;
        return Ok(Inbound::Reply(frame));
    }
    let client_id = header.client_id.map(|id| id.to_string());
    Ok(Inbound::Node {
        preamble,
        api_key: key,
        client_id,
        body,
    })
}

/// Whether the node will never answer this request (Kafka: a Produce with `acks=0`).
pub fn expects_response(body: &RequestKind) -> bool {
    !matches!(body, RequestKind::Produce(produce) if produce.acks == 0)
}

/// The ApiVersions answer listing [`SUPPORTED`].
pub fn api_versions_response() -> ApiVersionsResponse {
    let api_keys = SUPPORTED
        .iter()
        .map(|entry| {
            ApiVersion::default()
                .with_api_key(entry.key as i16)
                .with_min_version(entry.min)
                .with_max_version(entry.max)
        })
        .collect();
    ApiVersionsResponse::default().with_api_keys(api_keys)
}

/// The ApiVersions answer to a version this broker does not serve: the error and the
/// ApiVersions range only, as Apache Kafka sends it.
pub fn unsupported_api_versions_response() -> ApiVersionsResponse {
    let own = versions::supported_range(ApiKey::ApiVersions).expect("ApiVersions is always served");
    let entry = ApiVersion::default()
        .with_api_key(ApiKey::ApiVersions as i16)
        .with_min_version(own.min)
        .with_max_version(own.max);
    ApiVersionsResponse::default()
        .with_error_code(UNSUPPORTED_VERSION)
        .with_api_keys(vec![entry])
}

/// The API a response belongs to, for the responses the node produces.
pub fn response_api_key(response: &ResponseKind) -> Option<ApiKey> {
    Some(match response {
        ResponseKind::Produce(_) => ApiKey::Produce,
        ResponseKind::Fetch(_) => ApiKey::Fetch,
        ResponseKind::ListOffsets(_) => ApiKey::ListOffsets,
        ResponseKind::Metadata(_) => ApiKey::Metadata,
        ResponseKind::ApiVersions(_) => ApiKey::ApiVersions,
        ResponseKind::CreateTopics(_) => ApiKey::CreateTopics,
        ResponseKind::DeleteTopics(_) => ApiKey::DeleteTopics,
        ResponseKind::InitProducerId(_) => ApiKey::InitProducerId,
        ResponseKind::DescribeConfigs(_) => ApiKey::DescribeConfigs,
        ResponseKind::AlterConfigs(_) => ApiKey::AlterConfigs,
        ResponseKind::IncrementalAlterConfigs(_) => ApiKey::IncrementalAlterConfigs,
        ResponseKind::CreatePartitions(_) => ApiKey::CreatePartitions,
        ResponseKind::FindCoordinator(_) => ApiKey::FindCoordinator,
        ResponseKind::JoinGroup(_) => ApiKey::JoinGroup,
        ResponseKind::SyncGroup(_) => ApiKey::SyncGroup,
        ResponseKind::Heartbeat(_) => ApiKey::Heartbeat,
        ResponseKind::LeaveGroup(_) => ApiKey::LeaveGroup,
        ResponseKind::OffsetCommit(_) => ApiKey::OffsetCommit,
        ResponseKind::OffsetFetch(_) => ApiKey::OffsetFetch,
        ResponseKind::DescribeGroups(_) => ApiKey::DescribeGroups,
        ResponseKind::ListGroups(_) => ApiKey::ListGroups,
        ResponseKind::DeleteGroups(_) => ApiKey::DeleteGroups,
        ResponseKind::OffsetForLeaderEpoch(_) => ApiKey::OffsetForLeaderEpoch,
        ResponseKind::DescribeCluster(_) => ApiKey::DescribeCluster,
        ResponseKind::DescribeLogDirs(_) => ApiKey::DescribeLogDirs,
        ResponseKind::OffsetDelete(_) => ApiKey::OffsetDelete,
        ResponseKind::DeleteRecords(_) => ApiKey::DeleteRecords,
        ResponseKind::DescribeAcls(_) => ApiKey::DescribeAcls,
        ResponseKind::CreateAcls(_) => ApiKey::CreateAcls,
        ResponseKind::DeleteAcls(_) => ApiKey::DeleteAcls,
        ResponseKind::SaslHandshake(_) => ApiKey::SaslHandshake,
        ResponseKind::SaslAuthenticate(_) => ApiKey::SaslAuthenticate,
        ResponseKind::AlterUserScramCredentials(_) => ApiKey::AlterUserScramCredentials,
        ResponseKind::DescribeUserScramCredentials(_) => ApiKey::DescribeUserScramCredentials,
        ResponseKind::DescribeClientQuotas(_) => ApiKey::DescribeClientQuotas,
        _ => return None,
    })
}

/// Encodes a whole response frame: size, header (v0 or v1 as the API and version say),
/// body.
pub fn encode_response(
    correlation_id: i32,
    api_version: i16,
    response: &ResponseKind,
) -> anyhow::Result<Bytes> {
    let header_version = response.header_version(api_version);
    let mut frame = BytesMut::with_capacity(256);
    frame.put_i32(0); // size, filled in below
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut frame, header_version)
        .context("response header")?;
    response.encode(&mut frame, api_version)?;
    let size = i32::try_from(frame.len() - 4).context("response larger than 2 GiB")?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame.freeze())
}

/// Checks a frame size read off the wire against the limit.
pub fn check_frame_size(size: i32, frame_bytes_max: i32) -> anyhow::Result<usize> {
    if size < FRAME_BYTES_MIN {
        bail!("invalid request size {size} (smaller than a request header)");
    }
    if size > frame_bytes_max {
        bail!("request size {size} exceeds socket.request.max.bytes ({frame_bytes_max})");
    }
    Ok(size as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::StrBytes;

    fn request_frame(key: ApiKey, version: i16, body: &RequestKind) -> Bytes {
        let mut frame = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from("unit")))
            .encode(&mut frame, key.request_header_version(version))
            .unwrap();
        body.encode(&mut frame, version).unwrap();
        frame.freeze()
    }

    fn decode_reply(frame: Bytes, version: i16) -> (i32, ApiVersionsResponse) {
        let mut buf = frame;
        let size = buf.get_i32();
        assert_eq!(size as usize, buf.len());
        let header = ResponseHeader::decode(&mut buf, 0).unwrap();
        let body = ApiVersionsResponse::decode(&mut buf, version).unwrap();
        assert!(buf.is_empty());
        (header.correlation_id, body)
    }

    #[test]
    fn api_versions_is_answered_in_every_served_version() {
        for version in 0..=3 {
            let request = RequestKind::ApiVersions(ApiVersionsRequest::default());
            let Inbound::Reply(frame) =
                parse_request(request_frame(ApiKey::ApiVersions, version, &request)).unwrap()
            else {
                panic!("ApiVersions goes to the node");
            };
            let (correlation_id, body) = decode_reply(frame, version);
            assert_eq!(correlation_id, 7);
            assert_eq!(body.error_code, 0);
            assert_eq!(body.api_keys.len(), SUPPORTED.len());
        }
    }

    #[test]
    fn too_new_api_versions_gets_a_v0_error_body() {
        let request = RequestKind::ApiVersions(ApiVersionsRequest::default());
        let Inbound::Reply(frame) =
            parse_request(request_frame(ApiKey::ApiVersions, 4, &request)).unwrap()
        else {
            panic!("ApiVersions goes to the node");
        };
        let (correlation_id, body) = decode_reply(frame, 0);
        assert_eq!(correlation_id, 7);
        assert_eq!(body.error_code, UNSUPPORTED_VERSION);
        assert_eq!(body.api_keys.len(), 1);
        assert_eq!(body.api_keys[0].max_version, 3);
    }

    #[test]
    fn unknown_and_unsupported_apis_are_refused() {
        let mut frame = BytesMut::new();
        frame.put_i16(999);
        frame.put_i16(0);
        frame.put_i32(1);
        assert!(matches!(
            parse_request(frame.freeze()),
            Err(Refusal::UnknownApiKey(999))
        ));
        let request = RequestKind::Metadata(MetadataRequest::default());
        let refused = parse_request(request_frame(ApiKey::Metadata, 13, &request));
        assert!(matches!(
            refused,
            Err(Refusal::Unsupported {
                key: ApiKey::Metadata,
                version: 13
            })
        ));
    }

    #[test]
    fn an_array_claiming_two_billion_topics_is_refused_before_decoding() {
        let mut frame = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(1)
            .encode(&mut frame, 1)
            .unwrap();
        frame.put_i32(i32::MAX);
        let refused = parse_request(frame.freeze());
        assert!(
            matches!(
                refused,
                Err(Refusal::Malformed {
                    key: ApiKey::Metadata,
                    ..
                })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn frame_sizes() {
        assert!(check_frame_size(-1, 100).is_err());
        assert!(check_frame_size(0, 100).is_err());
        assert!(check_frame_size(7, 100).is_err());
        assert_eq!(check_frame_size(8, 100).unwrap(), 8);
        assert_eq!(check_frame_size(100, 100).unwrap(), 100);
        assert!(check_frame_size(101, 100).is_err());
    }
}
