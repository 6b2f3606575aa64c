//! Fuzzing the front door of a real broker process: seeded random mutations of valid
//! requests of every served API and version, and plain random bytes, sent over real
//! sockets. The broker may answer a mutated frame or close its connection; it must
//! never stop, never stall, and keep serving a well-behaved connection open beside the
//! fuzzed ones (docs/security.md, "Bad input").
//!
//! Mutations, each drawn from the seed: flip bytes, overwrite four bytes with a huge or
//! negative length, cut the body short, append random bytes, ask for a neighbouring
//! version, or send random bytes framed or unframed. Frames that still decode reach the
//! node's handlers, so routing is fuzzed too, not only the decoder.
//!
//! `ODRADEK_FUZZ_SEED` picks the seed (default: the time); `ODRADEK_FUZZ_SECONDS` the
//! budget (default 20, what CI spends). A failure prints the seed and the frame that
//! preceded it, so the run can be repeated.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, RequestHeader, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use odradek_log::mixing::SplitMix64;
use support::requests::{Shape, sample};
use support::{Broker, Port};

/// How long a fuzzed connection is waited on. A mutated request may legitimately wait
/// (a Fetch whose `max_wait_ms` grew to minutes, a Produce's timeout): such a connection
/// is dropped after this and counted, and the bystander shows the broker still serves.
const PATIENCE: Duration = Duration::from_secs(2);

/// One served API version and its valid encoded request body.
struct Sample {
    key: ApiKey,
    version: i16,
    body: Vec<u8>,
}

/// The broker's own ApiVersions table, each entry with a valid request per version.
fn served_samples(broker: &Broker) -> Vec<Sample> {
    let mut client = broker.client();
    let request = RequestKind::ApiVersions(ApiVersionsRequest::default());
    let ResponseKind::ApiVersions(versions) = client.call(ApiKey::ApiVersions, 0, &request) else {
        panic!("ApiVersions answered with another response");
    };
    let mut samples = Vec::new();
    for entry in &versions.api_keys {
        let key = ApiKey::try_from(entry.api_key).expect("the broker serves known APIs");
        for version in entry.min_version..=entry.max_version {
            for exhaustive in [false, true] {
                let shape = Shape {
                    topic: "fuzzed",
                    exhaustive,
                };
                let mut body = BytesMut::new();
                sample(key, version, shape)
                    .encode(&mut body, version)
                    .unwrap();
                samples.push(Sample {
                    key,
                    version,
                    body: body.to_vec(),
                });
            }
        }
    }
    samples
}

/// A whole frame (size prefix, header, body) for `key` at `version`.
fn frame(key: ApiKey, version: i16, header_version: i16, body: &[u8]) -> Vec<u8> {
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")))
        .encode(&mut frame, header_version)
        .unwrap();
    frame.put_slice(body);
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    frame.to_vec()
}

/// One fuzzed input, drawn from `random`, and what it is (for the failure message).
fn fuzzed_input(random: &mut SplitMix64, samples: &[Sample]) -> (String, Vec<u8>) {
    let sample = &samples[random.below(samples.len() as u64) as usize];
    let (key, mut version) = (sample.key, sample.version);
    let header_version = key.request_header_version(version);
    let mut body = sample.body.clone();
    let kind = random.below(7);
    match kind {
        0 => {
            for _ in 0..=random.below(4) {
                if !body.is_empty() {
                    let at = random.below(body.len() as u64) as usize;
                    body[at] ^= 1 << random.below(8);
                }
            }
        }
        1 => {
            let planted: [u8; 4] = match random.below(3) {
                0 => i32::MAX.to_be_bytes(),
                1 => (-2_i32).to_be_bytes(),
                _ => (random.next_u64() as u32).to_be_bytes(),
            };
            let at = random.below(body.len() as u64 + 1) as usize;
            for (offset, byte) in planted.iter().enumerate() {
                if let Some(slot) = body.get_mut(at + offset) {
                    *slot = *byte;
                }
            }
        }
        2 => body.truncate(random.below(body.len() as u64 + 1) as usize),
        3 => body.extend(random_bytes(random, 64)),
        // The body of one version under a neighbouring version's number.
        4 => version = version.saturating_add(if random.chance(500) { 1 } else { -1 }),
        5 => {
            return (
                "random bytes, framed".into(),
                framed(random_bytes(random, 256)),
            );
        }
        _ => return ("random bytes".into(), random_bytes(random, 64)),
    }
    let what = format!("{key:?} v{} mutation {kind}", sample.version);
    (what, frame(key, version, header_version, &body))
}

fn random_bytes(random: &mut SplitMix64, max: u64) -> Vec<u8> {
    (0..=random.below(max))
        .map(|_| random.next_u64() as u8)
        .collect()
}

fn framed(body: Vec<u8>) -> Vec<u8> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend(body);
    frame
}

/// What the broker did with one fuzzed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// It closed the connection (after answering or not).
    Closed,
    /// It kept the connection open past [`PATIENCE`] (a request still waiting).
    Waiting,
}

/// Sends `input` on a fresh connection, half-closes it, and reads until the broker
/// closes it (it may answer first) or [`PATIENCE`] runs out.
fn send_and_drain(port: u16, input: &[u8]) -> Outcome {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    if stream.write_all(input).is_err() {
        return Outcome::Closed; // closed while we wrote: the broker refused early
    }
    stream.shutdown(std::net::Shutdown::Write).ok();
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return Outcome::Closed,
            Ok(_) => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Outcome::Waiting;
            }
            Err(_) => return Outcome::Closed, // reset
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

#[test]
fn fuzzed_frames_never_stop_the_broker_or_disturb_other_connections() {
    let seed = env_u64("ODRADEK_FUZZ_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let budget = Duration::from_secs(env_u64("ODRADEK_FUZZ_SECONDS").unwrap_or(20));
    eprintln!("fuzz seed {seed} (ODRADEK_FUZZ_SEED={seed} repeats it), budget {budget:?}");
    let mut broker = Broker::start_with(Port::Free, &["--override", "num.partitions=2"]);
    let samples = served_samples(&broker);
    let mut bystander = broker.client();
    let metadata = RequestKind::Metadata(MetadataRequest::default());
    let mut random = SplitMix64::new(seed);
    let started = Instant::now();
    let (mut sent, mut waiting) = (0_u64, 0_u64);
    while started.elapsed() < budget {
        let (what, input) = fuzzed_input(&mut random, &samples);
        let outcome = send_and_drain(broker.port(), &input);
        waiting += u64::from(outcome == Outcome::Waiting);
        sent += 1;
        if sent.is_multiple_of(64) || outcome == Outcome::Waiting {
            let alive = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                broker.assert_alive();
                bystander.call(ApiKey::Metadata, 1, &metadata);
            }));
            if let Err(panic) = alive {
                eprintln!("seed {seed}: after input {sent} ({what}): {input:?}");
                std::panic::resume_unwind(panic);
            }
        }
    }
    broker.assert_alive();
    bystander.call(ApiKey::Metadata, 1, &metadata);
    let stderr = broker.stderr();
    assert!(
        !stderr.contains("panicked"),
        "seed {seed}: the broker panicked:\n{stderr}"
    );
    eprintln!(
        "fuzz seed {seed}: {sent} inputs in {:?}, {waiting} left waiting",
        started.elapsed()
    );
    assert!(sent > 100, "the budget allowed only {sent} inputs");
}
