//! A small JSON reader for the files Kafka's tools take (`kafka-delete-records
//! --offset-json-file`): values, not a serializer. Numbers keep their text, so an
//! offset is read as an exact `i64`, never through a float.

use std::fmt;

/// A JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object's members, in the order written.
    Object(Vec<(String, Json)>),
}

/// Why a text is not the JSON it should be: what, and at which byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// What was wrong.
    pub reason: String,
    /// The byte offset where it was found.
    pub at: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.at)
    }
}

impl std::error::Error for JsonError {}

impl Json {
    /// Parses one JSON value (surrounded by nothing but whitespace).
    pub fn parse(text: &str) -> Result<Json, JsonError> {
        let mut reader = Reader { text, at: 0 };
        let value = reader.value(0)?;
        reader.skip_space();
        if reader.at != text.len() {
            return Err(reader.error("text after the value"));
        }
        Ok(value)
    }

    /// Member `name` of an object.
    pub fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as an integer, if it is a number without fraction or exponent.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(text) => text.parse().ok(),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// Deepest nesting accepted: a hostile file cannot overflow the stack.
const DEPTH_MAX: usize = 64;

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: &str) -> JsonError {
        JsonError {
            reason: reason.to_string(),
            at: self.at,
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        let found = self.rest().starts_with(token);
        if found {
            self.at += token.len();
        }
        found
    }

    fn value(&mut self, depth: usize) -> Result<Json, JsonError> {
        if depth > DEPTH_MAX {
            return Err(self.error("nested too deep"));
        }
        self.skip_space();
        match self.rest().chars().next() {
            Some('{') => self.object(depth),
            Some('[') => self.array(depth),
            Some('"') => self.string().map(Json::String),
            Some('-' | '0'..='9') => Ok(self.number()),
            _ if self.eat("null") => Ok(Json::Null),
            _ if self.eat("true") => Ok(Json::Bool(true)),
            _ if self.eat("false") => Ok(Json::Bool(false)),
            _ => Err(self.error("expected a value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.at += 1; // {
        let mut members = Vec::new();
        if self.eat("}") {
            return Ok(Json::Object(members));
        }
        loop {
            self.skip_space();
            if !self.rest().starts_with('"') {
                return Err(self.error("expected a member name"));
            }
            let name = self.string()?;
            if !self.eat(":") {
                return Err(self.error("expected ':'"));
            }
            members.push((name, self.value(depth + 1)?));
            if self.eat("}") {
                return Ok(Json::Object(members));
            }
            if !self.eat(",") {
                return Err(self.error("expected ',' or '}'"));
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, JsonError> {
        self.at += 1; // [
        let mut items = Vec::new();
        if self.eat("]") {
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            if self.eat("]") {
                return Ok(Json::Array(items));
            }
            if !self.eat(",") {
                return Err(self.error("expected ',' or ']'"));
            }
        }
    }

    fn number(&mut self) -> Json {
        let rest = self.rest();
        let length = rest
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .unwrap_or(rest.len());
        self.at += length;
        Json::Number(rest[..length].to_string())
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.at += 1; // "
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((index, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += index + 1;
                    return Ok(out);
                }
                '\\' => {
                    let escaped = match chars.next().map(|(_, c)| c) {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('u') => {
                            let hex: String = (0..4)
                                .filter_map(|_| chars.next())
                                .map(|(_, c)| c)
                                .collect();
                            u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.error("bad \\u escape"))?
                        }
                        Some(c @ ('"' | '\\' | '/')) => c,
                        _ => return Err(self.error("bad escape")),
                    };
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
        self.at = self.text.len();
        Err(self.error("unterminated string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafkas_offset_file() {
        let text = r#" {"partitions": [{"topic": "a\"b", "partition": 0, "offset": -1},
            {"topic":"c","partition":3,"offset":9007199254740993}], "version": 1} "#;
        let json = Json::parse(text).unwrap();
        let partitions = json.get("partitions").and_then(Json::as_array).unwrap();
        assert_eq!(
            partitions[0].get("topic").and_then(Json::as_str),
            Some("a\"b")
        );
        assert_eq!(partitions[0].get("offset").and_then(Json::as_i64), Some(-1));
        // Exact beyond what a float holds.
        let big = partitions[1].get("offset").and_then(Json::as_i64);
        assert_eq!(big, Some(9_007_199_254_740_993));
        assert_eq!(json.get("version").and_then(Json::as_i64), Some(1));
    }

    #[test]
    fn refuses_broken_text_saying_where() {
        for (text, at) in [("{\"a\" 1}", 5), ("[1,", 3), ("{} x", 3), ("\"open", 5)] {
            let error = Json::parse(text).unwrap_err();
            assert_eq!(error.at, at, "{text}: {error}");
        }
        let deep = "[".repeat(DEPTH_MAX + 2);
        assert_eq!(Json::parse(&deep).unwrap_err().reason, "nested too deep");
        assert_eq!(
            Json::parse(r#"["\u00e9\n", null, true]"#).unwrap(),
            Json::Array(vec![
                Json::String("é\n".into()),
                Json::Null,
                Json::Bool(true)
            ])
        );
    }
}
