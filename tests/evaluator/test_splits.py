"""split_cases: seeded, stratified, grouped public/private splits (property tests with hypothesis).

Bad inputs tried here: a fraction of 0 or 1, one case, one group, duplicate case ids,
strata and groups that miss cases.
"""

import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import evaluator

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FRACTIONS = st.sampled_from([0.5, 0.3, 0.25, 0.2, 0.7, 0.1])


@st.composite
def cohorts(draw, grouped=False):
    """Case ids with strata (1-4 values) and, when ``grouped``, patients of 1-6 cases."""
    n = draw(st.integers(4, 150))
    ids = [f"case-{i}" for i in range(n)]
    n_strata = draw(st.integers(1, 4))
    strata = {c: f"s{draw(st.integers(0, n_strata - 1))}" for c in ids}
    groups = None
    if grouped:
        groups, i, p = {}, 0, 0
        while i < n:
            size = draw(st.integers(1, 6))
            for c in ids[i:i + size]:
                groups[c] = f"patient-{p}"
            i, p = i + size, p + 1
        if p < 2:
            groups[ids[-1]] = "patient-last"
    return ids, strata, groups


def private_of(split):
    return {c for c, part in split.items() if part == "private"}


@SETTINGS
@given(cohorts(), FRACTIONS, st.integers(0, 2**31))
def test_without_groups_every_stratum_is_split_within_one_case(data, fraction, seed):
    ids, strata, _ = data
    split = evaluator.split_cases(ids, strata=strata, private_fraction=fraction, seed=seed)
    assert set(split) == set(ids) and set(split.values()) <= {"public", "private"}
    private = private_of(split)
    for s, n in Counter(strata.values()).items():
        taken = sum(c in private for c in ids if strata[c] == s)
        assert abs(taken - fraction * n) <= 1, (s, taken, n)
    assert abs(len(private) - fraction * len(ids)) <= 1 + len(set(strata.values())) / 2


@SETTINGS
@given(cohorts(grouped=True), FRACTIONS, st.integers(0, 2**31), st.booleans())
def test_no_group_is_in_both_parts_and_proportions_hold_to_a_group(data, fraction, seed, stratified):
    ids, strata, groups = data
    split = evaluator.split_cases(ids, strata=strata if stratified else None, groups=groups,
                                  private_fraction=fraction, seed=seed)
    parts_of = {}
    for c in ids:
        parts_of.setdefault(groups[c], set()).add(split[c])
    assert all(len(parts) == 1 for parts in parts_of.values())
    largest = max(Counter(groups.values()).values())
    assert abs(len(private_of(split)) - fraction * len(ids)) <= largest
    if stratified:
        for s, n in Counter(strata.values()).items():
            taken = sum(split[c] == "private" for c in ids if strata[c] == s)
            assert abs(taken - fraction * n) <= largest + 1


@SETTINGS
@given(cohorts(grouped=True), FRACTIONS, st.integers(0, 2**31))
def test_the_same_inputs_give_the_same_split_in_any_order(data, fraction, seed):
    ids, strata, groups = data
    first = evaluator.split_cases(ids, strata=strata, groups=groups, private_fraction=fraction, seed=seed)
    again = evaluator.split_cases(list(reversed(ids)), strata=dict(strata), groups=dict(groups),
                                  private_fraction=fraction, seed=seed)
    assert first == again


def test_the_seed_changes_the_split():
    ids = [f"c{i}" for i in range(200)]
    splits = {tuple(sorted(private_of(evaluator.split_cases(ids, seed=s)))) for s in range(5)}
    assert len(splits) == 5


def test_it_is_better_balanced_than_scikit_learns_stratified_group_kfold():
    from sklearn.model_selection import StratifiedGroupKFold

    def imbalance(ids, strata, private):
        return sum(abs(sum(c in private for c in ids if strata[c] == s) - 0.5 * n)
                   for s, n in Counter(strata.values()).items())

    rng = np.random.default_rng(0)
    ours = theirs = 0.0
    for trial in range(60):
        n = int(rng.integers(10, 200))
        ids = [f"c{i}" for i in range(n)]
        groups = {c: f"p{rng.integers(0, max(2, n // int(rng.integers(1, 5))))}" for c in ids}
        strata = {c: str(rng.integers(0, 3)) for c in ids}
        ours += imbalance(ids, strata, private_of(evaluator.split_cases(ids, strata=strata, groups=groups, seed=trial)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            folds = StratifiedGroupKFold(2, shuffle=True, random_state=trial)
            test = next(folds.split(np.zeros(n), [strata[c] for c in ids], [groups[c] for c in ids]))[1]
        theirs += imbalance(ids, strata, {ids[i] for i in test})
    assert ours < theirs / 2


@pytest.mark.parametrize("kwargs, message", [
    ({"case_ids": ["a", "b"], "private_fraction": 0}, "strictly between 0 and 1"),
    ({"case_ids": ["a", "b"], "private_fraction": 1.0}, "strictly between 0 and 1"),
    ({"case_ids": ["a"]}, "cannot split 1 case"),
    ({"case_ids": ["a", "b"], "groups": {"a": "p", "b": "p"}}, "cannot split 1 group"),
    ({"case_ids": ["a", "a", "b"]}, "duplicates"),
    ({"case_ids": ["a", "b", "c"], "strata": {"a": "1"}}, "strata has no value for 2 of the 3 cases"),
    ({"case_ids": ["a", "b"], "groups": {"b": "p"}}, "groups has no value for 1 of the 2 cases"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluator.split_cases(**kwargs)


def test_the_truths_strata_feed_the_split(write):
    truth = write("t.csv", "case_id,label\n" + "".join(f"c{i},{int(i < 10)}\n" for i in range(40)))
    info = evaluator.describe_truth("classification", truth)
    split = evaluator.split_cases(info["case_ids"], strata=info["strata"], seed=7)
    assert sum(split[f"c{i}"] == "private" for i in range(10)) == 5
    assert sum(part == "private" for part in split.values()) == 20
