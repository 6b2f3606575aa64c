//! A small JSON reader for the one-line reports the Java and Go client programs print
//! (`tests/java/clients`, `tests/go`): objects, arrays, strings, numbers, booleans,
//! null. Enough for test assertions; it panics, with the text, on anything else.
//!
//! ```text
//!  let report = Json::parse(line);
//!  report["gzip"]["matched"].int()      a missing key is Json::Null, and .int() panics on it
//!  report.at("gzip.matched").int()      the same, by a dotted path
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Index;

/// One JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

static NULL: Json = Json::Null;

impl Json {
    /// Parses one JSON document; panics with the text if it is not one.
    pub fn parse(text: &str) -> Json {
        let mut parser = Parser {
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = parser.value();
        parser.skip_space();
        assert_eq!(parser.at, text.len(), "trailing text after JSON in {text}");
        value
    }

    /// The value at a dotted path of object keys (`a.b.c`); `Null` if any is missing.
    pub fn at(&self, path: &str) -> &Json {
        path.split('.').fold(self, |value, key| &value[key])
    }

    /// A whole number; panics on anything else.
    pub fn int(&self) -> i64 {
        match self {
            Json::Number(n) if n.fract() == 0.0 => *n as i64,
            other => panic!("expected a whole number, found {other}"),
        }
    }

    pub fn float(&self) -> f64 {
        match self {
            Json::Number(n) => *n,
            other => panic!("expected a number, found {other}"),
        }
    }

    pub fn text(&self) -> &str {
        match self {
            Json::Text(text) => text,
            other => panic!("expected a string, found {other}"),
        }
    }

    pub fn boolean(&self) -> bool {
        match self {
            Json::Bool(value) => *value,
            other => panic!("expected a boolean, found {other}"),
        }
    }

    pub fn array(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            other => panic!("expected an array, found {other}"),
        }
    }

    pub fn object(&self) -> &BTreeMap<String, Json> {
        match self {
            Json::Object(map) => map,
            other => panic!("expected an object, found {other}"),
        }
    }

    /// The whole numbers of an array.
    pub fn ints(&self) -> Vec<i64> {
        self.array().iter().map(Json::int).collect()
    }

    /// The strings of an array.
    pub fn texts(&self) -> Vec<String> {
        self.array().iter().map(|v| v.text().to_string()).collect()
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
}

impl Index<&str> for Json {
    type Output = Json;

    fn index(&self, key: &str) -> &Json {
        match self {
            Json::Object(map) => map.get(key).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => write!(f, "null"),
            Json::Bool(value) => write!(f, "{value}"),
            Json::Number(n) => write!(f, "{n}"),
            Json::Text(text) => write!(f, "{text:?}"),
            Json::Array(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
            Json::Object(map) => {
                write!(f, "{{")?;
                for (i, (key, value)) in map.iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    write!(f, "{key:?}:{value}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.at < self.bytes.len() && self.bytes[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> u8 {
        self.skip_space();
        *self
            .bytes
            .get(self.at)
            .unwrap_or_else(|| panic!("JSON ends early: {}", self.context()))
    }

    fn context(&self) -> String {
        String::from_utf8_lossy(self.bytes).into_owned()
    }

    fn expect(&mut self, byte: u8) {
        assert_eq!(
            self.peek(),
            byte,
            "expected {:?} at {} in {}",
            byte as char,
            self.at,
            self.context()
        );
        self.at += 1;
    }

    fn literal(&mut self, word: &str, value: Json) -> Json {
        assert!(
            self.bytes[self.at..].starts_with(word.as_bytes()),
            "bad JSON at {} in {}",
            self.at,
            self.context()
        );
        self.at += word.len();
        value
    }

    fn value(&mut self) -> Json {
        match self.peek() {
            b'{' => {
                self.at += 1;
                let mut map = BTreeMap::new();
                if self.peek() == b'}' {
                    self.at += 1;
                    return Json::Object(map);
                }
                loop {
                    let key = self.string();
                    self.expect(b':');
                    map.insert(key, self.value());
                    match self.peek() {
                        b',' => self.at += 1,
                        _ => {
                            self.expect(b'}');
                            return Json::Object(map);
                        }
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.peek() == b']' {
                    self.at += 1;
                    return Json::Array(items);
                }
                loop {
                    items.push(self.value());
                    match self.peek() {
                        b',' => self.at += 1,
                        _ => {
                            self.expect(b']');
                            return Json::Array(items);
                        }
                    }
                }
            }
            b'"' => Json::Text(self.string()),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            _ => {
                let start = self.at;
                while self.at < self.bytes.len()
                    && matches!(
                        self.bytes[self.at],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.at += 1;
                }
                let text = std::str::from_utf8(&self.bytes[start..self.at]).expect("ascii");
                Json::Number(
                    text.parse()
                        .unwrap_or_else(|_| panic!("bad number {text:?} in {}", self.context())),
                )
            }
        }
    }

    fn string(&mut self) -> String {
        self.expect(b'"');
        let mut out: Vec<u8> = Vec::new();
        loop {
            let byte = *self
                .bytes
                .get(self.at)
                .unwrap_or_else(|| panic!("unterminated string in {}", self.context()));
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(out).expect("utf-8 string"),
                b'\\' => {
                    let escaped = self.bytes[self.at];
                    self.at += 1;
                    match escaped {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = std::str::from_utf8(&self.bytes[self.at..self.at + 4])
                                .expect("ascii");
                            self.at += 4;
                            let code = u32::from_str_radix(hex, 16).expect("hex escape");
                            let c = char::from_u32(code).unwrap_or('\u{fffd}');
                            out.extend_from_slice(c.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }
}
