//! Tables that fit: how wide the output may be, which columns give way when a row is too wide, and
//! how free text is wrapped. How cells are written (days, percentages, counts) is in `format`.
//!
//! A listing's table is a few columns that answer its command's question, aligned with two spaces
//! between them and no borders (as kubectl and git print), plus, under a row where it has one, an
//! indented line of free text (a sender's reason, a reject's reason) wrapped to the width. When a
//! row is wider than the width, the columns marked [`Fit::End`] or [`Fit::Start`] are cut with `…`,
//! widest first; other columns (numbers, dates, addresses) are never cut. `--wide` adds the columns
//! marked [`Column::wide`] and cuts nothing.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Width when standard output is not a terminal and `COLUMNS` is not set.
pub const PIPED_WIDTH: usize = 100;
/// A terminal wider than this is treated as this wide: longer lines of text are hard to read.
pub const MAX_WIDTH: usize = 160;
/// The narrowest a cut column becomes.
const MIN_CUT: usize = 8;
/// Spaces between columns.
const GAP: usize = 2;
/// Indentation of the free-text line under a row.
const DETAIL_INDENT: &str = "    ";

/// How wide output may be: `COLUMNS` when set (so a script or a test can choose), else the
/// terminal's width (at most [`MAX_WIDTH`]), else [`PIPED_WIDTH`].
pub fn output_width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c >= 20)
    {
        return columns;
    }
    if io::stdout().is_terminal()
        && let Some(width) = comfy_table::Table::new().width()
    {
        return usize::from(width).clamp(20, MAX_WIDTH);
    }
    PIPED_WIDTH
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Whether a column may be cut to make a row fit, and at which end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Never cut (numbers, dates, addresses, classes).
    Keep,
    /// Keep the start, cut the end: `mail.example.…`.
    End,
    /// Keep the end, cut the start: `…/reports/2026/11/report.xml` (paths).
    Start,
}

/// One column of a listing's table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub align: Align,
    pub fit: Fit,
    /// Shown only with `--wide`.
    pub wide: bool,
}

impl Column {
    /// Text that may be cut at its end.
    pub const fn text(header: &'static str) -> Column {
        Column {
            header,
            align: Align::Left,
            fit: Fit::End,
            wide: false,
        }
    }
    /// Text that is never cut.
    pub const fn keep(header: &'static str) -> Column {
        Column {
            header,
            align: Align::Left,
            fit: Fit::Keep,
            wide: false,
        }
    }
    /// A path, cut at its start.
    pub const fn path(header: &'static str) -> Column {
        Column {
            header,
            align: Align::Left,
            fit: Fit::Start,
            wide: false,
        }
    }
    /// A number or a percentage: right-aligned, never cut.
    pub const fn num(header: &'static str) -> Column {
        Column {
            header,
            align: Align::Right,
            fit: Fit::Keep,
            wide: false,
        }
    }
    /// The same column, shown only with `--wide`.
    pub const fn wide(self) -> Column {
        Column { wide: true, ..self }
    }
}

/// One row: a cell per column, and the free text for the line under it.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub cells: Vec<String>,
    pub detail: Option<String>,
}

impl Row {
    /// The row whose cells `each_cell` hands over (as [`super::Tabular::each_cell`] does) and
    /// whose free text it returns.
    pub fn of(each_cell: impl FnOnce(&mut dyn FnMut(&str)) -> Option<String>) -> Row {
        let mut cells = Vec::new();
        let detail = each_cell(&mut |c| cells.push(c.to_owned()));
        Row { cells, detail }
    }
}

/// A table being filled a row at a time, then written once its columns' widths are known.
///
/// Cells come from reports: a control character would break the layout or drive the terminal, so
/// each shown cell is [`clean`]ed and measured once, as it is pushed, and kept in one string with
/// the others (a listing of hundreds of thousands of reports holds its shown text, not a string per
/// cell; hidden `--wide` columns are not kept at all).
pub struct Table {
    columns: Vec<Column>,
    /// The indices of the columns shown.
    shown: Vec<usize>,
    wide: bool,
    /// Every kept cell's text, one after another.
    text: String,
    /// Per kept cell, in row order: where its text ends in `text`, and its width.
    cells: Vec<(usize, usize)>,
    /// Per row, its cleaned free text (`None` when it has none).
    details: Vec<Option<Box<str>>>,
    /// Per shown column, its widest cell (the header included).
    widths: Vec<usize>,
    /// The column of the next cell of the row being pushed.
    next: usize,
}

impl Table {
    pub fn new(columns: Vec<Column>, wide: bool) -> Table {
        let shown: Vec<usize> = (0..columns.len())
            .filter(|&i| wide || !columns[i].wide)
            .collect();
        let widths = shown.iter().map(|&i| width(columns[i].header)).collect();
        Table {
            columns,
            shown,
            wide,
            text: String::new(),
            cells: Vec::new(),
            details: Vec::new(),
            widths,
            next: 0,
        }
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.details.is_empty()
    }

    /// Adds `row`.
    pub fn push(&mut self, row: &Row) {
        for cell in &row.cells {
            self.cell(cell);
        }
        self.end_row(row.detail.as_deref());
    }

    /// The next cell of the row being pushed (in `columns`' order; kept only when shown).
    pub fn cell(&mut self, text: &str) {
        let i = self.next;
        self.next += 1;
        let k = self.kept();
        if self.shown.get(k) != Some(&i) {
            return;
        }
        let cell = clean(text);
        let w = width(&cell);
        self.widths[k] = self.widths[k].max(w);
        self.text.push_str(&cell);
        self.cells.push((self.text.len(), w));
    }

    /// Ends the row being pushed (its shown cells not given are empty), with its free text.
    pub fn end_row(&mut self, detail: Option<&str>) {
        for _ in self.kept()..self.shown.len() {
            self.cells.push((self.text.len(), 0));
        }
        self.next = 0;
        self.details
            .push(detail.filter(|d| !d.is_empty()).map(|d| clean(d).into()));
    }

    /// How many cells of the row being pushed were kept.
    fn kept(&self) -> usize {
        self.cells.len() - self.details.len() * self.shown.len()
    }

    /// Writes the header and the rows in at most `width` columns (unless wide).
    pub fn write<W: Write>(mut self, out: &mut W, width: usize) -> io::Result<()> {
        if !self.wide {
            fit(&self.columns, &self.shown, &mut self.widths, width);
        }
        let (columns, shown, widths, wide) = (&self.columns, &self.shown, &self.widths, self.wide);
        // One line at a time into a buffer used again for the next.
        let mut line = String::new();
        let mut write_line =
            |out: &mut W, cells: &mut dyn Iterator<Item = (&str, usize)>| -> io::Result<()> {
                line.clear();
                for (k, (&i, (text, text_width))) in shown.iter().zip(cells).enumerate() {
                    let w = widths[k];
                    let (text, text_width) = if text_width <= w || wide {
                        (Cow::Borrowed(text), text_width)
                    } else {
                        let cut = match columns[i].fit {
                            Fit::End => cut_end(text, w),
                            Fit::Start => cut_start(text, w),
                            Fit::Keep => Cow::Borrowed(text),
                        };
                        let cut_width = self::width(&cut);
                        (cut, cut_width)
                    };
                    let pad = w.saturating_sub(text_width);
                    if k > 0 {
                        spaces(&mut line, GAP);
                    }
                    match columns[i].align {
                        Align::Left => {
                            line.push_str(&text);
                            spaces(&mut line, pad);
                        }
                        Align::Right => {
                            spaces(&mut line, pad);
                            line.push_str(&text);
                        }
                    }
                }
                line.truncate(line.trim_end().len());
                line.push('\n');
                out.write_all(line.as_bytes())
            };
        write_line(
            out,
            &mut shown
                .iter()
                .map(|&i| (columns[i].header, self::width(columns[i].header))),
        )?;
        let mut start = 0;
        let per_row = shown.len();
        for (r, detail) in self.details.iter().enumerate() {
            let (text, cells) = (&self.text, &self.cells[r * per_row..(r + 1) * per_row]);
            write_line(
                out,
                &mut cells.iter().map(|&(end, w)| {
                    let cell = &text[start..end];
                    start = end;
                    (cell, w)
                }),
            )?;
            if let Some(detail) = detail {
                for l in wrap(detail, width, DETAIL_INDENT, DETAIL_INDENT) {
                    writeln!(out, "{l}")?;
                }
            }
        }
        Ok(())
    }
}

/// The columns `text` takes on a terminal (its length when it is printable ASCII, as most cells are).
fn width(text: &str) -> usize {
    if printable_ascii(text) {
        text.len()
    } else {
        text.width()
    }
}

/// Whether `text` is all printable ASCII: nothing to clean, one column per byte.
fn printable_ascii(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Appends `n` spaces.
fn spaces(line: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut n = n;
    while n > 0 {
        let k = n.min(SPACES.len());
        line.push_str(&SPACES[..k]);
        n -= k;
    }
}

/// Narrows the cuttable columns, a column at a time and the widest first, until the row fits in `width` or none can give more.
fn fit(columns: &[Column], shown: &[usize], widths: &mut [usize], width: usize) {
    let total =
        |widths: &[usize]| widths.iter().sum::<usize>() + GAP * widths.len().saturating_sub(1);
    let mut excess = total(widths).saturating_sub(width);
    while excess > 0 {
        let widest = (0..shown.len())
            .filter(|&k| columns[shown[k]].fit != Fit::Keep)
            .filter(|&k| widths[k] > MIN_CUT.max(columns[shown[k]].header.width()))
            .max_by_key(|&k| widths[k]);
        let Some(k) = widest else { break };
        widths[k] -= 1;
        excess -= 1;
    }
}

/// `text` with each control character (a line break, a tab, an escape sequence's ESC, taken from a
/// report) replaced: whitespace by a space, the rest by `�`.
pub fn clean(text: &str) -> Cow<'_, str> {
    if printable_ascii(text) || !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                c if c.is_whitespace() && c.is_control() => ' ',
                c if c.is_control() => '\u{FFFD}',
                c => c,
            })
            .collect(),
    )
}

/// `text` cut to `width` columns, its end replaced by `…`.
pub fn cut_end(text: &str, width: usize) -> Cow<'_, str> {
    if text.width() <= width {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    let mut used = 1; // the ellipsis
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    out.push('…');
    Cow::Owned(out)
}

/// `text` cut to `width` columns, its start replaced by `…`.
pub fn cut_start(text: &str, width: usize) -> Cow<'_, str> {
    if text.width() <= width {
        return Cow::Borrowed(text);
    }
    let mut kept = Vec::new();
    let mut used = 1;
    for c in text.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        kept.push(c);
    }
    Cow::Owned(std::iter::once('…').chain(kept.into_iter().rev()).collect())
}

/// `text` wrapped at spaces to lines of at most `width` columns, the first starting with `first`,
/// the rest with `rest`; words longer than a line are broken.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> Vec<String> {
    let options = textwrap::Options::new(width.max(first.width() + 10))
        .initial_indent(first)
        .subsequent_indent(rest)
        .break_words(true)
        .word_splitter(textwrap::WordSplitter::NoHyphenation);
    textwrap::wrap(text, options)
        .into_iter()
        .map(|l| l.trim_end().to_owned())
        .collect()
}

/// A writer that wraps each line longer than `width` at spaces, continuing it indented four more
/// than it starts. A line whose text starts with `"` (a DNS record to copy) is never wrapped.
pub struct Wrapping<W: Write> {
    inner: W,
    width: usize,
    pending: Vec<u8>,
}

impl<W: Write> Wrapping<W> {
    pub fn new(inner: W, width: usize) -> Self {
        Wrapping {
            inner,
            width,
            pending: Vec::new(),
        }
    }

    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        let line = String::from_utf8_lossy(line);
        let line = clean(&line);
        let text = line.trim_start();
        if line.width() <= self.width || text.starts_with('"') {
            return writeln!(self.inner, "{line}");
        }
        let lead = &line[..line.len() - text.len()];
        for l in wrap(text, self.width, lead, &format!("{lead}    ")) {
            writeln!(self.inner, "{l}")?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Wrapping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.line(&line[..end])?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let text = String::from_utf8_lossy(&rest).into_owned();
            write!(self.inner, "{text}")?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `rows` under `columns` in at most `width` columns (unless `wide`).
    fn render<W: Write>(
        out: &mut W,
        columns: &[Column],
        rows: &[Row],
        wide: bool,
        width: usize,
    ) -> io::Result<()> {
        let mut table = Table::new(columns.to_vec(), wide);
        for row in rows {
            table.push(row);
        }
        table.write(out, width)
    }

    #[test]
    fn control_characters_from_reports_never_reach_the_terminal() {
        assert_eq!(clean("a\tb\r\nc"), "a b  c");
        assert_eq!(clean("\u{1b}[31mred"), "\u{FFFD}[31mred");
        let rows = vec![Row {
            cells: vec!["two\nlines".into()],
            detail: Some("\u{1b}]0;title\u{7}".into()),
        }];
        let mut out = Vec::new();
        render(&mut out, &[Column::text("X")], &rows, false, 40).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
    }

    #[test]
    fn cuts_and_wraps_within_the_width() {
        assert_eq!(cut_end("mail.example.org", 8), "mail.ex…");
        assert_eq!(cut_start("/a/b/report.xml", 11), "…report.xml");
        assert_eq!(cut_end("short", 8), "short");
        assert_eq!(cut_end("日本語のテキスト", 7).width(), 7);
        for line in wrap(&"word ".repeat(50), 40, "    ", "    ") {
            assert!(line.width() <= 40 && line.starts_with("    "), "{line:?}");
        }
    }

    #[test]
    fn a_row_too_wide_gives_way_in_its_text_columns_only() {
        let columns = [
            Column::text("NAME"),
            Column::num("COUNT"),
            Column::text("NOTE").wide(),
        ];
        let rows = vec![Row {
            cells: vec!["x".repeat(60), "12,345".into(), "extra".into()],
            detail: Some("a reason ".repeat(20)),
        }];
        let mut out = Vec::new();
        render(&mut out, &columns, &rows, false, 40).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.width() <= 40), "{text}");
        assert!(
            text.contains("12,345") && text.contains('…') && !text.contains("extra"),
            "{text}"
        );
        let mut out = Vec::new();
        render(&mut out, &columns, &rows, true, 40).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(&"x".repeat(60)) && text.contains("NOTE"),
            "{text}"
        );
    }
}
