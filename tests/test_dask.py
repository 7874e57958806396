"""Batches on Dask (``chebpan[dask]``): chunks solved on a 2-process ``LocalCluster``.

The results must be the in-process batch's, bit for bit: every instance is solved
by the same code on the same values, whichever chunk (and worker) holds it.
"""

import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import chebpan
from conftest import needs_gpu

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


def lorenz(t, y, rho):
    return np.stack([10 * (y[1] - y[0]), y[0] * (rho - y[2]) - y[1],
                     y[0] * y[1] - 8 / 3 * y[2]])


def blow_up(t, y, power):
    """y' = y**power: finite for power 0 (y = 1 + t), a pole at t = 1 for power 2."""
    return y ** power


def slow_decay(t, y, rate):
    time.sleep(0.02)
    return -rate * y


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def lorenz_batch(k):
    rng = np.random.default_rng(7)
    return rng.uniform(-10, 10, (k, 3)), rng.uniform(20, 30, k)


def assert_same(result, expected):
    assert isinstance(result.y, type(expected.y))
    np.testing.assert_array_equal(result.y, expected.y)
    np.testing.assert_array_equal(result.status, expected.status)
    assert result.message == expected.message
    assert result.success == expected.success
    for name in ("nsegments", "nrejected", "depth"):
        np.testing.assert_array_equal(result.per_instance[name], expected.per_instance[name])


def test_a_chunk_of_one_instance_stays_in_lock_step(client):
    """A chunk of one instance of a larger Dask batch is solved in lock step, as in the
    batch solved whole (where a batch of one would be a single solve), and a Dask batch
    of one is the in-process batch of one: bit for bit both."""
    y0, rho = lorenz_batch(5)
    t_eval = [0.5, 1.0]
    options = dict(vectorized=True, rtol=1e-8, atol=1e-8, t_eval=t_eval)
    expected = chebpan.solve_ivp_batch(lorenz, (0, 1), y0, batch_args=(rho,), **options)
    lazy = chebpan.solve_ivp_batch(lorenz, (0, 1), da.from_array(y0, chunks=((2, 2, 1), 3)),
                                   batch_args=(da.from_array(rho, chunks=((2, 2, 1),)),),
                                   **options)
    assert_same(lazy.compute(), expected)
    one = chebpan.solve_ivp_batch(lorenz, (0, 1), y0[:1], batch_args=(rho[:1],), **options)
    lazy = chebpan.solve_ivp_batch(lorenz, (0, 1), da.from_array(y0[:1], chunks=1),
                                   batch_args=(da.from_array(rho[:1], chunks=1),), **options)
    assert_same(lazy.compute(), one)


def test_bit_for_bit_with_the_in_process_batch(client):
    y0, rho = lorenz_batch(120)
    spans = np.stack([np.zeros(120), np.linspace(1.0, 2.0, 120)], axis=1)
    t_eval = spans[:, 1:] * np.array([0.25, 0.5, 1.0])
    options = dict(vectorized=True, rtol=1e-8, atol=1e-8)
    expected = chebpan.solve_ivp_batch(lorenz, spans, y0, t_eval=t_eval, batch_args=(rho,),
                                       **options)
    lazy = chebpan.solve_ivp_batch(lorenz, da.from_array(spans, chunks=(50, 2)),
                                   da.from_array(y0, chunks=(50, 1)),
                                   t_eval=da.from_array(t_eval, chunks=(25, 3)),
                                   batch_args=(da.from_array(rho, chunks=40),), **options)
    assert isinstance(lazy.y, da.Array) and isinstance(lazy.status, da.Array)
    assert lazy.y.shape == (120, 3, 3) and lazy.y.chunks[0] == (50, 50, 20)
    assert "not computed" in repr(lazy)
    result = lazy.compute()
    assert_same(result, expected)
    assert result.success and result.nfev > 0
    # (a NumPy y0 with a Dask batch argument is a Dask batch too)
    shared = chebpan.solve_ivp_batch(lorenz, (0, 1), y0, t_eval=[1.0],
                                     batch_args=(da.from_array(rho, chunks=60),), **options)
    assert_same(shared.compute(), chebpan.solve_ivp_batch(
        lorenz, (0, 1), y0, t_eval=[1.0], batch_args=(rho,), **options))


def test_a_failing_instance_is_a_row_not_a_failed_job(client):
    power = np.array([0.0, 0.0, 2.0, 0.0, 2.0, 0.0])
    y0 = np.ones((6, 1))
    options = dict(vectorized=True, t_eval=[0.5, 2.0], rtol=1e-8, atol=1e-10)
    expected = chebpan.solve_ivp_batch(blow_up, (0, 2), y0, batch_args=(power,), **options)
    result = chebpan.solve_ivp_batch(blow_up, (0, 2), da.from_array(y0, chunks=(2, 1)),
                                     batch_args=(power,), **options).compute()
    assert_same(result, expected)
    assert result.status.tolist() == [0, 0, -1, 0, -1, 0] and not result.success
    np.testing.assert_allclose(result.y[power == 0, 0, :], [[1.5, 3.0]] * 4, rtol=1e-9)
    # the pole at t = 1: the value at 0.5 is kept (1 / (1 - 0.5)), the one at 2 is NaN
    np.testing.assert_allclose(result.y[power == 2, 0, 0], 2.0, rtol=1e-7)
    assert np.isnan(result.y[power == 2, 0, 1]).all()


def test_a_worker_killed_mid_job_is_retried_without_lost_or_duplicate_rows(client):
    k = 8
    rate = np.linspace(0.5, 2.0, k)
    y0 = np.ones((k, 1))
    options = dict(vectorized=True, t_eval=[1.0, 2.0], rtol=1e-8, atol=1e-10)
    expected = chebpan.solve_ivp_batch(slow_decay, (0, 2), y0, batch_args=(rate,), **options)
    lazy = chebpan.solve_ivp_batch(slow_decay, (0, 2), da.from_array(y0, chunks=(2, 1)),
                                   batch_args=(rate,), **options)
    done = {}
    computing = threading.Thread(target=lambda: done.setdefault("result", lazy.compute()))
    computing.start()
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        busy = [worker for worker, keys in client.processing().items() if keys]
        victim = busy[0] if busy else None
        time.sleep(0.05)
    assert victim is not None, "no worker ever ran a chunk"
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    computing.join(timeout=120)
    assert not computing.is_alive()
    assert_same(done["result"], expected)
    np.testing.assert_allclose(done["result"].y[:, 0, :],
                               np.exp(-np.outer(rate, [1.0, 2.0])), rtol=1e-8)


def test_what_a_dask_batch_cannot_do():
    y0 = da.ones((4, 1), chunks=2)
    decay = lambda t, y: -y  # noqa: E731
    with pytest.raises(ValueError, match="needs `t_eval`"):
        chebpan.solve_ivp_batch(decay, (0, 1), y0)
    with pytest.raises(NotImplementedError, match="dense_output"):
        chebpan.solve_ivp_batch(decay, (0, 1), y0, t_eval=[1.0], dense_output=True)
    with pytest.raises(NotImplementedError, match="events"):
        chebpan.solve_ivp_batch(decay, (0, 1), y0, t_eval=[1.0], events=lambda t, y: y[0])
    with pytest.raises(ValueError, match="K = 4 rows"):
        chebpan.solve_ivp_batch(decay, (0, 1), y0, t_eval=[1.0], batch_args=(np.ones(3),))
    # the in-process checks run before anything is sent to a worker
    with pytest.raises(ValueError, match="max_step"):
        chebpan.solve_ivp_batch(decay, (0, 1), y0, t_eval=[1.0], max_step=-1.0)
    with pytest.raises(ValueError, match="t_eval"):
        chebpan.solve_ivp_batch(decay, (0, 1), y0, t_eval=[2.0])


def test_the_import_error_names_the_extra(monkeypatch):
    from chebpan._frontend import dask_batch

    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(ImportError, match=r"chebpan\[dask\]"):
        dask_batch.dask_modules()


@pytest.mark.cupy
@needs_gpu
def test_cupy_chunks_stay_on_the_device_and_match_the_in_process_batch():
    import cupy

    y0, rho = lorenz_batch(64)
    options = dict(vectorized=True, t_eval=[1.0], rtol=1e-8, atol=1e-8)

    def lorenz_gpu(t, y, rho):
        return cupy.stack([10 * (y[1] - y[0]), y[0] * (rho - y[2]) - y[1],
                           y[0] * y[1] - 8 / 3 * y[2]])

    expected = chebpan.solve_ivp_batch(lorenz_gpu, (0, 1), cupy.asarray(y0),
                                       batch_args=(cupy.asarray(rho),), **options)
    chunks = da.from_array(y0, chunks=(16, 3)).map_blocks(cupy.asarray)
    lazy = chebpan.solve_ivp_batch(lorenz_gpu, (0, 1), chunks,
                                   batch_args=(da.from_array(rho, chunks=16).map_blocks(
                                       cupy.asarray),), **options)
    assert isinstance(lazy.y._meta, cupy.ndarray)
    result = lazy.compute(scheduler="synchronous")
    assert isinstance(result.y, cupy.ndarray)
    cupy.testing.assert_array_equal(result.y, expected.y)
    np.testing.assert_array_equal(result.status, expected.status)


def test_the_instances_are_chunked_like_the_dask_input_and_the_dtype_is_the_results():
    k = 6
    decay = lambda t, y, rate: -rate * y  # noqa: E731
    lazy = chebpan.solve_ivp_batch(decay, (0, 1), np.ones((k, 1)), t_eval=[1.0],
                                   vectorized=True, batch_args=(da.ones(k, chunks=2),))
    assert lazy.y.chunks[0] == (2, 2, 2)
    single = chebpan.solve_ivp_batch(decay, (0, 1), da.ones((k, 1), chunks=3, dtype=np.float32),
                                     t_eval=[1.0], vectorized=True,
                                     batch_args=(np.ones(k),))
    computed = single.compute(scheduler="synchronous")
    assert single.y.dtype == computed.y.dtype == np.float64
    np.testing.assert_allclose(computed.y[:, 0, 0], np.exp(-1.0), rtol=1e-6)
