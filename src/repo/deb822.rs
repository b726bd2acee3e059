//! A borrowing reader for deb822 control data (Debian Policy 5.1): paragraphs
//! separated by blank lines, `Field: value` lines, continuation lines that
//! start with a space or tab. Used for Packages and Release files.
//!
//! It does not interpret any field, handle OpenPGP armor (see `release`), or
//! support `#` comments (they occur in source control files, not in archive
//! indexes).

use anyhow::{Result, bail};

/// One paragraph: its fields in file order, borrowed from the input.
#[derive(Debug)]
pub struct Paragraph<'a> {
    /// 1-based line number of the paragraph's first field.
    pub line: usize,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Paragraph<'a> {
    /// The trimmed value of a field (names are case-insensitive, Policy 5.1).
    /// A multi-line value keeps its inner newlines and leading spaces.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    pub fn fields(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.fields.iter().copied()
    }
}

/// Iterates over the paragraphs of `text`; stops after the first error.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs {
        text,
        pos: 0,
        line: 1,
    }
}

pub struct Paragraphs<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Paragraphs<'a> {
    /// The line at `self.pos` and the offset just past its newline.
    fn current_line(&self) -> (&'a str, usize) {
        let rest = &self.text[self.pos..];
        match rest.find('\n') {
            Some(i) => (&rest[..i], self.pos + i + 1),
            None => (rest, self.text.len()),
        }
    }

    fn paragraph(&mut self) -> Result<Paragraph<'a>> {
        let start_line = self.line;
        // (name, value start, value end) as offsets, so that continuation
        // lines extend the value without copying.
        let mut fields: Vec<(&'a str, usize, usize)> = Vec::with_capacity(24);
        while self.pos < self.text.len() {
            let (line, next) = self.current_line();
            if line.trim().is_empty() {
                break;
            }
            let end = self.pos + line.len();
            if line.starts_with([' ', '\t']) {
                match fields.last_mut() {
                    Some(f) => f.2 = end,
                    None => bail!("line {}: continuation line before any field", self.line),
                }
            } else if let Some(colon) = line.find(':') {
                let name = line[..colon].trim_end();
                if name.is_empty() || name.contains(char::is_whitespace) {
                    bail!("line {}: invalid field name {name:?}", self.line);
                }
                fields.push((name, self.pos + colon + 1, end));
            } else {
                bail!("line {}: expected `Field: value`, got {line:?}", self.line);
            }
            self.pos = next;
            self.line += 1;
        }
        let text = self.text;
        Ok(Paragraph {
            line: start_line,
            fields: fields
                .into_iter()
                .map(|(n, s, e)| (n, text[s..e].trim()))
                .collect(),
        })
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        // Skip blank lines between (and before) paragraphs.
        while self.pos < self.text.len() {
            let (line, next) = self.current_line();
            if !line.trim().is_empty() {
                break;
            }
            self.pos = next;
            self.line += 1;
        }
        if self.pos >= self.text.len() {
            return None;
        }
        let p = self.paragraph();
        if p.is_err() {
            self.pos = self.text.len();
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_paragraphs_and_continuations() {
        let text = "\nPackage: a\nDepends: b,\n c\nDescription: x\n more\n .\n\n\n\
                    package: d\r\nVersion: 1\r\n";
        let ps: Vec<_> = paragraphs(text).collect::<Result<_>>().unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, 2);
        assert_eq!(ps[0].get("depends"), Some("b,\n c"));
        assert_eq!(ps[0].get("Description"), Some("x\n more\n ."));
        assert_eq!(ps[1].line, 10);
        assert_eq!(ps[1].get("Package"), Some("d"));
        assert_eq!(ps[1].get("Version"), Some("1"));
        assert_eq!(ps[1].get("Missing"), None);
    }

    #[test]
    fn errors_name_the_line() {
        let err = paragraphs("Package: a\nno colon here\n")
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = paragraphs(" leading\n").next().unwrap().unwrap_err();
        assert!(err.to_string().contains("continuation"), "{err}");
    }
}
