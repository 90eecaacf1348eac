"""Run these tests on one torch thread: on a shared 2-core box (or under pytest-xdist),
two OpenMP threads per process wait on each other and small ops get ~30x slower."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
