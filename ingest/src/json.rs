//! PostgreSQL's `json` and `jsonb` values.
//!
//! Both are held as text. A `json` value is its input, kept exactly once it has been checked
//! to be JSON (PostgreSQL keeps spacing, key order and duplicate keys). A `jsonb` value is
//! held in PostgreSQL's normal form, the text `jsonb_out` prints: object keys ordered
//! shorter first and then bytewise, a repeated key keeping its last value, `", "` and
//! `": "` between items, numbers as `numeric` prints them (`1e2` is `100`, `1.50` stays),
//! strings with only the escapes PostgreSQL writes. Values differing only in a number's
//! trailing zeros (`1.0`, `1`) have different texts but are equal ([`equal`]).

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::error::{ValueError, ValueErrorKind};

/// How deep arrays and objects may nest before the input is refused with 54001, as
/// PostgreSQL refuses at its stack depth limit. Reading and writing values recurse once per
/// level; this keeps them far from the end of a worker thread's stack.
pub const MAX_DEPTH: usize = 128;

/// A parsed JSON value. `start..end` is its text in the input it was parsed from; values
/// built by functions carry an empty span.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    /// The number's text as written (valid JSON number syntax).
    Number(String),
    String(String),
    Array(Vec<Node>),
    /// Members in input order, repeated keys included.
    Object(Vec<(String, Node)>),
}

impl Node {
    /// A value built by a function rather than parsed.
    pub fn new(kind: Kind) -> Node {
        Node {
            start: 0,
            end: 0,
            kind,
        }
    }

    /// `json_typeof`'s name for the value.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "boolean",
            Kind::Number(_) => "number",
            Kind::String(_) => "string",
            Kind::Array(_) => "array",
            Kind::Object(_) => "object",
        }
    }

    /// The member `key` of an object (the last one, if the key repeats).
    pub fn member(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|m| &m.1),
            _ => None,
        }
    }

    /// Element `index` of an array; a negative index counts from the end.
    pub fn element(&self, index: i64) -> Option<&Node> {
        match &self.kind {
            Kind::Array(items) => {
                let at = if index < 0 {
                    items.len() as i64 + index
                } else {
                    index
                };
                usize::try_from(at).ok().and_then(|i| items.get(i))
            }
            _ => None,
        }
    }

    /// Follows a path of keys and array positions, as `#>` does.
    pub fn at_path<S: AsRef<str>>(&self, path: &[S]) -> Option<&Node> {
        path.iter().try_fold(self, |node, step| {
            let step = step.as_ref();
            match &node.kind {
                Kind::Object(_) => node.member(step),
                Kind::Array(_) => step
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .and_then(|i| node.element(i)),
                _ => None,
            }
        })
    }
}

fn syntax_error() -> ValueError {
    ValueError::of_kind(
        ValueErrorKind::InvalidSyntax,
        "invalid input syntax for type json".into(),
    )
}

/// Parses JSON text.
pub fn parse(text: &str) -> Result<Node, ValueError> {
    let mut parser = Parser {
        input: text.as_bytes(),
        text,
        at: 0,
    };
    parser.skip_space();
    let node = parser.value(0)?;
    parser.skip_space();
    if parser.at != parser.input.len() {
        return Err(syntax_error());
    }
    Ok(node)
}

struct Parser<'a> {
    input: &'a [u8],
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), ValueError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(syntax_error())
        }
    }

    /// After an item of an array or object: `true` at its closing bracket, `false` at a
    /// comma (either consumed).
    fn end_of_items(&mut self, close: u8) -> Result<bool, ValueError> {
        self.skip_space();
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(false)
            }
            Some(b) if b == close => {
                self.at += 1;
                Ok(true)
            }
            _ => Err(syntax_error()),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, ValueError> {
        if depth >= MAX_DEPTH {
            return Err(depth_error());
        }
        let start = self.at;
        let kind = match self.peek().ok_or_else(syntax_error)? {
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                self.skip_space();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                } else {
                    loop {
                        self.skip_space();
                        if self.peek() != Some(b'"') {
                            return Err(syntax_error());
                        }
                        let key = self.string()?;
                        self.skip_space();
                        self.expect(b':')?;
                        self.skip_space();
                        let value = self.value(depth + 1)?;
                        members.push((key, value));
                        if self.end_of_items(b'}')? {
                            break;
                        }
                    }
                }
                Kind::Object(members)
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_space();
                if self.peek() == Some(b']') {
                    self.at += 1;
                } else {
                    loop {
                        self.skip_space();
                        items.push(self.value(depth + 1)?);
                        if self.end_of_items(b']')? {
                            break;
                        }
                    }
                }
                Kind::Array(items)
            }
            b'"' => Kind::String(self.string()?),
            b't' => self.word("true", Kind::Bool(true))?,
            b'f' => self.word("false", Kind::Bool(false))?,
            b'n' => self.word("null", Kind::Null)?,
            b'-' | b'0'..=b'9' => Kind::Number(self.number()?),
            _ => return Err(syntax_error()),
        };
        Ok(Node {
            start,
            end: self.at,
            kind,
        })
    }

    fn word(&mut self, word: &str, kind: Kind) -> Result<Kind, ValueError> {
        if self.input[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            // `truex` is one bad token, not `true` followed by garbage.
            if matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'_') {
                return Err(syntax_error());
            }
            Ok(kind)
        } else {
            Err(syntax_error())
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - from
    }

    fn number(&mut self) -> Result<String, ValueError> {
        self.number_text().map(str::to_owned)
    }

    /// A number's text as written.
    fn number_text(&mut self) -> Result<&'a str, ValueError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(syntax_error()),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(syntax_error());
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(syntax_error());
            }
        }
        if matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'.') {
            return Err(syntax_error());
        }
        Ok(&self.text[start..self.at])
    }

    fn hex4(&mut self) -> Result<u32, ValueError> {
        let digits = self
            .input
            .get(self.at..self.at + 4)
            .ok_or_else(syntax_error)?;
        let text = std::str::from_utf8(digits).map_err(|_| syntax_error())?;
        let value = u32::from_str_radix(text, 16).map_err(|_| syntax_error())?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(syntax_error());
        }
        self.at += 4;
        Ok(value)
    }

    fn string(&mut self) -> Result<String, ValueError> {
        self.string_text().map(Cow::into_owned)
    }

    /// A string's value: borrowed from the input when it has no escapes.
    fn string_text(&mut self) -> Result<Cow<'a, str>, ValueError> {
        self.expect(b'"')?;
        let run = self.at;
        while let Some(b) = self.peek() {
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            self.at += 1;
        }
        if self.peek() == Some(b'"') {
            self.at += 1;
            return Ok(Cow::Borrowed(&self.text[run..self.at - 1]));
        }
        self.at = run;
        let mut out = String::new();
        loop {
            let run = self.at;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            out.push_str(&self.text[run..self.at]);
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escape = self.peek().ok_or_else(syntax_error)?;
                    self.at += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(syntax_error()),
                    }
                }
                // End of input, or a control character PostgreSQL refuses unescaped.
                _ => return Err(syntax_error()),
            }
        }
    }

    fn unicode_escape(&mut self) -> Result<char, ValueError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.input[self.at..].starts_with(b"\\u") {
                    return Err(surrogate_error());
                }
                self.at += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(surrogate_error());
                }
                0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(surrogate_error()),
            other => other,
        };
        char::from_u32(code).ok_or_else(syntax_error)
    }
}

/// Paths to pick out of JSON documents in one pass over each, without building the
/// document: what a Kafka source reads from every record. Each path's value is what
/// [`Node::at_path`] finds, as text (strings unescaped, numbers and booleans as written,
/// `null` as `None`). Paths that cross an array, or end at an array or object, are left
/// to the full parse: [`Picker::pick`] says so and the caller falls back.
#[derive(Debug)]
pub struct Picker {
    /// A trie of path steps; node 0 is the document.
    steps: Vec<PickStep>,
}

#[derive(Debug, Default)]
struct PickStep {
    /// Member name and the node it leads to.
    members: Vec<(String, usize)>,
    /// The outputs whose path ends here.
    outputs: Vec<usize>,
    /// The outputs whose path runs through here (cleared when a repeated key is read
    /// again: the last one counts, as `at_path` takes it).
    below: Vec<usize>,
    /// Bit `n` set: some member's name is `n` bytes long (`n` < 64; bit 63 for longer
    /// names), so most other keys are passed over without comparing them.
    lengths: u64,
}

impl PickStep {
    /// The node member `key` leads to. Documents of a topic mostly list their keys in one
    /// order, the order members were first declared in, so the search starts after the
    /// member found last (`guess`).
    fn member(&self, key: &str, guess: &mut usize) -> Option<usize> {
        if self.lengths & (1 << key.len().min(63)) == 0 {
            return None;
        }
        let n = self.members.len();
        for i in 0..n {
            let at = (*guess + i) % n;
            if self.members[at].0 == key {
                *guess = at + 1;
                return Some(self.members[at].1);
            }
        }
        None
    }
}

/// A value picked from a document: borrowed from its text when it has no escapes.
pub type Picked<'a> = Option<Cow<'a, str>>;

impl Picker {
    /// A picker of `paths` (as [`Node::at_path`] takes them); output `i` is `paths[i]`,
    /// and a `None` path picks nothing.
    pub fn new(paths: &[Option<Vec<String>>]) -> Picker {
        let mut steps = vec![PickStep::default()];
        for (output, path) in paths.iter().enumerate() {
            let Some(path) = path else { continue };
            let mut at = 0;
            steps[0].below.push(output);
            for step in path {
                let next = match steps[at].members.iter().find(|(k, _)| k == step) {
                    Some(&(_, next)) => next,
                    None => {
                        steps.push(PickStep::default());
                        let next = steps.len() - 1;
                        steps[at].members.push((step.clone(), next));
                        steps[at].lengths |= 1 << step.len().min(63);
                        next
                    }
                };
                at = next;
                steps[at].below.push(output);
            }
            steps[at].outputs.push(output);
        }
        Picker { steps }
    }

    /// Checks that `text` is JSON and sets `out[i]` to path `i`'s value. `Ok(false)`: a
    /// path needs the full parse (`out` is then unspecified).
    pub fn pick<'a>(&self, text: &'a str, out: &mut [Picked<'a>]) -> Result<bool, ValueError> {
        for slot in out.iter_mut() {
            *slot = None;
        }
        let mut parser = Parser {
            input: text.as_bytes(),
            text,
            at: 0,
        };
        parser.skip_space();
        if !self.visit(&mut parser, 0, 0, out)? {
            return Ok(false);
        }
        parser.skip_space();
        if parser.at != parser.input.len() {
            return Err(syntax_error());
        }
        Ok(true)
    }

    fn visit<'a>(
        &self,
        parser: &mut Parser<'a>,
        node: usize,
        depth: usize,
        out: &mut [Picked<'a>],
    ) -> Result<bool, ValueError> {
        if depth >= MAX_DEPTH {
            return Err(depth_error());
        }
        let step = &self.steps[node];
        for &output in &step.below {
            out[output] = None;
        }
        let picked: Picked<'a> = match parser.peek().ok_or_else(syntax_error)? {
            b'{' if step.outputs.is_empty() => {
                let mut guess = 0;
                parser.at += 1;
                parser.skip_space();
                if parser.peek() == Some(b'}') {
                    parser.at += 1;
                    return Ok(true);
                }
                loop {
                    parser.skip_space();
                    if parser.peek() != Some(b'"') {
                        return Err(syntax_error());
                    }
                    let key = parser.string_text()?;
                    parser.skip_space();
                    parser.expect(b':')?;
                    parser.skip_space();
                    match step.member(&key, &mut guess) {
                        Some(next) => {
                            if !self.visit(parser, next, depth + 1, out)? {
                                return Ok(false);
                            }
                        }
                        None => parser.skip(depth + 1)?,
                    }
                    if parser.end_of_items(b'}')? {
                        return Ok(true);
                    }
                }
            }
            b'{' | b'[' => return Ok(false),
            b'"' => Some(parser.string_text()?),
            b't' => parser
                .word("true", Kind::Null)
                .map(|_| Some(Cow::Borrowed("true")))?,
            b'f' => parser
                .word("false", Kind::Null)
                .map(|_| Some(Cow::Borrowed("false")))?,
            b'n' => parser.word("null", Kind::Null).map(|_| None)?,
            b'-' | b'0'..=b'9' => Some(Cow::Borrowed(parser.number_text()?)),
            _ => return Err(syntax_error()),
        };
        // A scalar: the paths ending here have it; those going deeper find nothing.
        for &output in &step.outputs {
            out[output] = picked.clone();
        }
        Ok(true)
    }
}

impl Parser<'_> {
    /// Checks one value and steps over it, building nothing.
    fn skip(&mut self, depth: usize) -> Result<(), ValueError> {
        if depth >= MAX_DEPTH {
            return Err(depth_error());
        }
        match self.peek().ok_or_else(syntax_error)? {
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.at += 1;
                self.skip_space();
                if self.peek() == Some(close) {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.skip_space();
                    if open == b'{' {
                        if self.peek() != Some(b'"') {
                            return Err(syntax_error());
                        }
                        self.string_text()?;
                        self.skip_space();
                        self.expect(b':')?;
                        self.skip_space();
                    }
                    self.skip(depth + 1)?;
                    if self.end_of_items(close)? {
                        return Ok(());
                    }
                }
            }
            b'"' => self.string_text().map(|_| ()),
            b't' => self.word("true", Kind::Null).map(|_| ()),
            b'f' => self.word("false", Kind::Null).map(|_| ()),
            b'n' => self.word("null", Kind::Null).map(|_| ()),
            b'-' | b'0'..=b'9' => self.number_text().map(|_| ()),
            _ => Err(syntax_error()),
        }
    }
}

fn depth_error() -> ValueError {
    ValueError::of_kind(
        ValueErrorKind::NestingTooDeep,
        "stack depth limit exceeded".into(),
    )
}

fn surrogate_error() -> ValueError {
    ValueError::of_kind(
        ValueErrorKind::InvalidSyntax,
        "invalid input syntax for type json: a Unicode high surrogate must be followed by a low surrogate".into(),
    )
}

/// Checks that `text` is JSON, as `json`'s input does (the text is kept as it is).
pub fn json_in(text: &str) -> Result<(), ValueError> {
    parse(text).map(|_| ())
}

/// The normal form of JSON text, as `jsonb`'s input and output make it.
pub fn jsonb_in(text: &str) -> Result<String, ValueError> {
    let node = parse(text)?;
    let mut out = String::with_capacity(text.len());
    write_jsonb(&node, &mut out)?;
    Ok(out)
}

/// Writes a value in `jsonb`'s normal form.
pub fn write_jsonb(node: &Node, out: &mut String) -> Result<(), ValueError> {
    write(node, true, out)
}

/// Writes a value as `json` functions that rebuild their input print it: members in
/// their order, numbers as written, no spaces.
pub fn write_compact(node: &Node, out: &mut String) -> Result<(), ValueError> {
    write(node, false, out)
}

fn write(node: &Node, jsonb: bool, out: &mut String) -> Result<(), ValueError> {
    let (comma, colon) = if jsonb { (", ", ": ") } else { (",", ":") };
    match &node.kind {
        Kind::Null => out.push_str("null"),
        Kind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Kind::Number(text) if jsonb => out.push_str(&canonical_number(text)?),
        Kind::Number(text) => out.push_str(text),
        Kind::String(s) => write_string(s, out)?,
        Kind::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                write(item, jsonb, out)?;
            }
            out.push(']');
        }
        Kind::Object(members) => {
            out.push('{');
            let members: Vec<(&String, &Node)> = match jsonb {
                true => jsonb_members(members),
                false => members.iter().map(|(k, v)| (k, v)).collect(),
            };
            for (i, (key, value)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                write_string(key, out)?;
                out.push_str(colon);
                write(value, jsonb, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A value in `jsonb`'s normal form, as a new string.
pub fn jsonb_text(node: &Node) -> Result<String, ValueError> {
    let mut out = String::new();
    write_jsonb(node, &mut out)?;
    Ok(out)
}

/// `jsonb`'s order of object keys: shorter first, then bytewise.
pub fn key_order(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// An object's members as `jsonb` keeps them: in key order, the last of a repeated key.
pub fn jsonb_members(members: &[(String, Node)]) -> Vec<(&String, &Node)> {
    let mut sorted: Vec<(usize, &(String, Node))> = members.iter().enumerate().collect();
    // Equal keys end up in input order; the last of each run wins.
    sorted.sort_by(|(i, a), (j, b)| key_order(&a.0, &b.0).then(i.cmp(j)));
    let mut out: Vec<(&String, &Node)> = Vec::with_capacity(sorted.len());
    for (_, (key, value)) in sorted {
        match out.last_mut() {
            Some(last) if last.0 == key => *last = (key, value),
            _ => out.push((key, value)),
        }
    }
    out
}

/// Writes `s` as a JSON string with PostgreSQL's escapes. `jsonb` and `text` cannot hold
/// the NUL character (`\u0000`).
pub fn write_string(s: &str, out: &mut String) -> Result<(), ValueError> {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => return Err(nul_error()),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}

/// The error for `\u0000` where text must hold it.
pub fn nul_error() -> ValueError {
    ValueError::of_kind(
        ValueErrorKind::UntranslatableCharacter,
        "unsupported Unicode escape sequence".into(),
    )
}

/// A JSON number as `numeric` prints it: exponents spelled out, the scale of the digits
/// written kept (`1.50` stays, `2.5e1` is `25`, `1e-2` is `0.01`), no negative zero. A
/// number beyond `numeric`'s range (more than 131072 digits before the point or 16383
/// after it) is refused with 22003, as PostgreSQL refuses it.
pub fn canonical_number(text: &str) -> Result<String, ValueError> {
    const MAX_WHOLE_DIGITS: i64 = 131_072;
    const MAX_SCALE: i64 = 16_383;
    let overflow = || ValueError::out_of_range("value overflows numeric format".into());
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (
            &rest[..at],
            rest[at + 1..].parse::<i64>().map_err(|_| overflow())?,
        ),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The position of the decimal point, counted from the left of the digits.
    let point = (whole.len() as i64).saturating_add(exponent);
    let scale = (fraction.len() as i64).saturating_sub(exponent).max(0);
    if point > MAX_WHOLE_DIGITS || scale > MAX_SCALE {
        return Err(overflow());
    }
    if exponent == 0 && !negative {
        return Ok(mantissa.to_owned());
    }
    let mut digits = String::with_capacity((point.max(0) + scale) as usize + mantissa.len());
    // Zeros ahead of the digits when the point lies left of them.
    for _ in point..0 {
        digits.push('0');
    }
    digits.push_str(whole);
    digits.push_str(fraction);
    let point = point.max(0) as usize;
    let wanted = point + scale as usize;
    while digits.len() < wanted {
        digits.push('0');
    }
    digits.truncate(wanted);
    let (int, frac) = digits.split_at(point);
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let zero = int == "0" && frac.bytes().all(|b| b == b'0');
    let mut out = String::new();
    if negative && !zero {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Ok(out)
}

/// Whether `outer` contains `inner`, as `jsonb`'s `@>` decides: an object contains an
/// object whose every member it has (values contained in turn), an array contains an array
/// whose every element some element of its contains, a top-level array contains a scalar
/// it holds, and scalars contain only what equals them.
pub fn contains(outer: &Node, inner: &Node, top: bool) -> bool {
    match (&outer.kind, &inner.kind) {
        (Kind::Object(a), Kind::Object(b)) => {
            let a = jsonb_members(a);
            jsonb_members(b).into_iter().all(|(key, want)| {
                a.iter()
                    .find(|(k, _)| *k == key)
                    .is_some_and(|(_, have)| contains(have, want, false))
            })
        }
        (Kind::Array(a), Kind::Array(b)) => b
            .iter()
            .all(|want| a.iter().any(|have| contains(have, want, false))),
        (Kind::Array(a), _) if top && !matches!(inner.kind, Kind::Object(_)) => {
            a.iter().any(|have| scalar_equal(have, inner))
        }
        (Kind::Object(_) | Kind::Array(_), _) | (_, Kind::Object(_) | Kind::Array(_)) => false,
        _ => scalar_equal(outer, inner),
    }
}

/// Equality of two values as `jsonb` compares them: objects by their members (the last of
/// a repeated key), arrays element by element, numbers by value.
pub fn equal(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Object(x), Kind::Object(y)) => {
            let (x, y) = (jsonb_members(x), jsonb_members(y));
            x.len() == y.len()
                && x.iter()
                    .zip(&y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && equal(vx, vy))
        }
        (Kind::Array(x), Kind::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(vx, vy)| equal(vx, vy))
        }
        _ => scalar_equal(a, b),
    }
}

/// Equality of two scalars as `jsonb` compares them (numbers by value).
pub fn scalar_equal(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Number(x), Kind::Number(y)) => numbers_equal(x, y),
        (x, y) => x == y,
    }
}

fn numbers_equal(a: &str, b: &str) -> bool {
    // The same value written with another scale (`1.0`, `1`) is equal in numeric.
    let strip = |s: String| -> String {
        match s.split_once('.') {
            Some((int, frac)) => {
                let frac = frac.trim_end_matches('0');
                if frac.is_empty() {
                    int.to_owned()
                } else {
                    format!("{int}.{frac}")
                }
            }
            None => s,
        }
    };
    match (canonical_number(a), canonical_number(b)) {
        (Ok(a), Ok(b)) => strip(a) == strip(b),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form() {
        assert_eq!(
            jsonb_in(r#"{"b":2,"a":1,"a":3, "aa": [1,  2, "x"]}"#).unwrap(),
            r#"{"a": 3, "b": 2, "aa": [1, 2, "x"]}"#
        );
        assert_eq!(jsonb_in(r#" "\u0041\/\n" "#).unwrap(), r#""A/\n""#);
        assert_eq!(jsonb_in("[]").unwrap(), "[]");
        assert_eq!(jsonb_in("{}").unwrap(), "{}");
        assert!(jsonb_in(r#""\u0000""#).is_err());
        assert_eq!(jsonb_in(r#""\ud83d\ude00""#).unwrap(), "\"\u{1F600}\"");
    }

    #[test]
    fn numbers() {
        for (input, want) in [
            ("1", "1"),
            ("1.50", "1.50"),
            ("1e2", "100"),
            ("2.50e1", "25.0"),
            ("1E-2", "0.01"),
            ("-0", "0"),
            ("-0.0", "0.0"),
            ("-1.5e+1", "-15"),
            ("0.001e3", "1"),
            ("12e-1", "1.2"),
        ] {
            assert_eq!(canonical_number(input).unwrap(), want, "{input}");
        }
        for huge in [
            "1e1000000",
            "1e-100000",
            "1e99999999999999999999",
            "1e-9223372036854775808",
        ] {
            assert_eq!(
                canonical_number(huge).unwrap_err().kind,
                ValueErrorKind::OutOfRange,
                "{huge}"
            );
        }
        assert!(numbers_equal("1.0", "1"));
        assert!(!numbers_equal("1.01", "1"));
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in [
            "",
            "{",
            r#"{"a":}"#,
            "[1,]",
            "01",
            "1.",
            "+1",
            "tru",
            "truex",
            r#""a"#,
            "'a'",
            "[1] 2",
            "\"\t\"",
            r#"{"a" 1}"#,
            "NaN",
            "\"\\x\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(
            parse(&deep).unwrap_err().kind,
            ValueErrorKind::NestingTooDeep
        );
    }

    #[test]
    fn containment() {
        let c = |a: &str, b: &str| contains(&parse(a).unwrap(), &parse(b).unwrap(), true);
        assert!(c(r#"{"a":1, "b":2}"#, r#"{"b":2}"#));
        assert!(!c(r#"{"a":1}"#, r#"{"b":2}"#));
        assert!(c("[1,2,3]", "[3,1]"));
        assert!(c("[1,2,3]", "3"));
        assert!(c(r#"{"a":[1,2]}"#, r#"{"a":[2]}"#));
        assert!(!c(r#"{"a":[1,2]}"#, r#"{"a":2}"#));
        assert!(c("1.0", "1"));
        let e = |a: &str, b: &str| equal(&parse(a).unwrap(), &parse(b).unwrap());
        assert!(e(r#"{"a":1.0, "b":[2]}"#, r#"{"b":[2.00],"a":1}"#));
        assert!(!e("[1, 2]", "[2, 1]"));
        assert!(!e(r#"{"a":1}"#, r#"{"a":1, "b":2}"#));
        assert!(!c("[[1]]", "1"));
    }

    #[test]
    fn paths() {
        let node = parse(r#"{"a":{"b":["x","y"]}}"#).unwrap();
        assert_eq!(
            node.at_path(&["a", "b", "-1"]).map(|n| &n.kind),
            Some(&Kind::String("y".into()))
        );
        assert!(node.at_path(&["a", "c"]).is_none());
    }

    /// What the picker reads is what parsing the document and following the path reads,
    /// for every path and document here, repeated keys, escapes and bad JSON included.
    #[test]
    fn picker_reads_what_the_parsed_document_says() {
        let paths: Vec<Option<Vec<String>>> = [
            vec!["a"],
            vec!["b", "c"],
            vec!["b", "d"],
            vec!["e"],
            vec!["x", "0"],
        ]
        .into_iter()
        .map(|p| Some(p.into_iter().map(String::from).collect()))
        .chain([None])
        .collect();
        let picker = Picker::new(&paths);
        let scalar_text = |node: &Node| match &node.kind {
            Kind::Null => None,
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Number(n) => Some(n.clone()),
            Kind::String(s) => Some(s.clone()),
            Kind::Array(_) | Kind::Object(_) => Some("compound".to_owned()),
        };
        let mut fell_back = 0;
        for doc in [
            r#"{"a": 1, "b": {"c": "x\ty", "d": true}, "e": null}"#,
            r#"{"a": "first", "a": "last", "b": {"c": 1}, "b": {"d": -2.5e3}}"#,
            r#"{"b": 7, "a": [1, 2], "x": {"0": "zero"}}"#,
            r#"{"b": {"c": {"deep": [1, {"k": "\u00e9"}]}}}"#,
            r#"{"x": [10, 20]}"#,
            r#" "just a string" "#,
            r#"{}"#,
            r#"{"a": tru}"#,
            r#"{"a": 1,}"#,
            r#"{"a": 1} x"#,
            r#"{"z": "\ud800"}"#,
            r#"{"a": 01}"#,
            r#"[1, 2"#,
        ] {
            let parsed = parse(doc);
            let mut out = vec![None; paths.len()];
            match picker.pick(doc, &mut out) {
                Err(e) => assert_eq!(Err(e), parsed.map(|_| ()), "{doc}"),
                Ok(false) => fell_back += 1,
                Ok(true) => {
                    let node = parsed.unwrap_or_else(|e| panic!("{doc}: {e}"));
                    for (path, picked) in paths.iter().zip(&out) {
                        let expected = path
                            .as_deref()
                            .and_then(|p| node.at_path(p))
                            .and_then(scalar_text);
                        assert_eq!(picked.as_deref(), expected.as_deref(), "{doc} {path:?}");
                    }
                }
            }
        }
        // Arrays on a path (`a`, `x`, the document) and an object at `b.c` need the whole
        // parse.
        assert_eq!(fell_back, 4);
        // The document itself (path `$`): a scalar document is picked, others are not.
        let whole = Picker::new(&[Some(Vec::new())]);
        let mut out = vec![None; 1];
        assert!(whole.pick(r#" "s" "#, &mut out).unwrap());
        assert_eq!(out[0].as_deref(), Some("s"));
        assert!(!whole.pick("[1]", &mut out).unwrap());
        let top = Picker::new(&[Some(vec!["k".to_owned()])]);
        assert!(top
            .pick(r#"{"k": "v\"q", "n": [{"m": {}}]}"#, &mut out)
            .unwrap());
        assert_eq!(out[0].as_deref(), Some("v\"q"));
        assert!(matches!(out[0], Some(Cow::Owned(_))));
        assert!(top.pick(r#"{"k": "plain"}"#, &mut out).unwrap());
        assert!(matches!(out[0], Some(Cow::Borrowed("plain"))));
    }
}
