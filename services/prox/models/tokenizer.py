"""The Llama-2 tokenizer of the released ProX refining models, encoding exactly as the original ProX inference did.

ProX ran its models with transformers 4.39.1 + vLLM 0.4.0, and each stage encoded with a different tokenizer:
- doc stage: the *slow* `LlamaTokenizer` with `legacy=False` (`slow_encode`): SentencePiece without its dummy
  prefix, one "▁" put before the whole text, texts between special tokens that start with a space encoded behind
  an `<unk>` that is then cut off;
- chunk stage: the *fast* tokenizer that transformers 4.39 converted from `tokenizer.model` (`fast_encode`): BPE
  over merges taken from the SentencePiece vocabulary, a "▁" prepended to every text between special tokens,
  spaces turned into "▁", BOS added.
Both are rebuilt here from `tokenizer.model` with the sentencepiece and tokenizers packages alone: transformers
4.39 is not needed, and transformers 5 converts `tokenizer.model` differently ("a  b" splits otherwise).
A folder without `tokenizer.model` (a transformers 5 `save_pretrained`) is read from `tokenizer.json`'s vocabulary
and merges; the slow rule then runs on the same BPE (SentencePiece's BPE picks merges in the same order).

`slow_encode_head(text, n)` is `slow_encode(text)[:n]` from a prefix of the text: where no piece of the vocabulary
has a "▁" after another character (Llama-2's has none) and the text is not normalised, no merge can join a
character to the space after it: the text cut just before a space (after a non-space) encodes as its pieces do
alone, one after the other, so the pieces are encoded in turn until the ids are in. Other tokenizers encode the
whole text.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

SPIECE_UNDERLINE = "\u2581"
SPM_FILE, JSON_FILE = "tokenizer.model", "tokenizer.json"
SPECIAL_PIECES = ("<unk>", "<s>", "</s>")
# Appending a second normalizer_spec (ModelProto field 3) holding add_dummy_prefix=false (NormalizerSpec field 3)
# is protobuf's merge: the same edit transformers makes for legacy=False, without needing protobuf.
NO_DUMMY_PREFIX = b"\x1a\x02\x18\x00"
# Characters a normalizer (NFKC, whitespace folding) would change: SentencePiece must leave them as they are.
NORMALIZER_PROBE = "a  b\u3000c \ufb01 \u00a8x\tq\n\uff21 "
SPACE_CUT = re.compile(f"(?<=[^ {SPIECE_UNDERLINE}])[ {SPIECE_UNDERLINE}]")  # a space right after a non-space
CHARS_PER_ID_GUESS = 3  # the first piece: 3 characters per wanted id (English runs ~4), then as measured


class TokenizerLoadError(ValueError):
    """The model folder has no usable Llama tokenizer (one-line message)."""


class ProxTokenizer:
    """Encodes text as the original ProX inference did; decodes generated ids as its fast tokenizer would."""

    def __init__(self, bpe, special_tokens: Mapping[str, int], segment_encoder: Optional[Callable] = None,
                 normalizes: bool = False):
        self._bpe = bpe  # tokenizers.Tokenizer: BPE with byte fallback, no normalizer (the caller escapes)
        self.special_tokens = dict(special_tokens)
        self.unk_token_id, self.bos_token_id, self.eos_token_id = (self.special_tokens[p] for p in SPECIAL_PIECES)
        self.pad_token_id = self.unk_token_id
        self._special_split = re.compile("(" + "|".join(map(re.escape, self.special_tokens)) + ")")
        self._underline_id = bpe.token_to_id(SPIECE_UNDERLINE)
        self._encode_segment = segment_encoder or self._bpe_segment
        self._unk_length = len(self._encode_segment("<unk>"))
        self.cuts_at_spaces = not normalizes and not any(
            re.search(f"[^{SPIECE_UNDERLINE}]{SPIECE_UNDERLINE}", piece) for piece in bpe.get_vocab())

    def __len__(self) -> int:
        return self._bpe.get_vocab_size(with_added_tokens=True)

    # --- the fast rule (chunk stage, and the chunk packing's line costs) ---------------------------------
    def fast_encode(self, text: str, add_bos: bool = True) -> list[int]:
        return self.fast_encode_many([text], add_bos)[0]

    def fast_encode_many(self, texts: Sequence[str], add_bos: bool = True) -> list[list[int]]:
        """`fast_encode` of each text; the BPE runs over all their pieces at once (in parallel threads)."""
        pieces = [self._segments(text) for text in texts]
        plain = [SPIECE_UNDERLINE + p.replace(" ", SPIECE_UNDERLINE) for ps in pieces for p in ps if self._is_plain(p)]
        encoded = iter(self._bpe.encode_batch(plain, add_special_tokens=False))
        result = []
        for segments in pieces:
            ids = [self.bos_token_id] if add_bos else []
            for segment in segments:
                if segment in self.special_tokens:
                    ids.append(self.special_tokens[segment])
                elif segment:
                    ids += next(encoded).ids
            result.append(ids)
        return result

    def _is_plain(self, segment: str) -> bool:
        return bool(segment) and segment not in self.special_tokens

    # --- the slow legacy=False rule (doc stage) --------------------------------------------------------
    def slow_encode(self, text: str) -> list[int]:
        """`LlamaTokenizer(legacy=False).encode(text, add_special_tokens=False)` of transformers 4.39."""
        if not text:
            return []
        ids = self._slow_ids(SPIECE_UNDERLINE + text)
        if len(ids) > 1 and ids[0] == self._underline_id and ids[1] in self.special_tokens.values():
            ids = ids[1:]
        return ids

    def _slow_ids(self, text: str) -> list[int]:
        ids: list[int] = []
        for segment in self._segments(text.replace(SPIECE_UNDERLINE, " ")):
            if segment in self.special_tokens:
                ids.append(self.special_tokens[segment])
            elif segment:
                ids += self._slow_segment(segment)
        return ids

    def slow_encode_head(self, text: str, count: int) -> list[int]:
        """`slow_encode(text)[:count]`, encoding the text piece by piece, each cut before a space, until `count`
        ids are in (see the module's docstring for why the ids are the same)."""
        if not self.cuts_at_spaces:
            return self.slow_encode(text)[:count]
        ids: list[int] = []
        start, chars_per_id = 0, CHARS_PER_ID_GUESS
        while len(ids) < count:
            step = max(1, int((count - len(ids)) * chars_per_id * 1.05))
            cut = SPACE_CUT.search(text, start + step)
            end = cut.start() if cut else len(text)
            # A later piece starts with a space: encoded alone, it gives the ids it gets inside the whole text.
            ids += self.slow_encode(text[:end]) if start == 0 else self._slow_ids(text[start:end])
            if cut is None:
                break
            start, chars_per_id = end, end / max(1, len(ids))
        return ids[:count]

    def _slow_segment(self, segment: str) -> list[int]:
        if not segment.startswith((SPIECE_UNDERLINE, " ")):
            return self._encode_segment(segment)
        # legacy=False: encode behind "<unk>" so the leading space is not taken as a dummy prefix, then cut it.
        ids = self._encode_segment("<unk>" + segment)
        return ids[self._unk_length:] if len(ids) >= self._unk_length else ids

    def _bpe_segment(self, segment: str) -> list[int]:
        return self._bpe.encode(segment.replace(" ", SPIECE_UNDERLINE), add_special_tokens=False).ids

    def _segments(self, text: str) -> list[str]:
        return self._special_split.split(text)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._bpe.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_to_id(self, piece: str) -> Optional[int]:
        return self._bpe.token_to_id(piece)


def load_prox_tokenizer(model_dir) -> ProxTokenizer:
    """From `tokenizer.model` (the hub layout) or, without it, `tokenizer.json` (a save_pretrained layout)."""
    directory = Path(model_dir)
    if not directory.is_dir():
        raise TokenizerLoadError(f"model path {directory} does not exist or is not a directory")
    if (directory / SPM_FILE).is_file():
        return _from_sentencepiece(directory / SPM_FILE)
    if (directory / JSON_FILE).is_file():
        return _from_tokenizer_json(directory / JSON_FILE)
    raise TokenizerLoadError(f"{directory} has neither {SPM_FILE} nor {JSON_FILE} (a Llama tokenizer is needed)")


def _from_sentencepiece(path: Path) -> ProxTokenizer:
    import sentencepiece as spm

    data = path.read_bytes()
    try:
        processor = spm.SentencePieceProcessor(model_proto=data + NO_DUMMY_PREFIX)
    except (RuntimeError, OSError) as exc:
        raise TokenizerLoadError(f"{path} is not a SentencePiece model: {_first_line(exc)}") from exc
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    pieces[:3] = SPECIAL_PIECES  # as transformers' LlamaConverter names them
    scores = [0.0] * 3 + [processor.get_score(i) for i in range(3, len(pieces))]
    vocab = {piece: index for index, piece in enumerate(pieces)}
    bpe = _bpe_tokenizer(vocab, converted_merges(pieces, scores))
    normalizes = processor.normalize(NORMALIZER_PROBE) != NORMALIZER_PROBE.replace(" ", SPIECE_UNDERLINE)
    return ProxTokenizer(bpe, {p: vocab[p] for p in SPECIAL_PIECES}, lambda segment: processor.encode(segment),
                         normalizes)


def converted_merges(pieces: Sequence[str], scores: Sequence[float]) -> list[tuple[str, str]]:
    """The merges transformers 4.39's SentencePieceExtractor derives: every split of a piece into two pieces,
    split by split in (left id, right id) order, then all of them by the merged piece's score, highest first."""
    vocab = {piece: index for index, piece in enumerate(pieces)}
    ranked = []
    for piece, score in zip(pieces, scores):
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        ranked += [(left, right, score) for left, right in sorted(splits, key=lambda s: (vocab[s[0]], vocab[s[1]]))]
    ranked.sort(key=lambda merge: merge[2], reverse=True)  # stable, as the original
    return [(left, right) for left, right, _ in ranked]


def _from_tokenizer_json(path: Path) -> ProxTokenizer:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        model = spec["model"]
        vocab = model["vocab"]
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TokenizerLoadError(f"{path} is not a BPE tokenizer.json: {_first_line(exc)}") from exc
    missing = [piece for piece in SPECIAL_PIECES if piece not in vocab]
    if model.get("type") != "BPE" or missing:
        raise TokenizerLoadError(f"{path} is not a Llama BPE tokenizer (type {model.get('type')}, missing {missing})")
    return ProxTokenizer(_bpe_tokenizer(vocab, merges), {p: vocab[p] for p in SPECIAL_PIECES})


def _bpe_tokenizer(vocab: Mapping[str, int], merges: list[tuple[str, str]]):
    from tokenizers import AddedToken, Tokenizer, decoders
    from tokenizers.models import BPE

    tokenizer = Tokenizer(BPE(dict(vocab), merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tokenizer.add_special_tokens([AddedToken(piece, normalized=False, special=True) for piece in SPECIAL_PIECES])
    tokenizer.decoder = decoders.Sequence([
        decoders.Replace(SPIECE_UNDERLINE, " "), decoders.ByteFallback(), decoders.Fuse(),
        decoders.Strip(content=" ", left=1, right=0),
    ])
    return tokenizer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
