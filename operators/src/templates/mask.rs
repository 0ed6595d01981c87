//! Tokenising and masking one log line into reusable buffers, without allocating per token.
//!
//! A line is split on ASCII whitespace. Inside each token, every maximal run of alphanumerics
//! that holds a digit is a variable and becomes `<*>`, with refinements that keep the constant
//! part of common identifiers:
//!
//! * a run of letters followed only by digits keeps its letters (`node246` → `node<*>`,
//!   `SOCKS5` → `SOCKS<*>`, `CPU#0` → `CPU#<*>`): the letters usually name the kind of thing;
//! * variable runs joined by one of `. : , _ - /` form one variable when the next run starts with
//!   a digit (`10.251.73.220:50010`, `2005-06-03-15.42.50`, UUIDs, `appattempt_144_0020`);
//! * a `-` directly before a digit run, not preceded by an alphanumeric, is the number's sign.
//!
//! and whole values whatever their characters:
//!
//! * the value of a `key=value` pair, up to a separator or closing quote or bracket
//!   (`name=com.android.phone,` → `name=<*>,`), except `true`/`false`, which are states;
//! * a path with two or more `/` (`/var/lib/x` → `/<*>`) and what follows `://` in a URL;
//! * a size unit after a number joins it (`2.1 KB` → one `<*>` token), so `384 B` and
//!   `2.1 KB` have one shape;
//! * weekday and month names next to a number or to each other (`Fri Jun 17 20:55:07`).
//!
//! This one set of rules serves every log source: no per-source regexes.

/// Placeholder written for a variable.
pub const WILDCARD: &str = "<*>";

/// Hash standing for a whole-token variable; real token hashes are never 0.
pub(crate) const WILD: u64 = 0;

/// What a masked token is, which decides how a mismatch on it is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// The whole token is a variable.
    Wild,
    /// Part of the token is a variable (`blk_<*>`, `uid=<*>`).
    Mixed,
    /// No variable part: a word or punctuation.
    Word,
}

/// One line's tokens, masked; every buffer is reused from line to line.
#[derive(Default, Debug)]
pub(crate) struct Tokens {
    /// Byte span of each token in the message.
    pub raw: Vec<(u32, u32)>,
    /// Masked text of all tokens, back to back.
    pub masked: String,
    /// Span of each token's masked text in `masked`.
    pub masked_spans: Vec<(u32, u32)>,
    /// Hash of each masked token ([`WILD`] for a whole-token variable).
    pub hashes: Vec<u64>,
    /// Kind of each masked token.
    pub kinds: Vec<TokenKind>,
    /// Byte spans (in the message) of the variables found inside tokens.
    pub vars: Vec<(u32, u32)>,
    /// For each token, the range of its variables in `vars`.
    pub var_ranges: Vec<(u32, u32)>,
}

impl Tokens {
    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Masked text of token `i`.
    pub fn masked(&self, i: usize) -> &str {
        let (a, b) = self.masked_spans[i];
        &self.masked[a as usize..b as usize]
    }

    /// Splits and masks `message`, considering at most `max_bytes` bytes and `max_tokens`
    /// tokens: when the line is longer, the last token is a variable spanning the rest, so
    /// that a pathological line costs bounded time and still gets a template.
    pub fn fill(&mut self, message: &str, max_tokens: usize, max_bytes: usize) {
        self.raw.clear();
        self.masked.clear();
        self.masked_spans.clear();
        self.hashes.clear();
        self.kinds.clear();
        self.vars.clear();
        self.var_ranges.clear();
        let bytes = message.as_bytes();
        let limit = bytes.len().min(max_bytes);
        let max_tokens = max_tokens.max(1);
        let mut i = 0;
        // Whether a token may be a weekday or month name (then `mask_dates` has work).
        let mut dates = false;
        let mut tailed = false;
        while i < limit {
            if bytes[i].is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let start = i;
            // Tokens without digits, `=` or `/` are plain words: no masking pass needed.
            let mut special = false;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                let b = bytes[i];
                special |= b.is_ascii_digit() || b == b'=' || b == b'/';
                i += 1;
            }
            let end = i;
            dates |= end - start == 3 && bytes[start].is_ascii_uppercase();
            let at_cap = self.raw.len() + 1 == max_tokens;
            let truncated =
                end > limit || (at_cap && bytes[end..].iter().any(|b| !b.is_ascii_whitespace()));
            if truncated {
                self.push_tail(bytes, start, bytes.len());
                tailed = true;
                break;
            }
            if !self.join_unit(message, start, end) {
                self.push_token(message, start, end, special);
            }
            if at_cap {
                break;
            }
        }
        if !tailed && self.raw.len() < max_tokens && limit < bytes.len() {
            if let Some(rest) = bytes[limit..].iter().position(|b| !b.is_ascii_whitespace()) {
                self.push_tail(bytes, limit + rest, bytes.len());
            }
        }
        if dates {
            self.mask_dates();
        }
    }

    /// A size unit right after a number (`2.1 KB`, `(1.16 MB)`) joins the number's token, so
    /// `384 B` and `2.1 KB` are one variable of one shape.
    fn join_unit(&mut self, message: &str, start: usize, end: usize) -> bool {
        if end - start > 5 || self.raw.is_empty() {
            return false;
        }
        let token = &message[start..end];
        let unit = token.trim_end_matches([')', ',', ';', ']', '.']);
        if !is_size_unit(unit) {
            return false;
        }
        let Some(last) = self.raw.len().checked_sub(1) else {
            return false;
        };
        if !self.masked(last).ends_with(WILDCARD) {
            return false;
        }
        let unit_end = start + unit.len();
        self.raw[last].1 = end as u32;
        if let Some(v) = self.vars.last_mut() {
            v.1 = unit_end as u32;
        }
        self.masked.push_str(&message[unit_end..end]);
        self.masked_spans[last].1 = self.masked.len() as u32;
        let (a, b) = self.masked_spans[last];
        let text = &self.masked[a as usize..b as usize];
        let kind = kind_of(text);
        self.kinds[last] = kind;
        self.hashes[last] = if kind == TokenKind::Wild {
            WILD
        } else {
            hash_token(text)
        };
        true
    }

    /// Weekday and month names next to a number or to each other are parts of a timestamp.
    fn mask_dates(&mut self) {
        let n = self.len();
        for i in 0..n {
            if self.kinds[i] != TokenKind::Word || !is_date_name(self.masked(i)) {
                continue;
            }
            let near = |j: usize| {
                j < n && (self.kinds[j] == TokenKind::Wild || is_date_name(self.masked(j)))
            };
            if near(i + 1) || (i > 0 && near(i - 1)) {
                let m = self.masked.len() as u32;
                self.masked.push_str(WILDCARD);
                self.masked_spans[i] = (m, self.masked.len() as u32);
                self.hashes[i] = WILD;
                self.kinds[i] = TokenKind::Wild;
                let v = self.vars.len() as u32;
                self.vars.push(self.raw[i]);
                self.var_ranges[i] = (v, v + 1);
            }
        }
    }

    /// A whole-token variable covering `start..end` (the rest of an over-long line).
    fn push_tail(&mut self, bytes: &[u8], start: usize, mut end: usize) {
        while end > start && bytes[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        let m = self.masked.len() as u32;
        self.masked.push_str(WILDCARD);
        self.masked_spans.push((m, self.masked.len() as u32));
        self.raw.push((start as u32, end as u32));
        self.hashes.push(WILD);
        self.kinds.push(TokenKind::Wild);
        let v = self.vars.len() as u32;
        self.vars.push((start as u32, end as u32));
        self.var_ranges.push((v, v + 1));
    }

    fn push_token(&mut self, message: &str, start: usize, end: usize, special: bool) {
        let t = &message.as_bytes()[start..end];
        let m_start = self.masked.len();
        let v_start = self.vars.len();
        if !special {
            // Most tokens are plain words: nothing to mask.
            let text = &message[start..end];
            self.masked.push_str(text);
            self.hashes.push(hash_token(text));
            self.kinds.push(TokenKind::Word);
            self.raw.push((start as u32, end as u32));
            self.masked_spans
                .push((m_start as u32, self.masked.len() as u32));
            self.var_ranges.push((v_start as u32, v_start as u32));
            return;
        }
        let mut i = 0;
        // Bytes of `t` not yet copied to `masked` begin at `copied`.
        let mut copied = 0;
        while i < t.len() {
            if !is_alnum(t[i]) {
                // A key=value's value, or a path, is one variable whatever its characters.
                let var = match t[i] {
                    b'=' if i > 0 && (is_alnum(t[i - 1]) || t[i - 1] == b'_') => {
                        let s = i + 1 + usize::from(matches!(t.get(i + 1), Some(b'"' | b'\'')));
                        let e = value_end(t, s);
                        // Booleans are states, like an enumeration: part of the event.
                        (!matches!(&t[s..e], b"true" | b"false")).then_some((s, e))
                    }
                    b'/' if i == 0 || !is_alnum(t[i - 1]) => {
                        let s = if t[i..].starts_with(b"//") {
                            i + 2
                        } else {
                            i + 1
                        };
                        let e = value_end(t, s);
                        let slashes = t[i..e].iter().filter(|&&b| b == b'/').count();
                        (slashes >= 2 || t[i..].starts_with(b"//")).then_some((s, e))
                    }
                    _ => None,
                };
                match var {
                    Some((s, e)) if e > s => {
                        self.masked.push_str(&message[start + copied..start + s]);
                        self.masked.push_str(WILDCARD);
                        self.vars.push(((start + s) as u32, (start + e) as u32));
                        copied = e;
                        i = e;
                    }
                    _ => i += 1,
                }
                continue;
            }
            let run_end = run_end(t, i);
            let run = &t[i..run_end];
            if !run.iter().any(u8::is_ascii_digit) {
                i = run_end;
                continue;
            }
            let letters = run.iter().take_while(|b| !b.is_ascii_digit()).count();
            let letter_prefix = letters > 0 && run[letters..].iter().all(u8::is_ascii_digit);
            let mut var_start = if letter_prefix { i + letters } else { i };
            if !letter_prefix && i > 0 && t[i - 1] == b'-' && (i == 1 || !is_alnum(t[i - 2])) {
                var_start = i - 1;
            }
            let mut var_end = run_end;
            while var_end + 1 < t.len() && is_joiner(t[var_end]) && t[var_end + 1].is_ascii_digit()
            {
                var_end = self::run_end(t, var_end + 1);
            }
            // Copy the constant bytes before the variable, then the placeholder.
            self.masked
                .push_str(&message[start + copied..start + var_start]);
            self.masked.push_str(WILDCARD);
            self.vars
                .push(((start + var_start) as u32, (start + var_end) as u32));
            copied = var_end;
            i = var_end;
        }
        self.masked.push_str(&message[start + copied..end]);
        let m_end = self.masked.len();
        let text = &self.masked[m_start..m_end];
        let kind = if text == WILDCARD {
            TokenKind::Wild
        } else if self.vars.len() > v_start {
            TokenKind::Mixed
        } else {
            TokenKind::Word
        };
        self.hashes.push(match kind {
            TokenKind::Wild => WILD,
            _ => hash_token(text),
        });
        self.kinds.push(kind);
        self.raw.push((start as u32, end as u32));
        self.masked_spans.push((m_start as u32, m_end as u32));
        self.var_ranges
            .push((v_start as u32, self.vars.len() as u32));
    }
}

/// Letters and digits; bytes of multi-byte UTF-8 characters count as letters, so non-ASCII
/// words are constants and a run never ends inside a character.
fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

fn is_size_unit(s: &str) -> bool {
    matches!(
        s,
        "B" | "KB" | "kB" | "MB" | "GB" | "TB" | "PB" | "KiB" | "MiB" | "GiB" | "TiB"
    )
}

fn is_date_name(s: &str) -> bool {
    const NAMES: [&str; 19] = [
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    s.len() == 3 && NAMES.contains(&s)
}

fn is_joiner(b: u8) -> bool {
    matches!(b, b'.' | b':' | b',' | b'_' | b'-' | b'/')
}

/// Where a value that started at `i` ends: at a separator or a closing quote or bracket that
/// it did not open itself (`ws=WorkSource{10113},` → `WorkSource{10113}`).
fn value_end(t: &[u8], mut i: usize) -> usize {
    let mut depth = 0u32;
    while i < t.len() {
        match t[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth > 0 => depth -= 1,
            b',' | b';' if depth > 0 => {}
            b',' | b';' | b'"' | b'\'' | b')' | b']' | b'}' | b'&' => break,
            _ => {}
        }
        i += 1;
    }
    i
}

fn run_end(t: &[u8], mut i: usize) -> usize {
    while i < t.len() && is_alnum(t[i]) {
        i += 1;
    }
    i
}

/// The kind of an already-masked token text (templates store text, not kinds).
pub(crate) fn kind_of(text: &str) -> TokenKind {
    if text == WILDCARD {
        TokenKind::Wild
    } else if text.contains(WILDCARD) {
        TokenKind::Mixed
    } else {
        TokenKind::Word
    }
}

/// Whether two masked tokens differ only inside one identifier on each side, at least one of
/// which holds a variable (with a word on the other side, inside a shared frame): letters,
/// digits and `/` joined by single `. : _ - ` around a `<*>`
/// (`rdd_<*>` / `broadcast_<*>_piece<*>`, `hm.baidu.com:<*>` / `csdnimg.cn:<*>`, `/<*>` /
/// `IMB-MPI<*>_perf`, `chdir(/<*>)` / `chdir(pwd)`). Such a difference is the variable's own
/// spelling, as a whole-token variable against a word is. A difference elsewhere — a word
/// before a bracket (`LOGIN(uid=<*>)`), a key (`num=<*>` / `topActivity=<*>`), a word padded
/// with dots (`icbi.........<*>`), two plain words — is a constant part of the message.
pub(crate) fn differ_in_identifier(a: &str, b: &str) -> bool {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let prefix = x.iter().zip(y).take_while(|(p, q)| p == q).count();
    let room = x.len().min(y.len()) - prefix;
    let suffix = x
        .iter()
        .rev()
        .zip(y.iter().rev())
        .take(room)
        .take_while(|(p, q)| p == q)
        .count();
    // A word against a variable needs a shared frame around them (`chdir(…)`, `org.apache.…`):
    // alone, `SOCKS<*>` / `HTTPS` are two names.
    let framed = || {
        let outside = |s: &[u8]| s.iter().any(|&c| !is_alnum(c));
        outside(&x[..prefix]) || outside(&x[x.len() - suffix..])
    };
    match (
        identifier_around(x, prefix, x.len() - suffix),
        identifier_around(y, prefix, y.len() - suffix),
    ) {
        (Some(true), Some(true)) => true,
        (Some(p), Some(q)) => p != q && framed(),
        _ => false,
    }
}

/// Whether bytes `a..b` of masked token `t` (an empty range: the point `a`) lie inside one
/// identifier (see [`differ_in_identifier`]), and if so whether it contains a `<*>`.
fn identifier_around(t: &[u8], a: usize, b: usize) -> Option<bool> {
    // Identifier spans, scanning once: a `<*>` and a path's `/` are part of one, another
    // joiner only between two identifier characters.
    let ident = |i: usize| is_alnum(t[i]) || t[i] == b'/' || t[i..].starts_with(b"<*>");
    let mut i = 0;
    while i < t.len() {
        if !ident(i) {
            i += 1;
            continue;
        }
        let start = i;
        let mut variable = false;
        loop {
            if t[i..].starts_with(b"<*>") {
                variable = true;
                i += 3;
            } else if i < t.len() && (is_alnum(t[i]) || t[i] == b'/')
                || i + 1 < t.len() && is_joiner(t[i]) && t[i] != b',' && ident(i + 1)
            {
                i += 1;
            } else {
                break;
            }
        }
        if start <= a && b <= i {
            return Some(variable);
        }
    }
    None
}

/// FxHash over the bytes (multiply-rotate per word), never 0. Token identity is its 64-bit
/// hash: no interner to grow without bound on high-cardinality tokens, and a collision between
/// two tokens of one line's template is vanishingly unlikely (about 2⁻⁶⁴ per pair).
pub(crate) fn hash_token(s: &str) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let bytes = s.as_bytes();
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    h ^= h >> 29;
    if h == WILD {
        1
    } else {
        h
    }
}

/// Combines token hashes into a sequence hash (order-sensitive).
pub(crate) fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(line: &str) -> Vec<String> {
        let mut t = Tokens::default();
        t.fill(line, 64, 1 << 16);
        (0..t.len()).map(|i| t.masked(i).to_owned()).collect()
    }

    fn vars(line: &str) -> Vec<&str> {
        let mut t = Tokens::default();
        t.fill(line, 64, 1 << 16);
        t.vars
            .iter()
            .map(|&(a, b)| &line[a as usize..b as usize])
            .collect()
    }

    #[test]
    fn masks_numbers_ips_hex_and_ids() {
        assert_eq!(
            masked("Connection to 10.0.0.1:5432 timed out after 3000 ms"),
            [
                "Connection",
                "to",
                "<*>",
                "timed",
                "out",
                "after",
                "<*>",
                "ms"
            ]
        );
        assert_eq!(masked("blk_-6952295868487656571"), ["blk_<*>"]);
        assert_eq!(masked("blk_38865049064139660"), ["blk_<*>"]);
        assert_eq!(
            masked("node-246 alt0 SOCKS5 CPU#1"),
            ["node-<*>", "alt<*>", "SOCKS<*>", "CPU#<*>"]
        );
        assert_eq!(
            masked("0x1f 9f4ef63 a64f992 -12 auto=-1"),
            ["<*>", "<*>", "<*>", "<*>", "auto=<*>"]
        );
        assert_eq!(masked("2005-06-03-15.42.50.675872"), ["<*>"]);
        assert_eq!(masked("6005-08b4-0001-00c6"), ["<*>"]);
        assert_eq!(
            masked("appattempt_1445144423722_0020_000001"),
            ["appattempt_<*>"]
        );
        assert_eq!(
            masked("uid=0 user=root logname= (1.16"),
            ["uid=<*>", "user=<*>", "logname=", "(<*>"]
        );
        assert_eq!(
            masked("/proc/kmsg v2.0 hdfs://nn:9000/a PS/2"),
            ["/<*>", "v<*>", "hdfs://<*>", "PS/<*>"]
        );
        assert_eq!(
            masked("tag=\"View Lock\", size 2.1 KB, (384 B)"),
            ["tag=\"<*>", "Lock\",", "size", "<*>,", "(<*>)"]
        );
        assert_eq!(
            masked("at Fri Jun 17 20:55:07 2005 in May"),
            ["at", "<*>", "<*>", "<*>", "<*>", "<*>", "in", "May"]
        );
    }

    #[test]
    fn extracts_variables_with_signs_and_joins() {
        assert_eq!(
            vars("keyId: -127633188) to /10.250.19.102:50010"),
            ["-127633188", "10.250.19.102:50010"]
        );
        assert_eq!(vars("node-246 v2.0"), ["246", "2.0"]);
    }

    #[test]
    fn kinds_and_non_ascii() {
        let mut t = Tokens::default();
        t.fill("Ошибка 42 x=1 日本語", 64, 1 << 16);
        assert_eq!(
            t.kinds,
            [
                TokenKind::Word,
                TokenKind::Wild,
                TokenKind::Mixed,
                TokenKind::Word
            ]
        );
        assert_eq!(t.masked(0), "Ошибка");
        assert_eq!(t.hashes[1], WILD);
        assert_eq!(kind_of("a<*>"), TokenKind::Mixed);
    }

    #[test]
    fn values_keep_the_brackets_they_open() {
        assert_eq!(
            masked("ws=WorkSource{10113}, ws=null, f=g(a,b); (k=[1,2])"),
            ["ws=<*>,", "ws=<*>,", "f=<*>;", "(k=<*>)"]
        );
        assert_eq!(
            vars("ws=WorkSource{10113}, k={a"),
            ["WorkSource{10113}", "{a"]
        );
    }

    #[test]
    fn differences_inside_a_variable_identifier() {
        // The variable's own spelling: same identifier, other letters around the number.
        assert!(differ_in_identifier("rdd_<*>", "broadcast_<*>_piece<*>"));
        assert!(differ_in_identifier("hm.baidu.com:<*>", "csdnimg.cn:<*>"));
        assert!(differ_in_identifier("host-<*>", "db.local:<*>"));
        assert!(differ_in_identifier("/<*>", "IMB-MPI<*>_perf"));
        assert!(differ_in_identifier("\\<*>\\<*>", "\\<*>-WWID:<*>\\<*>"));
        // Constant parts of the message: a word before a bracket, another key, a padded word.
        assert!(!differ_in_identifier("(uid=<*>)", "LOGIN(uid=<*>)"));
        assert!(!differ_in_identifier(
            "num=<*>,flags=<*>",
            "topActivity=<*>"
        ));
        assert!(!differ_in_identifier(
            "icbi.........<*>",
            "dcbf.........<*>"
        ));
        assert!(!differ_in_identifier("x<*>", "x<*>)"));
        // Non-ASCII and placeholder-like text never panic.
        assert!(differ_in_identifier("é<*>", "è<*>"));
        assert!(!differ_in_identifier("<ok><*>", "<*"));
        // A word in the place of a variable is a value of it; two words are constants.
        assert!(differ_in_identifier("chdir(/<*>)", "chdir(pwd)"));
        assert!(differ_in_identifier(
            "mapreduce.v<*>.app.JobEvent",
            "mapreduce.jobhistory.Event"
        ));
        assert!(!differ_in_identifier("chdir(tmp)", "chdir(pwd)"));
        assert!(!differ_in_identifier("(<*>)", "(pwd"));
        assert!(!differ_in_identifier("SOCKS<*>", "HTTPS"));
        assert!(!differ_in_identifier("storage<*>", "root_domain"));
    }

    #[test]
    fn caps_tokens_and_bytes_with_a_tail_variable() {
        let mut t = Tokens::default();
        t.fill("a b c d e f", 3, 1 << 16);
        assert_eq!(t.len(), 3);
        assert_eq!(t.kinds[2], TokenKind::Wild);
        assert_eq!(t.raw[2], (4, 11));
        t.fill("a b c", 3, 1 << 16);
        assert_eq!(t.kinds, [TokenKind::Word; 3]);
        let long = "x".repeat(100);
        t.fill(&long, 8, 10);
        assert_eq!(t.len(), 1);
        assert_eq!(t.raw[0], (0, 100));
        t.fill("   ", 8, 10);
        assert_eq!(t.len(), 0);
    }
}
