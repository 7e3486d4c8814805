"""Searches over skimb estimators on a Dask cluster (joblib's dask backend), identical to the
sequential search: two single-threaded worker processes on a LocalCluster."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, cross_validate

from skimb import TransformerClassifier


@pytest.fixture
def one_thread():
    """Workers run one torch thread each; so does the sequential reference, so that both add up
    floating-point sums in the same order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed", reason="the 'distributed' extra is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.slow
def test_grid_search_and_cross_validate_on_dask_equal_sequential(tiny_bert, toy_data, one_thread, dask_client):
    from joblib import parallel_config

    X, y = toy_data
    est = TransformerClassifier(tiny_bert, max_epochs=1, batch_size=8, lr=5e-3, random_state=0)
    grid = {"class_weight": [None, "balanced"], "loss": ["ce", "focal"]}
    sequential = GridSearchCV(est, grid, cv=2, scoring="f1_macro").fit(X, y)
    seq_cv = cross_validate(est, X, y, cv=2, scoring="f1_macro")
    from dask.distributed import get_task_stream

    with parallel_config(backend="dask"), get_task_stream(dask_client) as tasks:
        distributed = GridSearchCV(est, grid, cv=2, scoring="f1_macro", n_jobs=2).fit(X, y)
        dist_cv = cross_validate(est, X, y, cv=2, scoring="f1_macro", n_jobs=2)
    for key in ("split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(distributed.cv_results_[key], sequential.cv_results_[key])
    np.testing.assert_array_equal(dist_cv["test_score"], seq_cv["test_score"])
    assert distributed.best_params_ == sequential.best_params_
    np.testing.assert_allclose(distributed.predict_proba(X), sequential.predict_proba(X), rtol=0, atol=1e-6)
    assert {t["worker"] for t in tasks.data}  # the cluster's workers did the fits


@pytest.fixture(scope="module")
def ray_backend():
    ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")
    from ray.util.joblib import register_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    register_ray()
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_grid_search_on_ray_equals_sequential(tiny_bert, toy_data, one_thread, ray_backend):
    from joblib import parallel_config

    X, y = toy_data
    est = TransformerClassifier(tiny_bert, max_epochs=1, batch_size=8, lr=5e-3, random_state=0, n_threads=1)
    grid = {"class_weight": [None, "balanced"]}
    sequential = GridSearchCV(est, grid, cv=2, scoring="f1_macro").fit(X, y)
    with parallel_config(backend="ray"):
        on_ray = GridSearchCV(est, grid, cv=2, scoring="f1_macro", n_jobs=2).fit(X, y)
    for key in ("split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(on_ray.cv_results_[key], sequential.cv_results_[key])
    np.testing.assert_allclose(on_ray.predict_proba(X), sequential.predict_proba(X), rtol=0, atol=1e-6)
