//! PostgreSQL 15's SQL/JSON path language, for `jsonb_path_exists`, `jsonb_path_match`,
//! `jsonb_path_query` (set-returning), `jsonb_path_query_array`, `jsonb_path_query_first`
//! (and their `_tz` twins) and the operators `@?` and `@@`.
//!
//! A path is parsed per call (there is no `jsonpath` type) and evaluated as PostgreSQL
//! does: `lax` mode (the default) unwraps arrays for accessors, filters, methods and
//! comparisons, wraps other items for array accessors, and ignores structural errors
//! (a missing key, an accessor on the wrong kind of item, a subscript out of bounds);
//! `strict` raises them. Predicates are three-valued: an error inside one, or a
//! comparison of items that cannot be compared, is *unknown*. Numbers are exact decimals
//! with PostgreSQL's `numeric` places (`7 / 3` is `2.3333333333333333`).
//!
//! Supported: `$`, `@`, `$name` variables (from the `vars` object), literals, `.key`,
//! `."key"`, `.*`, `[*]`, `[i, j to k, last - 1]`, `.**{m to n}`, `? (predicate)`, the
//! arithmetic operators, `==` `!=` `<>` `<` `<=` `>` `>=`, `&&` `||` `!`, `is unknown`,
//! `exists (…)`, `starts with`, `like_regex "…" flag "isqm"`, and the methods `type()`,
//! `size()`, `double()`, `ceiling()`, `floor()` and `abs()`. `datetime()` and `keyvalue()`
//! (whose ids depend on PostgreSQL's binary layout) are refused with 0A000.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{Expr as Expr0, ScalarUDF, Signature, Volatility};
use datafusion::sql::sqlparser::ast;
use henge_ingest::json::{self as value, Kind, Node};
use num_bigint::BigInt;
use num_integer::Integer;
use num_traits::{Signed, ToPrimitive, Zero};
use regex::Regex;

use super::json::{Call, JsonFunction, JsonType, Returns};
use super::SqlStateError;

/// The set-returning path function, which a select list unnests (see [`super::srf`]).
pub const LISTING: [&str; 2] = ["jsonb_path_query", "jsonb_path_query_tz"];

fn error(code: &'static str, message: impl Into<String>) -> DataFusionError {
    SqlStateError::new(code, message).into()
}

// ---------------------------------------------------------------------------------------
// The language.

/// A parsed path: its mode and its expression.
#[derive(Debug)]
pub struct Path {
    strict: bool,
    body: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl Arith {
    fn symbol(self) -> &'static str {
        match self {
            Arith::Add => "+",
            Arith::Sub => "-",
            Arith::Mul => "*",
            Arith::Div => "/",
            Arith::Mod => "%",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Type,
    Size,
    Double,
    Ceiling,
    Floor,
    Abs,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Type => "type",
            Method::Size => "size",
            Method::Double => "double",
            Method::Ceiling => "ceiling",
            Method::Floor => "floor",
            Method::Abs => "abs",
        }
    }
}

/// The level bound `last` of `.**{… to last}`.
const LAST_LEVEL: u32 = u32::MAX;

#[derive(Debug)]
enum Accessor {
    Key(String),
    AnyKey,
    AnyIndex,
    /// Subscripts: single indexes and `from to to` ranges.
    Indexes(Vec<(Expr, Option<Expr>)>),
    AnyLevel(u32, u32),
    Method(Method),
    Filter(Box<Expr>),
}

#[derive(Debug)]
enum Expr {
    Root,
    Current,
    Last,
    Variable(String),
    Literal(Node),
    /// A primary followed by accessors.
    Chain(Box<Expr>, Vec<Accessor>),
    /// Unary minus (`true`) or plus.
    Unary(bool, Box<Expr>),
    Arith(Arith, Box<Expr>, Box<Expr>),
    // Predicates.
    Compare(Compare, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    IsUnknown(Box<Expr>),
    Exists(Box<Expr>),
    StartsWith(Box<Expr>, Box<Expr>),
    LikeRegex(Box<Expr>, Regex),
}

impl Expr {
    fn is_predicate(&self) -> bool {
        matches!(
            self,
            Expr::Compare(..)
                | Expr::And(..)
                | Expr::Or(..)
                | Expr::Not(..)
                | Expr::IsUnknown(..)
                | Expr::Exists(..)
                | Expr::StartsWith(..)
                | Expr::LikeRegex(..)
        )
    }
}

// ---------------------------------------------------------------------------------------
// Reading a path.

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Dollar,
    At,
    Variable(String),
    Str(String),
    Number(String),
    Word(String),
    Punct(&'static str),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Dollar => "$".into(),
            Token::At => "@".into(),
            Token::Variable(v) => format!("${v}"),
            Token::Str(s) => format!("\"{s}\""),
            Token::Number(n) | Token::Word(n) => n.clone(),
            Token::Punct(p) => (*p).into(),
        }
    }

    /// Whether this is the keyword `word` (case-insensitive, as PostgreSQL reads them).
    fn is(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(word))
    }
}

fn syntax_error(near: Option<&Token>) -> DataFusionError {
    match near {
        Some(t) => error(
            "42601",
            format!("syntax error at or near \"{}\" of jsonpath input", t.text()),
        ),
        None => error("42601", "syntax error at end of jsonpath input"),
    }
}

/// Characters that end an unquoted word.
fn special(c: char) -> bool {
    c.is_whitespace() || "?%$.[]{}()|&!=<>@#,*:-+/\\\"".contains(c)
}

fn tokens(text: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if chars.get(i) == Some(&'.') {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if matches!(chars.get(i), Some('e' | 'E')) {
                let mut j = i + 1;
                if matches!(chars.get(j), Some('+' | '-')) {
                    j += 1;
                }
                if chars.get(j).is_some_and(char::is_ascii_digit) {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let number: String = chars[start..i].iter().collect();
            let leading_zero = number.len() > 1
                && number.starts_with('0')
                && number.as_bytes()[1].is_ascii_digit();
            // A number runs into a word (`1a`) or has leading zeros: not a number.
            if leading_zero || chars.get(i).is_some_and(|c| !special(*c)) {
                return Err(syntax_error(None));
            }
            // `1.` is 1 and `.5` is 0.5.
            let number = match number.split_once(['e', 'E']) {
                Some((mantissa, exponent)) => format!("{}e{exponent}", whole_number(mantissa)),
                None => whole_number(&number),
            };
            out.push(Token::Number(number));
            continue;
        }
        match c {
            '"' => {
                let (s, end) = string(&chars, i + 1)?;
                out.push(Token::Str(s));
                i = end;
            }
            '$' => {
                if next == Some('"') {
                    let (s, end) = string(&chars, i + 2)?;
                    out.push(Token::Variable(s));
                    i = end;
                } else {
                    let mut j = i + 1;
                    while j < chars.len() && !special(chars[j]) {
                        j += 1;
                    }
                    match j > i + 1 {
                        true => out.push(Token::Variable(chars[i + 1..j].iter().collect())),
                        false => out.push(Token::Dollar),
                    }
                    i = j;
                }
            }
            '@' => {
                out.push(Token::At);
                i += 1;
            }
            _ if !special(c) => {
                let start = i;
                while i < chars.len() && !special(chars[i]) {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
            _ => {
                let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
                let punct = match two.as_str() {
                    "==" => Some("=="),
                    "!=" | "<>" => Some("!="),
                    "<=" => Some("<="),
                    ">=" => Some(">="),
                    "&&" => Some("&&"),
                    "||" => Some("||"),
                    "**" => Some("**"),
                    _ => None,
                };
                if let Some(p) = punct {
                    out.push(Token::Punct(p));
                    i += 2;
                    continue;
                }
                let one = match c {
                    '<' => "<",
                    '>' => ">",
                    '!' => "!",
                    '+' => "+",
                    '-' => "-",
                    '*' => "*",
                    '/' => "/",
                    '%' => "%",
                    '(' => "(",
                    ')' => ")",
                    '[' => "[",
                    ']' => "]",
                    '{' => "{",
                    '}' => "}",
                    '.' => ".",
                    ',' => ",",
                    '?' => "?",
                    other => {
                        return Err(error(
                            "42601",
                            format!("syntax error at or near \"{other}\" of jsonpath input"),
                        ))
                    }
                };
                out.push(Token::Punct(one));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// A number's digits with a digit on both sides of its point.
fn whole_number(mantissa: &str) -> String {
    let mantissa = mantissa.strip_suffix('.').unwrap_or(mantissa);
    match mantissa.starts_with('.') {
        true => format!("0{mantissa}"),
        false => mantissa.to_owned(),
    }
}

/// A double-quoted string from `start` (after the quote): its text and the index after
/// the closing quote.
fn string(chars: &[char], start: usize) -> Result<(String, usize)> {
    let unclosed = || error("42601", "unexpected end of quoted string of jsonpath input");
    let mut out = String::new();
    let mut i = start;
    loop {
        let c = *chars.get(i).ok_or_else(unclosed)?;
        i += 1;
        match c {
            '"' => return Ok((out, i)),
            '\\' => {
                let e = *chars.get(i).ok_or_else(unclosed)?;
                i += 1;
                match e {
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'v' => out.push('\u{b}'),
                    'x' => {
                        let hex: String = chars[i..chars.len().min(i + 2)].iter().collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 2)
                            .ok_or_else(|| {
                                error("42601", "invalid hexadecimal character sequence")
                            })?;
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        i += 2;
                    }
                    'u' => {
                        let (code, end) = unicode_escape(chars, i)?;
                        i = end;
                        // A surrogate pair: a high one followed by `\u` and a low one.
                        let code = if (0xD800..0xDC00).contains(&code)
                            && chars.get(i) == Some(&'\\')
                            && chars.get(i + 1) == Some(&'u')
                        {
                            let (low, end) = unicode_escape(chars, i + 2)?;
                            i = end;
                            0x10000 + ((code - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF)
                        } else {
                            code
                        };
                        match char::from_u32(code) {
                            Some('\0') | None => {
                                return Err(error("22P05", "unsupported Unicode escape sequence"))
                            }
                            Some(ch) => out.push(ch),
                        }
                    }
                    other => out.push(other),
                }
            }
            other => out.push(other),
        }
    }
}

/// `XXXX` or `{X…}` after `\u`: the code and the index after it.
fn unicode_escape(chars: &[char], i: usize) -> Result<(u32, usize)> {
    let bad = || error("42601", "invalid Unicode escape sequence of jsonpath input");
    if chars.get(i) == Some(&'{') {
        let close = chars[i..].iter().position(|c| *c == '}').ok_or_else(bad)? + i;
        let hex: String = chars[i + 1..close].iter().collect();
        if hex.is_empty() || hex.len() > 6 {
            return Err(bad());
        }
        let code = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
        return Ok((code, close + 1));
    }
    let hex: String = chars[i..chars.len().min(i + 4)].iter().collect();
    if hex.len() != 4 {
        return Err(bad());
    }
    let code = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
    Ok((code, i + 4))
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// How many filters enclose the expression being read (`@` needs one).
    filters: usize,
    /// How many array subscripts enclose it (`last` needs one).
    subscripts: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_at(&self, n: usize) -> Option<&Token> {
        self.tokens.get(self.at + n)
    }

    fn bump(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Token::Punct(q)) if *q == p)
    }

    fn eat(&mut self, p: &str) -> bool {
        let found = self.punct(p);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, p: &str) -> Result<()> {
        match self.eat(p) {
            true => Ok(()),
            false => Err(self.unexpected()),
        }
    }

    fn word(&mut self, w: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.is(w));
        if found {
            self.at += 1;
        }
        found
    }

    fn unexpected(&self) -> DataFusionError {
        syntax_error(self.peek())
    }

    /// `a || b`.
    fn or(&mut self) -> Result<Expr> {
        self.connected("||", Parser::and, Expr::Or)
    }

    /// `a && b`.
    fn and(&mut self) -> Result<Expr> {
        self.connected("&&", Parser::not, Expr::And)
    }

    /// Predicates read by `operand`, joined by `connective` into `join`.
    fn connected(
        &mut self,
        connective: &str,
        operand: fn(&mut Parser) -> Result<Expr>,
        join: fn(Box<Expr>, Box<Expr>) -> Expr,
    ) -> Result<Expr> {
        let mut left = operand(self)?;
        while self.punct(connective) {
            if !left.is_predicate() {
                return Err(self.unexpected());
            }
            self.at += 1;
            let right = operand(self)?;
            if !right.is_predicate() {
                return Err(self.unexpected());
            }
            left = join(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `!(predicate)` or `!exists(…)`.
    fn not(&mut self) -> Result<Expr> {
        if !self.eat("!") {
            return self.comparison();
        }
        if self.peek().is_some_and(|t| t.is("exists")) {
            return Ok(Expr::Not(Box::new(self.exists()?)));
        }
        self.expect("(")?;
        let inner = self.or()?;
        if !inner.is_predicate() {
            return Err(self.unexpected());
        }
        self.expect(")")?;
        Ok(Expr::Not(Box::new(inner)))
    }

    fn exists(&mut self) -> Result<Expr> {
        self.word("exists");
        self.expect("(")?;
        let inner = self.expr()?;
        self.expect(")")?;
        Ok(Expr::Exists(Box::new(inner)))
    }

    fn comparison(&mut self) -> Result<Expr> {
        if self.peek().is_some_and(|t| t.is("exists"))
            && self.peek_at(1) == Some(&Token::Punct("("))
        {
            return self.exists();
        }
        let left = self.additive()?;
        let op = match self.peek() {
            Some(Token::Punct("==")) => Some(Compare::Eq),
            Some(Token::Punct("!=")) => Some(Compare::Ne),
            Some(Token::Punct("<")) => Some(Compare::Lt),
            Some(Token::Punct("<=")) => Some(Compare::Le),
            Some(Token::Punct(">")) => Some(Compare::Gt),
            Some(Token::Punct(">=")) => Some(Compare::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.at += 1;
            let right = self.additive()?;
            if left.is_predicate() || right.is_predicate() {
                return Err(self.unexpected());
            }
            return Ok(Expr::Compare(op, Box::new(left), Box::new(right)));
        }
        if self.peek().is_some_and(|t| t.is("starts"))
            && self.peek_at(1).is_some_and(|t| t.is("with"))
        {
            if left.is_predicate() {
                return Err(self.unexpected());
            }
            self.at += 2;
            let right = match self.bump() {
                Some(Token::Str(s)) => Expr::Literal(Node::new(Kind::String(s))),
                Some(Token::Variable(v)) => Expr::Variable(v),
                other => return Err(syntax_error(other.as_ref())),
            };
            return Ok(Expr::StartsWith(Box::new(left), Box::new(right)));
        }
        if self.peek().is_some_and(|t| t.is("like_regex")) {
            if left.is_predicate() {
                return Err(self.unexpected());
            }
            self.at += 1;
            let pattern = match self.bump() {
                Some(Token::Str(s)) => s,
                other => return Err(syntax_error(other.as_ref())),
            };
            let flags = match self.peek().is_some_and(|t| t.is("flag")) {
                true => {
                    self.at += 1;
                    match self.bump() {
                        Some(Token::Str(s)) => s,
                        other => return Err(syntax_error(other.as_ref())),
                    }
                }
                false => String::new(),
            };
            return Ok(Expr::LikeRegex(
                Box::new(left),
                like_regex(&pattern, &flags)?,
            ));
        }
        Ok(left)
    }

    /// An expression that is not a predicate at its top.
    fn expr(&mut self) -> Result<Expr> {
        let e = self.additive()?;
        match e.is_predicate() {
            true => Err(self.unexpected()),
            false => Ok(e),
        }
    }

    fn additive(&mut self) -> Result<Expr> {
        self.arithmetic(
            Parser::multiplicative,
            &[("+", Arith::Add), ("-", Arith::Sub)],
        )
    }

    fn multiplicative(&mut self) -> Result<Expr> {
        let ops = [("*", Arith::Mul), ("/", Arith::Div), ("%", Arith::Mod)];
        self.arithmetic(Parser::unary, &ops)
    }

    /// Operands read by `operand` joined by the operators `ops`, from the left.
    fn arithmetic(
        &mut self,
        operand: fn(&mut Parser) -> Result<Expr>,
        ops: &[(&str, Arith)],
    ) -> Result<Expr> {
        let mut left = operand(self)?;
        while let Some(op) = ops.iter().find(|(p, _)| self.punct(p)).map(|(_, op)| *op) {
            self.at += 1;
            let right = operand(self)?;
            left = self.arith(op, left, right)?;
        }
        Ok(left)
    }

    fn arith(&self, op: Arith, left: Expr, right: Expr) -> Result<Expr> {
        if left.is_predicate() || right.is_predicate() {
            return Err(self.unexpected());
        }
        Ok(Expr::Arith(op, Box::new(left), Box::new(right)))
    }

    fn unary(&mut self) -> Result<Expr> {
        for (sign, negative) in [("-", true), ("+", false)] {
            if self.eat(sign) {
                let operand = self.unary()?;
                if operand.is_predicate() {
                    return Err(self.unexpected());
                }
                return Ok(Expr::Unary(negative, Box::new(operand)));
            }
        }
        self.accessed()
    }

    /// A primary and its accessors.
    fn accessed(&mut self) -> Result<Expr> {
        let (primary, parenthesized) = self.primary()?;
        let mut accessors = Vec::new();
        while let Some(accessor) = self.accessor()? {
            accessors.push(accessor);
        }
        if accessors.is_empty() {
            // A parenthesized predicate stands as one only without accessors; `is
            // unknown` may follow it.
            if parenthesized && primary.is_predicate() && self.word_pair("is", "unknown") {
                return Ok(Expr::IsUnknown(Box::new(primary)));
            }
            return Ok(primary);
        }
        Ok(Expr::Chain(Box::new(primary), accessors))
    }

    fn word_pair(&mut self, first: &str, second: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.is(first))
            && self.peek_at(1).is_some_and(|t| t.is(second));
        if found {
            self.at += 2;
        }
        found
    }

    fn primary(&mut self) -> Result<(Expr, bool)> {
        let token = self.bump();
        let primary = match &token {
            Some(Token::Dollar) => Expr::Root,
            Some(Token::At) if self.filters > 0 => Expr::Current,
            Some(Token::At) => return Err(error("42601", "@ is not allowed in root expressions")),
            Some(Token::Variable(v)) => Expr::Variable(v.clone()),
            Some(Token::Str(s)) => Expr::Literal(Node::new(Kind::String(s.clone()))),
            Some(Token::Number(n)) => Expr::Literal(Node::new(Kind::Number(canonical(n)?))),
            Some(Token::Word(w)) if w == "true" => Expr::Literal(Node::new(Kind::Bool(true))),
            Some(Token::Word(w)) if w == "false" => Expr::Literal(Node::new(Kind::Bool(false))),
            Some(Token::Word(w)) if w == "null" => Expr::Literal(Node::new(Kind::Null)),
            Some(t) if t.is("last") => match self.subscripts > 0 {
                true => Expr::Last,
                false => return Err(error("42601", "LAST is allowed only in array subscripts")),
            },
            Some(Token::Punct("(")) => {
                let inner = self.or()?;
                self.expect(")")?;
                return Ok((inner, true));
            }
            other => return Err(syntax_error(other.as_ref())),
        };
        Ok((primary, false))
    }

    fn accessor(&mut self) -> Result<Option<Accessor>> {
        if self.eat("[") {
            if self.eat("*") {
                self.expect("]")?;
                return Ok(Some(Accessor::AnyIndex));
            }
            self.subscripts += 1;
            let mut subscripts = Vec::new();
            loop {
                let from = self.expr()?;
                let to = match self.word("to") {
                    true => Some(self.expr()?),
                    false => None,
                };
                subscripts.push((from, to));
                if !self.eat(",") {
                    break;
                }
            }
            self.subscripts -= 1;
            self.expect("]")?;
            return Ok(Some(Accessor::Indexes(subscripts)));
        }
        if self.eat("?") {
            self.expect("(")?;
            self.filters += 1;
            let predicate = self.or()?;
            self.filters -= 1;
            if !predicate.is_predicate() {
                return Err(self.unexpected());
            }
            self.expect(")")?;
            return Ok(Some(Accessor::Filter(Box::new(predicate))));
        }
        if !self.eat(".") {
            return Ok(None);
        }
        if self.eat("**") {
            let (mut from, mut to) = (0, LAST_LEVEL);
            if self.eat("{") {
                from = self.level()?;
                to = match self.word("to") {
                    true => self.level()?,
                    false => from,
                };
                self.expect("}")?;
            }
            return Ok(Some(Accessor::AnyLevel(from, to)));
        }
        if self.eat("*") {
            return Ok(Some(Accessor::AnyKey));
        }
        match self.bump() {
            Some(Token::Str(key)) => Ok(Some(Accessor::Key(key))),
            Some(Token::Word(word)) => {
                if !self.punct("(") {
                    return Ok(Some(Accessor::Key(word)));
                }
                let method = match word.to_ascii_lowercase().as_str() {
                    "type" => Method::Type,
                    "size" => Method::Size,
                    "double" => Method::Double,
                    "ceiling" => Method::Ceiling,
                    "floor" => Method::Floor,
                    "abs" => Method::Abs,
                    "datetime" | "keyvalue" => {
                        return Err(error(
                            "0A000",
                            format!("jsonpath item method .{word}() is not supported"),
                        ))
                    }
                    _ => return Err(self.unexpected()),
                };
                self.at += 1;
                self.expect(")")?;
                Ok(Some(Accessor::Method(method)))
            }
            other => Err(syntax_error(other.as_ref())),
        }
    }

    /// A level of `.**{…}`: a whole number or `last`.
    fn level(&mut self) -> Result<u32> {
        match self.bump() {
            Some(t) if t.is("last") => Ok(LAST_LEVEL),
            Some(Token::Number(n)) => n.parse::<u32>().map_err(|_| {
                error(
                    "42601",
                    format!("syntax error at or near \"{n}\" of jsonpath input"),
                )
            }),
            other => Err(syntax_error(other.as_ref())),
        }
    }
}

/// A number literal as `numeric` reads it.
fn canonical(text: &str) -> Result<String> {
    value::canonical_number(text).map_err(|e| error("22003", e.message))
}

/// `like_regex`'s pattern with XQuery's flags: `i` case-insensitive, `s` `.` matches a
/// newline, `m` `^` and `$` match at lines, `q` the pattern is literal text; `x` is not
/// implemented (as in PostgreSQL).
fn like_regex(pattern: &str, flags: &str) -> Result<Regex> {
    let (mut insensitive, mut dot_all, mut lines, mut literal) = (false, false, false, false);
    for f in flags.chars() {
        match f {
            'i' => insensitive = true,
            's' => dot_all = true,
            'm' => lines = true,
            'q' => literal = true,
            'x' => {
                return Err(error(
                    "0A000",
                    "XQuery \"x\" flag (expanded regular expressions) is not implemented",
                ))
            }
            other => {
                return Err(error(
                    "42601",
                    format!(
                        "invalid input syntax for type jsonpath: unrecognized flag character \"{other}\" in LIKE_REGEX predicate"
                    ),
                ))
            }
        }
    }
    let body = match literal {
        true => regex::escape(pattern),
        false => super::regex::escapes(pattern),
    };
    let prefix = format!(
        "(?{}{}{})",
        if insensitive { "i" } else { "" },
        if lines { "m" } else { "" },
        if dot_all { "s" } else { "-s" }
    );
    Regex::new(&format!("{prefix}{body}")).map_err(|e| {
        error(
            "2201B",
            format!(
                "invalid regular expression: {}",
                e.to_string().lines().last().unwrap_or_default().trim()
            ),
        )
    })
}

impl Path {
    pub fn parse(text: &str) -> Result<Path> {
        let mut parser = Parser {
            tokens: tokens(text)?,
            at: 0,
            filters: 0,
            subscripts: 0,
        };
        let strict = match parser.peek() {
            Some(t) if t.is("strict") => {
                parser.at += 1;
                true
            }
            Some(t) if t.is("lax") => {
                parser.at += 1;
                false
            }
            _ => false,
        };
        let body = parser.or()?;
        if parser.peek().is_some() {
            return Err(parser.unexpected());
        }
        Ok(Path { strict, body })
    }
}

// ---------------------------------------------------------------------------------------
// Numbers.

/// An exact decimal: `value / 10^scale`.
#[derive(Debug, Clone)]
struct Num {
    value: BigInt,
    scale: i64,
}

impl Num {
    fn of(text: &str) -> Option<Num> {
        let text = value::canonical_number(text).ok()?;
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let digits = format!("{whole}{fraction}");
        Some(Num {
            value: digits.parse().ok()?,
            scale: fraction.len() as i64,
        })
    }

    fn node(&self) -> Node {
        Node::new(Kind::Number(super::display::numeric_text(
            &self.value,
            self.scale as i32,
        )))
    }

    fn at_scale(&self, scale: i64) -> BigInt {
        &self.value * BigInt::from(10).pow((scale - self.scale) as u32)
    }

    fn cmp(&self, other: &Num) -> Ordering {
        let scale = self.scale.max(other.scale);
        self.at_scale(scale).cmp(&other.at_scale(scale))
    }

    /// Rounded toward negative infinity (`floor`) or positive (`ceiling`) to a whole.
    fn whole(&self, up: bool) -> Num {
        let divisor = BigInt::from(10).pow(self.scale as u32);
        let (q, r) = self.value.div_mod_floor(&divisor);
        let value = match up && !r.is_zero() {
            true => q + 1,
            false => q,
        };
        Num { value, scale: 0 }
    }
}

fn arithmetic(op: Arith, a: &Num, b: &Num) -> Result<Num> {
    let scale = a.scale.max(b.scale);
    let division_by_zero = || error("22012", "division by zero");
    Ok(match op {
        Arith::Add => Num {
            value: a.at_scale(scale) + b.at_scale(scale),
            scale,
        },
        Arith::Sub => Num {
            value: a.at_scale(scale) - b.at_scale(scale),
            scale,
        },
        Arith::Mul => Num {
            value: &a.value * &b.value,
            scale: a.scale + b.scale,
        },
        Arith::Div => {
            if b.value.is_zero() {
                return Err(division_by_zero());
            }
            let places = super::division::pg_scale_big(
                (&a.value, a.scale as i32),
                (&b.value, b.scale as i32),
            );
            Num {
                value: super::display::quotient_at(
                    a.value.clone(),
                    a.scale as i32,
                    &b.value,
                    b.scale as i32,
                    places,
                ),
                scale: i64::from(places),
            }
        }
        Arith::Mod => {
            if b.value.is_zero() {
                return Err(division_by_zero());
            }
            // The remainder of the quotient truncated toward zero, as numeric's `%`.
            let (x, y) = (a.at_scale(scale), b.at_scale(scale));
            Num {
                value: x % y,
                scale,
            }
        }
    })
}

/// `.double()` of a string: the number PostgreSQL's `float8` reads, as `numeric` takes a
/// double (15 significant digits).
fn double_of_text(text: &str) -> Option<Num> {
    let v: f64 = text.trim().parse().ok()?;
    if !v.is_finite() {
        return None;
    }
    let written = format!("{v:.14e}");
    let (mantissa, exponent) = written.split_once('e')?;
    let mantissa = match mantissa.contains('.') {
        true => mantissa.trim_end_matches('0').trim_end_matches('.'),
        false => mantissa,
    };
    Num::of(&format!("{mantissa}e{exponent}"))
}

// ---------------------------------------------------------------------------------------
// Evaluating a path.

/// An evaluation failure: raised unless the caller is silent or inside a predicate
/// (where it is *unknown*), except hard ones (a missing variable).
struct Fail {
    error: DataFusionError,
    hard: bool,
}

impl From<DataFusionError> for Fail {
    fn from(error: DataFusionError) -> Fail {
        Fail { error, hard: false }
    }
}

fn fail(code: &'static str, message: impl Into<String>) -> Fail {
    Fail::from(error(code, message))
}

type Items<'a> = Vec<Cow<'a, Node>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    True,
    False,
    Unknown,
}

/// The context an expression is evaluated in.
#[derive(Clone, Copy)]
struct Env<'n> {
    /// `@`: the item the innermost filter tests.
    current: Option<&'n Node>,
    /// `last`: the last index of the array being subscripted.
    last: Option<i64>,
    /// Inside `.**`: structural errors are ignored in strict mode too.
    ignore_structural: bool,
    /// Whether the items being collected are the path's own and only the first is
    /// wanted (`jsonb_path_exists`): evaluation stops there, as PostgreSQL's does.
    first_only: bool,
}

impl<'n> Env<'n> {
    /// The context of an operand or a predicate: all its items count.
    fn nested(&self) -> Env<'n> {
        Env {
            first_only: false,
            ..*self
        }
    }
}

struct Eval<'a> {
    strict: bool,
    root: &'a Node,
    vars: Option<&'a Node>,
}

fn children<'b>(item: &Cow<'b, Node>, pick: impl Fn(&Node) -> Vec<&Node>) -> Items<'b> {
    match item {
        Cow::Borrowed(node) => pick(node).into_iter().map(Cow::Borrowed).collect(),
        Cow::Owned(node) => pick(node)
            .into_iter()
            .map(|c| Cow::Owned(c.clone()))
            .collect(),
    }
}

fn values(node: &Node) -> Vec<&Node> {
    match &node.kind {
        Kind::Object(members) => value::jsonb_members(members)
            .into_iter()
            .map(|(_, v)| v)
            .collect(),
        Kind::Array(items) => items.iter().collect(),
        _ => Vec::new(),
    }
}

fn is_array(node: &Node) -> bool {
    matches!(node.kind, Kind::Array(_))
}

fn number(node: &Node) -> Option<Num> {
    match &node.kind {
        Kind::Number(n) => Num::of(n),
        _ => None,
    }
}

impl<'a> Eval<'a> {
    fn lax(&self) -> bool {
        !self.strict
    }

    /// A structural error: raised in strict mode, else no items.
    fn structural(&self, env: &Env, code: &'static str, message: String) -> Result<(), Fail> {
        match self.strict && !env.ignore_structural {
            true => Err(fail(code, message)),
            false => Ok(()),
        }
    }

    fn eval<'b>(&self, expr: &Expr, env: &Env<'b>) -> Result<Items<'b>, Fail>
    where
        'a: 'b,
    {
        Ok(match expr {
            Expr::Root => vec![Cow::Borrowed(self.root)],
            Expr::Current => vec![Cow::Borrowed(
                env.current.expect("the parser allows @ only in filters"),
            )],
            Expr::Last => {
                let last = env.last.expect("the parser allows last only in subscripts");
                vec![Cow::Owned(Node::new(Kind::Number(last.to_string())))]
            }
            Expr::Variable(name) => {
                let found = self.vars.and_then(|v| v.member(name)).ok_or_else(|| Fail {
                    error: error(
                        "42704",
                        format!("could not find jsonpath variable \"{name}\""),
                    ),
                    hard: true,
                })?;
                vec![Cow::Borrowed(found)]
            }
            Expr::Literal(node) => vec![Cow::Owned(node.clone())],
            Expr::Chain(primary, accessors) => {
                let mut out = Vec::new();
                for item in self.eval(primary, env)? {
                    self.chain(item, accessors, env, &mut out)?;
                    if env.first_only && !out.is_empty() {
                        break;
                    }
                }
                out
            }
            Expr::Unary(negative, operand) => {
                let mut out = Vec::new();
                for item in self.unwrapped(self.eval(operand, &env.nested())?) {
                    let n = number(&item).ok_or_else(|| {
                        fail(
                            "2203B",
                            format!(
                                "operand of unary jsonpath operator {} is not a numeric value",
                                if *negative { "-" } else { "+" }
                            ),
                        )
                    })?;
                    out.push(Cow::Owned(match negative {
                        true => Num {
                            value: -n.value,
                            scale: n.scale,
                        }
                        .node(),
                        false => n.node(),
                    }));
                }
                out
            }
            Expr::Arith(op, left, right) => {
                let operand = |side: &Expr, which: &str| -> Result<Num, Fail> {
                    let items = self.unwrapped(self.eval(side, &env.nested())?);
                    match items.as_slice() {
                        [only] => number(only),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        fail(
                            "22038",
                            format!(
                                "{which} operand of jsonpath operator {} is not a single numeric value",
                                op.symbol()
                            ),
                        )
                    })
                };
                let (l, r) = (operand(left, "left")?, operand(right, "right")?);
                vec![Cow::Owned(arithmetic(*op, &l, &r)?.node())]
            }
            predicate => {
                let node = match self.truth(predicate, env)? {
                    Truth::True => Node::new(Kind::Bool(true)),
                    Truth::False => Node::new(Kind::Bool(false)),
                    Truth::Unknown => Node::new(Kind::Null),
                };
                vec![Cow::Owned(node)]
            }
        })
    }

    /// In lax mode, arrays replaced by their elements.
    fn unwrapped<'b>(&self, items: Items<'b>) -> Items<'b> {
        if self.strict || !items.iter().any(|i| is_array(i)) {
            return items;
        }
        let mut out = Vec::new();
        for item in items {
            match is_array(&item) {
                true => out.extend(children(&item, values)),
                false => out.push(item),
            }
        }
        out
    }

    /// Applies `accessors` to `item`, one after the other, adding the results to `out`.
    fn chain<'b>(
        &self,
        item: Cow<'b, Node>,
        accessors: &[Accessor],
        env: &Env<'b>,
        out: &mut Items<'b>,
    ) -> Result<(), Fail>
    where
        'a: 'b,
    {
        let Some((accessor, rest)) = accessors.split_first() else {
            out.push(item);
            return Ok(());
        };
        // Lax mode applies these to an array's elements.
        let unwraps = matches!(
            accessor,
            Accessor::Key(_)
                | Accessor::AnyKey
                | Accessor::Filter(_)
                | Accessor::Method(Method::Double | Method::Ceiling | Method::Floor | Method::Abs)
        );
        if unwraps && self.lax() && is_array(&item) {
            for element in children(&item, values) {
                self.step(element, accessor, rest, env, out)?;
                if env.first_only && !out.is_empty() {
                    break;
                }
            }
            return Ok(());
        }
        self.step(item, accessor, rest, env, out)
    }

    /// Applies `accessor` to `item` (as it is), then `rest` to what it yields.
    fn step<'b>(
        &self,
        item: Cow<'b, Node>,
        accessor: &Accessor,
        rest: &[Accessor],
        env: &Env<'b>,
        out: &mut Items<'b>,
    ) -> Result<(), Fail>
    where
        'a: 'b,
    {
        let next = |found: Items<'b>, out: &mut Items<'b>| -> Result<(), Fail> {
            for f in found {
                self.chain(f, rest, env, out)?;
                if env.first_only && !out.is_empty() {
                    break;
                }
            }
            Ok(())
        };
        match accessor {
            Accessor::Key(key) => match &item.kind {
                Kind::Object(_) => match item.member(key).is_some() {
                    true => next(
                        children(&item, |n| n.member(key).into_iter().collect()),
                        out,
                    ),
                    false => self.structural(
                        env,
                        "2203A",
                        format!("JSON object does not contain key \"{key}\""),
                    ),
                },
                _ => self.structural(
                    env,
                    "2203A",
                    "jsonpath member accessor can only be applied to an object".into(),
                ),
            },
            Accessor::AnyKey => match &item.kind {
                Kind::Object(_) => next(children(&item, values), out),
                _ => self.structural(
                    env,
                    "2203C",
                    "jsonpath wildcard member accessor can only be applied to an object".into(),
                ),
            },
            Accessor::AnyIndex => match &item.kind {
                Kind::Array(_) => next(children(&item, values), out),
                _ if self.lax() => next(vec![item], out),
                _ => self.structural(
                    env,
                    "22039",
                    "jsonpath wildcard array accessor can only be applied to an array".into(),
                ),
            },
            Accessor::Indexes(subscripts) => {
                let size = match &item.kind {
                    Kind::Array(items) => items.len() as i64,
                    _ if self.lax() => 1,
                    _ => {
                        return self.structural(
                            env,
                            "22039",
                            "jsonpath array accessor can only be applied to an array".into(),
                        )
                    }
                };
                let inner = Env {
                    last: Some(size - 1),
                    ..*env
                };
                for (from, to) in subscripts {
                    let from = self.index(from, &inner)?;
                    let to = match to {
                        Some(to) => self.index(to, &inner)?,
                        None => from,
                    };
                    if from < 0 || from > to || to >= size {
                        self.structural(
                            env,
                            "22033",
                            "jsonpath array subscript is out of bounds".into(),
                        )?;
                    }
                    let (from, to) = (from.max(0), to.min(size - 1));
                    for i in from..=to {
                        if env.first_only && !out.is_empty() {
                            break;
                        }
                        let found = match &item.kind {
                            Kind::Array(_) => children(&item, |n| {
                                values(n).into_iter().skip(i as usize).take(1).collect()
                            }),
                            _ => vec![item.clone()],
                        };
                        next(found, out)?;
                    }
                }
                Ok(())
            }
            Accessor::AnyLevel(from, to) => {
                let inner = Env {
                    ignore_structural: true,
                    ..*env
                };
                let mut found = Vec::new();
                if *from == 0 {
                    found.push(item.clone());
                }
                levels(&item, 1, *from, *to, &mut found);
                for f in found {
                    self.chain(f, rest, &inner, out)?;
                    if env.first_only && !out.is_empty() {
                        break;
                    }
                }
                Ok(())
            }
            Accessor::Method(method) => {
                let result = self.method(*method, &item)?;
                next(vec![Cow::Owned(result)], out)
            }
            Accessor::Filter(predicate) => {
                let inner = Env {
                    current: Some(&*item),
                    ..*env
                };
                let passes = self.truth(predicate, &inner)? == Truth::True;
                match passes {
                    true => next(vec![item], out),
                    false => Ok(()),
                }
            }
        }
    }

    /// A subscript's value: one number, truncated to an integer.
    fn index<'b>(&self, expr: &Expr, env: &Env<'b>) -> Result<i64, Fail>
    where
        'a: 'b,
    {
        let env = &env.nested();
        let items = self.eval(expr, env)?;
        let n = match items.as_slice() {
            [only] => number(only),
            _ => None,
        }
        .ok_or_else(|| {
            fail(
                "22033",
                "jsonpath array subscript is not a single numeric value",
            )
        })?;
        let whole = &n.value / BigInt::from(10).pow(n.scale as u32);
        whole
            .to_i32()
            .map(i64::from)
            .ok_or_else(|| fail("22033", "jsonpath array subscript is out of integer range"))
    }

    fn method(&self, method: Method, item: &Node) -> Result<Node, Fail> {
        let numeric_only = || {
            fail(
                "22036",
                format!(
                    "jsonpath item method .{}() can only be applied to a numeric value",
                    method.name()
                ),
            )
        };
        Ok(match method {
            Method::Type => Node::new(Kind::String(item.type_name().into())),
            Method::Size => match &item.kind {
                Kind::Array(items) => Node::new(Kind::Number(items.len().to_string())),
                _ if self.lax() => Node::new(Kind::Number("1".into())),
                _ => {
                    return Err(fail(
                        "22039",
                        "jsonpath item method .size() can only be applied to an array",
                    ))
                }
            },
            Method::Abs => {
                let n = number(item).ok_or_else(numeric_only)?;
                Num {
                    value: n.value.abs(),
                    scale: n.scale,
                }
                .node()
            }
            Method::Floor => number(item).ok_or_else(numeric_only)?.whole(false).node(),
            Method::Ceiling => number(item).ok_or_else(numeric_only)?.whole(true).node(),
            Method::Double => match &item.kind {
                Kind::Number(text) => {
                    let finite = text.parse::<f64>().is_ok_and(f64::is_finite);
                    if !finite {
                        return Err(fail(
                            "22036",
                            "numeric argument of jsonpath item method .double() is out of range for type double precision",
                        ));
                    }
                    item.clone()
                }
                Kind::String(text) => double_of_text(text)
                    .ok_or_else(|| {
                        fail(
                            "22036",
                            "string argument of jsonpath item method .double() is not a valid representation of a double precision number",
                        )
                    })?
                    .node(),
                _ => {
                    return Err(fail(
                        "22036",
                        "jsonpath item method .double() can only be applied to a string or numeric value",
                    ))
                }
            },
        })
    }

    /// A predicate's truth. Failures while evaluating its operands make it unknown; hard
    /// ones are raised.
    fn truth<'b>(&self, predicate: &Expr, env: &Env<'b>) -> Result<Truth, Fail>
    where
        'a: 'b,
    {
        let env = &env.nested();
        Ok(match predicate {
            Expr::And(l, r) => match self.truth(l, env)? {
                Truth::False => Truth::False,
                left => match self.truth(r, env)? {
                    Truth::True => left,
                    right => right,
                },
            },
            Expr::Or(l, r) => match self.truth(l, env)? {
                Truth::True => Truth::True,
                left => match self.truth(r, env)? {
                    Truth::False => left,
                    right => right,
                },
            },
            Expr::Not(inner) => match self.truth(inner, env)? {
                Truth::True => Truth::False,
                Truth::False => Truth::True,
                Truth::Unknown => Truth::Unknown,
            },
            Expr::IsUnknown(inner) => match self.truth(inner, env)? {
                Truth::Unknown => Truth::True,
                _ => Truth::False,
            },
            Expr::Exists(inner) => match soft(self.eval(inner, env))? {
                None => Truth::Unknown,
                Some(items) if items.is_empty() => Truth::False,
                Some(_) => Truth::True,
            },
            Expr::Compare(op, l, r) => {
                let Some(left) = soft(self.eval(l, env))? else {
                    return Ok(Truth::Unknown);
                };
                let Some(right) = soft(self.eval(r, env))? else {
                    return Ok(Truth::Unknown);
                };
                let (left, right) = (self.unwrapped(left), self.unwrapped(right));
                self.any(&left, Some(&right), |a, b| {
                    compare(*op, a, b.expect("a right side"))
                })
            }
            Expr::StartsWith(l, r) => {
                let Some(left) = soft(self.eval(l, env))? else {
                    return Ok(Truth::Unknown);
                };
                let Some(right) = soft(self.eval(r, env))? else {
                    return Ok(Truth::Unknown);
                };
                let left = self.unwrapped(left);
                self.any(&left, Some(&right), |a, b| {
                    match (&a.kind, b.map(|b| &b.kind)) {
                        (Kind::String(s), Some(Kind::String(prefix))) => {
                            truth(s.starts_with(prefix.as_str()))
                        }
                        _ => Truth::Unknown,
                    }
                })
            }
            Expr::LikeRegex(l, regex) => {
                let Some(left) = soft(self.eval(l, env))? else {
                    return Ok(Truth::Unknown);
                };
                let left = self.unwrapped(left);
                self.any(&left, None, |a, _| match &a.kind {
                    Kind::String(s) => truth(regex.is_match(s)),
                    _ => Truth::Unknown,
                })
            }
            _ => unreachable!("only predicates have a truth"),
        })
    }

    /// Whether `test` holds for some pair of items: in lax mode true at the first true
    /// pair (unknown if none is and one was unknown); in strict mode unknown if any pair
    /// is.
    fn any(
        &self,
        left: &Items,
        right: Option<&Items>,
        test: impl Fn(&Node, Option<&Node>) -> Truth,
    ) -> Truth {
        let (mut found, mut unknown) = (false, false);
        for a in left {
            let rights: Vec<Option<&Node>> = match right {
                Some(items) => items.iter().map(|b| Some(&**b)).collect(),
                None => vec![None],
            };
            for b in rights {
                match test(a, b) {
                    Truth::Unknown if self.strict => return Truth::Unknown,
                    Truth::Unknown => unknown = true,
                    Truth::True if self.lax() => return Truth::True,
                    Truth::True => found = true,
                    Truth::False => {}
                }
            }
        }
        match (found, unknown) {
            (true, _) => Truth::True,
            (false, true) => Truth::Unknown,
            (false, false) => Truth::False,
        }
    }
}

/// Items, or `None` for a failure that makes a predicate unknown.
fn soft(r: Result<Items<'_>, Fail>) -> Result<Option<Items<'_>>, Fail> {
    match r {
        Ok(items) => Ok(Some(items)),
        Err(f) if f.hard => Err(f),
        Err(_) => Ok(None),
    }
}

fn truth(b: bool) -> Truth {
    match b {
        true => Truth::True,
        false => Truth::False,
    }
}

/// The items of `.**{from to to}` below `node`, at `level` and deeper, in document order.
// The Cow tells borrowed items (whose children are borrowed too) from computed ones.
#[allow(clippy::ptr_arg)]
fn levels<'b>(node: &Cow<'b, Node>, level: u32, from: u32, to: u32, out: &mut Items<'b>) {
    if level > to && to != LAST_LEVEL {
        return;
    }
    for child in children(node, values) {
        let container = matches!(child.kind, Kind::Array(_) | Kind::Object(_));
        let leaves_only = from == LAST_LEVEL && to == LAST_LEVEL;
        if (level >= from && !leaves_only) || (leaves_only && !container) {
            out.push(child.clone());
        }
        if container && (level < to || to == LAST_LEVEL) {
            levels(&child, level + 1, from, to, out);
        }
    }
}

/// Two items compared as the path language compares them: a null equals only a null (and
/// is unequal to everything else), items of different types or containers are unknown.
fn compare(op: Compare, a: &Node, b: &Node) -> Truth {
    let order = match (&a.kind, &b.kind) {
        (Kind::Null, Kind::Null) => Ordering::Equal,
        (Kind::Null, _) | (_, Kind::Null) => return truth(op == Compare::Ne),
        (Kind::Bool(x), Kind::Bool(y)) => x.cmp(y),
        (Kind::Number(_), Kind::Number(_)) => match (number(a), number(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => return Truth::Unknown,
        },
        // By code point, which is the UTF-8 bytes' order.
        (Kind::String(x), Kind::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => return Truth::Unknown,
    };
    truth(match op {
        Compare::Eq => order == Ordering::Equal,
        Compare::Ne => order != Ordering::Equal,
        Compare::Lt => order == Ordering::Less,
        Compare::Le => order != Ordering::Greater,
        Compare::Gt => order == Ordering::Greater,
        Compare::Ge => order != Ordering::Less,
    })
}

/// The items `path` yields for `target` with `vars` (only the first if `first_only`),
/// and the error that stopped it, if one did: the items found before it stand.
fn run(
    target: &Node,
    path: &Path,
    vars: &Node,
    first_only: bool,
) -> Result<(Vec<Node>, Option<Fail>)> {
    if !matches!(vars.kind, Kind::Object(_)) {
        return Err(SqlStateError::new("22023", "\"vars\" argument is not an object").into());
    }
    let eval = Eval {
        strict: path.strict,
        root: target,
        vars: Some(vars),
    };
    let env = Env {
        current: None,
        last: None,
        ignore_structural: false,
        first_only,
    };
    let mut out = Vec::new();
    let outcome = match &path.body {
        Expr::Chain(primary, accessors) => eval.eval(primary, &env).and_then(|items| {
            for item in items {
                eval.chain(item, accessors, &env, &mut out)?;
                if first_only && !out.is_empty() {
                    break;
                }
            }
            Ok(())
        }),
        body => eval.eval(body, &env).map(|items| out = items),
    };
    let items = out.into_iter().map(Cow::into_owned).collect();
    Ok((items, outcome.err()))
}

// ---------------------------------------------------------------------------------------
// The functions.

/// What each function makes of the items.
#[derive(Debug, Clone, Copy)]
enum Gives {
    Exists,
    Match,
    Array,
    First,
    Rows,
}

/// Reads a call's arguments (target, path, vars, silent) and runs the path: `Ok(None)`
/// for a NULL argument, `Some(None)` when `exists` failed silently, else the items found
/// (before a silent failure).
fn call_items(call: &Call, name: &str, first_only: bool) -> Result<Option<Option<Vec<Node>>>> {
    if !(2..=4).contains(&call.args.len()) {
        return Err(error(
            "42883",
            format!("function {name} takes 2 to 4 arguments (target, path, vars, silent)"),
        ));
    }
    if call.args.iter().any(ScalarValue::is_null) {
        return Ok(None);
    }
    let (Some(target), Some(path)) = (call.text(0)?, call.text(1)?) else {
        return Ok(None);
    };
    let target = super::json::parse(target)?;
    let path = Path::parse(path)?;
    let vars = match call.args.get(2) {
        Some(_) => match call.text(2)? {
            Some(text) => super::json::parse(text)?,
            None => return Ok(None),
        },
        None => Node::new(Kind::Object(Vec::new())),
    };
    let silent = match call.args.get(3) {
        None => false,
        Some(ScalarValue::Boolean(Some(b))) => *b,
        Some(_) => {
            return Err(error(
                "42883",
                format!("the silent argument of {name} is boolean"),
            ))
        }
    };
    let (items, failed) = run(&target, &path, &vars, first_only)?;
    match failed {
        // PostgreSQL's `exists` stops at the first item, before a later error.
        Some(_) if first_only && !items.is_empty() => Ok(Some(Some(items))),
        Some(f) if !silent || f.hard => Err(f.error),
        Some(_) if first_only => Ok(Some(None)),
        _ => Ok(Some(Some(items))),
    }
}

fn jsonb(node: &Node) -> Result<String> {
    value::jsonb_text(node).map_err(|e| error("22P02", e.message))
}

fn list_of_jsonb(items: Vec<String>) -> ScalarValue {
    let field = Arc::new(JsonType::Jsonb.field("item"));
    let values: ScalarValue = ScalarValue::List(ScalarValue::new_list_nullable(
        &items
            .into_iter()
            .map(|s| ScalarValue::Utf8(Some(s)))
            .collect::<Vec<_>>(),
        &DataType::Utf8,
    ));
    // The list's item field carries the jsonb type.
    match values {
        ScalarValue::List(list) => {
            let (_, offsets, inner, nulls) = list.as_ref().clone().into_parts();
            ScalarValue::List(Arc::new(datafusion::arrow::array::ListArray::new(
                field, offsets, inner, nulls,
            )))
        }
        other => other,
    }
}

/// The function `name`, giving `gives`.
fn udf(name: &'static str, gives: Gives) -> ScalarUDF {
    let returns = match gives {
        Gives::Exists | Gives::Match => Returns::Plain(DataType::Boolean),
        Gives::Array | Gives::First => Returns::Json(JsonType::Jsonb),
        Gives::Rows => Returns::Plain(DataType::List(Arc::new(JsonType::Jsonb.field("item")))),
    };
    JsonFunction::udf(
        name,
        Signature::variadic_any(Volatility::Immutable),
        returns,
        Arc::new(move |call| {
            let Some(found) = call_items(call, name, matches!(gives, Gives::Exists))? else {
                return Ok(call.null());
            };
            Ok(match (gives, found) {
                (Gives::Rows, None) => list_of_jsonb(Vec::new()),
                (_, None) => call.null(),
                (Gives::Exists, Some(items)) => ScalarValue::Boolean(Some(!items.is_empty())),
                (Gives::Match, Some(items)) => match items.as_slice() {
                    [Node {
                        kind: Kind::Bool(b),
                        ..
                    }] => ScalarValue::Boolean(Some(*b)),
                    [Node {
                        kind: Kind::Null, ..
                    }] => ScalarValue::Boolean(None),
                    _ if silent(call) => ScalarValue::Boolean(None),
                    _ => return Err(error("22038", "single boolean result is expected")),
                },
                (Gives::Array, Some(items)) => {
                    let texts = items.iter().map(jsonb).collect::<Result<Vec<_>>>()?;
                    ScalarValue::Utf8(Some(format!("[{}]", texts.join(", "))))
                }
                (Gives::First, Some(items)) => match items.first() {
                    Some(first) => ScalarValue::Utf8(Some(jsonb(first)?)),
                    None => call.null(),
                },
                (Gives::Rows, Some(items)) => {
                    list_of_jsonb(items.iter().map(jsonb).collect::<Result<Vec<_>>>()?)
                }
            })
        }),
    )
}

const FUNCTIONS: [(&str, &str, Gives); 5] = [
    ("jsonb_path_exists", "jsonb_path_exists_tz", Gives::Exists),
    ("jsonb_path_match", "jsonb_path_match_tz", Gives::Match),
    (
        "jsonb_path_query_array",
        "jsonb_path_query_array_tz",
        Gives::Array,
    ),
    (
        "jsonb_path_query_first",
        "jsonb_path_query_first_tz",
        Gives::First,
    ),
    ("jsonb_path_query", "jsonb_path_query_tz", Gives::Rows),
];

/// Registers the path functions. The `_tz` twins differ from them only in
/// `datetime()`, which Henge refuses.
pub fn register(ctx: &SessionContext) {
    for (name, tz, gives) in FUNCTIONS {
        ctx.register_udf(udf(name, gives));
        ctx.register_udf(udf(tz, gives));
    }
}

/// `jsonb @? path` (`exists`) or `jsonb @@ path` (`matching`): the functions with the
/// errors suppressed, as PostgreSQL's operators do.
pub fn operator(matching: bool, target: Expr0, path: Expr0) -> Expr0 {
    let (name, gives) = match matching {
        true => ("jsonb_path_match", Gives::Match),
        false => ("jsonb_path_exists", Gives::Exists),
    };
    let vars = Expr0::Literal(ScalarValue::Utf8(Some("{}".into())), None);
    let silent = Expr0::Literal(ScalarValue::Boolean(Some(true)), None);
    Arc::new(udf(name, gives)).call(vec![target, path, vars, silent])
}

fn silent(call: &Call) -> bool {
    matches!(call.args.get(3), Some(ScalarValue::Boolean(Some(true))))
}

/// Whether `name` is one of the path functions (which take named `vars` and `silent`).
fn path_function(name: &str) -> bool {
    let base = name.strip_suffix("_tz").unwrap_or(name);
    matches!(
        base,
        "jsonb_path_exists"
            | "jsonb_path_match"
            | "jsonb_path_query"
            | "jsonb_path_query_array"
            | "jsonb_path_query_first"
    )
}

/// A path function's named arguments (`vars => …`, `silent => …`, also `target`, `path`)
/// in their places, the defaults (`'{}'`, `false`) filling the gaps.
pub fn named_arguments(expr: &mut ast::Expr) {
    let ast::Expr::Function(function) = expr else {
        return;
    };
    let name = function.name.to_string().to_lowercase();
    if !path_function(&name) {
        return;
    }
    let ast::FunctionArguments::List(list) = &mut function.args else {
        return;
    };
    let named = |arg: &ast::FunctionArg| match arg {
        ast::FunctionArg::Named { name, .. } => Some(name.value.clone()),
        ast::FunctionArg::ExprNamed {
            name: ast::Expr::Identifier(name),
            ..
        } => Some(name.value.clone()),
        _ => None,
    };
    if !list.args.iter().any(|a| named(a).is_some()) {
        return;
    }
    const PARAMETERS: [&str; 4] = ["target", "path", "vars", "silent"];
    let mut placed: [Option<ast::Expr>; 4] = Default::default();
    for (i, arg) in list.args.iter().enumerate() {
        let at = match arg {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) if i < 4 => (i, e),
            ast::FunctionArg::Named {
                name,
                arg: ast::FunctionArgExpr::Expr(e),
                ..
            }
            | ast::FunctionArg::ExprNamed {
                name: ast::Expr::Identifier(name),
                arg: ast::FunctionArgExpr::Expr(e),
                ..
            } => match PARAMETERS
                .iter()
                .position(|p| name.value.eq_ignore_ascii_case(p))
            {
                Some(at) => (at, e),
                // Unknown names are left for the planner to refuse.
                None => return,
            },
            _ => return,
        };
        // A parameter given twice is left for the planner to refuse too.
        if placed[at.0].replace(at.1.clone()).is_some() {
            return;
        }
    }
    // Without its target or path the call is left as written: the planner refuses it
    // (it must not become a call of NULLs, which answers NULL).
    if placed[0].is_none() || placed[1].is_none() {
        return;
    }
    list.args.clear();
    let last = placed.iter().rposition(Option::is_some).unwrap_or(0);
    for (i, arg) in placed.into_iter().enumerate().take(last + 1) {
        let arg = arg.unwrap_or_else(|| match i {
            2 => ast::Expr::value(ast::Value::SingleQuotedString("{}".into())),
            3 => ast::Expr::value(ast::Value::Boolean(false)),
            _ => ast::Expr::value(ast::Value::Null),
        });
        list.args
            .push(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(target: &str, path: &str) -> std::result::Result<Vec<String>, String> {
        let target = value::parse(target).unwrap();
        let vars = Node::new(Kind::Object(Vec::new()));
        let path = Path::parse(path).map_err(|e| e.to_string())?;
        let (items, failed) = run(&target, &path, &vars, false).map_err(|e| e.to_string())?;
        if let Some(f) = failed {
            return Err(f.error.to_string());
        }
        Ok(items
            .iter()
            .map(|n| value::jsonb_text(n).unwrap())
            .collect())
    }

    #[test]
    fn accessors_in_lax_and_strict_mode() {
        assert_eq!(
            query(r#"{"a":[1,2,3]}"#, "$.a[*]").unwrap(),
            ["1", "2", "3"]
        );
        assert_eq!(
            query(r#"{"a":[1,2,3,4]}"#, "$.a[1 to last]").unwrap(),
            ["2", "3", "4"]
        );
        assert_eq!(query("[1,2,3,4]", "$[last - 1, 0]").unwrap(), ["3", "1"]);
        assert_eq!(query(r#"{"a":1}"#, "$.b").unwrap(), Vec::<String>::new());
        assert!(query(r#"{"a":1}"#, "strict $.b")
            .unwrap_err()
            .contains("does not contain key"));
        assert_eq!(query(r#"[{"a":1},{"a":2}]"#, "$.a").unwrap(), ["1", "2"]);
        assert_eq!(
            query(r#"{"a":{"b":[1,{"c":2}]}}"#, "lax $.**.c").unwrap(),
            ["2", "2"]
        );
        assert_eq!(
            query(r#"{"a":{"b":[1,{"c":2}]}}"#, "strict $.**.c").unwrap(),
            ["2"]
        );
        assert_eq!(
            query(r#"{"a":{"b":{"c":1}}}"#, "$.**{last}").unwrap(),
            ["1"]
        );
        assert_eq!(query(r#"{"b":1,"a":2}"#, "$.*").unwrap(), ["2", "1"]);
    }

    #[test]
    fn filters_and_predicates() {
        assert_eq!(query("[1,2,3]", "$ ? (@ > 1)").unwrap(), ["2", "3"]);
        assert_eq!(
            query("[1,2,3]", "strict $ ? (@ > 1)").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            query(r#"[1,"a",3]"#, "$[*] ? ((@ > 1) is unknown)").unwrap(),
            [r#""a""#]
        );
        assert_eq!(query(r#"{"a":"x"}"#, "$.a > 1").unwrap(), ["null"]);
        assert_eq!(query(r#"[1,"x"]"#, "$[*] > 0").unwrap(), ["true"]);
        assert_eq!(query(r#"[1,"x"]"#, "strict $[*] > 0").unwrap(), ["null"]);
        assert_eq!(query("null", "$ != 1").unwrap(), ["true"]);
        assert_eq!(
            query(
                r#"["abc","xbc","Abd"]"#,
                r#"$[*] ? (@ like_regex "^a" flag "i")"#
            )
            .unwrap(),
            [r#""abc""#, r#""Abd""#]
        );
    }

    #[test]
    fn numbers_are_numerics() {
        assert_eq!(
            query(r#"{"a":7}"#, "$.a / 3").unwrap(),
            ["2.3333333333333333"]
        );
        assert_eq!(query("1", "1 / 3 * 3").unwrap(), ["0.99999999999999999999"]);
        assert_eq!(query("1", "-7 % 3").unwrap(), ["-1"]);
        assert_eq!(query("1", "0.1 * 0.2").unwrap(), ["0.02"]);
        assert_eq!(query("[-1.5, 2.5]", "$.floor()").unwrap(), ["-2", "2"]);
        assert_eq!(
            query(r#""123456789.123456789""#, "$.double()").unwrap(),
            ["123456789.123457"]
        );
        assert!(query("[1,2]", "$ + 1")
            .unwrap_err()
            .contains("not a single numeric value"));
        assert!(query("1", "$ / 0")
            .unwrap_err()
            .contains("division by zero"));
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "$ +",
            "@",
            "last",
            "00012",
            "$ ? (@)",
            "1 + (1 > 2)",
            "true && true",
            "$.string()",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
        assert!(Path::parse("(1 > 2) is unknown").is_ok());
        assert!(Path::parse("$ ? (@ == 1 && (@ > 0))").is_ok());
    }
}
