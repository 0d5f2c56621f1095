from __future__ import annotations

from collections.abc import Iterator

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from hyperpilot.tools.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

FAST = {"hidden_size": 32, "lr": 1e-2, "batch_size": 16, "max_epochs": 40, "patience": 20,
        "device": "cpu"}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # Thread teams only add waiting on data this small, worst on a busy machine.
    with threadpool_limits(limits=1):
        yield


def scaled_split(X: np.ndarray, y: np.ndarray, stratify: bool) -> list[np.ndarray]:
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0,
                                              stratify=y if stratify else None)
    scaler = StandardScaler().fit(X_tr)
    return [scaler.transform(X_tr).astype(np.float32), scaler.transform(X_te).astype(np.float32),
            y_tr, y_te]


@pytest.fixture(scope="module")
def iris() -> list[np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return scaled_split(X, np.array(["setosa", "versicolor", "virginica"])[y], stratify=True)


@pytest.fixture(scope="module")
def fitted(iris: list[np.ndarray]) -> TorchMLPClassifier:
    X_tr, _, y_tr, _ = iris
    return TorchMLPClassifier(**FAST, random_state=0).fit(X_tr, y_tr)


def test_classifier_learns_iris_with_string_labels(fitted: TorchMLPClassifier, iris) -> None:
    _, X_te, _, y_te = iris

    assert fitted.score(X_te, y_te) > 0.9
    assert list(fitted.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(fitted.predict(X_te)) <= set(fitted.classes_)
    assert 1 <= fitted.epochs_ <= FAST["max_epochs"]


def test_probabilities_are_rows_that_sum_to_one(fitted: TorchMLPClassifier, iris) -> None:
    proba = fitted.predict_proba(iris[1])

    assert proba.shape == (len(iris[1]), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(fitted.classes_[proba.argmax(axis=1)], fitted.predict(iris[1]))


def test_joblib_round_trip_gives_identical_predictions(fitted, iris, tmp_path) -> None:
    joblib.dump(fitted, tmp_path / "mlp.joblib")
    loaded = joblib.load(tmp_path / "mlp.joblib")

    np.testing.assert_array_equal(loaded.predict_proba(iris[1]), fitted.predict_proba(iris[1]))
    assert next(loaded.module_.parameters()).device.type == "cpu"


def test_clone_and_set_params(fitted: TorchMLPClassifier) -> None:
    copy = clone(fitted).set_params(hidden_size=16, n_layers=1)

    assert copy.get_params()["hidden_size"] == 16
    assert fitted.get_params()["hidden_size"] == FAST["hidden_size"]
    assert not hasattr(copy, "module_")


def test_same_seed_same_model_and_global_rng_untouched(iris) -> None:
    X_tr, X_te, y_tr, _ = iris
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    first = TorchMLPClassifier(**{**FAST, "max_epochs": 5}, random_state=7).fit(X_tr, y_tr)

    assert torch.rand(1) == expected
    second = TorchMLPClassifier(**{**FAST, "max_epochs": 5}, random_state=7).fit(X_tr, y_tr)
    np.testing.assert_array_equal(first.predict_proba(X_te), second.predict_proba(X_te))


def test_early_stopping_stops_before_max_epochs(iris) -> None:
    X_tr, _, y_tr, _ = iris
    model = TorchMLPClassifier(**{**FAST, "max_epochs": 300, "patience": 2},
                               random_state=0).fit(X_tr, y_tr)

    assert model.epochs_ < 300


def test_regressor_beats_the_mean_on_diabetes() -> None:
    X, y = load_diabetes(return_X_y=True)
    X_tr, X_te, y_tr, y_te = scaled_split(X, y, stratify=False)
    model = TorchMLPRegressor(hidden_size=32, lr=3e-3, max_epochs=40, device="cpu",
                              random_state=0).fit(X_tr, y_tr)

    assert r2_score(y_te, model.predict(X_te)) > 0.2
    assert model.predict(X_te).shape == (len(y_te),)


def test_wrong_number_of_features_is_rejected(fitted: TorchMLPClassifier, iris) -> None:
    with pytest.raises(ValueError, match="features"):
        fitted.predict(iris[1][:, :2])


def test_tiny_data_trains_without_a_holdout() -> None:
    X = np.array([[0.0], [0.1], [1.0], [1.1]], dtype=np.float32)
    model = TorchMLPClassifier(**FAST, random_state=0).fit(X, [0, 0, 1, 1])

    assert model.predict(X).shape == (4,)
