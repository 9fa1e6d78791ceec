import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tests use tiny tensors, where intra-op threads only add overhead, and
    on a loaded 2-core machine oversubscribed threads slow them by 100x."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def denormals_not_flushed():
    """A search or training run in-process flushes subnormal floats to zero
    (engine.common.flush_denormals), a process-wide CPU mode under which
    hypothesis refuses to generate floats; each test ends with it off."""
    yield
    torch.set_flush_denormal(False)


@pytest.fixture
def float64():
    """Tensors created in the test default to float64 (exactness checks)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)
