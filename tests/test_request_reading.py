from __future__ import annotations

from hyperpilot.agents.request import understand_request
from hyperpilot.agents.request_reading import ColumnSummary, read_request

HMDA = [ColumnSummary(name="deny", n_unique=2, values={"no": 2095, "yes": 285}),
        ColumnSummary(name="pirat", numeric=True, n_unique=500, values={"0.3": 5})]
WAGE = [ColumnSummary(name=n, numeric=True, n_unique=60, values={"1.5": 3})
        for n in ("year", "age", "wage")]
PRICES = [ColumnSummary(name=n, numeric=True, n_unique=800, values={"250000": 3})
          for n in ("sale_price", "list_price", "sqft")]


def test_the_denials_mean_the_yes_class_of_deny() -> None:
    reading = read_request("Which applications will be denied? I want F1 on the denials.", HMDA)
    assert (reading.target, reading.metric, reading.positive_class) == ("deny", "f1", "yes")


def test_columns_after_from_are_inputs_and_a_wide_numeric_target_is_regression() -> None:
    reading = read_request("predict thier wage (in $1000s) from age, year", WAGE)
    assert (reading.target, reading.task_type, reading.metric) == ("wage", "regression", "rmse")


def test_a_negated_metric_is_skipped() -> None:
    reading = read_request("predict deny; accuracy is meaningless here, use balanced accuracy", HMDA)
    assert reading.metric == "balanced_accuracy"


def test_two_close_candidates_give_a_question_not_a_guess() -> None:
    draft = understand_request("predict the price", PRICES).value
    assert draft.target is None and "sale_price" in draft.question and "predict" in draft.question
    assert understand_request("predict the sale price", PRICES).value.target == "sale_price"


def test_the_data_prompt_of_a_very_wide_table_stays_bounded() -> None:
    import numpy as np
    import pandas as pd

    from hyperpilot.agents.data_agent import column_cards
    from hyperpilot.prompts import render

    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(20, 3000)), columns=[f"gene_{i:04d}" for i in range(3000)])
    wide["diagnosis"] = ["a very long free-text value that goes on and on"] * 20
    prompt = render("data.j2", text="predict diagnosis", columns=column_cards(wide))
    assert len(prompt) < 12_000 and "more columns" in prompt
    assert "gene_0000" in prompt and "diagnosis" in prompt  # first and last kept
    assert "a very long free-text value that goes on" not in prompt  # values cut
    narrow = column_cards(wide.iloc[:, :5])
    assert [c["name"] for c in narrow] == list(wide.columns[:5])
