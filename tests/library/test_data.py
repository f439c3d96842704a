"""Corpus, tokenizer, batching and probes: deterministic and honest."""

from __future__ import annotations

import pytest
import torch

from induction_course import data
from induction_course.probes import induction_target_mask, repeated_random_tokens


@pytest.fixture(scope="module")
def corpus():
    return data.load_corpus()


def test_corpus_is_deterministic_and_split(corpus):
    files = data.corpus_files()
    assert files == sorted(files) and len(files) > 50
    again = data._encode_split(data.load_tokenizer(), data.corpus_texts("train"), corpus.bos)
    assert torch.equal(again, corpus.train)
    assert corpus.heldout.numel() > 10_000
    assert set(data.corpus_texts("train")).isdisjoint(data.corpus_texts("heldout"))


def test_tokenizer_ships_and_round_trips(corpus):
    tok = data.load_tokenizer()
    text = "def f(self, x):\n    return self.x + x  # ünïcode\n"
    assert tok.decode(tok.encode(text).ids) == text
    assert tok.get_vocab_size() == corpus.d_vocab
    assert corpus.bos == tok.token_to_id(data.BOS_TOKEN)


def test_bad_tokenizer_file_is_reported(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid tokenizers JSON"):
        data.load_tokenizer(str(bad))
    with pytest.raises(FileNotFoundError):
        data.load_tokenizer(str(tmp_path / "missing.json"))


def test_token_pool_holds_only_tokens_seen_in_training(corpus):
    pool = corpus.token_pool()
    counts = torch.bincount(corpus.train, minlength=corpus.d_vocab)
    assert (counts[pool] >= 8).all()
    assert corpus.bos not in pool.tolist()
    assert pool.numel() > 100


def test_windows_are_seeded_and_start_with_bos(corpus):
    a = data.sample_windows(corpus.train, 4, 64, corpus.bos, torch.Generator().manual_seed(0))
    b = data.sample_windows(corpus.train, 4, 64, corpus.bos, torch.Generator().manual_seed(0))
    c = data.sample_windows(corpus.train, 4, 64, corpus.bos, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (4, 64) and (a[:, 0] == corpus.bos).all()


def test_repeated_segments_vary_in_length_and_repeat_exactly(corpus):
    pool = corpus.token_pool()
    seqs = data.repeated_segment_batch(pool, 32, 40, corpus.bos, torch.Generator().manual_seed(0), 3, 19)
    periods = set()
    for s in seqs[:, 1:]:
        period = next(p for p in range(1, 40) if torch.equal(s[p:], s[:-p]))
        periods.add(period)
        assert torch.isin(s, pool).all()
    # a fixed period would let a model predict repeats by position alone
    assert len(periods) > 5


def test_probe_follows_the_paper_protocol(corpus):
    pool = corpus.token_pool()
    probe = repeated_random_tokens(10, 25, 4, pool, corpus.bos, seed=0)
    assert probe.shape == (10, 101) and (probe[:, 0] == corpus.bos).all()
    seg = probe[:, 1:26]
    assert torch.equal(probe[:, 26:51], seg) and torch.equal(probe[:, 76:101], seg)
    assert all(len(set(row.tolist())) == 25 for row in seg)  # no repeat inside a segment
    assert torch.isin(probe[:, 1:], pool).all()
    assert torch.equal(probe, repeated_random_tokens(10, 25, 4, pool, corpus.bos, seed=0))
    with pytest.raises(ValueError, match="larger than the token pool"):
        repeated_random_tokens(1, 30, 2, torch.arange(10), None)


def test_induction_targets_point_after_the_earlier_occurrence():
    tokens = torch.tensor([[9, 1, 2, 3, 1, 2, 3]])
    mask = induction_target_mask(tokens)[0]
    # query 4 holds token 1, seen at position 1: the induction target is position 2
    assert mask[4].nonzero().flatten().tolist() == [2]
    assert mask[6].nonzero().flatten().tolist() == [4]
    assert not mask[:4].any()
