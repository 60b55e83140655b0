//! `config.txt` as lines, each with the conditional filters in force at it, and what the
//! firmware of a given board makes of them. Parsing never fails and never loses a byte:
//! concatenating every line's `raw` gives back the input.

use super::Board;

/// Whether a line is read by the firmware of a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applies {
    Yes,
    No,
    /// Under a filter that cannot be checked here (`[gpio4=1]`, `[edid=…]`, `[0x…]`, an
    /// unknown one): may apply; never edited.
    Maybe,
}

/// The filters in force at a line: the model filter (a new one replaces it), `[none]`, and
/// the other filters (they accumulate). `[all]` clears them all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope<'a> {
    model: Option<&'a str>,
    none: bool,
    others: Vec<&'a str>,
}

/// The model filters the firmware knows, and which of our boards each one matches.
const MODEL_FILTERS: &[(&str, &[Board])] = &[
    ("pi3", &[Board::Pi3B, Board::Pi3BPlus, Board::Pi3APlus]),
    ("pi3+", &[Board::Pi3BPlus, Board::Pi3APlus]),
    ("pi0", &[Board::Zero, Board::ZeroW, Board::Zero2W]),
    ("pi0w", &[Board::ZeroW, Board::Zero2W]),
    ("pi02", &[Board::Zero2W]),
    ("pi1", &[]),
    ("pi2", &[]),
    ("pi4", &[]),
    ("pi400", &[]),
    ("pi5", &[]),
    ("pi500", &[]),
    ("cm1", &[]),
    ("cm3", &[]),
    ("cm3+", &[]),
    ("cm4", &[]),
    ("cm4s", &[]),
    ("cm5", &[]),
];

impl<'a> Scope<'a> {
    pub fn is_unconditional(&self) -> bool {
        *self == Scope::default()
    }

    fn enter(&mut self, filter: &'a str) {
        match filter {
            "all" => *self = Scope::default(),
            "none" => self.none = true,
            f if MODEL_FILTERS.iter().any(|(name, _)| *name == f) => self.model = Some(f),
            f => self.others.push(f),
        }
    }

    /// `board` None: the model is unknown, so every model filter may apply.
    pub fn applies(&self, board: Option<Board>) -> Applies {
        if self.none {
            return Applies::No;
        }
        let model = match (self.model, board) {
            (None, _) => Applies::Yes,
            (Some(_), None) => Applies::Maybe,
            (Some(f), Some(b)) => {
                let boards = MODEL_FILTERS.iter().find(|(name, _)| *name == f).map(|(_, b)| *b).unwrap_or(&[]);
                if boards.contains(&b) { Applies::Yes } else { Applies::No }
            }
        };
        match model {
            Applies::Yes if !self.others.is_empty() => Applies::Maybe,
            other => other,
        }
    }

    /// How a person reads it: `unconditional` or the filters, as in the file.
    pub fn describe(&self) -> String {
        if self.is_unconditional() {
            return "unconditional".into();
        }
        let none = self.none.then_some("none");
        self.model.iter().copied().chain(none).chain(self.others.iter().copied()).map(|f| format!("[{f}]")).collect()
    }
}

#[derive(Debug)]
pub enum Kind<'a> {
    /// `key=value`: the firmware allows no spaces around `=`.
    Setting {
        key: &'a str,
        value: &'a str,
    },
    Section,
    /// Comments, blank lines, anything else.
    Other,
}

#[derive(Debug)]
pub struct Line<'a> {
    /// 1-based, as an editor shows it.
    pub number: usize,
    /// The line as in the file, terminator included.
    pub raw: &'a str,
    /// Without its terminator (`\n` or `\r\n`).
    pub body: &'a str,
    pub kind: Kind<'a>,
    pub scope: Scope<'a>,
}

impl Line<'_> {
    pub fn eol(&self) -> &str {
        &self.raw[self.body.len()..]
    }
}

pub struct Doc<'a> {
    pub lines: Vec<Line<'a>>,
    /// The scope after the last line: where an appended line would land.
    pub end_scope: Scope<'a>,
    /// `\r\n` when the file's first line ends so, else `\n`.
    pub newline: &'static str,
}

impl<'a> Doc<'a> {
    pub fn parse(text: &'a str) -> Doc<'a> {
        let mut scope = Scope::default();
        let mut lines = Vec::new();
        for (index, raw) in text.split_inclusive('\n').enumerate() {
            let body = raw.strip_suffix('\n').map(|b| b.strip_suffix('\r').unwrap_or(b)).unwrap_or(raw);
            let kind = if let Some(rest) = body.trim_start().strip_prefix('[') {
                scope.enter(rest.split_once(']').map(|(f, _)| f.trim()).unwrap_or(rest));
                Kind::Section
            } else if body.starts_with('#') {
                Kind::Other
            } else {
                match body.split_once('=') {
                    Some((key, value)) if !key.is_empty() && !key.contains(char::is_whitespace) => {
                        Kind::Setting { key, value: value.trim_end() }
                    }
                    _ => Kind::Other,
                }
            };
            lines.push(Line { number: index + 1, raw, body, kind, scope: scope.clone() });
        }
        let newline = if text.split('\n').next().is_some_and(|l| l.ends_with('\r') && text.contains('\n')) {
            "\r\n"
        } else {
            "\n"
        };
        Doc { lines, end_scope: scope, newline }
    }

    /// Settings named `key` that apply (or may) to `board`, in file order.
    pub fn settings(&self, key: &str, board: Option<Board>) -> impl Iterator<Item = (&Line<'a>, &'a str, Applies)> {
        self.lines.iter().filter_map(move |line| match line.kind {
            Kind::Setting { key: k, value } if k == key => match line.scope.applies(board) {
                Applies::No => None,
                applies => Some((line, value, applies)),
            },
            _ => None,
        })
    }

    /// The line that sets `key` for `board`: the last one read wins.
    pub fn last(&self, key: &str, board: Option<Board>) -> Option<(&Line<'a>, &'a str, Applies)> {
        self.settings(key, board).last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_every_byte_and_their_scope() {
        let text = "a=1\r\n[pi3]\ngpu_mem=128\n[gpio4=1]\nx=2\n[pi0]\ny=3\n[all]\nz=4";
        let doc = Doc::parse(text);
        assert_eq!(doc.lines.iter().map(|l| l.raw).collect::<String>(), text);
        assert_eq!(doc.newline, "\r\n");
        let scope = |n: usize| doc.lines[n - 1].scope.describe();
        assert_eq!(scope(1), "unconditional");
        assert_eq!(scope(3), "[pi3]");
        assert_eq!(scope(5), "[pi3][gpio4=1]");
        assert_eq!(scope(7), "[pi0][gpio4=1]");
        assert_eq!(scope(9), "unconditional");
        assert!(doc.end_scope.is_unconditional());
    }

    #[test]
    fn model_filters_match_their_boards() {
        let at = |text: &str, board| Doc::parse(text).lines.last().unwrap().scope.applies(board);
        assert_eq!(at("[pi3]\nk=1", Some(Board::Pi3B)), Applies::Yes);
        assert_eq!(at("[pi3+]\nk=1", Some(Board::Pi3B)), Applies::No);
        assert_eq!(at("[pi3+]\nk=1", Some(Board::Pi3BPlus)), Applies::Yes);
        assert_eq!(at("[pi0]\nk=1", Some(Board::ZeroW)), Applies::Yes);
        assert_eq!(at("[pi0w]\nk=1", Some(Board::Zero)), Applies::No);
        assert_eq!(at("[pi0w]\nk=1", Some(Board::Zero2W)), Applies::Yes);
        assert_eq!(at("[pi4]\nk=1", Some(Board::Pi3B)), Applies::No);
        assert_eq!(at("[cm4]\nk=1", Some(Board::ZeroW)), Applies::No);
        assert_eq!(at("[pi0]\n[pi3]\nk=1", Some(Board::ZeroW)), Applies::No, "a model filter replaces the last");
        assert_eq!(at("[none]\nk=1", Some(Board::Pi3B)), Applies::No);
        assert_eq!(at("[gpio4=1]\nk=1", Some(Board::Pi3B)), Applies::Maybe);
        assert_eq!(at("[pi3]\n[edid=X]\nk=1", Some(Board::Pi3B)), Applies::Maybe);
        assert_eq!(at("[pi4]\n[edid=X]\nk=1", Some(Board::Pi3B)), Applies::No);
        assert_eq!(at("[pi3]\nk=1", None), Applies::Maybe);
        assert_eq!(at("[gpio4=1]\n[all]\nk=1", Some(Board::Pi3B)), Applies::Yes);
    }

    #[test]
    fn comments_and_spaced_keys_are_not_settings() {
        let doc = Doc::parse("#gpu_mem=64\ngpu_mem =64\n gpu_mem=32\ngpu_mem=128 \n");
        let found: Vec<_> = doc.settings("gpu_mem", Some(Board::Pi3B)).map(|(l, v, _)| (l.number, v)).collect();
        assert_eq!(found, [(4, "128")]);
    }
}
