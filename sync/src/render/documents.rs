//! Splitting a YAML stream into its documents, keeping each document's index and first line,
//! so that one broken document does not hide the others and errors point at the right line.

use std::borrow::Cow;

/// One `---`-separated part of a YAML stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunk<'a> {
    /// Index of the document in the file, from 0.
    pub index: usize,
    /// Line (from 1) of the chunk's first line in the file.
    pub first_line: usize,
    /// Line (from 1) of the document's first content (not blank, not a comment, not a bare
    /// `---`); `first_line` when there is none.
    pub content_line: usize,
    /// The text, including its leading `---` line if any; directive lines are blanked.
    pub text: Cow<'a, str>,
    /// False when the chunk holds only blank lines, comments and markers.
    pub has_content: bool,
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.trim().is_empty() || rest.starts_with([' ', '\t']))
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// A chunk being collected: byte range start, first line, whether it began with `---`.
struct Open {
    start: usize,
    first_line: usize,
    explicit: bool,
    content_line: Option<usize>,
    /// Byte ranges of `%` directive lines, blanked before parsing.
    directives: Vec<(usize, usize)>,
}

impl Open {
    fn new(start: usize, first_line: usize, explicit: bool) -> Self {
        Self {
            start,
            first_line,
            explicit,
            content_line: None,
            directives: Vec::new(),
        }
    }

    /// The finished chunk, or `None` for an implicit chunk without content (the comments
    /// before the first `---`, or after a `...`), which is not a document.
    fn finish<'a>(self, text: &'a str, end: usize, index: &mut usize) -> Option<Chunk<'a>> {
        let has_content = self.content_line.is_some();
        if !self.explicit && !has_content {
            return None;
        }
        let raw = &text[self.start..end];
        let text = if self.directives.is_empty() {
            Cow::Borrowed(raw)
        } else {
            let mut s = raw.to_string();
            for &(from, to) in &self.directives {
                let (a, b) = (from - self.start, to - self.start);
                s.replace_range(a..b, &" ".repeat(b - a));
            }
            Cow::Owned(s)
        };
        let chunk = Chunk {
            index: *index,
            first_line: self.first_line,
            content_line: self.content_line.unwrap_or(self.first_line),
            text,
            has_content,
        };
        *index += 1;
        Some(chunk)
    }
}

/// Splits `text` at lines starting with `---` (document start) and `...` (document end).
/// Content-less documents that start with `---` are returned (and counted); the caller skips
/// them.
pub(crate) fn split(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut index = 0;
    let mut offset = 0;
    let mut open = Open::new(0, 1, false);
    for (i, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let end = offset + raw_line.len();
        if is_marker(line, "---") {
            let next = Open::new(offset, line_no, true);
            chunks.extend(std::mem::replace(&mut open, next).finish(text, offset, &mut index));
            // Content on the marker line itself (`--- {a: 1}`, `--- |`) belongs to the document.
            if !is_blank_or_comment(&line[3..]) {
                open.content_line = Some(line_no);
            }
        } else if is_marker(line, "...") {
            let next = Open::new(end, line_no + 1, false);
            chunks.extend(std::mem::replace(&mut open, next).finish(text, end, &mut index));
        } else if line.starts_with('%') && open.content_line.is_none() {
            open.directives.push((offset, offset + line.len()));
        } else if open.content_line.is_none() && !is_blank_or_comment(line) {
            open.content_line = Some(line_no);
        }
        offset = end;
    }
    chunks.extend(open.finish(text, text.len(), &mut index));
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(text: &str) -> Vec<(usize, usize, usize, bool)> {
        split(text)
            .iter()
            .map(|c| (c.index, c.first_line, c.content_line, c.has_content))
            .collect()
    }

    #[test]
    fn documents_lines_and_indices() {
        // No marker: one document.
        assert_eq!(summary("a: 1\nb: 2\n"), vec![(0, 1, 1, true)]);
        // Leading comments are not a document; empty documents count.
        let text = "# head\n---\n# c\na: 1\n---\n---\nb: 2\n";
        assert_eq!(
            summary(text),
            vec![(0, 2, 4, true), (1, 5, 5, false), (2, 6, 7, true)]
        );
        // Content before the first marker is document 0.
        assert_eq!(
            summary("a: 1\n---\nb: 2"),
            vec![(0, 1, 1, true), (1, 2, 3, true)]
        );
        // Content on the marker line, end markers, CRLF.
        assert_eq!(
            summary("--- {a: 1}\r\n...\r\n---\r\nb: 2\r\n"),
            vec![(0, 1, 1, true), (1, 3, 4, true)]
        );
        // `----` and `---x` are not markers.
        assert_eq!(summary("a: |\n  ----\n---x: 1\n"), vec![(0, 1, 1, true)]);
        // Directives are blanked, keeping line numbers.
        let chunks = split("%YAML 1.2\n---\na: 1\n");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].first_line, 2);
        let chunks = split("---\n%YAML 1.2\n");
        assert!(!chunks[0].text.contains('%'));
        assert!(split("").is_empty());
        assert!(split("# only a comment\n").is_empty());
    }
}
