//! Response JSON written by hand, byte for byte what serde_json writes for the same values.
//!
//! A page of 50 members is ~20 KB of JSON, most of it strings. serde_json escapes every
//! string one byte at a time, and that loop alone was a fifth of a list request's
//! instructions (bench/NOTES.md). Here a string is checked eight bytes at a time and, when
//! nothing in it needs escaping (nearly always), copied whole; timestamps and ids, which
//! never need escaping, are written without the check.

use crate::error::ApiError;

/// A value that writes itself as JSON.
pub trait WriteJson {
    /// Appends the JSON text of `self` to `out`; an error (a stored value that cannot be
    /// read) becomes the response instead.
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), ApiError>;

    /// About how many bytes `write_json` appends, to size the buffer once.
    fn json_size_hint(&self) -> usize {
        64
    }
}

/// Writes a JSON object's members: `{"a":1,"b":"x"}`.
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    /// Opens an object in `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    /// Writes `"name":` and hands back the buffer for the value. `name` must need no escaping
    /// (field names are ASCII identifiers).
    fn key(&mut self, name: &str) -> &mut Vec<u8> {
        debug_assert!(!needs_escape(name.as_bytes()));
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub fn str(&mut self, name: &str, value: &str) -> &mut Self {
        string(self.key(name), value);
        self
    }

    pub fn opt_str(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => string(self.key(name), value),
            None => self.key(name).extend_from_slice(b"null"),
        }
        self
    }

    pub fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(name).extend_from_slice(text);
        self
    }

    pub fn i64(&mut self, name: &str, value: i64) -> &mut Self {
        let mut buf = itoa::Buffer::new();
        self.key(name)
            .extend_from_slice(buf.format(value).as_bytes());
        self
    }

    /// A value that is known to need no escaping (digits, hex, punctuation), quoted.
    pub fn plain_str(&mut self, name: &str, value: &[u8]) -> &mut Self {
        debug_assert!(!needs_escape(value) && std::str::from_utf8(value).is_ok());
        let out = self.key(name);
        out.push(b'"');
        out.extend_from_slice(value);
        out.push(b'"');
        self
    }

    /// Closes the object.
    pub fn end(&mut self) {
        self.out.push(b'}');
    }
}

/// Appends `value` as a JSON string, escaped exactly as serde_json does: `"` and `\`, and
/// control characters (short forms for \b \t \n \f \r, `\u00XX` for the rest, lowercase
/// hex); everything else, including non-ASCII text, as is.
pub fn string(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if needs_escape(bytes) {
        escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// Whether any byte is `"`, `\` or below 0x20, eight bytes at a time.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A zero byte of `x` sets its high bit in `(x - ONES) & !x & HIGHS`; bytes below 0x20
    // are the zero bytes of nothing simple, so they are tested as `x - 0x20` borrowing.
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let has_less = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        if has_less(x, 0x20)
            | has_zero(x ^ (ONES * u64::from(b'"')))
            | has_zero(x ^ (ONES * u64::from(b'\\')))
            != 0
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short == 0 {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.push(b'\\');
            out.push(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::{Object, needs_escape, string};

    fn ours(value: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "Ana Souza".into(),
            "ana@otica.example".into(),
            "quote \" and backslash \\ and slash /".into(),
            "tab\tnewline\ncr\rbell\u{7}nul\u{0}esc\u{1b}del\u{7f}".into(),
            "José Conceição, 眼鏡, 👓".into(),
            "\u{2028}\u{2029}\u{feff}".into(),
        ];
        // Every byte value below 0x80 at every position of a 17-byte string (covering both
        // the eight-byte chunks and the remainder).
        for c in 0u8..0x80 {
            for at in 0..17 {
                let mut s = vec![b'a'; 17];
                s[at] = c;
                samples.push(String::from_utf8(s).unwrap());
            }
        }
        for s in &samples {
            assert_eq!(ours(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn the_fast_check_agrees_with_the_plain_one() {
        for c in 0u8..=255 {
            for at in 0..16 {
                let mut s = vec![b'x'; 16];
                s[at] = c;
                let plain = s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
                assert_eq!(needs_escape(&s), plain, "byte {c:#x} at {at}");
            }
        }
    }

    #[test]
    fn objects_separate_their_members() {
        let mut out = Vec::new();
        Object::new(&mut out)
            .str("a", "x")
            .opt_str("b", None)
            .bool("c", true)
            .i64("d", -42)
            .plain_str("e", b"2026-12-04T00:00:00Z")
            .end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":"x","b":null,"c":true,"d":-42,"e":"2026-12-04T00:00:00Z"}"#
        );
    }
}
