//! An invoice as a PDF document.
//!
//! [`render`] lays an [`InvoiceDocument`] out on A4 pages with the base-14 fonts Helvetica and
//! Helvetica-Bold in `WinAnsiEncoding`, so no font file is embedded: a title, who sells and who
//! is billed, the dates and status, a table of lines (description left, amount right-aligned),
//! the totals and the notes. Lines that do not fit one page continue on the next under the
//! heading "Invoice `<number>` (continued)" and the table header again; every page says
//! "Page i of n".
//!
//! Text is drawn one text object per line (`BT /F1 10 Tf x y Td (…) Tj ET`), uncompressed, so
//! a PDF text extractor gives every line back whole. Characters that `WinAnsiEncoding` cannot
//! show become `?`. Widths come from the fonts' metrics (ASCII exactly, accented Latin letters
//! as their base letter), which is what right-aligns amounts and cuts long descriptions: a
//! description wraps onto at most three lines, the last ending in `...` when even that is not
//! enough.

use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::ledger::money;

/// One line of an invoice document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentLine {
    /// What is charged, e.g. `Plan Team (2026-12-01 to 2026-12-31)`.
    pub description: String,
    /// Minor units of the invoice's currency; negative for a discount.
    pub amount: i64,
}

/// What an invoice PDF shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDocument {
    /// The invoice number, e.g. `PL-000042`.
    pub number: String,
    /// `open`, `paid` or `void`.
    pub status: String,
    /// The day it was issued, e.g. `2026-12-31`.
    pub issued_on: String,
    /// The month billed, e.g. `2026-12`.
    pub period: String,
    /// Who bills, e.g. `Plinth`.
    pub seller: String,
    /// The tenant's display name.
    pub tenant_name: String,
    /// The tenant's slug.
    pub tenant_slug: String,
    /// ISO 4217, uppercase.
    pub currency: String,
    /// The lines, in order.
    pub lines: Vec<DocumentLine>,
    /// The sum of the lines before discounts, minor units.
    pub subtotal: i64,
    /// The discount taken off (shown when non-zero), minor units.
    pub discount: i64,
    /// Credit applied (shown when non-zero), minor units.
    pub credited: i64,
    /// What is due, minor units.
    pub total: i64,
    /// Sentences printed under the totals, e.g. `Coupon LAUNCH20: 20% off the plan for 3
    /// months`.
    pub notes: Vec<String>,
}

/// Why an invoice could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    /// More lines and notes than one document holds.
    #[error("an invoice PDF holds at most {limit} lines and notes; this invoice has {count}")]
    TooManyLines {
        /// The invoice's lines plus notes.
        count: usize,
        /// [`MAX_ENTRIES`].
        limit: usize,
    },
    /// An object number fell outside what a PDF can number (not reachable within
    /// [`MAX_ENTRIES`]).
    #[error("the invoice PDF needs more objects than a PDF can number")]
    TooManyObjects,
}

/// The most lines plus notes one invoice PDF holds (some hundred pages).
pub const MAX_ENTRIES: usize = 10_000;

/// A4, in points.
const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const MARGIN: f32 = 56.0;
/// The lowest baseline of body text; the page footer sits below it.
const BOTTOM: f32 = MARGIN + 10.0;
const LEFT: f32 = MARGIN;
const RIGHT: f32 = PAGE_WIDTH - MARGIN;
const CONTENT_WIDTH: f32 = RIGHT - LEFT;

const TITLE_SIZE: f32 = 18.0;
const HEADING_SIZE: f32 = 14.0;
const SELLER_SIZE: f32 = 11.0;
const BODY_SIZE: f32 = 10.0;
const FOOTER_SIZE: f32 = 8.0;
/// Baseline to baseline of body text.
const LEADING: f32 = 14.0;
/// Between the description and the amount column.
const COLUMN_GAP: f32 = 16.0;
/// Where the labels of the totals start, from the right edge.
const TOTALS_WIDTH: f32 = 240.0;
/// How many lines one description may take; the last is cut with `...`.
const DESCRIPTION_LINES: usize = 3;
/// How many lines one note may take.
const NOTE_LINES: usize = 12;

const ELLIPSIS: &[u8] = b"...";

/// `document` as a PDF file.
///
/// # Errors
///
/// [`PdfError::TooManyLines`] past [`MAX_ENTRIES`] lines and notes;
/// [`PdfError::TooManyObjects`] (not reachable below that).
pub fn render(document: &InvoiceDocument) -> Result<Vec<u8>, PdfError> {
    let count = document.lines.len().saturating_add(document.notes.len());
    if count > MAX_ENTRIES {
        return Err(PdfError::TooManyLines {
            count,
            limit: MAX_ENTRIES,
        });
    }
    let pages = layout(document);
    write(document, &pages)
}

/// The two fonts, as named in every page's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn resource(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
        }
    }

    fn base_font(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"Helvetica"),
            Font::Bold => Name(b"Helvetica-Bold"),
        }
    }

    /// The advance of one WinAnsi byte, in thousandths of the font size.
    fn advance(self, byte: u8) -> u16 {
        let table = match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        };
        let ascii = match byte {
            b' '..=b'~' => byte,
            0xA0 => b' ',
            _ => base_letter(byte),
        };
        match ascii {
            b' '..=b'~' => table[usize::from(ascii - b' ')],
            // No close ASCII stand-in (€, …, —, ‰, Æ, ß, ¼, …): never narrower than this.
            _ => 1000,
        }
    }

    /// The width of `text` at `size` points.
    fn width(self, text: &[u8], size: f32) -> f32 {
        let units: u32 = text.iter().map(|&byte| u32::from(self.advance(byte))).sum();
        units as f32 * size / 1000.0
    }
}

/// Helvetica's advance widths (Adobe's AFM) of `' '..='~'` in `WinAnsiEncoding`.
#[rustfmt::skip]
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '..'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // '0'..'9'
    278, 278, 584, 584, 584, 556, 1015, // ':'..'@'
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, // 'A'..'M'
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // 'N'..'Z'
    278, 278, 278, 469, 556, 333, // '['..'`'
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, // 'a'..'m'
    556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, // 'n'..'z'
    334, 260, 334, 584, // '{'..'~'
];

/// Helvetica-Bold's advance widths of `' '..='~'` in `WinAnsiEncoding`.
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, // ' '..'/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // '0'..'9'
    333, 333, 584, 584, 584, 611, 975, // ':'..'@'
    722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, // 'A'..'M'
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // 'N'..'Z'
    333, 278, 333, 584, 556, 333, // '['..'`'
    556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, // 'a'..'m'
    611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, // 'n'..'z'
    389, 280, 389, 584, // '{'..'~'
];

/// The ASCII letter a WinAnsi accented letter is as wide as (Helvetica draws `é` as wide as
/// `e`); 0 when there is none.
fn base_letter(byte: u8) -> u8 {
    match byte {
        0xC0..=0xC5 => b'A',
        0xC7 => b'C',
        0xC8..=0xCB => b'E',
        0xCC..=0xCF => b'I',
        0xD0 => b'D',
        0xD1 => b'N',
        0xD2..=0xD6 | 0xD8 => b'O',
        0xD9..=0xDC => b'U',
        0xDD | 0x9F => b'Y',
        0xE0..=0xE5 => b'a',
        0xE7 => b'c',
        0xE8..=0xEB => b'e',
        // ì í î ï are as wide as `t` (278), wider than `i`.
        0xEC..=0xEF => b't',
        0xF1 => b'n',
        0xF2..=0xF6 | 0xF8 => b'o',
        0xF9..=0xFC => b'u',
        0xFD | 0xFF => b'y',
        0x8A => b'S',
        0x9A => b's',
        0x8E => b'Z',
        0x9E => b'z',
        0x91 | 0x92 | 0x82 => b',',
        0x93 | 0x94 | 0x84 => b'"',
        0x96 | 0xAD => b'-',
        0x95 | 0xB7 => b'.',
        _ => 0,
    }
}

/// `text` in `WinAnsiEncoding`: what it cannot show (and control characters) becomes `?`; tabs
/// and line breaks become spaces.
fn encode(text: &str) -> Vec<u8> {
    text.chars().map(win_ansi).collect()
}

fn win_ansi(c: char) -> u8 {
    match c {
        ' '..='~' | '\u{A0}'..='\u{FF}' => u8::try_from(u32::from(c)).unwrap_or(b'?'),
        '\t' | '\n' | '\r' => b' ',
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8A,
        '‹' => 0x8B,
        'Œ' => 0x8C,
        'Ž' => 0x8E,
        '\u{2018}' => 0x91,
        '\u{2019}' => 0x92,
        '\u{201C}' => 0x93,
        '\u{201D}' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9A,
        '›' => 0x9B,
        'œ' => 0x9C,
        'ž' => 0x9E,
        'Ÿ' => 0x9F,
        _ => b'?',
    }
}

fn trim_start(text: &[u8]) -> &[u8] {
    let start = text.iter().position(|&b| b != b' ').unwrap_or(text.len());
    &text[start..]
}

fn trim_end(text: &[u8]) -> &[u8] {
    let end = text.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &text[..end]
}

/// How many leading bytes of `text` are at most `width` wide at `size` points.
fn prefix_fitting(text: &[u8], font: Font, size: f32, width: f32) -> usize {
    let mut units = 0u32;
    for (index, &byte) in text.iter().enumerate() {
        units = units.saturating_add(u32::from(font.advance(byte)));
        // The same arithmetic as `Font::width`, so a prefix fits exactly when `width` says so.
        if units as f32 * size / 1000.0 > width {
            return index;
        }
    }
    text.len()
}

/// How many bytes of `text` (no leading space) go on a line `width` wide: all of it when it
/// fits, else up to the last space that fits, else as many bytes as fit (at least one).
fn fit(text: &[u8], font: Font, size: f32, width: f32) -> usize {
    let fits = prefix_fitting(text, font, size, width);
    if fits >= text.len() {
        return text.len();
    }
    // A space right after the part that fits is a break too.
    match text[..=fits].iter().rposition(|&b| b == b' ') {
        Some(space) if space > 0 => space,
        _ => fits.max(1),
    }
}

/// `text` cut to `width` with `...` when it does not fit.
fn ellipsize(text: &[u8], font: Font, size: f32, width: f32) -> Vec<u8> {
    if font.width(text, size) <= width {
        return text.to_vec();
    }
    let room = width - font.width(ELLIPSIS, size);
    let end = prefix_fitting(text, font, size, room);
    let mut cut = trim_end(&text[..end]).to_vec();
    cut.extend_from_slice(ELLIPSIS);
    cut
}

/// `text` broken into lines at most `width` wide, at most `max_lines` of them (at least 1),
/// the last ending in `...` when `text` needs more.
fn wrap(text: &[u8], font: Font, size: f32, width: f32, max_lines: usize) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut rest = trim_start(trim_end(text));
    while !rest.is_empty() {
        if lines.len() + 1 >= max_lines.max(1) {
            lines.push(ellipsize(rest, font, size, width));
            break;
        }
        let cut = fit(rest, font, size, width);
        lines.push(trim_end(&rest[..cut]).to_vec());
        rest = trim_start(&rest[cut..]);
    }
    if lines.is_empty() {
        lines.push(Vec::new());
    }
    lines
}

/// Something drawn on a page.
#[derive(Debug)]
enum Mark {
    /// One line of text, its own text object; `y` is the baseline.
    Text {
        font: Font,
        size: f32,
        x: f32,
        y: f32,
        text: Vec<u8>,
    },
    /// A thin horizontal rule across the content width.
    Rule { y: f32 },
}

/// The pages being laid out, top to bottom.
#[derive(Debug)]
struct Layout {
    pages: Vec<Vec<Mark>>,
    /// The baseline of the next line on the last page.
    y: f32,
    /// `Invoice <number> (continued)`, for pages after the first.
    continued: Vec<u8>,
    /// Whether the lines table is open: a new page repeats its header.
    in_table: bool,
    /// The description column's width.
    description_width: f32,
}

impl Layout {
    fn page(&mut self) -> &mut Vec<Mark> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn text(&mut self, font: Font, size: f32, x: f32, text: Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let y = self.y;
        self.page().push(Mark::Text {
            font,
            size,
            x,
            y,
            text,
        });
    }

    /// `text` with its right edge at the right margin.
    fn text_right(&mut self, font: Font, size: f32, text: Vec<u8>) {
        let x = RIGHT - font.width(&text, size);
        self.text(font, size, x, text);
    }

    fn rule(&mut self, offset: f32) {
        let y = self.y + offset;
        self.page().push(Mark::Rule { y });
    }

    /// Starts a new page unless `height` more points of lines fit on this one.
    fn ensure(&mut self, height: f32) {
        if self.y - height + LEADING < BOTTOM {
            self.new_page();
        }
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = PAGE_HEIGHT - MARGIN - HEADING_SIZE;
        let heading = ellipsize(&self.continued, Font::Bold, HEADING_SIZE, CONTENT_WIDTH);
        self.text(Font::Bold, HEADING_SIZE, LEFT, heading);
        self.y -= 2.0 * LEADING;
        if self.in_table {
            self.table_header();
        }
    }

    fn table_header(&mut self) {
        self.text(Font::Bold, BODY_SIZE, LEFT, b"Description".to_vec());
        self.text_right(Font::Bold, BODY_SIZE, b"Amount".to_vec());
        self.rule(-5.0);
        self.y -= LEADING + 4.0;
    }
}

/// `document` laid out on as many pages as it takes.
fn layout(document: &InvoiceDocument) -> Vec<Vec<Mark>> {
    let currency = document.currency.as_str();
    let amounts: Vec<Vec<u8>> = document
        .lines
        .iter()
        .map(|line| encode(&money::format(line.amount, currency)))
        .collect();
    let widest = amounts
        .iter()
        .map(|amount| Font::Regular.width(amount, BODY_SIZE))
        .fold(Font::Bold.width(b"Amount", BODY_SIZE), f32::max);
    let description_width = (CONTENT_WIDTH - widest - COLUMN_GAP).max(CONTENT_WIDTH / 3.0);

    let mut continued = encode(&format!("Invoice {}", document.number));
    continued.extend_from_slice(b" (continued)");
    let mut out = Layout {
        pages: vec![Vec::new()],
        y: PAGE_HEIGHT - MARGIN - TITLE_SIZE,
        continued,
        in_table: false,
        description_width,
    };

    // Title, seller, who is billed and when.
    let title = encode(&format!("Invoice {}", document.number));
    out.text(
        Font::Bold,
        TITLE_SIZE,
        LEFT,
        ellipsize(&title, Font::Bold, TITLE_SIZE, CONTENT_WIDTH),
    );
    out.y -= 2.0 * LEADING;
    let seller = encode(&document.seller);
    out.text(
        Font::Bold,
        SELLER_SIZE,
        LEFT,
        ellipsize(&seller, Font::Bold, SELLER_SIZE, CONTENT_WIDTH),
    );
    out.y -= LEADING + 4.0;
    let facts = [
        format!(
            "Billed to: {} ({})",
            document.tenant_name, document.tenant_slug
        ),
        format!("Issued: {}", document.issued_on),
        format!("Period: {}", document.period),
        format!("Status: {}", document.status),
    ];
    for fact in facts {
        let fact = ellipsize(&encode(&fact), Font::Regular, BODY_SIZE, CONTENT_WIDTH);
        out.text(Font::Regular, BODY_SIZE, LEFT, fact);
        out.y -= LEADING;
    }
    out.y -= LEADING;

    // The lines.
    out.ensure(2.0 * LEADING + 4.0);
    out.in_table = true;
    out.table_header();
    for (line, amount) in document.lines.iter().zip(amounts) {
        let description = wrap(
            &encode(&line.description),
            Font::Regular,
            BODY_SIZE,
            out.description_width,
            DESCRIPTION_LINES,
        );
        out.ensure(description.len() as f32 * LEADING);
        // The amount on the description's first line, drawn after it (reading order).
        let mut amount = Some(amount);
        for part in description {
            out.text(Font::Regular, BODY_SIZE, LEFT, part);
            if let Some(amount) = amount.take() {
                out.text_right(Font::Regular, BODY_SIZE, amount);
            }
            out.y -= LEADING;
        }
    }
    out.in_table = false;

    // The totals, kept together.
    let mut totals = vec![(Font::Regular, "Subtotal", document.subtotal)];
    if document.discount != 0 {
        totals.push((Font::Regular, "Discount", document.discount));
    }
    if document.credited != 0 {
        totals.push((Font::Regular, "Credited", document.credited));
    }
    totals.push((Font::Bold, "Total", document.total));
    out.ensure(totals.len() as f32 * LEADING + 6.0);
    out.rule(LEADING - 5.0);
    out.y -= 6.0;
    for (font, label, amount) in totals {
        out.text(
            font,
            BODY_SIZE,
            RIGHT - TOTALS_WIDTH,
            label.as_bytes().to_vec(),
        );
        out.text_right(font, BODY_SIZE, encode(&money::format(amount, currency)));
        out.y -= LEADING;
    }

    // The notes.
    if !document.notes.is_empty() {
        out.y -= LEADING;
        out.ensure(2.0 * LEADING);
        out.text(Font::Bold, BODY_SIZE, LEFT, b"Notes".to_vec());
        out.y -= LEADING;
        for note in &document.notes {
            let lines = wrap(
                &encode(note),
                Font::Regular,
                BODY_SIZE,
                CONTENT_WIDTH,
                NOTE_LINES,
            );
            out.ensure(lines.len() as f32 * LEADING);
            for line in lines {
                out.text(Font::Regular, BODY_SIZE, LEFT, line);
                out.y -= LEADING;
            }
        }
    }

    // "Page i of n" at the foot of every page.
    let count = out.pages.len();
    for (index, page) in out.pages.iter_mut().enumerate() {
        let footer = format!("Page {} of {count}", index + 1).into_bytes();
        let x = RIGHT - Font::Regular.width(&footer, FOOTER_SIZE);
        page.push(Mark::Text {
            font: Font::Regular,
            size: FOOTER_SIZE,
            x,
            y: MARGIN - 20.0,
            text: footer,
        });
    }
    out.pages
}

/// The indirect reference numbered `id`.
fn reference(id: usize) -> Result<Ref, PdfError> {
    match i32::try_from(id) {
        Ok(id) if id > 0 => Ok(Ref::new(id)),
        _ => Err(PdfError::TooManyObjects),
    }
}

/// The PDF file of laid-out `pages`.
fn write(document: &InvoiceDocument, pages: &[Vec<Mark>]) -> Result<Vec<u8>, PdfError> {
    let catalog_id = reference(1)?;
    let tree_id = reference(2)?;
    let regular_id = reference(3)?;
    let bold_id = reference(4)?;
    let info_id = reference(5)?;
    // Page i is object 6 + 2i, its content stream the next.
    let mut ids = Vec::with_capacity(pages.len());
    for index in 0..pages.len() {
        let page = index
            .checked_mul(2)
            .and_then(|n| n.checked_add(6))
            .ok_or(PdfError::TooManyObjects)?;
        ids.push((reference(page)?, reference(page.saturating_add(1))?));
    }
    let count = i32::try_from(pages.len()).map_err(|_| PdfError::TooManyObjects)?;

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(ids.iter().map(|&(page, _)| page))
        .count(count);
    for (font, id) in [(Font::Regular, regular_id), (Font::Bold, bold_id)] {
        pdf.type1_font(id)
            .base_font(font.base_font())
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let title = format!("Invoice {}", document.number);
    pdf.document_info(info_id)
        .title(TextStr(&title))
        .producer(TextStr("Plinth"));

    for (marks, &(page_id, content_id)) in pages.iter().zip(&ids) {
        {
            let mut page = pdf.page(page_id);
            page.parent(tree_id)
                .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
                .contents(content_id);
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(Font::Regular.resource(), regular_id);
            fonts.pair(Font::Bold.resource(), bold_id);
        }
        let content = draw(marks);
        pdf.stream(content_id, &content);
    }
    Ok(pdf.finish())
}

/// The content stream of one page: one text object per line of text.
fn draw(marks: &[Mark]) -> Vec<u8> {
    let mut content = Content::new();
    for mark in marks {
        match mark {
            Mark::Text {
                font,
                size,
                x,
                y,
                text,
            } => {
                content.begin_text();
                content.set_font(font.resource(), *size);
                content.next_line(*x, *y);
                content.show(Str(text));
                content.end_text();
            }
            Mark::Rule { y } => {
                content.set_line_width(0.5);
                content.move_to(LEFT, *y);
                content.line_to(RIGHT, *y);
                content.stroke();
            }
        }
    }
    content.finish().into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(lines: usize) -> InvoiceDocument {
        InvoiceDocument {
            number: "PL-000042".to_owned(),
            status: "open".to_owned(),
            issued_on: "2026-12-31".to_owned(),
            period: "2026-12".to_owned(),
            seller: "Plinth".to_owned(),
            tenant_name: "Acme Widgets".to_owned(),
            tenant_slug: "acme".to_owned(),
            currency: "USD".to_owned(),
            lines: (0..lines)
                .map(|i| DocumentLine {
                    description: format!("Plugin hello-{i} (paid plugin)"),
                    amount: 1000 + i64::try_from(i).unwrap(),
                })
                .collect(),
            subtotal: 4900,
            discount: -980,
            credited: 0,
            total: 3920,
            notes: vec!["Coupon LAUNCH20: 20% off the plan for 3 months".to_owned()],
        }
    }

    fn text_of(bytes: &[u8], pages: &[u32]) -> String {
        let pdf = lopdf::Document::load_mem(bytes).unwrap();
        pdf.extract_text(pages).unwrap()
    }

    fn page_count(bytes: &[u8]) -> usize {
        lopdf::Document::load_mem(bytes).unwrap().get_pages().len()
    }

    #[test]
    fn one_page_invoice_gives_its_text_back() {
        let mut doc = document(0);
        doc.lines = vec![
            DocumentLine {
                description: "Plan Team (2026-12)".to_owned(),
                amount: 4900,
            },
            DocumentLine {
                description: "Coupon LAUNCH20 (20% off)".to_owned(),
                amount: -980,
            },
            DocumentLine {
                description: "Invocations over the plan (12,000)".to_owned(),
                amount: 120,
            },
        ];
        doc.subtotal = 5020;
        doc.discount = -980;
        doc.credited = -500;
        doc.total = 3540;
        let bytes = render(&doc).unwrap();
        assert!(bytes.starts_with(b"%PDF-"));
        assert_eq!(page_count(&bytes), 1);

        let text = text_of(&bytes, &[1]);
        for expected in [
            "Invoice PL-000042",
            "Plinth",
            "Billed to: Acme Widgets (acme)",
            "Issued: 2026-12-31",
            "Period: 2026-12",
            "Status: open",
            "Description",
            "Amount",
            "Plan Team (2026-12)",
            "49.00 USD",
            "Coupon LAUNCH20 (20% off)",
            "-9.80 USD",
            "Invocations over the plan (12,000)",
            "1.20 USD",
            "Subtotal",
            "50.20 USD",
            "Discount",
            "Credited",
            "-5.00 USD",
            "Total",
            "35.40 USD",
            "Notes",
            "Coupon LAUNCH20: 20% off the plan for 3 months",
            "Page 1 of 1",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from {text:?}"
            );
        }
        // Each piece of text is a line of its own.
        assert!(text.lines().any(|line| line == "35.40 USD"), "{text:?}");
        assert!(!text.contains("continued"));
    }

    #[test]
    fn zero_discount_and_credit_are_left_out() {
        let mut doc = document(1);
        doc.discount = 0;
        doc.credited = 0;
        let text = text_of(&render(&doc).unwrap(), &[1]);
        assert!(!text.contains("Discount"), "{text:?}");
        assert!(!text.contains("Credited"), "{text:?}");
        assert!(text.contains("Subtotal") && text.contains("Total"));
    }

    #[test]
    fn document_info_names_the_invoice() {
        let bytes = render(&document(1)).unwrap();
        let pdf = lopdf::Document::load_mem(&bytes).unwrap();
        let info = pdf
            .trailer
            .get(b"Info")
            .and_then(lopdf::Object::as_reference)
            .unwrap();
        let info = pdf.get_dictionary(info).unwrap();
        assert_eq!(
            info.get(b"Title").unwrap().as_str().unwrap(),
            b"Invoice PL-000042"
        );
        assert_eq!(info.get(b"Producer").unwrap().as_str().unwrap(), b"Plinth");
    }

    #[test]
    fn many_lines_continue_on_more_pages() {
        let doc = document(120);
        let bytes = render(&doc).unwrap();
        let pages = page_count(&bytes);
        assert!(pages > 1, "120 lines on {pages} page(s)");

        let numbers: Vec<u32> = (1..=u32::try_from(pages).unwrap()).collect();
        let all = text_of(&bytes, &numbers);
        for line in &doc.lines {
            let amount = money::format(line.amount, "USD");
            assert!(
                all.contains(&line.description),
                "{:?} missing",
                line.description
            );
            assert!(all.contains(&amount), "{amount:?} missing");
        }
        assert!(all.contains("39.20 USD"), "the total is missing");

        let first = text_of(&bytes, &[1]);
        assert!(first.contains("Invoice PL-000042"));
        assert!(first.contains("Plugin hello-0 (paid plugin)"));
        assert!(first.contains(&format!("Page 1 of {pages}")));
        let second = text_of(&bytes, &[2]);
        assert!(
            second.contains("Invoice PL-000042 (continued)"),
            "{second:?}"
        );
        assert!(
            second.contains("Description") && second.contains("Amount"),
            "{second:?}"
        );
        assert!(second.contains(&format!("Page 2 of {pages}")));
        // A line is on one page only.
        assert!(!second.contains("Plugin hello-0 (paid plugin)"));
    }

    #[test]
    fn text_that_winansi_cannot_show_becomes_a_question_mark() {
        let mut doc = document(1);
        doc.tenant_name = "Café 東京 (Ünïcode) \\ ok".to_owned();
        doc.lines[0].description = "Plugin «größe» — 日本 (beta)".to_owned();
        let bytes = render(&doc).unwrap();
        let text = text_of(&bytes, &[1]);
        assert!(
            text.contains("Billed to: Café ?? (Ünïcode) \\ ok (acme)"),
            "{text:?}"
        );
        assert!(text.contains("Plugin «größe» — ?? (beta)"), "{text:?}");
        assert!(text.contains("10.00 USD"));
    }

    #[test]
    fn long_descriptions_wrap_then_end_in_an_ellipsis() {
        let mut doc = document(0);
        let long = "word ".repeat(400);
        doc.lines = vec![
            DocumentLine {
                description: long.clone(),
                amount: 100,
            },
            DocumentLine {
                description: "x".repeat(1000),
                amount: 200,
            },
            DocumentLine {
                description: "after".to_owned(),
                amount: 300,
            },
        ];
        let bytes = render(&doc).unwrap();
        let text = text_of(&bytes, &[1]);
        let wrapped: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("word"))
            .collect();
        assert_eq!(wrapped.len(), DESCRIPTION_LINES, "{text:?}");
        assert!(wrapped[DESCRIPTION_LINES - 1].ends_with("..."), "{text:?}");
        let cut: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("xxx"))
            .collect();
        assert_eq!(cut.len(), DESCRIPTION_LINES, "{text:?}");
        assert!(cut[DESCRIPTION_LINES - 1].ends_with("..."));
        assert!(text.contains("after") && text.contains("3.00 USD"));
    }

    #[test]
    fn wrapped_lines_fit_their_width() {
        let text = encode(&"Invocations over the plan, billed per thousand ".repeat(5));
        let lines = wrap(&text, Font::Regular, BODY_SIZE, 200.0, 100);
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(Font::Regular.width(line, BODY_SIZE) <= 200.0, "{line:?}");
            assert!(!line.starts_with(b" ") && !line.ends_with(b" "));
        }
        assert_eq!(
            wrap(b"", Font::Regular, BODY_SIZE, 200.0, 3),
            vec![Vec::<u8>::new()]
        );
        assert_eq!(
            wrap(b"short", Font::Regular, BODY_SIZE, 200.0, 3),
            vec![b"short".to_vec()]
        );
        let cut = ellipsize(&[b'W'; 100], Font::Bold, BODY_SIZE, 50.0);
        assert!(cut.ends_with(ELLIPSIS) && Font::Bold.width(&cut, BODY_SIZE) <= 50.0);
    }

    #[test]
    fn parentheses_and_backslashes_survive() {
        let mut doc = document(1);
        doc.lines[0].description = "Unbalanced ) ( paren \\ and (nested (ones))".to_owned();
        let text = text_of(&render(&doc).unwrap(), &[1]);
        assert!(
            text.contains("Unbalanced ) ( paren \\ and (nested (ones))"),
            "{text:?}"
        );
    }

    #[test]
    fn too_many_lines_are_refused() {
        let doc = document(MAX_ENTRIES + 1);
        assert!(matches!(render(&doc), Err(PdfError::TooManyLines { .. })));
    }
}
