"""Device choice, seeding and thread count (robustcore.device)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from robustcore.device import configure_threads, get_device, seed_everything
from robustcore.errors import ValidationError


@pytest.fixture
def fresh_device(monkeypatch):
    """Clear get_device's cache before and after, so env changes are seen and not leaked."""
    get_device.cache_clear()
    yield monkeypatch
    get_device.cache_clear()


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def test_env_cpu(fresh_device):
    fresh_device.setenv("ROBUSTCORE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_env_is_stripped(fresh_device):
    fresh_device.setenv("ROBUSTCORE_DEVICE", "  cpu \n")
    assert get_device() == torch.device("cpu")


@pytest.mark.parametrize("bad", ["tpu", "gpu", "CPU0x"])
def test_bad_env_value(fresh_device, bad):
    fresh_device.setenv("ROBUSTCORE_DEVICE", bad)
    with pytest.raises(ValidationError) as info:
        get_device()
    msg = str(info.value)
    assert repr(bad) in msg
    assert "expected 'cpu', 'cuda', 'cuda:N' or 'mps'" in msg


@pytest.mark.parametrize("bad", ["cpux", "cpu:abc"])
def test_malformed_device_with_valid_prefix(fresh_device, bad):
    with pytest.raises(ValidationError, match="Unknown device"):
        get_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("wanted", ["cuda", "cuda:1"])
def test_cuda_unavailable(fresh_device, wanted):
    fresh_device.setenv("ROBUSTCORE_DEVICE", wanted)
    with pytest.raises(ValidationError, match="CUDA is not available here"):
        get_device()


def test_mps_unavailable(fresh_device):
    fresh_device.setattr("robustcore.device._mps_available", lambda: False)
    for wanted in ("mps", "mps:0"):
        with pytest.raises(ValidationError, match="MPS is not available here"):
            get_device(wanted)


def test_preferred_wins_over_env(fresh_device):
    fresh_device.setenv("ROBUSTCORE_DEVICE", "tpu")
    assert get_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="default is cuda on a GPU machine")
def test_default_without_env_is_cpu(fresh_device):
    fresh_device.delenv("ROBUSTCORE_DEVICE", raising=False)
    fresh_device.setattr("robustcore.device._mps_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_get_device_is_cached(fresh_device):
    fresh_device.setenv("ROBUSTCORE_DEVICE", "cpu")
    first = get_device()
    fresh_device.setenv("ROBUSTCORE_DEVICE", "tpu")
    assert get_device() is first  # cached until cache_clear
    get_device.cache_clear()
    with pytest.raises(ValidationError):
        get_device()


# -- seeding --------------------------------------------------------------------------------


def test_seed_everything_reproducible():
    gen = seed_everything(123)
    a = (torch.rand(5), np.random.rand(3), random.random(), torch.rand(3, generator=gen))
    gen = seed_everything(123)
    b = (torch.rand(5), np.random.rand(3), random.random(), torch.rand(3, generator=gen))
    assert torch.equal(a[0], b[0])
    assert np.array_equal(a[1], b[1])
    assert a[2] == b[2]
    assert torch.equal(a[3], b[3])
    seed_everything(124)
    assert not torch.equal(torch.rand(5), a[0])


def test_seed_everything_returns_independent_generator():
    gen = seed_everything(7)
    expected = torch.rand(4, generator=torch.Generator().manual_seed(7))
    torch.rand(100)  # draws from the global generator do not move the returned one
    assert torch.equal(torch.rand(4, generator=gen), expected)


def test_seed_everything_large_seed():
    seed_everything(2**32 + 5)  # NumPy only takes 32 bits; must not fail


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_seed_everything_rejects(bad):
    with pytest.raises(ValidationError, match="Seed must be a non-negative integer"):
        seed_everything(bad)


# -- threads --------------------------------------------------------------------------------


def test_configure_threads_explicit(restore_threads, monkeypatch):
    monkeypatch.setenv("ROBUSTCORE_THREADS", "2")  # explicit n wins over the env
    assert configure_threads(1) == 1
    assert torch.get_num_threads() == 1


def test_configure_threads_env(restore_threads, monkeypatch):
    monkeypatch.setenv("ROBUSTCORE_THREADS", " 2 ")
    assert configure_threads() == 2
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("ROBUSTCORE_THREADS", "1")
    assert configure_threads() == 1
    assert torch.get_num_threads() == 1


def test_configure_threads_default(restore_threads, monkeypatch):
    monkeypatch.delenv("ROBUSTCORE_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    assert configure_threads() == 2  # one core is left for the server and a second job
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert configure_threads() == 1
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert configure_threads() == 8


@pytest.mark.parametrize("bad", ["abc", "2.5", "1e2"])
def test_configure_threads_bad_env(restore_threads, monkeypatch, bad):
    monkeypatch.setenv("ROBUSTCORE_THREADS", bad)
    with pytest.raises(ValidationError, match="ROBUSTCORE_THREADS must be a positive integer"):
        configure_threads()
    assert torch.get_num_threads() == restore_threads


@pytest.mark.parametrize("env", [None, "0", "-2"])
def test_configure_threads_rejects_zero(restore_threads, monkeypatch, env):
    if env is None:
        with pytest.raises(ValidationError, match="Thread count must be at least 1, got 0"):
            configure_threads(0)
    else:
        monkeypatch.setenv("ROBUSTCORE_THREADS", env)
        with pytest.raises(ValidationError, match="Thread count must be at least 1"):
            configure_threads()
    assert torch.get_num_threads() == restore_threads


@pytest.mark.parametrize("bad", [2.5, "2", True])
def test_configure_threads_rejects_non_integers(restore_threads, bad):
    with pytest.raises(ValidationError, match="Thread count must be a whole number"):
        configure_threads(bad)
    assert torch.get_num_threads() == restore_threads


def test_fast_layout_is_channels_last_on_cpu_and_restores_the_weights() -> None:
    from robustcore.device import fast_layout, in_layout, preferred_memory_format
    from robustcore.models.architectures import small_cnn

    cpu = torch.device("cpu")
    model = small_cnn((3, 8, 8), 4).eval()
    x = torch.rand(5, 3, 8, 8)
    with torch.inference_mode():
        before = model(x)
    assert preferred_memory_format(torch.nn.Linear(3, 2), cpu) == torch.contiguous_format
    with fast_layout(model, cpu) as fmt:
        assert fmt == torch.channels_last
        assert model[3].weight.is_contiguous(memory_format=torch.channels_last)
        assert not model[3].weight.is_contiguous()
        xb = in_layout(x, fmt)
        assert xb.is_contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            inside = model(xb)
    # 2-D batches (tabular data) are left alone.
    flat = torch.rand(5, 3)
    assert in_layout(flat, torch.channels_last) is flat
    assert all(p.is_contiguous() for p in model.parameters())
    torch.testing.assert_close(inside, before, rtol=1e-5, atol=1e-5)
