"""The embedded corpus, the shipped tokenizer, and batching.

The default corpus needs no download: it is the source of the Python standard library of the
running interpreter (the top-level ``*.py`` modules, read in sorted order, so the same
interpreter always yields the same text). Code is an excellent corpus for induction: names,
calls and phrases recur inside a file, which is exactly the ``[A][B] ... [A] -> [B]`` pattern.
Every 10th file is held out; the held-out text is where the in-context-learning score is
measured.

The tokenizer is a byte-level BPE trained by this project on that corpus
(:func:`train_tokenizer`) and shipped as ``tokenizer.json`` in ``data/``, so token ids do not
depend on the interpreter version.
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from induction_course.paths import data_dir

BOS_TOKEN = "<|bos|>"
HELD_OUT_EVERY = 10


def corpus_files() -> list[Path]:
    """The standard-library modules that make up the corpus, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if p.is_file())
    if not files:
        raise FileNotFoundError(
            f"no Python source found under {root}; the embedded corpus needs the standard "
            "library's .py files (some minimal Python images strip them)"
        )
    return files


@lru_cache(maxsize=2)
def corpus_texts(split: str) -> tuple[str, ...]:
    """The texts of the ``'train'`` or ``'heldout'`` files."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    texts = []
    for i, path in enumerate(corpus_files()):
        is_heldout = i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
        if is_heldout == (split == "heldout"):
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return tuple(texts)


def train_tokenizer(vocab_size: int = 300):
    """Train the byte-level BPE on the training split (run once; the result is shipped)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_texts("train"), trainer=trainer)
    return tok


@lru_cache(maxsize=4)
def load_tokenizer(path: str | None = None):
    """The shipped tokenizer (``data/tokenizer.json``) or the one at ``path``."""
    from tokenizers import Tokenizer

    file = Path(path) if path else data_dir() / "tokenizer.json"
    if not file.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {file}")
    try:
        return Tokenizer.from_file(str(file))
    except Exception as exc:  # tokenizers raises its own exception types
        raise ValueError(f"{file} is not a valid tokenizers JSON file: {exc}") from None


def bos_id(tokenizer=None) -> int:
    tokenizer = tokenizer or load_tokenizer()
    tid = tokenizer.token_to_id(BOS_TOKEN)
    if tid is None:
        raise ValueError(f"the tokenizer has no {BOS_TOKEN} token")
    return tid


@dataclass(frozen=True)
class Corpus:
    """The tokenized corpus: one long stream per split, files separated by BOS."""

    train: torch.Tensor  # [n_train_tokens] int64
    heldout: torch.Tensor  # [n_heldout_tokens] int64
    bos: int
    d_vocab: int
    fingerprint: str  # sha256 of the text, so a run records exactly what it saw

    def token_pool(self, min_count: int = 8) -> torch.Tensor:
        """Ids that occur at least ``min_count`` times in the training stream (BOS excluded).

        Probes draw from this pool: a token the model never saw has an untrained embedding
        and would make the probe measure something other than induction."""
        counts = torch.bincount(self.train, minlength=self.d_vocab)
        counts[self.bos] = 0
        return torch.nonzero(counts >= min_count).flatten()


def _encode_split(tokenizer, texts: tuple[str, ...], bos: int) -> torch.Tensor:
    ids: list[int] = []
    for enc in tokenizer.encode_batch(list(texts)):
        ids.append(bos)
        ids.extend(enc.ids)
    return torch.tensor(ids, dtype=torch.long)


@lru_cache(maxsize=1)
def load_corpus() -> Corpus:
    tok = load_tokenizer()
    bos = bos_id(tok)
    train_texts, heldout_texts = corpus_texts("train"), corpus_texts("heldout")
    digest = hashlib.sha256()
    for t in train_texts + heldout_texts:
        digest.update(t.encode("utf-8", errors="replace"))
    return Corpus(
        train=_encode_split(tok, train_texts, bos),
        heldout=_encode_split(tok, heldout_texts, bos),
        bos=bos,
        d_vocab=tok.get_vocab_size(),
        fingerprint=digest.hexdigest()[:16],
    )


def sample_windows(
    stream: torch.Tensor, batch_size: int, n_ctx: int, bos: int, generator: torch.Generator
) -> torch.Tensor:
    """``[batch_size, n_ctx]`` random windows of ``stream``, each starting with BOS.

    The BOS gives every sequence the same first token, which heads use as a resting place
    ("attend to BOS" = do nothing), as in the paper's models."""
    if stream.numel() < n_ctx:
        raise ValueError(f"stream of {stream.numel()} tokens is shorter than n_ctx={n_ctx}")
    starts = torch.randint(0, stream.numel() - n_ctx + 1, (batch_size,), generator=generator)
    idx = starts[:, None] + torch.arange(n_ctx - 1)[None, :]
    windows = stream[idx]
    return torch.cat([torch.full((batch_size, 1), bos, dtype=torch.long), windows], dim=1)


def repeated_segment_batch(
    token_pool: torch.Tensor,
    batch_size: int,
    n_ctx: int,
    bos: int,
    generator: torch.Generator,
    min_len: int = 4,
    max_len: int | None = None,
) -> torch.Tensor:
    """``[batch_size, n_ctx]`` sequences made of random segments, each repeated until the
    context is full, with a different segment length per sequence.

    Varying the length matters: with one fixed length the model can predict a repeat by
    attending a fixed distance back (a positional shortcut) instead of by matching tokens."""
    max_len = max_len or (n_ctx - 1) // 2
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    body = n_ctx - 1
    lengths = torch.randint(min_len, max_len + 1, (batch_size,), generator=generator)
    draws = torch.randint(0, token_pool.numel(), (batch_size, max_len), generator=generator)
    segments = token_pool[draws]  # [batch, max_len]
    pos = torch.arange(body)[None, :] % lengths[:, None]  # where each position reads in its segment
    seqs = segments.gather(1, pos)
    return torch.cat([torch.full((batch_size, 1), bos, dtype=torch.long), seqs], dim=1)
