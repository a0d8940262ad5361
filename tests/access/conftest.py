"""Fixtures shared by the access tests: the written test dataset and a reference reader over it."""

import pytest

from sensorpipe.access.dataset import SensorDataset


@pytest.fixture(scope="module")
def out(local_run):
    return local_run.output_dir


@pytest.fixture(scope="module")
def ref(out):
    return SensorDataset(out)
