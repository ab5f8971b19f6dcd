"""A short chaos soak on each engine (chaos.py): random kills, stops, shutdowns, database
trouble and cancellations while jobs keep arriving, then the Jepsen checker over every
job. The seed is fixed so a failure can be replayed: ``python tests/e2e/chaos.py --seed``."""

from __future__ import annotations

import pytest
from chaos import soak

from jobtui.models import Job

pytestmark = pytest.mark.timeout(150)

SEED = 20261130
SECONDS = 12.0


def test_every_job_ends_once_through_random_faults(cluster):
    chaos = soak(cluster, SECONDS, SEED)
    faults = set(chaos.done) - {"enqueued"}
    assert len(faults) >= 4, f"too few kinds of fault to mean much: {chaos.done}"
    assert chaos.done["enqueued"] >= 100
    keyed = Job.select().where(Job.fair_key.is_null(False)).count()
    assert keyed >= 20, f"too few fair-keyed jobs to mean much: {keyed}"  # fairness.py
