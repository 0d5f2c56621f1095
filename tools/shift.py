"""Train/holdout distribution shift screening of tabular data. No LLM here."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from hyperpilot.tools.types import DataProfile, ShiftFinding

# A column is only called shifted when the difference is large as well as significant.
SHIFT_MIN_DISTANCE = 0.1
SHIFT_MIN_UNSEEN = 0.05


def distribution_shift(train: pd.DataFrame, holdout: pd.DataFrame, profile: DataProfile,
                       alpha: float = 0.01, max_rows: int = 5000, seed: int = 0) -> list[ShiftFinding]:
    """Compare each feature and the target between training and holdout rows, most shifted first.

    Numeric columns: two-sample Kolmogorov-Smirnov. Categorical and boolean columns (and a
    class target): chi-square on the category counts (rare categories pooled) with the
    total-variation distance, and the share of holdout rows whose category never occurs in
    training, tested against the share a random split would leave unseen (Good-Turing).
    The tests share ``alpha`` (Bonferroni); a finding is severe only when significant at
    that level and large: distance at least 0.1, or at least 5% unseen rows. Columns
    missing from either frame, or without two values on each side, are skipped.

    Args:
        train: the training rows, raw columns.
        holdout: the holdout rows, raw columns.
        profile: decides which columns are compared and how (kinds, target, task type).
        alpha: family-wise false-alarm rate over all the tests.
        max_rows: each frame is sampled down to this many rows, for speed.
        seed: seeds that sample.
    """
    rng = np.random.default_rng(seed)
    train, holdout = _sampled(train, max_rows, rng), _sampled(holdout, max_rows, rng)
    kinds = {c.name: c.kind for c in profile.columns}
    # Free text has no distribution to compare, and dates differ between the training rows
    # and the holdout by design when the split is in time order.
    names = [c for c in dict.fromkeys([*profile.features, profile.target])
             if c in train.columns and c in holdout.columns
             and kinds.get(c) not in ("text", "datetime")]
    discrete = {c: kinds.get(c) in ("categorical", "boolean")
                or (c == profile.target and profile.task_type != "regression") for c in names}
    level = alpha / max(1, sum(2 if discrete[c] else 1 for c in names))
    findings = []
    for name in names:
        compare = _categorical_shift if discrete[name] else _numeric_shift
        finding = compare(train[name], holdout[name], level, name == profile.target)
        if finding is not None:
            findings.append(finding)
    return sorted(findings, key=lambda f: (not f.severe, f.p_value, -f.statistic))


def _sampled(frame: pd.DataFrame, max_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))]


def _numeric_shift(train: pd.Series, holdout: pd.Series, level: float,
                   is_target: bool) -> ShiftFinding | None:
    a = pd.to_numeric(train, errors="coerce").dropna().to_numpy(dtype=float)
    b = pd.to_numeric(holdout, errors="coerce").dropna().to_numpy(dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    test = stats.ks_2samp(a, b, method="asymp")
    distance, p_value = float(test.statistic), float(test.pvalue)
    severe = p_value < level and distance >= SHIFT_MIN_DISTANCE
    who = f"{'target' if is_target else 'feature'} '{train.name}'"
    numbers = f"Kolmogorov-Smirnov distance {distance:.2f}, p = {p_value:.2g}"
    line = (f"{who} is distributed differently in the holdout ({numbers})" if severe
            else f"{who} looks alike in training and holdout ({numbers})")
    return ShiftFinding(column=str(train.name), kind="numeric", is_target=is_target,
                        statistic=distance, p_value=p_value, severe=severe, line=line)


def _categorical_shift(train: pd.Series, holdout: pd.Series, level: float,
                       is_target: bool) -> ShiftFinding | None:
    a, b = train.dropna().astype(str), holdout.dropna().astype(str)
    if len(a) < 2 or len(b) < 2:
        return None
    counts = pd.concat([a.value_counts(), b.value_counts()], axis=1).fillna(0).to_numpy()
    shares = counts / counts.sum(axis=0)
    distance = float(0.5 * np.abs(shares[:, 0] - shares[:, 1]).sum())
    p_counts = _chi_square_p(counts)
    unseen = int((counts[:, 0] == 0) @ counts[:, 1])
    # Good-Turing: the share of training rows in once-seen categories estimates the share of
    # new rows that a random split would put in categories training never saw.
    expected_unseen = float((counts[:, 0] == 1).sum() / len(a))
    p_unseen = _unseen_p(unseen, len(b), expected_unseen)
    unseen_share = unseen / len(b)
    shifted = p_counts < level and distance >= SHIFT_MIN_DISTANCE
    novel = p_unseen < level and unseen_share >= SHIFT_MIN_UNSEEN
    who = f"{'target' if is_target else 'feature'} '{train.name}'"
    numbers = f"category shares differ by {distance:.2f} (total variation), chi-square p = {p_counts:.2g}"
    if novel:
        line = f"{who}: {unseen_share:.0%} of holdout rows have a category never seen in training"
    elif shifted:
        line = f"{who} is distributed differently in the holdout: {numbers}"
    else:
        line = f"{who} looks alike in training and holdout: {numbers}"
    return ShiftFinding(column=str(train.name), kind="categorical", is_target=is_target,
                        statistic=distance, p_value=min(p_counts, p_unseen),
                        unseen_share=unseen_share, severe=shifted or novel, line=line)


def _chi_square_p(counts: np.ndarray) -> float:
    """Chi-square test of a (categories x 2) count table, categories expected < 5 pooled."""
    expected = counts.sum(axis=1, keepdims=True) * counts.sum(axis=0) / counts.sum()
    rare = (expected < 5).any(axis=1)
    table = counts[~rare]
    if rare.any():
        table = np.vstack([table, counts[rare].sum(axis=0)])
    table = table[table.sum(axis=1) > 0]
    if len(table) < 2:
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def _unseen_p(unseen: int, n: int, expected_share: float) -> float:
    if unseen == 0:
        return 1.0
    if expected_share <= 0:
        return 0.0
    return float(stats.binomtest(unseen, n, min(expected_share, 1.0), alternative="greater").pvalue)
