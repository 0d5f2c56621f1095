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


# ---------------------------------------------------------------- general mechanisms
# Made-up tables: each test below fails without the mechanism it names.

def _num(name: str, n_unique: int = 500) -> ColumnSummary:
    return ColumnSummary(name=name, numeric=True, n_unique=n_unique, values={"1.5": 3, "2.5": 2})


def _yes_no(name: str) -> ColumnSummary:
    return ColumnSummary(name=name, n_unique=2, values={"no": 80, "yes": 20})


WATER = [_num("salinity"), _num("depth"), _num("turbidity")]
PARCELS = [_yes_no("breakage"), _num("weight"), _num("volume"), _yes_no("refrigeration")]
GAUGES = [ColumnSummary(name="reading_day", datetime=True, n_unique=900, values={"2020-01-01": 1}),
          _num("pres_max"), _num("pres_min"), _num("wind")]


def test_a_misspelt_word_of_a_column_name_still_names_it() -> None:
    reading = read_request("predict the salnity of each sample", WATER)
    assert (reading.target, reading.task_type) == ("salinity", "regression")


def test_a_slip_in_a_metric_word_is_put_right() -> None:
    reading = read_request("predict breakage, precison please", PARCELS)
    assert (reading.target, reading.metric) == ("breakage", "precision")


def test_prefixes_of_words_describe_a_column_and_more_words_fitting_win() -> None:
    reading = read_request("predict the minimum pressure", GAUGES)
    assert reading.target == "pres_min"
    assert read_request("predict the pressure", GAUGES).question is not None  # max or min: ask


def test_adjacent_words_and_hyphenated_words_spell_a_joined_name() -> None:
    shifts = [_num("hours"), _yes_no("nightshift"), _num("tenure")]
    reading = read_request("will a nurse work night shift? f1 on the night-shifters", shifts)
    assert (reading.target, reading.metric, reading.positive_class) == ("nightshift", "f1", "yes")


def test_a_lowercase_initialism_is_spelt_out_by_initials() -> None:
    ward = [_num("age", 60), ColumnSummary(name="tbi", numeric=True, n_unique=2, values={"0": 90, "1": 10}),
            _num("pulse")]
    reading = read_request("which patients suffer a traumatic brain injury? auc", ward)
    assert (reading.target, reading.metric, reading.positive_class) == ("tbi", "roc_auc", "1")


def test_feature_caps_interpretability_and_latency_in_other_words() -> None:
    def limits(text: str) -> tuple[int | None, float | None, bool]:
        draft = understand_request(text, PARCELS).value
        return draft.max_features, draft.max_latency_ms, draft.interpretable

    assert limits("predict weight, 3 variables at most, no black box") == (3, None, True)
    assert limits("predict weight with no more than 5 inputs") == (5, None, False)
    assert limits("predict weight, 4 features max, a model the couriers can read") == (4, None, True)
    assert limits("predict weight; it must answer in under half a millisecond") == (None, 0.5, False)
    assert limits("predict weight in under a tenth of a millisecond") == (None, 0.1, False)


def test_short_and_dismissed_metric_wordings() -> None:
    assert read_request("predict breakage, balanced acc", PARCELS).metric == "balanced_accuracy"
    reading = read_request("few parcels break, so accuracy would look great and tell me nothing. "
                           "predict breakage", PARCELS)
    assert (reading.metric, reading.metric_named) == ("roc_auc", False)


def test_a_model_turned_down_means_not_ml() -> None:
    assert not read_request("what share of parcels had a breakage? just the numbers, no model", PARCELS).is_ml


def test_the_last_word_of_a_which_question_is_asked_and_a_stated_year_is_given() -> None:
    trial = [ColumnSummary(name="enrol_year", numeric=True, n_unique=12, values={"2004": 30, "2005": 28}),
             ColumnSummary(name="relapsed", n_unique=2, values={"never": 70, "relapsed": 30}), _num("dose")]
    text = "Cohort from 2004 to 2015, a study model year 2004 on. Which patients relapse? recall"
    assert read_request(text, trial).target == "relapsed"


def test_a_yes_no_question_asks_what_follows_its_subject() -> None:
    reading = read_request("is a parcel refrigerated or not? auc", PARCELS)
    assert (reading.target, reading.task_type, reading.positive_class) == ("refrigeration", "binary", "yes")


def test_a_class_named_before_as_the_positive_class_names_the_target() -> None:
    reading = read_request("flag which parcels break; f1 with breakages as the positive class", PARCELS)
    assert (reading.target, reading.metric, reading.positive_class) == ("breakage", "f1", "yes")


def test_free_text_is_no_target_and_a_class_singled_out_names_its_column() -> None:
    inbox = [ColumnSummary(name="message", n_unique=4900, values={"hello there": 2, "win a prize": 1}),
             ColumnSummary(name="kind", n_unique=2, values={"ham": 700, "spam": 300})]
    reading = read_request("tell the spam messages apart from the rest using the message text", inbox)
    assert (reading.target, reading.task_type) == ("kind", "binary")


def test_a_column_after_per_is_the_group_however_near_the_cue() -> None:
    plant = [_num("quality"), ColumnSummary(name="batch", n_unique=45, values={"B1": 30, "B2": 28})]
    assert read_request("the quality score per batch", plant).target == "quality"


def test_a_self_listed_synonym_holds_both_ways() -> None:
    staff = [_num("salary"), _num("age", 60), _num("tenure")]
    assert read_request("predict the wage of each employee", staff).target == "salary"


def test_training_on_the_past_and_the_coming_days_mean_time_order() -> None:
    assert read_request("predict pres_max for the coming days", GAUGES).time_ordered
    assert read_request("predict wind; fit on the past only", GAUGES).time_ordered


def test_a_time_per_row_in_seconds_microseconds_or_after_the_amount() -> None:
    from hyperpilot.agents.request import parse_request_rules

    def latency(text: str) -> float | None:
        return parse_request_rules(text, []).max_latency_ms

    assert latency("the model gets 0.002 seconds per application, no more") == 2.0
    assert latency("about 50 microseconds per event for this step") == 0.05
    assert latency("each prediction has to come back in 5ms or less") == 5.0
    assert latency("under half a millisecond per transaction") == 0.5
    assert latency("the whole run must finish within 60 seconds") is None  # a run time
    assert latency("treat it as a class, and as a number") is None
    assert parse_request_rules("the model can use max 20 of the 85 columns", []).max_features == 20


def test_a_forecast_over_a_year_or_day_number_is_in_time_order() -> None:
    import pandas as pd

    from hyperpilot.tools.data import profile_table
    from hyperpilot.tools.time_order import is_time_name, time_column

    text = "fit on the earlier years and check on the last couple, predicting wage. rmse"
    assert read_request(text, WAGE).time_ordered
    assert not read_request("predict wage from age and year, rmse", WAGE).time_ordered
    assert [is_time_name(n) for n in ("year", "pan_day", "days_employed", "DayOfWk")] == [
        True, True, False, False]
    frame = pd.DataFrame({"year": [2003, 2004, 2005, 2006] * 10, "age": range(40),
                          "wage": [float(i) for i in range(40)]})
    profile = profile_table(frame, "wage")
    assert time_column(text, profile, frame) == "year"
    assert time_column("predict wage, rmse", profile, frame) is None


def test_the_class_opposite_to_the_name_and_numbered_labels() -> None:
    grades = [_num("G1", 20), ColumnSummary(name="passed", n_unique=2, values={"yes": 265, "no": 130})]
    reading = read_request("will the student pass (passed yes/no)? f1 for the ones who fail", grades)
    assert (reading.target, reading.positive_class) == ("passed", "no")
    wage = [ColumnSummary(name="health", n_unique=2, values={"1. <=Good": 858, "2. >=Very Good": 2142}),
            ColumnSummary(name="health_ins", n_unique=2, values={"1. Yes": 2083, "2. No": 917}),
            _num("wage")]
    text = ("I want to find the people who lack health insurance: F1 for the uninsured, that's "
            "'2. No' in health_ins.")
    reading = read_request(text, wage)
    assert (reading.target, reading.positive_class) == ("health_ins", "2. No")


def test_inputs_listed_after_use_and_words_outside_the_asking_sentence() -> None:
    family = [_num("Wife_age", 34), _num("Children", 17),
              ColumnSummary(name="Standard-of-living", numeric=True, n_unique=4, values={"4": 684}),
              ColumnSummary(name="Media_exposure", numeric=True, n_unique=2, values={"0": 1364})]
    text = ("how many kids has each woman had? use wife's age, standard of living, media exposure. "
            "mean abs error")
    assert read_request(text, family).target == "Children"
    assert read_request("house listings export. predict the price, RMSE", PRICES).question
    assert read_request("what are owners listing their places for? model the asking price",
                        PRICES).target == "list_price"


def test_guess_asks_for_a_model_and_log_loss_gets_a_class() -> None:
    movies = [_num("rating", 90), _num("budget"), _num("year", 100)]
    reading = read_request("guess a movie's average user rating from year and budget. R^2 is fine",
                           movies)
    assert (reading.is_ml, reading.target, reading.metric) == (True, "rating", "r2")
    ads = [_num("bidCPM"), ColumnSummary(name="clicked", numeric=True, n_unique=2,
                                         values={"0": 9500, "1": 500})]
    reading = read_request("predict clicked (1 = click). log-loss, bids use the probability", ads)
    assert (reading.metric, reading.positive_class) == ("log_loss", "1")
