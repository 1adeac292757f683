import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261201)


def random_labels(rng, n_cases, readers, categories, missing=0.0):
    """{case: {reader: label}} drawn around a per-case true label, with some answers missing."""
    table = {}
    for c in range(n_cases):
        truth = rng.integers(len(categories))
        row = {}
        for r in readers:
            if rng.random() < missing:
                continue
            k = truth if rng.random() < 0.6 else rng.integers(len(categories))
            row[r] = categories[k]
        table[f"case{c}"] = row
    return table
