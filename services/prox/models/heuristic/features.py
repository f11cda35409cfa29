"""Quality signals computed from a page's text alone (no URL, no labels), line by line and per document.

Character classes are counted with numpy over the page's code points, so one page costs a few numpy
calls rather than a Python loop per character. The signals are mostly language-neutral (lengths,
punctuation, symbols, digits, case, repetition, position, neighbour context); the few word lists
(function words, UI words) cover several languages and scripts and are only some of the signals.
"""
from __future__ import annotations

import itertools
import re
from collections import Counter

import numpy as np

TERMINAL = frozenset(".!?。！？؟।॥…:;\"'”’»)")
BULLETS = frozenset("•·-–—*►▶▸›»>|◦▪■□●○✓✔→")
SEPARATORS = "|•·»›>/«‹→►▶▸"
COMMAS = ",，、،;；"

# Function words of the most common web languages: a line of prose contains some, a menu few.
STOP_WORDS = frozenset("""
the and of to in is that for it with as was on are this be by from or have an not which you we they but at can has
der die und das ist nicht mit von zu den ein eine sich auf für dem auch es le la les et des est une un du que pour
dans qui pas sur au avec el los las y en por con para del se lo como di il che per non della em os uma não het een
van ik op dat niet og er att och är det som på i w na że się nie и в не на что с по это как из к від та що في من على
أن إلى التي الذي عن هذا و ve bir bu ile için da de je se na za ve που και το της την
""".split())
# Function characters of scripts written without spaces (Chinese, Japanese, Korean particles).
CJK_STOP_CHARS = "的了是在和有我不这也のはがをにでと은는이가을를의에"
# Interface words: navigation, sharing, consent, accounts, footers (English plus the big European languages).
UI_WORDS = frozenset("""
cookie cookies privacy copyright © reserved login logout register subscribe newsletter share tweet facebook twitter
linkedin pinterest instagram whatsapp youtube tiktok related comment comments reply menu home contact search cart
checkout next previous prev tags tag categories category advertisement advertising sponsored print email
datenschutz impressum anmelden suche teilen kontakt startseite connexion accueil partager rechercher inicio
contacto compartir buscar accedi cerca condividi iscriviti войти поиск главная
""".split())
UI_BIGRAMS = frozenset(tuple(p.split()) for p in (
    "read more", "continue reading", "sign in", "sign up", "sign out", "log in", "log out", "skip to",
    "about us", "contact us", "follow us", "back to", "all rights", "terms of", "posted by", "posted in",
    "posted on", "share this", "leave a", "mentions légales", "aviso legal", "iniciar sesión", "see all",
    "view all", "show more", "load more", "privacy policy", "cookie policy",
))
MONTHS = frozenset("""
jan feb mar apr jun jul aug sep sept oct nov dec january february march april may june july august september
october november december januar februar märz juni juli oktober dezember janvier février mars avril mai juin
juillet août septembre octobre novembre décembre enero febrero marzo abril mayo junio julio agosto septiembre
octubre noviembre diciembre ago
""".split())
ADULT_WORDS = frozenset("porn porno xxx sex sexy nude naked escort escorts erotic casino viagra порно секс".split())
TOKEN_STRIP = ".,:;!?()[]{}\"'«»“”‘’|-–—•·*#/"
SHORT_LINE_TOKENS = 8
# Short lines that open what follows an article: comments, related links, sharing.
END_MARKERS = re.compile(
    r"comments?\b|leave a (?:reply|comment)|related (?:posts|articles|stories)|you (?:may|might) also like|"
    r"thoughts on|responses?\b|more from|read next|share this|kommentare|commentaires|comentarios|commenti|"
    r"ähnliche|articles similaires|artículos relacionados|комментари"
)
TITLE_SEPARATORS = re.compile(r"\s+[|\-–—:·•»]+\s+")

# Columns of the per-line count matrix.
(CHARS, LETTERS, DIGITS, UPPER, ASCII_PUNCT, SYMBOLS, CJK, SPACES, SEPS, COMMA_CHARS, WORDS, TITLE_WORDS,
 CJK_STOPS, LATIN) = range(14)
N_CHAR_COUNTS = 14


def _codepoint_classes(codes: np.ndarray) -> dict[int, np.ndarray]:
    """The classes that depend on the code point alone (column index → 0/1), plus "blank" and "lower"."""
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
    upper = upper_ascii | upper_other
    return {
        CHARS: ~newline, LETTERS: letters, DIGITS: digit, UPPER: upper, ASCII_PUNCT: ascii_punct,
        SYMBOLS: symbols, CJK: cjk, SPACES: space, SEPS: np.isin(codes, _SEPARATOR_CODES),
        COMMA_CHARS: np.isin(codes, _COMMA_CODES), CJK_STOPS: np.isin(codes, _CJK_STOP_CODES),
        LATIN: upper_ascii | lower_ascii | ((codes >= 0xC0) & (codes <= 0x24F)),
        _BLANK: space | newline, _LOWER: letters & ~upper,
    }


_BLANK, _LOWER = N_CHAR_COUNTS, N_CHAR_COUNTS + 1  # helper bits, not counted columns


def _class_table() -> np.ndarray:
    """Bit i of entry c: code point c is in class i. Built once (every code point), then one lookup per char."""
    codes = np.arange(0x110000, dtype=np.uint32)
    table = np.zeros(codes.size, dtype=np.uint16)
    for bit, member in _codepoint_classes(codes).items():
        table |= member.astype(np.uint16) << np.uint16(bit)
    return table


def _char_classes(codes: np.ndarray) -> np.ndarray:
    """One 0/1 column per counted class, one row per code point."""
    bits = _CLASS_TABLE[codes]
    columns = ((bits[:, None] >> _COLUMN_SHIFTS) & 1).astype(np.int32)
    blank = (bits >> _BLANK) & 1 == 1
    word_start = ~blank & np.concatenate(([True], blank[:-1]))
    next_lower = np.concatenate((((bits[1:] >> _LOWER) & 1) == 1, [False]))
    columns[:, WORDS] = word_start
    columns[:, TITLE_WORDS] = word_start & (columns[:, UPPER] == 1) & next_lower
    return columns


_SEPARATOR_CODES = np.array([ord(c) for c in SEPARATORS], dtype=np.uint32)
_COMMA_CODES = np.array([ord(c) for c in COMMAS], dtype=np.uint32)
_CJK_STOP_CODES = np.array([ord(c) for c in CJK_STOP_CHARS], dtype=np.uint32)
_CLASS_TABLE = _class_table()
_COLUMN_SHIFTS = np.arange(N_CHAR_COUNTS, dtype=np.uint16)


def char_counts(text: str) -> np.ndarray:
    """Per line of `text.split("\\n")`: the N_CHAR_COUNTS class counts (one row per line)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    newlines = np.flatnonzero(codes == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.append(newlines, codes.size)
    cumulative = np.zeros((codes.size + 1, N_CHAR_COUNTS), dtype=np.int32)
    if codes.size:
        np.cumsum(_char_classes(codes), axis=0, out=cumulative[1:])
    return (cumulative[ends] - cumulative[starts]).astype(np.float64)


# One dictionary lookup per token instead of one set lookup per word list: bit flags per list.
_STOP, _UI, _MONTH, _ADULT = 1, 2, 4, 8
_WORD_FLAGS: dict[str, int] = {}
for _flag, _words in ((_STOP, STOP_WORDS), (_UI, UI_WORDS), (_MONTH, MONTHS), (_ADULT, ADULT_WORDS)):
    for _word in _words:
        _WORD_FLAGS[_word] = _WORD_FLAGS.get(_word, 0) | _flag


def _per_line_sums(values: np.ndarray, line_ends: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments of `values`; line i owns values[line_ends[i-1]:line_ends[i]]."""
    cumulative = np.concatenate(([0], np.cumsum(values, dtype=np.int64)))
    return np.diff(cumulative[np.concatenate(([0], line_ends))])


def _word_signals(lowered_lines: list[str]) -> np.ndarray:
    """Per line: function words, interface words, month names, adult words, link-like tokens.

    Interface words of a short line (menus and buttons are short) are counted with punctuation stripped and
    two-word phrases included; of a longer line, as plain tokens."""
    token_lists = [line.split() for line in lowered_lines]
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    line_ends = np.cumsum(lengths)
    tokens = list(itertools.chain.from_iterable(token_lists))
    flags = np.fromiter(map(_WORD_FLAGS.get, tokens, itertools.repeat(0)), dtype=np.int64, count=len(tokens))
    short_line = lengths <= SHORT_LINE_TOKENS
    ui = ((flags & _UI) > 0).astype(np.int64)
    # Short lines: tokens with punctuation stripped, plus two-word phrases inside the line.
    short_tokens = [token_lists[i] for i in np.flatnonzero(short_line)]
    short_ends = np.cumsum(lengths[short_line])
    clean = [t.strip(TOKEN_STRIP) for t in itertools.chain.from_iterable(short_tokens)]
    clean_ui = np.fromiter(map(UI_WORDS.__contains__, clean), dtype=np.int64, count=len(clean))
    pairs = np.fromiter(map(UI_BIGRAMS.__contains__, zip(clean, clean[1:])), dtype=np.int64,
                        count=max(len(clean) - 1, 0))
    last_of_line = short_ends[short_ends > 0] - 1  # a pair starting there would straddle two lines
    pair_in_line = np.append(pairs, 0)
    pair_in_line[last_of_line] = 0
    ui[np.repeat(short_line, lengths)] = clean_ui + pair_in_line
    links = [("://" in line) + ("www." in line) + ("@" in line) for line in lowered_lines]
    return np.column_stack([
        _per_line_sums((flags & _STOP) > 0, line_ends),
        _per_line_sums(ui, line_ends),
        _per_line_sums((flags & _MONTH) > 0, line_ends),
        _per_line_sums((flags & _ADULT) > 0, line_ends),
        np.array(links, dtype=np.int64),
    ]).astype(np.float64).reshape(len(lowered_lines), 5)


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
        self.counts = char_counts(text)
        signals = _word_signals(text.lower().split("\n"))
        self.stop_words = signals[:, 0] + self.column(CJK_STOPS)
        self.ui_words, self.dates, self.adult, self.links = signals[:, 1], signals[:, 2], signals[:, 3], signals[:, 4]
        self.title_case = self.column(TITLE_WORDS)
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
    "paragraph_chars_before", "log_lines", "paragraph_share", "title_repeat", "after_title", "after_end_marker",
    "words_w3", "ui_w8", "bullet_w3",
)


def _title_repeats(lines: list[str]) -> np.ndarray:
    """Lines (after the first) that repeat the page title, which is the first line: the headline of the main content."""
    title = TITLE_SEPARATORS.split(lines[0].strip().lower())[0] if lines else ""
    flags = np.zeros(len(lines))
    if len(title) < 8:
        return flags
    for index, line in enumerate(lines[1:], start=1):
        text = line.strip().lower()
        if len(text) >= 8 and (text == title or (text in title and 2 * len(text) >= len(title))
                               or (title in text and len(text) <= 2 * len(title))):
            flags[index] = 1.0
    return flags


def _end_markers(lines: list[str], paragraph: np.ndarray) -> np.ndarray:
    """1 from the first comments/related-links marker line that follows the first paragraph."""
    flags = np.zeros(len(lines))
    first_paragraph = np.flatnonzero(paragraph)
    if not first_paragraph.size:
        return flags
    for index in range(int(first_paragraph[0]) + 1, len(lines)):
        line = lines[index]
        if len(line) < 60 and END_MARKERS.search(line.lower()):
            flags[index:] = 1.0
            break
    return flags


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
    title_repeat = _title_repeats(page.lines)
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
        title_repeat,
        (np.maximum.accumulate(title_repeat) if n else title_repeat),
        _end_markers(page.lines, paragraph),
        _window_mean(np.log1p(words), 3),
        _window_mean(ui_frac, 8),
        _window_mean(page.bullet, 3),
    ]
    return np.stack(columns, axis=1)


# ---------------------------------------------------------------------------------------------
# Document features (the doc scorer): whole documents of a few hundred to tens of thousands of characters,
# raw pages with menus as well as clean extracted text. Character classes through the same lookup table as the
# line features and per-line sums with `np.add.reduceat`; a few C-speed passes of Python over the lines; one
# dictionary lookup per sampled word (word frequency and word lists together).

DOC_FEATURES = (
    "log_chars", "log_words", "log_lines", "log_paragraph_words", "paragraph_word_share", "log_paragraphs",
    "log_main_block_words", "main_block_share", "log_max_line_words", "log_mean_line_words", "short_line_share",
    "terminal_line_share", "terminal_word_share", "alpha", "digit", "punct", "cjk", "script_mix",
    "stop_per_word", "ui_per_word", "links_per_word", "adult_per_word", "month_per_word", "duplicate_line_share",
    "bullet_share", "ellipsis_share", "distinct_first_200", "top_word_share", "zipf_mean", "oov_share",
    "common_share", "rare_share", "words_per_sentence", "commas_per_word", "digit_line_share",
    "currency_per_word", "first_person_plural_you",
)
# The word statistics read at most this many characters: DOC_TOKEN_WINDOWS evenly spaced windows of a longer
# document (a 15 KB raw page is sampled, so that its menus and its article are both represented).
DOC_TOKEN_CHARS = 5_000
DOC_TOKEN_WINDOWS = 4


def _token_sample(text: str) -> str:
    if len(text) <= DOC_TOKEN_CHARS:
        return text
    width = DOC_TOKEN_CHARS // DOC_TOKEN_WINDOWS
    step = (len(text) - width) / (DOC_TOKEN_WINDOWS - 1)
    # Cut each window at whitespace on both sides so that no word is split.
    pieces = []
    for k in range(DOC_TOKEN_WINDOWS):
        start = int(k * step)
        piece = text[start : start + width]
        if start > 0:
            piece = piece.partition(" ")[2]
        if start + width < len(text):
            piece = piece.rpartition(" ")[0]
        pieces.append(piece)
    return "\n".join(pieces)


# Promotional copy addresses the reader and speaks for the seller (English, the judged language, plus the
# same few words in the big European languages; a small signal among many).
_PROMO_WORDS = frozenset("""
you your you're yours our we us shop buy order free discount sale offer deal price prices shipping
ihr ihre unser unsere wir kaufen votre vos notre nos nous acheter su sus nuestro nuestra nosotros comprar
""".split())
# Word frequencies (PyPI wordfreq, "small" lists): the document's unigram "perplexity" against the common
# words of 30 languages. zipf = log10(frequency per 10^9 words); one merged table, the best zipf across
# languages, the same 12,000 commonest words of every language (English whole and the others cut at 6,000 made
# German prose look rarer than English). Built once per process (~2 s, ~300,000 words).
WORDFREQ_LANGUAGES = ("en", "ar", "bn", "ca", "cs", "da", "de", "el", "es", "fa", "fi", "fr", "he", "hi", "hu",
                      "id", "it", "ja", "ko", "nb", "nl", "pl", "pt", "ro", "ru", "sk", "sv", "tr", "uk", "zh")
WORDFREQ_TOP = 12000
_ZIPF: dict[str, int] | None = None


def zipf_table() -> dict[str, int]:
    """word → 32 × (10 × zipf frequency) + the word-list flags (_STOP, _UI, ...): one lookup per token gives
    both (ints: small ints are shared objects)."""
    global _ZIPF
    if _ZIPF is None:
        import math

        from wordfreq import get_frequency_dict

        zipf: dict[str, int] = {}
        for lang in WORDFREQ_LANGUAGES:
            frequencies = get_frequency_dict(lang, "small")
            items = sorted(frequencies.items(), key=lambda kv: (-kv[1], kv[0]))
            items = items[:WORDFREQ_TOP]
            for word, frequency in items:
                value = int(round(10 * (math.log10(frequency) + 9)))
                if value > zipf.get(word, 0):
                    zipf[word] = value
        table = {word: 32 * value for word, value in zipf.items()}
        for word, flag in list(_WORD_FLAGS.items()) + [(c, _STOP) for c in CJK_STOP_CHARS]:
            table[word] = table.get(word, 0) | flag
        _ZIPF = table
    return _ZIPF


_HAN_KANA = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SENTENCE_MARKS = (". ", "? ", "! ", ".\n", "?\n", "!\n", "。", "！", "？", "؟", "।")
_DOC_TOKEN_STRIP = TOKEN_STRIP + "0123456789%$€£&+=~"
_DOC_CLASS_BITS = (LETTERS, DIGITS, ASCII_PUNCT, SYMBOLS, CJK, SPACES, LATIN, COMMA_CHARS)
_PROMO_FLAG = 16
for _word in _PROMO_WORDS:
    _WORD_FLAGS[_word] = _WORD_FLAGS.get(_word, 0) | _PROMO_FLAG


def _doc_line_sums(bits: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Per line of the text: whitespace words, CJK characters, digits, visible characters; the page's class
    totals."""
    blank = ((bits >> _BLANK) & 1).astype(bool)
    word_start = ~blank
    word_start[1:] &= blank[:-1]
    totals = {bit: int(np.count_nonzero(bits & (1 << bit))) for bit in _DOC_CLASS_BITS}
    columns = [word_start, (bits >> CJK) & 1 if totals[CJK] else None, (bits >> DIGITS) & 1, ~blank]
    newlines = np.flatnonzero(codes == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.append(newlines, codes.size)
    per_line = np.zeros((len(starts), len(columns)))
    if codes.size:
        first = np.minimum(starts, codes.size - 1)
        empty = ends <= starts
        for j, column in enumerate(columns):
            if column is not None:
                per_line[:, j] = np.add.reduceat(column.view(np.uint8) if column.dtype == bool else
                                                 column.astype(np.uint8), first, dtype=np.int64)
        per_line[empty] = 0.0
    return per_line, totals


def doc_features(text: str) -> np.ndarray:
    """One vector per document, in DOC_FEATURES order (text only)."""
    lines = text.split("\n")
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    bits = _CLASS_TABLE[codes]
    per_line, counts = _doc_line_sums(bits, codes)
    line_words, line_cjk, line_digits, line_visible = per_line.T
    words = line_words + 0.7 * line_cjk
    chars = max(line_visible.sum(), 1.0)
    letters = max(counts[LETTERS], 1)
    stripped = [line.strip() for line in lines]
    nonblank = line_visible > 0
    n_lines = max(int(nonblank.sum()), 1)
    total_words = max(words.sum(), 1.0)
    terminal = np.fromiter((s[-1:] in TERMINAL for s in stripped), dtype=bool, count=len(lines))
    bullet = np.fromiter((s[:1] in BULLETS for s in stripped), dtype=bool, count=len(lines))
    ellipsis = sum(s.endswith(("...", "…")) for s in stripped)
    paragraph = ((words >= 12) & terminal) | (words >= 25)
    paragraph_words = words[paragraph].sum()
    # The main block: the most words in consecutive paragraphs (blank lines do not break a block).
    block_id = np.cumsum(~paragraph & nonblank)
    block_words = np.bincount(block_id[paragraph], weights=words[paragraph]) if paragraph.any() else np.zeros(1)
    best = float(block_words.max())
    line_counts = Counter(s for s in stripped if s)
    duplicates = sum(c for c in line_counts.values() if c > 1)
    # Words: function/interface/month/adult/promotional flags, word-frequency "perplexity", repetition.
    lowered = _token_sample(text).lower()
    if counts[CJK] * 5 > letters:  # Chinese/Japanese: no spaces between words, look characters up one by one
        lowered = _HAN_KANA.sub(r" \g<0> ", lowered)
    tokens = [t for t in map(str.strip, lowered.split(), itertools.repeat(_DOC_TOKEN_STRIP)) if t]
    n_tokens = n_raw = max(len(tokens), 1)
    looked_up = np.fromiter(map(zipf_table().get, tokens, itertools.repeat(0)), dtype=np.int64, count=len(tokens))
    flags = looked_up & 31
    zipf = (looked_up >> 5) / 10.0
    token_counts = Counter(tokens)
    first = tokens[:200]
    sentences = 1 + sum(map(lowered.count, _SENTENCE_MARKS))
    links = lowered.count("://") + lowered.count("www.") + lowered.count("@")
    currency = sum(map(lowered.count, "$€£¥₹"))
    digit_lines = np.count_nonzero(nonblank & (3 * line_digits >= line_visible))
    return np.array([
        np.log1p(chars),
        np.log1p(total_words),
        np.log1p(n_lines),
        np.log1p(paragraph_words),
        paragraph_words / total_words,
        np.log1p(paragraph.sum()),
        np.log1p(best),
        best / total_words,
        np.log1p(words.max(initial=0.0)),
        np.log1p(total_words / n_lines),
        ((words < 5) & nonblank).sum() / n_lines,
        terminal[nonblank].sum() / n_lines,
        words[terminal].sum() / total_words,
        counts[LETTERS] / chars,
        counts[DIGITS] / chars,
        (counts[ASCII_PUNCT] + counts[SYMBOLS]) / chars,
        counts[CJK] / chars,
        min(counts[LATIN], letters - counts[LATIN]) / letters,
        np.count_nonzero(flags & _STOP) / n_raw,
        np.count_nonzero(flags & _UI) / n_raw,
        links / n_raw,
        np.count_nonzero(flags & _ADULT) / n_raw,
        np.count_nonzero(flags & _MONTH) / n_raw,
        duplicates / n_lines,
        bullet[nonblank].sum() / n_lines,
        ellipsis / n_lines,
        len(set(first)) / max(len(first), 1),
        (token_counts.most_common(1)[0][1] / n_tokens) if tokens else 0.0,
        zipf.mean() if tokens else 0.0,
        np.count_nonzero(zipf == 0) / n_tokens,
        np.count_nonzero(zipf >= 5.5) / n_tokens,
        np.count_nonzero((zipf > 0) & (zipf < 3.5)) / n_tokens,
        np.log1p(n_raw / sentences),
        counts[COMMA_CHARS] / n_raw,
        digit_lines / n_lines,
        currency / n_raw,
        np.count_nonzero(flags & _PROMO_FLAG) / n_raw,
    ])


# The gradient-boosted line model sees the line features, the raw signals of the three lines before and after
# (so that it can learn neighbour interactions itself), and the line's size relative to its page.
SHIFTED_FEATURES = (
    "log_chars", "terminal", "stop", "ui_frac", "punct", "digit", "alpha", "links", "bullet", "log_repeats",
    "title_case", "separators", "log_words",
)
SHIFTS = (-3, -2, -1, 1, 2, 3)
PAGE_RELATIVE_FEATURES = (
    "log_chars_minus_median", "log_chars_minus_max", "words_over_max", "log_length_rank", "log_chars_w16",
    "terminal_w16", "stop_w8", "punct_w3", "log_repeats_w3", "links_w3", "page_mean_log_words",
    "page_terminal_share", "page_log_words", "words_before_share", "words_w8_over_mean",
)
MODEL_LINE_FEATURES = LINE_FEATURES + tuple(
    f"{name}@{shift:+d}" for shift in SHIFTS for name in SHIFTED_FEATURES) + PAGE_RELATIVE_FEATURES
_SHIFTED_COLUMNS = [LINE_FEATURES.index(name) for name in SHIFTED_FEATURES]


def model_line_features(first_stage: np.ndarray) -> np.ndarray:
    """One row per line, columns in MODEL_LINE_FEATURES order, from `line_features`' output."""
    column = LINE_FEATURES.index
    n = first_stage.shape[0]
    shifted = first_stage[:, _SHIFTED_COLUMNS]
    blocks = [first_stage]
    for offset in SHIFTS:
        block = np.full_like(shifted, -1.0)
        if offset > 0:
            block[:-offset] = shifted[offset:]
        else:
            block[-offset:] = shifted[:offset]
        blocks.append(block)
    if n == 0:
        return np.zeros((0, len(MODEL_LINE_FEATURES)))
    log_chars = first_stage[:, column("log_chars")]
    log_words = first_stage[:, column("log_words")]
    terminal = first_stage[:, column("terminal")]
    words = np.expm1(log_words)
    total_words = max(words.sum(), 1.0)
    rank = np.argsort(np.argsort(-words, kind="stable"), kind="stable")
    blocks.append(np.stack([
        log_chars - np.median(log_chars),
        log_chars - log_chars.max(),
        words / max(words.max(), 1.0),
        np.log1p(rank),
        _window_mean(log_chars, 16),
        _window_mean(terminal, 16),
        _window_mean(first_stage[:, column("stop")], 8),
        _window_mean(first_stage[:, column("punct")], 3),
        _window_mean(first_stage[:, column("log_repeats")], 3),
        _window_mean(first_stage[:, column("links")], 3),
        np.full(n, log_words.mean()),
        np.full(n, terminal.mean()),
        np.full(n, np.log1p(words.sum())),
        np.cumsum(words) / total_words,
        _window_mean(words, 8) / max(words.mean(), 1e-9),
    ], axis=1))
    return np.hstack(blocks)
