"""scikit-learn's own estimator checks on the torch models and the preprocessing steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn", minversion="1.6")  # expected_failed_checks came in 1.6

import sklearn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from hyperpilot.tools.column_steps import AdaptiveSVD, DateParts  # noqa: E402
from hyperpilot.tools.preprocess import QuantileNormal, ScreenWide, SelectRawFeatures  # noqa: E402
from hyperpilot.tools.torch_mlp import TorchMLPClassifier, TorchMLPRegressor  # noqa: E402

# The smallest settings that still learn the checks' toy problems (blobs, a linear target).
QUICK = {"hidden_size": 16, "n_layers": 1, "max_epochs": 10, "lr": 1e-2, "batch_size": 32}

ARRAYS = "takes a data frame of named raw columns; the check's array raises DataError by design"
SELECT_RAW_ARRAY_CHECKS = [
    "check_complex_data", "check_dict_unchanged", "check_dont_overwrite_parameters",
    "check_dtype_object", "check_estimator_sparse_array", "check_estimator_sparse_matrix",
    "check_estimator_sparse_tag", "check_estimators_dtypes", "check_estimators_empty_data_messages",
    "check_estimators_fit_returns_self", "check_estimators_nan_inf", "check_estimators_overwrite_params",
    "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_fit1d",
    "check_fit2d_1feature", "check_fit2d_1sample", "check_fit2d_predict1d", "check_fit_check_is_fitted",
    "check_fit_idempotent", "check_fit_score_takes_y", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_n_features_in", "check_n_features_in_after_fitting",
    "check_pipeline_consistency", "check_positive_only_tag_during_fit", "check_readonly_memmap_input",
    "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_preserve_dtypes",
]
# DateParts reads any value as a date, by design: what does not parse is a missing part.
DATE_PARTS = {
    "check_complex_data": "a complex number does not parse as a date: its parts are missing",
    "check_dtype_object": "text that is not a date is read as a missing date, not refused",
}


def expected_failures(estimator: Any) -> dict[str, str]:
    if isinstance(estimator, SelectRawFeatures):
        return dict.fromkeys(SELECT_RAW_ARRAY_CHECKS, ARRAYS)
    if isinstance(estimator, DateParts):
        return DATE_PARTS
    return {}


@parametrize_with_checks(
    [TorchMLPClassifier(**QUICK), TorchMLPRegressor(**QUICK), QuantileNormal(n_quantiles=50),
     SelectRawFeatures(k=1, features=["a", "b"], categorical=[], task_type="binary"),
     ScreenWide("binary"), DateParts(), AdaptiveSVD(n_components=3)],
    expected_failed_checks=expected_failures,
)
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


def skewed_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"income": rng.lognormal(size=40), "age": rng.normal(40, 9, 40)},
                        index=pd.RangeIndex(100, 140, name="row"))


def test_quantile_normal_keeps_the_row_index_under_pandas_output() -> None:
    frame = skewed_frame()
    with sklearn.config_context(transform_output="pandas"):
        fitted = clone(QuantileNormal()).fit(frame)
        out = fitted.transform(frame.iloc[::-1])
        both = QuantileNormal().fit_transform(frame)
    assert out.index.equals(frame.index[::-1]) and list(out.columns) == ["income", "age"]
    assert both.index.equals(frame.index)
    assert both.loc[frame["income"].idxmax(), "income"] == both["income"].max()


def test_select_raw_features_records_the_frame_it_was_fitted_on() -> None:
    frame = skewed_frame().assign(color=["red", "blue"] * 20)
    target = (frame["income"] > 1).astype(int)
    selector = SelectRawFeatures(k=1, features=["income", "color"], categorical=["color"],
                                 task_type="binary").fit(frame, target)
    assert selector.n_features_in_ == 3
    assert list(selector.feature_names_in_) == ["income", "age", "color"]
    assert selector.selected_ == ["income"]
