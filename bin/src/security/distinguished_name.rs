//! The subject of an X.509 certificate as Kafka names an mTLS client: Kafka's default
//! principal builder takes `X500Principal.getName()`, the RFC 2253 form, so the
//! principal of a certificate for `C=US, O=Odradek, OU=eng, CN=alice` is
//! `User:CN=alice,OU=eng,O=Odradek,C=US` (the last RDN first).
//!
//! Only what that needs of DER is read here: the certificate's outer structure up to
//! the subject, and the subject's RDNs. Rendering follows what the JDK does for the
//! RFC 2253 form: the keywords CN, C, L, ST, O, OU, STREET, DC and UID, any other
//! attribute as its dotted OID with `#` and the hex of its DER encoding; string values
//! (PrintableString, T61String, IA5String, GeneralString, BMPString, UTF8String) read
//! as UTF-8 with `,=+<>#;"\` escaped by a backslash, NUL as `\00`, and leading or
//! trailing spaces escaped; other values as `#` and hex.

use anyhow::{Context, bail};

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_OID: u8 = 0x06;
/// `[0] EXPLICIT Version` at the start of a v2 or v3 TBSCertificate.
const TAG_VERSION: u8 = 0xa0;
/// String types whose content the JDK shows as text in the RFC 2253 form.
const STRING_TAGS: [u8; 6] = [
    0x13, // PrintableString
    0x14, // T61String
    0x16, // IA5String
    0x1b, // GeneralString
    0x1e, // BMPString
    0x0c, // UTF8String
];
/// Attribute types with an RFC 2253 keyword (the JDK's list).
const KEYWORDS: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// One DER element: its tag, its content, and all of its bytes.
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
    encoded: &'a [u8],
}

/// Reads DER elements one after another from a byte slice.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next element (single-byte tags only, as certificates' names use).
    fn next(&mut self) -> anyhow::Result<Element<'a>> {
        let bytes = self.rest;
        let (&tag, after_tag) = bytes.split_first().context("truncated DER")?;
        let (&first, mut after_length) = after_tag.split_first().context("truncated DER")?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || after_length.len() < count {
                bail!("unsupported DER length");
            }
            let (digits, rest) = after_length.split_at(count);
            after_length = rest;
            digits
                .iter()
                .fold(0usize, |length, digit| (length << 8) | usize::from(*digit))
        };
        if after_length.len() < length {
            bail!("truncated DER");
        }
        let header = bytes.len() - after_length.len();
        self.rest = &after_length[length..];
        Ok(Element {
            tag,
            content: &after_length[..length],
            encoded: &bytes[..header + length],
        })
    }

    /// The next element, which must have `tag`.
    fn expect(&mut self, tag: u8, what: &str) -> anyhow::Result<Element<'a>> {
        let element = self.next()?;
        if element.tag != tag {
            bail!(
                "{what}: expected DER tag {tag:#04x}, found {:#04x}",
                element.tag
            );
        }
        Ok(element)
    }
}

/// The subject of the DER certificate `certificate`, in the RFC 2253 form
/// `X500Principal.getName()` gives.
pub fn subject_of_certificate(certificate: &[u8]) -> anyhow::Result<String> {
    let certificate = Reader::new(certificate).expect(TAG_SEQUENCE, "certificate")?;
    let mut tbs = Reader::new(certificate.content);
    let tbs = tbs.expect(TAG_SEQUENCE, "tbsCertificate")?;
    let mut fields = Reader::new(tbs.content);
    if fields.peek_tag() == Some(TAG_VERSION) {
        fields.next()?;
    }
    fields.next()?; // serialNumber
    fields.next()?; // signature algorithm
    fields.expect(TAG_SEQUENCE, "issuer")?;
    fields.expect(TAG_SEQUENCE, "validity")?;
    let subject = fields.expect(TAG_SEQUENCE, "subject")?;
    name_in_rfc_2253(subject.content)
}

/// A Name's RDN sequence (the content of its SEQUENCE) in the RFC 2253 form: the
/// last RDN first, RDNs joined by `,`, the attributes of one RDN by `+`.
fn name_in_rfc_2253(rdn_sequence: &[u8]) -> anyhow::Result<String> {
    let mut rdns = Vec::new();
    let mut reader = Reader::new(rdn_sequence);
    while !reader.is_empty() {
        let rdn = reader.expect(TAG_SET, "relative distinguished name")?;
        let mut attributes = Vec::new();
        let mut inner = Reader::new(rdn.content);
        while !inner.is_empty() {
            let pair = inner.expect(TAG_SEQUENCE, "attribute type and value")?;
            attributes.push(attribute_in_rfc_2253(pair.content)?);
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// `TYPE=value` for one AttributeTypeAndValue's content.
fn attribute_in_rfc_2253(pair: &[u8]) -> anyhow::Result<String> {
    let mut reader = Reader::new(pair);
    let oid = dotted_oid(reader.expect(TAG_OID, "attribute type")?.content)?;
    let value = reader.next()?;
    let keyword = KEYWORDS
        .iter()
        .find(|(known, _)| *known == oid)
        .map(|(_, keyword)| *keyword);
    match keyword {
        Some(keyword) if STRING_TAGS.contains(&value.tag) => {
            let text = String::from_utf8_lossy(value.content);
            Ok(format!("{keyword}={}", escaped(&text)))
        }
        Some(keyword) => Ok(format!("{keyword}=#{}", hex(value.encoded))),
        None => Ok(format!("{oid}=#{}", hex(value.encoded))),
    }
}

/// An OBJECT IDENTIFIER's content in dotted form.
fn dotted_oid(content: &[u8]) -> anyhow::Result<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut arc: u64 = 0;
    for (index, byte) in content.iter().enumerate() {
        if arc > u64::MAX >> 7 {
            bail!("object identifier arc too large");
        }
        arc = (arc << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (arc / 40).min(2);
                arcs.push(first);
                arcs.push(arc - first * 40);
            } else {
                arcs.push(arc);
            }
            arc = 0;
        } else if index + 1 == content.len() {
            bail!("truncated object identifier");
        }
    }
    if arcs.is_empty() {
        bail!("empty object identifier");
    }
    let arcs: Vec<String> = arcs.iter().map(u64::to_string).collect();
    Ok(arcs.join("."))
}

/// A string value with RFC 2253's special characters escaped, as the JDK does.
fn escaped(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let is_blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = chars.iter().take_while(|c| is_blank(c)).count();
    let trail = chars.len() - chars.iter().rev().take_while(|c| is_blank(c)).count();
    let mut out = String::with_capacity(text.len());
    for (index, c) in chars.iter().enumerate() {
        if *c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if ",=+<>#;\"\\".contains(*c) || index < lead || index >= trail {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AttributeTypeAndValue in a SET (one RDN).
    fn rdn(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        let mut pair = vec![TAG_OID, oid.len() as u8];
        pair.extend_from_slice(oid);
        pair.extend_from_slice(&[tag, value.len() as u8]);
        pair.extend_from_slice(value);
        let mut sequence = vec![TAG_SEQUENCE, pair.len() as u8];
        sequence.extend(pair);
        let mut set = vec![TAG_SET, sequence.len() as u8];
        set.extend(sequence);
        set
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    #[test]
    fn the_last_rdn_comes_first_with_rfc_2253_keywords() {
        let mut name = rdn(O, 0x0c, b"Odradek");
        name.extend(rdn(CN, 0x13, b"alice"));
        assert_eq!(name_in_rfc_2253(&name).unwrap(), "CN=alice,O=Odradek");
    }

    #[test]
    fn attributes_without_a_keyword_are_dotted_oids_with_hex() {
        let name = rdn(EMAIL, 0x16, b"a@b");
        assert_eq!(
            name_in_rfc_2253(&name).unwrap(),
            "1.2.840.113549.1.9.1=#1603614062"
        );
    }

    #[test]
    fn special_characters_and_outer_spaces_are_escaped() {
        assert_eq!(escaped("Sue, Grabbit+Runn"), "Sue\\, Grabbit\\+Runn");
        assert_eq!(escaped(" a=b "), "\\ a\\=b\\ ");
        assert_eq!(escaped("#1;<x>\"\\"), "\\#1\\;\\<x\\>\\\"\\\\");
        assert_eq!(escaped("nul\0"), "nul\\00");
    }

    #[test]
    fn truncated_names_are_errors_not_panics() {
        let name = rdn(CN, 0x13, b"alice");
        for end in 0..name.len() {
            let _ = name_in_rfc_2253(&name[..end]);
        }
        assert!(name_in_rfc_2253(&name[..name.len() - 1]).is_err());
        assert!(subject_of_certificate(&[0x30, 0x05, 0x30]).is_err());
    }

    /// A certificate made by `openssl req -x509 -multivalue-rdn -subj "/C=US/ST=Some
    /// State/O=Odradek, Inc./OU=eng/CN=alice+UID=a1/emailAddress=a@b.c/DC=example/street=
    /// lead#;=x "` (its public part only), and the subject OpenJDK 17's
    /// `X500Principal.getName()` printed for it.
    const OPENSSL_CERTIFICATE_HEX: [&str; 16] = [
        "308202b330820259a00302010202145da1e524afaf75bb997df3a55edaa9a76ca7a289300a06082a8648ce3d",
        "0403023081ae310b30090603550406130255533113301106035504080c0a536f6d6520537461746531163014",
        "060355040a0c0d4f64726164656b2c20496e632e310c300a060355040b0c03656e673120300c06035504030c",
        "05616c6963653010060a0992268993f22c6401010c0261313114301206092a864886f70d0109011605614062",
        "2e6331173015060a0992268993f22c64011916076578616d706c653113301106035504090c0a206c65616423",
        "3b3d7820301e170d3236313230383033323330345a170d3236313230393033323330345a3081ae310b300906",
        "03550406130255533113301106035504080c0a536f6d6520537461746531163014060355040a0c0d4f647261",
        "64656b2c20496e632e310c300a060355040b0c03656e673120300c06035504030c05616c6963653010060a09",
        "92268993f22c6401010c0261313114301206092a864886f70d01090116056140622e6331173015060a099226",
        "8993f22c64011916076578616d706c653113301106035504090c0a206c656164233b3d78203059301306072a",
        "8648ce3d020106082a8648ce3d03010703420004d6e0ab6478600ee8ea4a33e26cb6f5daeff277087b08bc22",
        "99916303aedff1c3e4a0e214e532f2d702cf75adec41c755cff8af14010067995e39e50395f426cea3533051",
        "301d0603551d0e04160414b39e8ce0d6e8e0c38fe30576b6cf7903ff5e0e82301f0603551d23041830168014",
        "b39e8ce0d6e8e0c38fe30576b6cf7903ff5e0e82300f0603551d130101ff040530030101ff300a06082a8648",
        "ce3d0403020348003045022100a1fe6473836c656803f8c83d76eecd453be2b8c1c80c411d89ea519371d959",
        "890220658b4b6e54b1e7623cecdb78fd1e0c92de570c98703b6e263f356be7765722d1",
    ];
    const JDK_SUBJECT: &str = "STREET=\\ lead\\#\\;\\=x\\ ,DC=example,1.2.840.113549.1.9.1=#16056140622e63,CN=alice+UID=a1,OU=eng,O=Odradek\\, Inc.,ST=Some State,C=US";

    #[test]
    fn the_subject_reads_as_the_jdk_prints_it() {
        let hex: String = OPENSSL_CERTIFICATE_HEX.concat();
        let der: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
            .collect();
        assert_eq!(subject_of_certificate(&der).unwrap(), JDK_SUBJECT);
    }
}
