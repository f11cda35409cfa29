"""The `heuristic` backend: the committed scorers write real ProX programs, like the refining LMs do."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from prox.executor.program import chunk_program, removal_runs
from prox_proto import ModelInfo
from prox_proto.triton import CHUNK_MODEL, DOC_MODEL

from ..backends import ChunkDecision, DocDecision
from .features import zipf_table
from .scorer import load_artefact

# A UI fragment glued to the end of a content line by the page's HTML-to-text step. Only these exact
# shapes are normalised away: the rest of the line must be a real sentence (>= 40 characters before it).
GLUED_UI_TAIL = re.compile(
    r"(?<=.{40})(\s*(?:\[edit\]|\[\d+\]|Read more|Read More|Continue reading|Click here to read more)\s*[»›→…\.]*)$"
)


# The executor drops a page that keeps <= 5 % of its words. When the lines above the threshold hold less than
# this share of the words, the scorer is unsure rather than sure: the writer retries at half the threshold.
RESCUE_WORD_SHARE = 0.1


def kept_lines(lines: Sequence[str], probabilities: np.ndarray, threshold: float) -> np.ndarray:
    kept = probabilities >= threshold
    words = np.array([len(line.split()) for line in lines])
    if words[kept].sum() < RESCUE_WORD_SHARE * words.sum():
        kept = probabilities >= threshold / 2
    return kept


def expected_f1_lines(probabilities: np.ndarray, words: np.ndarray) -> np.ndarray:
    """The lines to keep that maximise the page's expected word-level F1 under the line probabilities.

    Keeping the k most probable lines gives, in expectation, 2·Σ_kept p·w / (Σ_kept w + Σ_all p·w) (words w):
    a long unsure line is kept only when its probability beats the F1 reachable without it. No tuned threshold.
    """
    n = len(probabilities)
    kept = np.zeros(n, dtype=bool)
    if n == 0:
        return kept
    order = np.argsort(-probabilities, kind="stable")
    expected_hits = np.cumsum(probabilities[order] * words[order])
    kept_words = np.cumsum(words[order])
    f1 = 2 * expected_hits / np.maximum(kept_words + (probabilities * words).sum(), 1e-9)
    kept[order[: int(np.argmax(f1)) + 1]] = True
    return kept


def keep_edge_paragraphs(kept: np.ndarray, words: np.ndarray, paragraph: np.ndarray) -> np.ndarray:
    """Keep the page's first (last) non-empty line when it is a paragraph right before (after) a kept line.

    Pages scraped whole end in footers, so the model distrusts a page's last lines; on an already clean text
    (an article alone) that would cut its last paragraph. No effect on the WCXB cross-validation."""
    kept = kept.copy()
    nonempty = np.flatnonzero(words > 0)
    if nonempty.size >= 2:
        for edge, neighbour in ((nonempty[0], nonempty[1]), (nonempty[-1], nonempty[-2])):
            if not kept[edge] and paragraph[edge] and kept[neighbour]:
                kept[edge] = True
    return kept


# An unsure paragraph right next to kept content is kept from this probability on (the model distrusts the first
# paragraph after a menu and the last one before a footer). Neutral on the WCXB cross-validation.
ADJACENT_PARAGRAPH_MIN = 0.35


def keep_adjacent_paragraphs(kept: np.ndarray, probabilities: np.ndarray, words: np.ndarray,
                             paragraph: np.ndarray) -> np.ndarray:
    """Extend each kept run by one non-empty line on either side when that line is a paragraph with
    P >= ADJACENT_PARAGRAPH_MIN."""
    out = kept.copy()
    nonempty = np.flatnonzero(words > 0)
    for a, b in zip(nonempty[:-1], nonempty[1:]):
        if kept[a] and not kept[b] and paragraph[b] and probabilities[b] >= ADJACENT_PARAGRAPH_MIN:
            out[b] = True
        if kept[b] and not kept[a] and paragraph[a] and probabilities[a] >= ADJACENT_PARAGRAPH_MIN:
            out[a] = True
    return out


# Below this probability on every line, and without a single paragraph, a page has no main content (a bare
# link list, a login wall): everything goes and the executor drops the page. On WCXB the empty-gold pages are
# like that; any value in 0.3-0.5 gives the same cross-validation, and it empties 2 of the 4,219 clean HPLT
# excerpts (whose lines score low in languages the model rarely saw, but which have paragraphs).
NO_CONTENT_MAX_P = 0.3


def has_main_content(probabilities: np.ndarray, paragraph: np.ndarray) -> bool:
    return bool(paragraph.any()) or probabilities.max(initial=0.0) >= NO_CONTENT_MAX_P


# Every alternative of GLUED_UI_TAIL contains one of these: a cheap test before the look-behind expression.
_TAIL_HINT = re.compile(r"\[|Read [mM]ore|Continue reading|Click here to read more")


def glued_tails(lines: Sequence[str], kept: np.ndarray) -> list[str]:
    """Fragments safe to cut: the match is unique in the kept text, so the executor edits only that line."""
    candidates = [line for line, keep in zip(lines, kept) if keep and _TAIL_HINT.search(line)]
    matches = [m.group(1) for m in map(GLUED_UI_TAIL.search, candidates) if m]
    if not matches:
        return []
    kept_text = "\n".join(line for line, keep in zip(lines, kept) if keep)
    return [tail for tail in matches if kept_text.count(tail) == 1]


def line_program(lines: Sequence[str], kept: np.ndarray) -> str:
    """The chunk program that keeps the `kept` lines (and cuts glued UI tails from them)."""
    return chunk_program(removal_runs(~kept), [(tail, "") for tail in glued_tails(lines, kept)])


class HeuristicChunkWriter:
    """Removes runs of lines the line scorer judges boilerplate; one chunk per document."""

    def __init__(self, model_path: str | None = None, threshold: float | None = None, **options):
        artefact = load_artefact(model_path)
        self.scorer = artefact.line
        # None: keep the lines that maximise the expected word-level F1; a number: a fixed probability threshold.
        self.threshold = None if threshold is None else float(threshold)
        self.info = ModelInfo(name=CHUNK_MODEL, version=artefact.version, backend="heuristic")

    def decide(self, text: str) -> ChunkDecision:
        lines = text.split("\n")
        probabilities, words, paragraph = self.scorer.scored_lines(text)
        if not has_main_content(probabilities, paragraph):
            kept = np.zeros(len(lines), dtype=bool)
        elif self.threshold is None:
            kept = keep_edge_paragraphs(expected_f1_lines(probabilities, words), words, paragraph)
            kept = keep_adjacent_paragraphs(kept, probabilities, words, paragraph)
        else:
            kept = kept_lines(lines, probabilities, self.threshold)
        return ChunkDecision(line_program(lines, kept), [(0, len(lines) - 1)])

    def write(self, texts: Sequence[str]) -> list[ChunkDecision]:
        return [self.decide(text) for text in texts]


class HeuristicDocWriter:
    """`keep_doc()` / `drop_doc()` from the document scorer's keep probability."""

    def __init__(self, model_path: str | None = None, threshold: float = 0.5, **options):
        artefact = load_artefact(model_path)
        self.scorer = artefact.doc
        zipf_table()  # build the word-frequency table now (about a second), not on the first request
        self.threshold = float(threshold)
        self.info = ModelInfo(name=DOC_MODEL, version=artefact.version, backend="heuristic")

    def write(self, texts: Sequence[str]) -> list[DocDecision]:
        probabilities = self.scorer.keep_probabilities(list(texts))
        return [
            DocDecision("keep_doc()" if p >= self.threshold else "drop_doc()", float(p)) for p in probabilities
        ]
