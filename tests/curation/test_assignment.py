"""Assignment: balance and "never the same case twice to one reader" as properties (hypothesis)."""

import math
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

import curation


@st.composite
def assignment_problems(draw):
    n_readers = draw(st.integers(1, 8))
    readers = [f"reader{i}" for i in range(n_readers)]
    cases = [f"2.25.{i}" for i in range(draw(st.integers(1, 60)))]
    per_case = draw(st.integers(1, n_readers))
    weights = draw(st.one_of(st.none(), st.fixed_dictionaries(
        {r: st.floats(0.1, 10, allow_nan=False) for r in readers})))
    fraction = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    return cases, readers, per_case, weights, fraction, seed


@settings(max_examples=300, deadline=None)
@given(assignment_problems())
def test_every_case_gets_its_readers_and_no_reader_reads_a_case_twice(problem):
    cases, readers, per_case, weights, fraction, seed = problem
    queues = curation.assign(cases, readers, per_case, weights=weights, reread_fraction=fraction, seed=seed)
    assert set(queues) == set(readers)
    readers_of_case = Counter()
    for reader, queue in queues.items():
        first = [c for c, again in queue if not again]
        again = [c for c, is_reread in queue if is_reread]
        assert len(first) == len(set(first)), f"{reader} got a case twice"
        assert len(again) == len(set(again)), f"{reader} re-reads a case twice"
        assert set(again) <= set(first), f"{reader} re-reads a case they never read"
        assert len(again) == round(fraction * len(first))
        assert all(not is_reread for _, is_reread in queue[:len(first)]), "re-reads come after the first reads"
        readers_of_case.update(first)
    assert readers_of_case == Counter({c: per_case for c in cases})


@settings(max_examples=300, deadline=None)
@given(assignment_problems())
def test_no_reader_gets_more_than_the_ceiling_of_their_weighted_share_plus_one(problem):
    cases, readers, per_case, weights, fraction, seed = problem
    queues = curation.assign(cases, readers, per_case, weights=weights, reread_fraction=fraction, seed=seed)
    w = weights or dict.fromkeys(readers, 1.0)
    total = len(cases) * per_case
    shares = {r: total * w[r] / sum(w.values()) for r in readers}
    for reader, queue in queues.items():
        first = sum(1 for _, again in queue if not again)
        assert first <= len(cases)
        if max(shares.values()) <= len(cases):
            assert first <= math.ceil(shares[reader]) + 1
        elif shares[reader] >= len(cases):
            # a share above every case is capped at every case; the rest go to the others
            assert first == len(cases)


@settings(max_examples=200, deadline=None)
@given(assignment_problems())
def test_quotas_add_up_to_every_read_and_equal_weights_differ_by_at_most_one(problem):
    cases, readers, per_case, weights, _, _ = problem
    quotas = curation.reader_quotas(len(cases), readers, per_case, weights)
    assert sum(quotas.values()) == len(cases) * per_case
    if weights is None:
        assert max(quotas.values()) - min(quotas.values()) <= 1


def test_weights_are_followed_as_far_as_never_twice_allows():
    cases = [f"c{i}" for i in range(100)]
    # 2 readers per case, weights 3:1:1:1 → shares 100, 33.3, 33.3, 33.3 (reader a is capped at 100)
    queues = curation.assign(cases, ["a", "b", "c", "d"], 2, weights={"a": 3, "b": 1, "c": 1, "d": 1})
    counts = {r: len(q) for r, q in queues.items()}
    assert counts["a"] == 100 and sorted(counts[r] for r in "bcd") == [33, 33, 34]
    # weights 3:1 among 4 with 1 reader per case → shares 50, 16.7, 16.7, 16.7
    queues = curation.assign(cases, ["a", "b", "c", "d"], 1, weights={"a": 3, "b": 1, "c": 1, "d": 1})
    assert len(queues["a"]) == 50 and sorted(len(queues[r]) for r in "bcd") == [16, 17, 17]


def test_the_seed_decides_the_queues():
    cases, readers = [f"c{i}" for i in range(30)], ["a", "b", "c"]
    assert curation.assign(cases, readers, 2, seed=7) == curation.assign(cases, readers, 2, seed=7)
    assert curation.assign(cases, readers, 2, seed=7) != curation.assign(cases, readers, 2, seed=8)


def test_pairs_of_readers_are_mixed_not_fixed():
    cases, readers = [f"c{i}" for i in range(300)], [f"r{i}" for i in range(6)]
    queues = curation.assign(cases, readers, 2, seed=3)
    pairs = Counter()
    owners = {}
    for reader, queue in queues.items():
        for c, _ in queue:
            owners.setdefault(c, []).append(reader)
    pairs.update(tuple(sorted(o)) for o in owners.values())
    assert len(pairs) == 15  # every one of the 15 pairs of 6 readers shares some cases


@pytest.mark.parametrize("args, kwargs, message", [
    ((["c1", "c1"], ["a"], 1), {}, "case 'c1' is listed twice"),
    ((["c1"], ["a", "a"], 1), {}, "reader 'a' is listed twice"),
    ((["c1"], ["a", "b"], 3), {}, "only 2 readers"),
    ((["c1"], ["a"], 0), {}, "positive integer"),
    (([], ["a"], 1), {}, "no cases"),
    ((["c1"], [], 1), {}, "no readers"),
    ((["c1"], ["a", "b"], 1), {"weights": {"a": 1}}, "reader 'b' has no weight"),
    ((["c1"], ["a"], 1), {"weights": {"a": 0}}, "reader 'a': the weight must be a positive number"),
    ((["c1"], ["a"], 1), {"weights": {"a": 1, "z": 1}}, "reader 'z' has a weight but is not among"),
    ((["c1"], ["a"], 1), {"reread_fraction": 1.5}, "reread_fraction"),
])
def test_bad_assignment_requests_are_refused(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        curation.assign(*args, **kwargs)
