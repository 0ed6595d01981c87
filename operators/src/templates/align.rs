//! Token-sequence alignment for templates whose `<*>` may span any number of tokens.

use super::mask::WILD;

/// Matches `line` against `pattern`, where a [`WILD`] in the pattern stands for zero or more
/// tokens (a glob over tokens). On success `at[p]` holds, for each pattern position, the index
/// of the first line token it covers (for a wildcard, possibly the index after an empty span),
/// and `at[pattern.len()] == line.len()`.
///
/// Greedy with backtracking to the last wildcard only: linear in practice, `O(|p|·|l|)` at worst.
pub(crate) fn glob(pattern: &[u64], line: &[u64], at: &mut Vec<u32>) -> bool {
    at.clear();
    at.resize(pattern.len() + 1, 0);
    let (mut p, mut l) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while l < line.len() {
        if p < pattern.len() && pattern[p] == WILD {
            at[p] = l as u32;
            star = Some((p, l));
            p += 1;
        } else if p < pattern.len() && pattern[p] == line[l] {
            at[p] = l as u32;
            p += 1;
            l += 1;
        } else if let Some((sp, sl)) = star {
            p = sp + 1;
            l = sl + 1;
            star = Some((sp, sl + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == WILD {
        at[p] = l as u32;
        p += 1;
    }
    at[pattern.len()] = line.len() as u32;
    p == pattern.len()
}

/// Longest common subsequence of the constant tokens of `a` and the tokens of `b` (a [`WILD`]
/// never matches). Fills `anchors` with the matched index pairs in order and returns their
/// count. Both sequences must be shorter than `u16::MAX`; `table` is scratch space.
pub(crate) fn lcs(
    a: &[u64],
    b: &[u64],
    table: &mut Vec<u16>,
    anchors: &mut Vec<(u16, u16)>,
) -> usize {
    anchors.clear();
    let (n, m) = (a.len(), b.len());
    let w = m + 1;
    table.clear();
    table.resize((n + 1) * w, 0);
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i * w + j] = if a[i] != WILD && a[i] == b[j] {
                table[(i + 1) * w + j + 1] + 1
            } else {
                table[(i + 1) * w + j].max(table[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] != WILD && a[i] == b[j] {
            anchors.push((i as u16, j as u16));
            i += 1;
            j += 1;
        } else if table[(i + 1) * w + j] >= table[i * w + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    anchors.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_variable_spans() {
        let mut at = Vec::new();
        // pattern: a * b * c
        let p = [1, WILD, 2, WILD, 3];
        assert!(glob(&p, &[1, 2, 3], &mut at));
        assert_eq!(at, [0, 1, 1, 2, 2, 3]);
        assert!(glob(&p, &[1, 9, 9, 2, 3], &mut at));
        assert_eq!(at[2], 3);
        assert!(glob(&p, &[1, 2, 9, 2, 8, 3], &mut at));
        assert!(!glob(&p, &[1, 3], &mut at));
        assert!(!glob(&p, &[1, 2, 3, 4], &mut at));
        assert!(glob(&[WILD], &[], &mut at));
        assert!(glob(&[], &[], &mut at));
    }

    #[test]
    fn lcs_aligns_constants_in_order() {
        let (mut table, mut anchors) = (Vec::new(), Vec::new());
        let k = lcs(
            &[1, WILD, 2, 3],
            &[1, 7, 7, 2, 8, 3],
            &mut table,
            &mut anchors,
        );
        assert_eq!(k, 3);
        assert_eq!(anchors, [(0, 0), (2, 3), (3, 5)]);
        assert_eq!(lcs(&[WILD], &[WILD], &mut table, &mut anchors), 0);
    }
}
