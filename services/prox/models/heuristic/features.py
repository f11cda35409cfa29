"""Quality signals computed from a page's text alone (no URL, no labels), line by line and per document.

Character classes are counted with numpy over the page's code points, so one page costs a few numpy
calls rather than a Python loop per character. The signals are mostly language-neutral (lengths,
punctuation, symbols, digits, case, repetition, position, neighbour context); the few word lists
(function words, UI words) cover several languages and scripts and are only some of the signals.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

TERMINAL = frozenset(".!?。！？؟।॥…:;\"'”’»)")
BULLETS = frozenset("•·-–—*►▶▸›»>|◦▪■□●○✓✔→")
SEPARATORS = "|•·»›>/«‹→►▶▸"
COMMAS = ",，、،;；"

# Function words of the most common web languages: a line of prose contains some, a menu few.
STOP_WORDS = re.compile(
    r"(?<!\w)(?:the|and|of|to|in|is|that|for|it|with|as|was|on|are|this|be|by|from|or|have|an|not|which|you|we|"
    r"they|but|at|can|has|der|die|und|das|ist|nicht|mit|von|zu|den|ein|eine|sich|auf|für|dem|auch|es|le|la|les|"
    r"et|des|est|une|un|du|que|pour|dans|qui|pas|sur|au|avec|el|los|las|y|en|por|con|para|del|se|lo|como|di|il|"
    r"che|per|non|della|em|os|uma|não|het|een|van|ik|op|dat|niet|og|er|att|och|är|det|som|på|i|w|na|że|się|nie|"
    r"и|в|не|на|что|с|по|это|как|из|к|від|та|що|في|من|على|أن|إلى|التي|الذي|عن|هذا|و|ve|bir|bu|ile|için|da|de)(?!\w)"
    r"|[的了是在和有我不这也]|[のはがをにでと]|[은는이가을를의에]",
)
# Interface words: navigation, sharing, consent, accounts, footers (English plus the big European languages).
UI_WORDS = re.compile(
    r"cookie|privacy|copyright|©|all rights reserved|terms of (?:use|service)|sign (?:in|up|out)|log ?in|log ?out|"
    r"register|subscribe|newsletter|share|tweet|facebook|twitter|linkedin|pinterest|instagram|whatsapp|youtube|"
    r"tiktok|read more|continue reading|related|comments?\b|reply|menu|\bhome\b|contact|about us|skip to|search|"
    r"\bcart\b|checkout|follow us|\bnext\b|\bprevious\b|back to top|\btags?\b|categor|posted (?:in|by|on)|"
    r"\bby\b|advertis|sponsored|datenschutz|impressum|anmelden|suche|teilen|mentions légales|connexion|accueil|"
    r"partager|inicio|contacto|iniciar sesión|aviso legal|compartir|accedi|cerca|condividi",
)
DATES = re.compile(
    r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}\b|"
    r"\b\d{1,2}(?:st|nd|rd|th)? (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)|\b\d+ (?:min|hour|day|week|month|year)s? ago\b|"
    r"\d{4}年|\d{1,2}月|\b\d{1,2}:\d{2}\b",
)
TITLE_CASE = re.compile(r"(?<!\w)[A-ZÀ-ÞА-ЯΑ-Ω][a-zß-ÿа-яα-ω]+")
LINKISH = re.compile(r"https?://|www\.|\b[\w.+-]+@[\w-]+\.\w+|#\w+")
ADULT_WORDS = re.compile(r"porn|xxx|\bsex|nude|escort|erotic|casino|viagra|порно|секс")

# Columns of the per-line count matrix.
(CHARS, LETTERS, DIGITS, UPPER, ASCII_PUNCT, SYMBOLS, CJK, SPACES, SEPS, COMMA_CHARS, WORDS) = range(11)
N_CHAR_COUNTS = 11


def _char_classes(codes: np.ndarray) -> np.ndarray:
    """One 0/1 column per counted class, one row per code point."""
    space = (codes == 32) | (codes == 9) | (codes == 0xA0) | (codes == 0x3000) | (codes == 13)
    newline = codes == 10
    digit = (codes >= 48) & (codes <= 57)
    upper_ascii = (codes >= 65) & (codes <= 90)
    lower_ascii = (codes >= 97) & (codes <= 122)
    upper_other = ((codes >= 0xC0) & (codes <= 0xDE)) | ((codes >= 0x410) & (codes <= 0x42F)) | (
        (codes >= 0x391) & (codes <= 0x3A9)
    )
    ascii_punct = (codes >= 33) & (codes <= 126) & ~digit & ~upper_ascii & ~lower_ascii
    symbols = (
        ((codes >= 0xA1) & (codes <= 0xBF))
        | ((codes >= 0x2000) & (codes <= 0x2BFF))
        | ((codes >= 0x3000) & (codes <= 0x303F))
        | ((codes >= 0xFF00) & (codes <= 0xFF0F))
        | ((codes >= 0xE000) & (codes <= 0xF8FF))
        | (codes >= 0x1F000)
    )
    cjk = (
        ((codes >= 0x3040) & (codes <= 0x30FF))
        | ((codes >= 0x3400) & (codes <= 0x9FFF))
        | ((codes >= 0xAC00) & (codes <= 0xD7AF))
        | ((codes >= 0xF900) & (codes <= 0xFAFF))
    )
    letters = upper_ascii | lower_ascii | ((codes >= 0xC0) & ~symbols & ~space)
    seps = np.isin(codes, _SEPARATOR_CODES)
    commas = np.isin(codes, _COMMA_CODES)
    blank = space | newline
    previous_blank = np.concatenate(([True], blank[:-1]))
    word_start = ~blank & previous_blank
    return np.stack(
        [~newline, letters, digit, upper_ascii | upper_other, ascii_punct, symbols, cjk, space, seps, commas,
         word_start],
        axis=1,
    ).astype(np.int32)


_SEPARATOR_CODES = np.array([ord(c) for c in SEPARATORS], dtype=np.uint32)
_COMMA_CODES = np.array([ord(c) for c in COMMAS], dtype=np.uint32)


def line_starts(text: str) -> np.ndarray:
    """Character offset of the start of every line of `text.split("\\n")`."""
    ends = [m.start() for m in re.finditer("\n", text)]
    return np.array([0] + [end + 1 for end in ends], dtype=np.int64)


def char_counts(text: str, starts: np.ndarray) -> np.ndarray:
    """Per line: the N_CHAR_COUNTS class counts (one row per line)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if codes.size == 0:
        return np.zeros((len(starts), N_CHAR_COUNTS), dtype=np.float64)
    cumulative = np.vstack([np.zeros((1, N_CHAR_COUNTS), np.int32), np.cumsum(_char_classes(codes), axis=0)])
    ends = np.append(starts[1:] - 1, codes.size)
    return (cumulative[ends] - cumulative[starts]).astype(np.float64)


def matches_per_line(pattern: re.Pattern, text: str, starts: np.ndarray) -> np.ndarray:
    positions = [m.start() for m in pattern.finditer(text)]
    if not positions:
        return np.zeros(len(starts))
    lines = np.searchsorted(starts, positions, side="right") - 1
    return np.bincount(lines, minlength=len(starts)).astype(np.float64)


def _shape_flags(lines: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line: ends like a sentence, starts like a list item or crumb, how often the line recurs."""
    stripped = [line.strip() for line in lines]
    counts = Counter(stripped)
    terminal = np.array([s[-1:] in TERMINAL for s in stripped], dtype=np.float64)
    bullet = np.array([s[:1] in BULLETS for s in stripped], dtype=np.float64)
    repeats = np.array([counts[s] if s else 1 for s in stripped], dtype=np.float64)
    return terminal, bullet, repeats


class PageCounts:
    """The raw per-line counts of one page, shared by the line and the document features."""

    def __init__(self, text: str):
        self.lines = text.split("\n")
        starts = line_starts(text)
        lowered = text.lower()
        self.counts = char_counts(text, starts)
        self.ui_words = matches_per_line(UI_WORDS, lowered, starts)
        self.stop_words = matches_per_line(STOP_WORDS, lowered, starts)
        self.dates = matches_per_line(DATES, lowered, starts)
        self.title_case = matches_per_line(TITLE_CASE, text, starts)
        self.links = matches_per_line(LINKISH, lowered, starts)
        self.adult = matches_per_line(ADULT_WORDS, lowered, starts)
        self.terminal, self.bullet, self.repeats = _shape_flags(self.lines)

    def column(self, index: int) -> np.ndarray:
        return self.counts[:, index]

    @property
    def words(self) -> np.ndarray:
        """Whitespace words plus CJK characters (scripts written without spaces count per character)."""
        return self.column(WORDS) + self.column(CJK) * 0.7

    @property
    def visible_chars(self) -> np.ndarray:
        return self.column(CHARS) - self.column(SPACES)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return numerator / np.maximum(denominator, 1.0)


def _window_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean of `values` over [i - radius, i + radius] (clipped at the page edges)."""
    padded = np.concatenate(([0.0], np.cumsum(values)))
    n = len(values)
    index = np.arange(n)
    low = np.maximum(index - radius, 0)
    high = np.minimum(index + radius + 1, n)
    return (padded[high] - padded[low]) / (high - low)


def _distance_to_flag(flags: np.ndarray, backwards: bool) -> np.ndarray:
    """Lines to the nearest flagged line before (or after) each line; n when there is none."""
    n = len(flags)
    index = np.arange(n)
    if backwards:
        last = np.maximum.accumulate(np.where(flags, index, -n - 1))
        return np.minimum(index - last, n).astype(np.float64)
    nxt = np.minimum.accumulate(np.where(flags, index, 2 * n + 1)[::-1])[::-1]
    return np.minimum(nxt - index, n).astype(np.float64)


def _shifted(values: np.ndarray, offset: int, fill: float) -> np.ndarray:
    """values[i + offset], `fill` outside the page."""
    out = np.full_like(values, fill)
    if offset > 0:
        out[:-offset] = values[offset:]
    elif offset < 0:
        out[-offset:] = values[:offset]
    return out


LINE_FEATURES = (
    "log_chars", "log_words", "terminal", "alpha", "digit", "punct", "upper", "separators", "commas", "stop",
    "title_case", "ui_words", "ui_frac", "dates", "links", "bullet", "log_repeats", "first_line", "position",
    "chars_before", "word_length", "cjk", "prev_log_chars", "next_log_chars", "prev_terminal", "next_terminal",
    "log_chars_w1", "log_chars_w3", "log_chars_w8", "terminal_w3", "terminal_w8", "stop_w3", "ui_w3",
    "paragraph", "dist_prev_paragraph", "dist_next_paragraph", "in_paragraph_span", "paragraphs_w5",
    "paragraph_chars_before", "log_lines", "paragraph_share",
)


def line_features(page: PageCounts) -> np.ndarray:
    """One row per line, columns in LINE_FEATURES order."""
    n = len(page.lines)
    chars = page.visible_chars
    words = page.words
    log_chars = np.log1p(chars)
    stop = _ratio(page.stop_words, words)
    ui_frac = _ratio(page.ui_words, words)
    paragraph = ((words >= 12) & (page.terminal > 0)) | (words >= 25)
    before = _distance_to_flag(paragraph, backwards=True)
    after = _distance_to_flag(paragraph, backwards=False)
    paragraph_chars = np.where(paragraph, chars, 0.0)
    total_paragraph_chars = max(paragraph_chars.sum(), 1.0)
    index = np.arange(n, dtype=np.float64)
    columns = [
        log_chars,
        np.log1p(words),
        page.terminal,
        _ratio(page.column(LETTERS), chars),
        _ratio(page.column(DIGITS), chars),
        _ratio(page.column(ASCII_PUNCT) + page.column(SYMBOLS), chars),
        _ratio(page.column(UPPER), page.column(LETTERS) - page.column(CJK)),
        np.minimum(page.column(SEPS), 5),
        _ratio(page.column(COMMA_CHARS), words),
        stop,
        _ratio(page.title_case, page.column(WORDS)),
        np.minimum(page.ui_words, 3),
        ui_frac,
        np.minimum(page.dates, 2),
        np.minimum(page.links, 2),
        page.bullet,
        np.log(page.repeats),
        (index == 0).astype(np.float64),
        index / max(n - 1, 1),
        np.cumsum(chars) / max(chars.sum(), 1.0) - chars / max(chars.sum(), 1.0),
        _ratio(chars, page.column(WORDS)),
        _ratio(page.column(CJK), chars),
        _shifted(log_chars, -1, 0.0),
        _shifted(log_chars, 1, 0.0),
        _shifted(page.terminal, -1, 0.0),
        _shifted(page.terminal, 1, 0.0),
        _window_mean(log_chars, 1),
        _window_mean(log_chars, 3),
        _window_mean(log_chars, 8),
        _window_mean(page.terminal, 3),
        _window_mean(page.terminal, 8),
        _window_mean(stop, 3),
        _window_mean(ui_frac, 3),
        paragraph.astype(np.float64),
        np.log1p(before),
        np.log1p(after),
        ((before < n) & (after < n)).astype(np.float64),
        _window_mean(paragraph.astype(np.float64), 5),
        (np.cumsum(paragraph_chars) - paragraph_chars) / total_paragraph_chars,
        np.full(n, np.log1p(n)),
        np.full(n, paragraph.mean() if n else 0.0),
    ]
    return np.stack(columns, axis=1)


CONTEXT_FEATURES = (
    "logit", "mean_w1", "mean_w2", "mean_w4", "mean_w8", "max_prev3", "max_next3", "kept_share_w5",
    "position", "log_chars", "terminal",
)


def context_features(logits: np.ndarray, first_stage: np.ndarray) -> np.ndarray:
    """Second-stage inputs: a line's first-stage score beside its neighbours' (content comes in blocks)."""
    n = len(logits)
    prev_max = np.full(n, -10.0)
    next_max = np.full(n, -10.0)
    for offset in (1, 2, 3):
        prev_max = np.maximum(prev_max, _shifted(logits, -offset, -10.0))
        next_max = np.maximum(next_max, _shifted(logits, offset, -10.0))
    column = LINE_FEATURES.index
    columns = [
        logits,
        *(_window_mean(logits, radius) for radius in (1, 2, 4, 8)),
        prev_max,
        next_max,
        _window_mean((logits > 0).astype(np.float64), 5),
        first_stage[:, column("position")],
        first_stage[:, column("log_chars")],
        first_stage[:, column("terminal")],
    ]
    return np.stack(columns, axis=1)


DOC_FEATURES = (
    "log_chars", "log_words", "log_lines", "mean_line_chars", "terminal_share", "paragraph_share", "alpha",
    "digit", "punct", "symbols", "upper", "stop", "unique_words", "top_word_share", "duplicate_lines",
    "bullet_share", "ellipsis_share", "ui_per_word", "links_per_word", "cjk", "word_length", "commas_per_word",
    "separators_per_word", "title_case", "script_mix", "adult_per_word", "short_line_share",
)


def _word_statistics(text: str) -> tuple[float, float]:
    """Share of distinct words and share of the most frequent word (keyword stuffing, Gopher-style)."""
    tokens = re.findall(r"\w+", text.lower())
    if not tokens:
        return 0.0, 0.0
    counts = Counter(tokens)
    return len(counts) / len(tokens), counts.most_common(1)[0][1] / len(tokens)


def _script_mix(text: str) -> float:
    """Share of letters outside the page's dominant script family (Latin vs other): mixed or wrong language."""
    latin = len(re.findall(r"[A-Za-zÀ-ɏ]", text))
    other = len(re.findall(r"[^\W\dA-Za-zÀ-ɏ_]", text))
    total = latin + other
    return min(latin, other) / total if total else 0.0


def doc_features(text: str) -> np.ndarray:
    """One vector per document, in DOC_FEATURES order."""
    page = PageCounts(text)
    total = page.counts.sum(axis=0)
    chars = max(page.visible_chars.sum(), 1.0)
    words = max(page.words.sum(), 1.0)
    nonblank = np.array([bool(line.strip()) for line in page.lines])
    n_lines = max(nonblank.sum(), 1)
    line_words = page.words
    unique_words, top_word = _word_statistics(text)
    ellipsis = sum(line.rstrip().endswith(("...", "…")) for line in page.lines)
    return np.array([
        np.log1p(chars),
        np.log1p(words),
        np.log1p(n_lines),
        np.log1p(chars / n_lines),
        page.terminal[nonblank].sum() / n_lines,
        (((line_words >= 12) & (page.terminal > 0)) | (line_words >= 25)).sum() / n_lines,
        total[LETTERS] / chars,
        total[DIGITS] / chars,
        total[ASCII_PUNCT] / chars,
        total[SYMBOLS] / chars,
        total[UPPER] / max(total[LETTERS] - total[CJK], 1.0),
        page.stop_words.sum() / words,
        unique_words,
        top_word,
        (page.repeats[nonblank] > 1).sum() / n_lines,
        page.bullet[nonblank].sum() / n_lines,
        ellipsis / n_lines,
        page.ui_words.sum() / words,
        page.links.sum() / words,
        total[CJK] / chars,
        chars / max(total[WORDS], 1.0),
        total[COMMA_CHARS] / words,
        total[SEPS] / words,
        page.title_case.sum() / max(total[WORDS], 1.0),
        _script_mix(text),
        page.adult.sum() / words,
        ((line_words < 5) & nonblank).sum() / n_lines,
    ])
