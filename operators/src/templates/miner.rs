//! The online template miner: one pass, bounded memory, stable ids.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::align::{glob, lcs};
use super::mask::{
    differ_in_identifier, hash_token, kind_of, mix, TokenKind, Tokens, WILD, WILDCARD,
};

/// How [`TemplateMiner`] groups lines. One configuration serves every log source.
#[derive(Clone, Debug)]
pub struct TemplateConfig {
    /// A line joins the most similar template of its length when at least this share of its
    /// tokens equal the template's (a template's `<*>` matches anything). Drain's `st`.
    pub similarity: f64,
    /// Templates that differ from each other only in one word, at the same position
    /// (`session opened for user alice` / `… bob`), stay apart until this many variants exist,
    /// then merge with `<*>` there. Digits mark variables for certain; a word is a variable
    /// only once it has shown enough different values. The first token never generalises
    /// from words (`cupsd startup succeeded` / `sshd startup succeeded` stay apart): messages
    /// start with constants, Drain's observation.
    pub word_variants: usize,
    /// Cap on live templates; beyond it the least recently seen one is evicted.
    pub max_templates: usize,
    /// Tokens considered per line; the rest of a longer line is one trailing `<*>`.
    pub max_tokens: usize,
    /// Bytes considered per line; the rest is folded into a trailing `<*>`.
    pub max_line_bytes: usize,
    /// Entries in the exact-shape cache that skips the similarity scan for repeated shapes.
    pub cache_capacity: usize,
    /// Templates of other lengths compared with a line that matched nothing, to find a
    /// variable-length parameter (`bytes sent` / `bytes (1.2 KB) sent`); bounds the cost of a
    /// never-seen line.
    pub max_merge_checks: usize,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            similarity: 0.5,
            word_variants: 3,
            max_templates: 1000,
            max_tokens: 128,
            max_line_bytes: 16 * 1024,
            cache_capacity: 4096,
            max_merge_checks: 64,
        }
    }
}

/// A template's identity: assigned in order of first appearance, never reused, unchanged when
/// the template generalises — so the same sequence of lines always yields the same ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TemplateId(pub u32);

impl fmt::Display for TemplateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

/// What [`TemplateMiner::observe`] concluded about one line. Borrows the miner and the line,
/// so nothing is allocated per line.
#[derive(Debug)]
pub struct TemplateMatch<'a> {
    /// The template the line belongs to.
    pub id: TemplateId,
    /// The template was created by this line.
    pub is_new: bool,
    /// The template generalised (a position became `<*>`) because of this line.
    pub updated: bool,
    /// The template text, tokens joined by single spaces, variables as `<*>`.
    pub template: &'a str,
    /// Templates folded into `id` by this line (their lines now belong to `id`).
    pub merged: &'a [TemplateId],
    /// A template evicted to make room for this line's, if any.
    pub evicted: Option<TemplateId>,
    message: &'a str,
    params: &'a [(u32, u32)],
}

impl<'a> TemplateMatch<'a> {
    /// The line's values at the template's `<*>` positions, in order, as slices of the line.
    pub fn params(&self) -> impl Iterator<Item = &'a str> + 'a {
        let message = self.message;
        self.params
            .iter()
            .map(move |&(a, b)| message.get(a as usize..b as usize).unwrap_or(""))
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.params.len()
    }
}

#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0, u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = mix(self.0, u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = mix(self.0, v);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Longest template or line considered for a variable-length merge.
const MAX_ALIGN: usize = 64;

struct Template {
    id: u32,
    tokens: Vec<u64>,
    kinds: Vec<TokenKind>,
    texts: Vec<Box<str>>,
    text: String,
    last_seen: u64,
    /// Its `<*>` span any number of tokens (it merged lines of different lengths).
    flexible: bool,
}

impl Template {
    fn new(id: u32, texts: Vec<Box<str>>, flexible: bool, seq: u64) -> Self {
        let tokens = texts
            .iter()
            .map(|t| {
                if &**t == WILDCARD {
                    WILD
                } else {
                    hash_token(t)
                }
            })
            .collect();
        let kinds = texts.iter().map(|t| kind_of(t)).collect();
        let mut t = Template {
            id,
            tokens,
            kinds,
            texts,
            text: String::new(),
            last_seen: seq,
            flexible,
        };
        t.render();
        t
    }

    fn render(&mut self) {
        self.text.clear();
        for (i, t) in self.texts.iter().enumerate() {
            if i > 0 {
                self.text.push(' ');
            }
            self.text.push_str(t);
        }
    }

    fn generalise(&mut self, i: usize) {
        self.tokens[i] = WILD;
        self.kinds[i] = TokenKind::Wild;
        self.texts[i] = WILDCARD.into();
    }
}

/// How a same-length template compares with a line.
#[derive(Clone, Copy, Default)]
struct Score {
    equal: usize,
    wild: usize,
    word_mismatch: usize,
}

/// Where [`TemplateMiner::place`] put a line.
struct Placed {
    slot: u32,
    is_new: bool,
    updated: bool,
    evicted: Option<TemplateId>,
}

impl Placed {
    fn found(slot: u32, updated: bool) -> Self {
        Placed {
            slot,
            is_new: false,
            updated,
            evicted: None,
        }
    }
}

/// Fingerprints log lines to templates online.
///
/// Drain-style at heart — lines of the same token count join the most similar template above
/// a threshold, positions where they differ become `<*>` — with changes that matter for
/// accuracy across log sources without per-source tuning:
///
/// * generic sub-token masking first (see the `mask` module docs), so numbers, ids and
///   addresses never count as differences;
/// * a position holding plain words becomes `<*>` only once [`TemplateConfig::word_variants`]
///   templates differ there and nowhere else, and never at the first token (Drain's insight
///   that messages start with constants); until then each variant is its own template, and
///   when the position turns out variable (a number shows up there) its variants fold in;
/// * a partly masked token differs as a variable only inside the identifier holding the
///   variable (`rdd_<*>` / `broadcast_<*>_piece<*>`, `chdir(/<*>)` / `chdir(pwd)`), as a
///   constant elsewhere (`(uid=<*>)` / `LOGIN(uid=<*>)`);
/// * a line that matches nothing is aligned with templates of other lengths: when every
///   difference lies next to a variable, the template's `<*>` may span several tokens
///   (`bytes sent` / `bytes (1.16 KB) sent`);
/// * merged templates keep the oldest id and report the ids they absorbed.
///
/// Pure and deterministic: no I/O, clocks or randomness; ids follow first appearance.
/// Memory is bounded by [`TemplateConfig::max_templates`] (least recently seen evicted).
///
/// ```
/// use kaizen_operators::{TemplateConfig, TemplateMiner};
/// let mut miner = TemplateMiner::new(TemplateConfig::default());
/// let a = miner.observe("Connection to 10.0.0.1 timed out after 300 ms").id;
/// let m = miner.observe("Connection to db-7.internal timed out after 1200 ms");
/// assert_eq!(m.id, a);
/// assert_eq!(m.template, "Connection to <*> timed out after <*> ms");
/// assert_eq!(m.params().collect::<Vec<_>>(), ["db-7.internal", "1200"]);
/// ```
pub struct TemplateMiner {
    config: TemplateConfig,
    slots: Vec<Option<Template>>,
    free: Vec<u32>,
    /// Live id → slot.
    by_id: FxMap<u32, u32>,
    /// Fixed-length templates by token count (slots, in a deterministic order).
    buckets: FxMap<u32, Vec<u32>>,
    /// Flexible templates (slots, in the order they became flexible).
    flex: Vec<u32>,
    /// Hash of a line's masked shape → (id, slot) of the template it matched exactly.
    cache: FxMap<u64, (u32, u32)>,
    /// Word variants: skeleton (template with the varying position as `<*>`) → ids.
    variants: FxMap<u64, Vec<u32>>,
    /// Merged id → the id it went into (bounded; oldest forgotten first).
    aliases: BTreeMap<u32, u32>,
    next_id: u32,
    seq: u64,
    tokens: Tokens,
    params: Vec<(u32, u32)>,
    merged: Vec<TemplateId>,
    at: Vec<u32>,
    table: Vec<u16>,
    anchors: Vec<(u16, u16)>,
}

impl TemplateMiner {
    /// An empty miner.
    pub fn new(config: TemplateConfig) -> Self {
        TemplateMiner {
            config,
            slots: Vec::new(),
            free: Vec::new(),
            by_id: FxMap::default(),
            buckets: FxMap::default(),
            flex: Vec::new(),
            cache: FxMap::default(),
            variants: FxMap::default(),
            aliases: BTreeMap::new(),
            next_id: 0,
            seq: 0,
            tokens: Tokens::default(),
            params: Vec::new(),
            merged: Vec::new(),
            at: Vec::new(),
            table: Vec::new(),
            anchors: Vec::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &TemplateConfig {
        &self.config
    }

    /// Number of live templates.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// No template yet.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The current text of a live template.
    pub fn template(&self, id: TemplateId) -> Option<&str> {
        self.get(id.0).map(|t| t.text.as_str())
    }

    /// The live template a (possibly merged) id now belongs to, or `None` if it was evicted
    /// or its merge is too old to remember.
    pub fn resolve(&self, id: TemplateId) -> Option<TemplateId> {
        let mut id = id.0;
        for _ in 0..64 {
            if self.by_id.contains_key(&id) {
                return Some(TemplateId(id));
            }
            id = *self.aliases.get(&id)?;
        }
        None
    }

    /// Every live template, by id.
    pub fn templates(&self) -> Vec<(TemplateId, &str)> {
        let mut all: Vec<_> = self
            .slots
            .iter()
            .flatten()
            .map(|t| (TemplateId(t.id), t.text.as_str()))
            .collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    fn get(&self, id: u32) -> Option<&Template> {
        let slot = *self.by_id.get(&id)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    fn slot(&self, slot: u32) -> Option<&Template> {
        self.slots.get(slot as usize)?.as_ref()
    }

    fn slot_mut(&mut self, slot: u32) -> Option<&mut Template> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Fingerprints one line: finds or creates its template, generalising or merging
    /// templates when the line shows a position to be variable.
    pub fn observe<'a>(&'a mut self, message: &'a str) -> TemplateMatch<'a> {
        self.seq += 1;
        self.merged.clear();
        self.params.clear();
        let c = &self.config;
        self.tokens.fill(message, c.max_tokens, c.max_line_bytes);
        let n = self.tokens.len();
        let shape = self
            .tokens
            .hashes
            .iter()
            .fold(mix(0, n as u64), |h, &t| mix(h, t));
        let placed = self.place(n as u32, shape);
        let seq = self.seq;
        let Some(t) = self
            .slots
            .get_mut(placed.slot as usize)
            .and_then(Option::as_mut)
        else {
            // Unreachable: `place` always returns the slot of a live template.
            return TemplateMatch {
                id: TemplateId(u32::MAX),
                is_new: placed.is_new,
                updated: placed.updated,
                template: "",
                merged: &[],
                evicted: placed.evicted,
                message,
                params: &[],
            };
        };
        t.last_seen = seq;
        let line = &self.tokens;
        if t.flexible {
            if glob(&t.tokens, &line.hashes, &mut self.at) {
                for p in 0..t.tokens.len() {
                    let (a, b) = (self.at[p] as usize, self.at[p + 1] as usize);
                    if t.tokens[p] == WILD && a < b {
                        self.params.push((line.raw[a].0, line.raw[b - 1].1));
                    } else if t.kinds[p] == TokenKind::Mixed && a < line.len() {
                        let (v, w) = line.var_ranges[a];
                        self.params
                            .extend_from_slice(&line.vars[v as usize..w as usize]);
                    }
                }
            }
        } else {
            for i in 0..n.min(t.tokens.len()) {
                if t.tokens[i] == WILD {
                    self.params.push(line.raw[i]);
                } else if t.kinds[i] == TokenKind::Mixed {
                    let (v, w) = line.var_ranges[i];
                    self.params
                        .extend_from_slice(&line.vars[v as usize..w as usize]);
                }
            }
        }
        TemplateMatch {
            id: TemplateId(t.id),
            is_new: placed.is_new,
            updated: placed.updated,
            template: &t.text,
            merged: &self.merged,
            evicted: placed.evicted,
            message,
            params: &self.params,
        }
    }

    /// Finds the line's template, creating, generalising or merging as needed.
    fn place(&mut self, n: u32, shape: u64) -> Placed {
        if let Some(&(id, slot)) = self.cache.get(&shape) {
            let t = self.slots.get(slot as usize).and_then(Option::as_ref);
            if let Some(t) = t.filter(|t| t.id == id) {
                let hit = if t.flexible {
                    glob(&t.tokens, &self.tokens.hashes, &mut self.at)
                } else {
                    covers(t, &self.tokens)
                };
                if hit {
                    return Placed::found(slot, false);
                }
            }
        }
        let (best, score) = self.best_match(n);
        let len = n as usize;
        if let Some(best) = best.filter(|_| score.equal + score.wild == len) {
            self.remember(shape, best);
            return Placed::found(best, false);
        }
        let flex_hit = self.flex.iter().copied().find(|&slot| {
            self.slots
                .get(slot as usize)
                .and_then(Option::as_ref)
                .is_some_and(|t| glob(&t.tokens, &self.tokens.hashes, &mut self.at))
        });
        if let Some(slot) = flex_hit {
            self.remember(shape, slot);
            return Placed::found(slot, false);
        }
        if let Some(best) = best {
            return self.refine(best, score);
        }
        if let Some(slot) = self.merge_lengths() {
            return Placed::found(slot, true);
        }
        let texts = (0..len).map(|i| self.tokens.masked(i).into()).collect();
        let (slot, evicted) = self.insert(texts, false);
        Placed {
            slot,
            is_new: true,
            updated: false,
            evicted,
        }
    }

    /// The most similar fixed template of the line's length above the threshold, if any.
    fn best_match(&self, n: u32) -> (Option<u32>, Score) {
        let line = &self.tokens;
        let len = n as usize;
        let mut best: Option<(u32, Score)> = None;
        let Some(bucket) = self.buckets.get(&n) else {
            return (None, Score::default());
        };
        let need = (self.config.similarity * len as f64).ceil() as usize;
        for &slot in bucket {
            let Some(t) = self.slot(slot) else { continue };
            let mut s = Score::default();
            let mut misses = 0;
            for i in 0..len {
                let th = t.tokens[i];
                if th == WILD {
                    s.wild += 1;
                } else if th == line.hashes[i] {
                    s.equal += 1;
                } else {
                    misses += 1;
                    if len - misses < need {
                        break;
                    }
                }
            }
            let matched = s.equal + s.wild;
            if matched < need || (s.equal == 0 && matched < len) {
                continue;
            }
            if best
                .as_ref()
                .is_some_and(|(_, b)| matched < b.equal + b.wild)
            {
                continue;
            }
            // Only a contender pays for telling words from variables at its differences.
            s.word_mismatch = (0..len)
                .filter(|&i| {
                    t.tokens[i] != WILD
                        && t.tokens[i] != line.hashes[i]
                        && word_difference(t, line, i)
                })
                .count();
            let rank = |s: &Score| (s.equal + s.wild, usize::MAX - s.word_mismatch, s.equal);
            if best.as_ref().is_none_or(|(_, b)| rank(&s) > rank(b)) {
                best = Some((slot, s));
            }
        }
        match best {
            Some((slot, s)) => (Some(slot), s),
            None => (None, Score::default()),
        }
    }

    /// The line is similar to template `slot` but differs in places: positions where the line
    /// has a variable generalise at once; differing words make a variant (see
    /// [`TemplateConfig::word_variants`]).
    fn refine(&mut self, slot: u32, score: Score) -> Placed {
        let line = &self.tokens;
        let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return Placed::found(slot, false);
        };
        let mut words: Vec<usize> = Vec::new();
        let mut generalised = false;
        let mut only: Option<usize> = None;
        for i in 0..t.tokens.len() {
            if t.tokens[i] == WILD || t.tokens[i] == line.hashes[i] {
                continue;
            }
            if !word_difference(t, line, i) {
                t.generalise(i);
                only = if generalised { None } else { Some(i) };
                generalised = true;
            } else {
                words.push(i);
            }
        }
        if generalised {
            t.render();
            self.cache.clear();
        }
        // A position that turned out to be variable absorbs the word variants kept apart
        // there (`root_domain`, `cluster_root_backup`, then `root3_domain`).
        if let Some(p) = only.filter(|_| words.is_empty()) {
            let skeleton = merge::skeleton(&t.tokens, p);
            if self.variants.contains_key(&skeleton) {
                return Placed::found(self.fold_variants(skeleton, p, slot), true);
            }
        }
        if score.word_mismatch == 0 || words.is_empty() {
            return Placed::found(slot, generalised);
        }
        if let [p] = words[..] {
            if p > 0 {
                return self.word_variant(slot, p, generalised);
            }
        }
        let mut texts = t.texts.clone();
        for &i in &words {
            texts[i] = line.masked(i).into();
        }
        let (slot, evicted) = self.insert(texts, false);
        Placed {
            slot,
            is_new: true,
            updated: false,
            evicted,
        }
    }
}

/// Whether the difference at position `i` between template `t` and the line is between
/// constants (it needs [`TemplateConfig::word_variants`] variants to become `<*>`) rather
/// than the mark of a variable (it generalises at once). A whole-token variable on either
/// side marks a variable. A partly masked token marks a variable only when the two differ
/// inside an identifier that holds the variable (`rdd_<*>` / `broadcast_<*>_piece<*>`,
/// `host-<*>` / `db.local:<*>`, `chdir(/<*>)` / `chdir(pwd)`); a difference outside it is a
/// constant part of the message (`(uid=<*>)` / `LOGIN(uid=<*>)`, `num=<*>,flags=<*>` /
/// `topActivity=<*>`).
fn word_difference(t: &Template, line: &Tokens, i: usize) -> bool {
    use TokenKind::*;
    match (t.kinds[i], line.kinds[i]) {
        (Wild, _) | (_, Wild) => false,
        (Word, Word) => true,
        _ => !differ_in_identifier(&t.texts[i], line.masked(i)),
    }
}

/// Whether fixed template `t` matches the line exactly (every constant equal).
fn covers(t: &Template, line: &Tokens) -> bool {
    t.tokens.len() == line.len()
        && t.tokens
            .iter()
            .zip(&line.hashes)
            .all(|(&a, &b)| a == WILD || a == b)
}

mod merge;
mod store;

#[cfg(test)]
mod tests;
