//! Merging templates: word variants that turn out to be a variable, and templates of
//! different lengths whose differences are a variable-length parameter.

use super::*;

impl TemplateMiner {
    /// The line differs from template `slot` in one word at `p`: keep it apart as a variant
    /// until enough variants share the same skeleton, then merge them all into the oldest.
    pub(super) fn word_variant(&mut self, slot: u32, p: usize, generalised: bool) -> Placed {
        let Some(t) = self.slot(slot) else {
            return Placed::found(slot, generalised);
        };
        let skeleton = skeleton(&t.tokens, p);
        let (base_id, mut texts) = (t.id, t.texts.clone());
        let members = self.variants.entry(skeleton).or_default();
        if !members.contains(&base_id) {
            members.push(base_id);
        }
        members.retain(|id| self.by_id.contains_key(id));
        if members.len() + 1 < self.config.word_variants {
            texts[p] = self.tokens.masked(p).into();
            let (slot, evicted) = self.insert(texts, false);
            let id = self.slot(slot).map(|t| t.id);
            if let (Some(id), Some(members)) = (id, self.variants.get_mut(&skeleton)) {
                members.push(id);
            }
            if self.variants.len() > 4 * self.config.max_templates.max(1) {
                self.variants.clear();
            }
            return Placed {
                slot,
                is_new: true,
                updated: false,
                evicted,
            };
        }
        Placed::found(self.fold_variants(skeleton, p, slot), true)
    }

    /// Merges the live templates kept apart as word variants under `skeleton` (they differ
    /// only at `p`) into the oldest, which generalises at `p`; returns its slot (`slot` when
    /// none is left).
    pub(super) fn fold_variants(&mut self, skeleton: u64, p: usize, slot: u32) -> u32 {
        let mut ids = self.variants.remove(&skeleton).unwrap_or_default();
        if let Some(id) = self.slot(slot).map(|t| t.id) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut survivor: Option<u32> = None;
        for id in ids {
            let Some(&s) = self.by_id.get(&id) else {
                continue;
            };
            let same = self
                .slot(s)
                .is_some_and(|m| !m.flexible && self::skeleton(&m.tokens, p) == skeleton);
            if !same {
                continue;
            }
            if survivor.is_none() {
                survivor = Some(s);
            } else if let Some(gone) = self.remove(s) {
                if let Some(&to) = survivor.and_then(|s| self.slot(s)).map(|t| &t.id) {
                    self.aliases.insert(gone.id, to);
                }
                self.merged.push(TemplateId(gone.id));
            }
        }
        let survivor = survivor.unwrap_or(slot);
        if let Some(t) = self.slot_mut(survivor) {
            t.generalise(p);
            t.render();
        }
        self.trim_aliases();
        self.cache.clear();
        survivor
    }

    /// Aligns a line that matched nothing with templates of other lengths; when all the
    /// differences sit next to variables, the best template becomes flexible (its `<*>` span
    /// any number of tokens) and takes the line. Returns the template's slot.
    pub(super) fn merge_lengths(&mut self) -> Option<u32> {
        let line = &self.tokens;
        let n = line.len();
        if n == 0 || n > MAX_ALIGN {
            return None;
        }
        let line_consts = line.kinds.iter().filter(|k| **k != TokenKind::Wild).count();
        // A 64-bit Bloom filter of the line's tokens bounds the alignment cheaply.
        let bit = |h: u64| 1u64 << (h >> 58);
        let bloom = line
            .hashes
            .iter()
            .filter(|&&h| h != WILD)
            .fold(0, |b, &h| b | bit(h));
        let mut best: Option<(usize, u32)> = None;
        let mut checks = 0;
        for (slot, t) in self.slots.iter().enumerate() {
            let Some(t) = t else { continue };
            let m = t.tokens.len();
            if (!t.flexible && m == n) || m == 0 || m > MAX_ALIGN || 2 * m.min(n) < m.max(n) {
                continue;
            }
            let words_first = t.kinds[0] == TokenKind::Word && line.kinds[0] == TokenKind::Word;
            if words_first && t.tokens[0] != line.hashes[0] {
                continue;
            }
            let consts = t.kinds.iter().filter(|k| **k != TokenKind::Wild).count();
            let bound = t
                .tokens
                .iter()
                .filter(|&&h| h != WILD && bloom & bit(h) != 0)
                .count();
            if bound < 2 || 2 * bound.min(line_consts) < consts.max(line_consts) {
                continue;
            }
            if checks >= self.config.max_merge_checks {
                break;
            }
            checks += 1;
            let k = lcs(&t.tokens, &line.hashes, &mut self.table, &mut self.anchors);
            if k < 2 || 2 * k < consts.max(line_consts) {
                continue;
            }
            if !gaps_are_variable(t, &line.kinds, &self.anchors, k)
                || gap_has_field(&t.texts, line, &self.anchors)
                || (words_first && self.anchors.first() != Some(&(0, 0)))
            {
                continue;
            }
            if best.is_none_or(|(bk, _)| k > bk) {
                best = Some((k, slot as u32));
            }
        }
        let (_, slot) = best?;
        let t = self.slots.get(slot as usize)?.as_ref()?;
        lcs(&t.tokens, &line.hashes, &mut self.table, &mut self.anchors);
        let mut texts: Vec<Box<str>> = Vec::new();
        let (mut pi, mut pj) = (0usize, 0usize);
        let ends = (t.tokens.len() as u16, n as u16);
        for &(i, j) in self.anchors.iter().chain(std::iter::once(&ends)) {
            let (i, j) = (usize::from(i), usize::from(j));
            if i > pi || j > pj {
                texts.push(WILDCARD.into());
            }
            if i < t.tokens.len() {
                texts.push(t.texts[i].clone());
            }
            (pi, pj) = (i + 1, j + 1);
        }
        let (id, seq) = (t.id, t.last_seen);
        self.remove(slot);
        let t = Template::new(id, texts, true, seq);
        self.by_id.insert(id, slot);
        self.free.retain(|&s| s != slot);
        if let Some(place) = self.slots.get_mut(slot as usize) {
            *place = Some(t);
        }
        self.flex.push(slot);
        Some(slot)
    }
}

/// A template's tokens with position `p` as `<*>`: variants of one word share it.
pub(super) fn skeleton(tokens: &[u64], p: usize) -> u64 {
    tokens
        .iter()
        .enumerate()
        .fold(mix(2, tokens.len() as u64), |h, (i, &t)| {
            mix(h, if i == p { WILD } else { t })
        })
}

/// Whether every stretch between aligned constants holds a variable on one side, with few
/// plain words left unaligned: then the difference is a parameter of varying length.
fn gaps_are_variable(t: &Template, b: &[TokenKind], anchors: &[(u16, u16)], k: usize) -> bool {
    let a = &t.kinds;
    let (mut pi, mut pj) = (0usize, 0usize);
    let mut words = 0;
    let ends = (a.len() as u16, b.len() as u16);
    for &(i, j) in anchors.iter().chain(std::iter::once(&ends)) {
        let (i, j) = (usize::from(i), usize::from(j));
        let (ga, gb) = (&a[pi.min(i)..i], &b[pj.min(j)..j]);
        if !ga.is_empty() || !gb.is_empty() {
            // A value ending the previous constant (`tag="<*>`) may run on over spaces.
            let spill = pi > 0 && t.texts[pi - 1].ends_with(WILDCARD);
            let variable = spill || ga.iter().chain(gb).any(|k| *k != TokenKind::Word);
            // Words on one side only are an optional clause (`detected` / `detected over <*>
            // seconds`): another event, not a longer value.
            let clause = !spill
                && (ga.is_empty() || gb.is_empty())
                && ga.iter().chain(gb).any(|k| *k == TokenKind::Word);
            if !variable || clause {
                return false;
            }
            words += ga
                .iter()
                .chain(gb)
                .filter(|k| **k == TokenKind::Word)
                .count();
        }
        (pi, pj) = (i + 1, j + 1);
    }
    words <= (k / 4).max(1)
}

/// Whether a stretch between aligned constants holds a `key=value` field on one side that the
/// other lacks: an extra or missing field is a different event, not a longer parameter.
fn gap_has_field(a: &[Box<str>], line: &Tokens, anchors: &[(u16, u16)]) -> bool {
    fn key(s: &str) -> Option<&str> {
        let eq = s.get(1..)?.find('=')? + 1;
        Some(s[..eq].trim_start_matches(|c: char| !c.is_alphanumeric()))
    }
    let (mut pi, mut pj) = (0usize, 0usize);
    let ends = (a.len() as u16, line.len() as u16);
    let (mut ka, mut kb): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for &(i, j) in anchors.iter().chain(std::iter::once(&ends)) {
        let (i, j) = (usize::from(i), usize::from(j));
        ka.clear();
        kb.clear();
        ka.extend(a[pi.min(i)..i].iter().filter_map(|t| key(t)));
        kb.extend((pj.min(j)..j).filter_map(|x| key(line.masked(x))));
        ka.sort_unstable();
        kb.sort_unstable();
        if ka != kb {
            return true;
        }
        (pi, pj) = (i + 1, j + 1);
    }
    false
}
