//! A line diff (longest common subsequence), for comparing two versions of a schema.

use serde::Serialize;

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct DiffLine {
    /// `same`, `added` or `removed`.
    pub op: &'static str,
    /// The line, without its newline.
    pub text: String,
}

/// Schemas are small; past this many lines on one side the diff is "all removed, all
/// added" rather than a quadratic table.
const MAX_LINES: usize = 5_000;

/// The lines of `old` and `new` in order, each marked same, removed or added.
pub(crate) fn diff_lines(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let line = |op, text: &str| DiffLine {
        op,
        text: text.to_string(),
    };
    if a.len() > MAX_LINES || b.len() > MAX_LINES {
        return a
            .iter()
            .map(|t| line("removed", t))
            .chain(b.iter().map(|t| line("added", t)))
            .collect();
    }
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(line("same", a[i]));
            i += 1;
            j += 1;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            out.push(line("removed", a[i]));
            i += 1;
        } else {
            out.push(line("added", b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|t| line("removed", t)));
    out.extend(b[j..].iter().map(|t| line("added", t)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(lines: &[DiffLine]) -> String {
        lines
            .iter()
            .map(|l| {
                let mark = match l.op {
                    "same" => ' ',
                    "added" => '+',
                    _ => '-',
                };
                format!("{mark}{}\n", l.text)
            })
            .collect()
    }

    #[test]
    fn marks_added_and_removed_lines() {
        let old = "a\nb\nc\nd\n";
        let new = "a\nc\nd\ne\n";
        assert_eq!(render(&diff_lines(old, new)), " a\n-b\n c\n d\n+e\n");
    }

    #[test]
    fn identical_texts_are_all_same_and_empty_sides_work() {
        assert!(diff_lines("x\ny", "x\ny").iter().all(|l| l.op == "same"));
        assert_eq!(render(&diff_lines("", "x")), "+x\n");
        assert_eq!(render(&diff_lines("x", "")), "-x\n");
    }
}
