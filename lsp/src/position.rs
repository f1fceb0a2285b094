//! LSP positions (line, UTF-16 column) to byte offsets and back.

use tower_lsp_server::ls_types::{Position, Range};

pub fn offset(text: &str, pos: Position) -> usize {
    let mut line_start = 0;
    for _ in 0..pos.line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let mut units = 0u32;
    for (i, c) in text[line_start..line_end].char_indices() {
        if units >= pos.character {
            return line_start + i;
        }
        units += c.len_utf16() as u32;
    }
    line_end
}

pub fn position(text: &str, offset: usize) -> Position {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let character = text[line_start..offset]
        .chars()
        .map(|c| c.len_utf16() as u32)
        .sum();
    Position { line, character }
}

pub fn range(text: &str, start: usize, end: usize) -> Range {
    Range {
        start: position(text, start),
        end: position(text, end),
    }
}

/// The start of every line of one text: [`position`] in O(log lines + the line's length)
/// instead of a scan from the start of the text. Publishing a file's diagnostics converts
/// two offsets per diagnostic (and per related site); with a scan each, that grew with
/// diagnostics × file length (issue 13: seconds on a 20,000-line directory).
pub struct LineIndex<'a> {
    text: &'a str,
    starts: std::borrow::Cow<'a, [usize]>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> LineIndex<'a> {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex {
            text,
            starts: std::borrow::Cow::Owned(starts),
        }
    }

    /// The index the compiler already made of a source file.
    pub fn of(file: &'a hpl_compiler::source::SourceFile) -> LineIndex<'a> {
        LineIndex {
            text: &file.text,
            starts: std::borrow::Cow::Borrowed(file.line_starts()),
        }
    }

    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        // The last line start at or before the offset.
        let line = self.starts.partition_point(|s| *s <= offset) - 1;
        let start = self.starts[line];
        // An offset inside a character counts the characters before it, as `position` does.
        let character = self.text.get(start..offset).map_or_else(
            || {
                self.text[start..]
                    .char_indices()
                    .take_while(|(i, _)| start + i < offset)
                    .map(|(_, c)| c.len_utf16() as u32)
                    .sum()
            },
            |s| s.chars().map(|c| c.len_utf16() as u32).sum(),
        );
        Position {
            line: line as u32,
            character,
        }
    }

    pub fn range(&self, start: usize, end: usize) -> Range {
        Range {
            start: self.position(start),
            end: self.position(end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_index_answers_what_the_scan_answers() {
        let text = "ab\né😀x\n\n  require brew:jq\nlast";
        let index = LineIndex::new(text);
        for o in (0..=text.len()).filter(|o| text.is_char_boundary(*o)) {
            assert_eq!(index.position(o), position(text, o), "offset {o}");
        }
        // Past the end and inside a character: clamped, never a panic.
        assert_eq!(index.position(text.len() + 5), position(text, text.len()));
        assert_eq!(
            index.position(5),
            Position {
                line: 1,
                character: 1
            }
        );
        assert_eq!(index.range(3, 9), range(text, 3, 9));
    }

    #[test]
    fn round_trips_with_multibyte_characters() {
        let text = "ab\né😀x\n";
        for o in [0, 1, 3, 5, 9, 10] {
            assert_eq!(offset(text, position(text, o)), o);
        }
        assert_eq!(
            position(text, 9),
            Position {
                line: 1,
                character: 3
            }
        );
    }
}
