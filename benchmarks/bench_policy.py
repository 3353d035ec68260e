"""The reminder policy at full size: simulated A/B, off-policy accuracy and scoring speed.

Trains the contextual bandit on the logged decisions of a simulated training population, then
on a *held-out* population (its own seed, 50,000 customers by default) prints, for the learned
policy, the biller's ladder, always-email, uniform and the oracle: mean reward, on-time rate,
paid within 30 days of due, contact cost per invoice, opt-out and churn rates, with 95%
intervals (ground truth, :mod:`reminder_policy.simulated_ab`); the share of the ladder-to-oracle
reward gap the learned policy closes (goal >= 60%, on-time rate above the ladder's, contact
cost per invoice no higher); the DR estimates of the ladder and the learned policy against
their true values (goal: within 5%); and the time of ``action_distribution`` on 10,000
contexts (goal < 100 ms). Usage::

    .venv/bin/python benchmarks/bench_policy.py [--customers 50000] [--train-customers 50000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from paynudge.config import Settings
from reminder_policy import baselines, ope
from reminder_policy.dataset import decision_set
from reminder_policy.pipeline import estimated_rewards, fit_policy, policy_distributions
from reminder_policy.simulated_ab import METRICS, compare_policies, gap_closed, true_outcomes
from simulation.truth import GroundTruth
from simulation.world import make_config, simulate_world

GAP_GOAL, DR_GOAL, SCORING_GOAL_MS = 0.60, 0.05, 100.0


def timed(label: str, action):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = action()
    print(f"{label}: {time.perf_counter() - start:.1f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50_000, help="held-out population")
    parser.add_argument("--train-customers", type=int, default=50_000)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()
    settings = Settings().policy

    train_world = timed(
        f"simulate training world ({args.train_customers:,} x {args.months})",
        lambda: simulate_world(
            make_config(n_customers=args.train_customers, n_months=args.months, seed=11)
        ),
    )
    train = timed("training decision set", lambda: decision_set(train_world.tables, settings))
    train_world = None  # free the training world's memory
    bandit = timed(
        f"fit the bandit on {len(train):,} decisions", lambda: fit_policy(train, settings)
    )

    world = timed(
        f"simulate held-out world ({args.customers:,} x {args.months})",
        lambda: simulate_world(
            make_config(n_customers=args.customers, n_months=args.months, seed=12)
        ),
    )
    held_out = timed("held-out decision set", lambda: decision_set(world.tables, settings))
    truth = timed(
        "ground truth of every action",
        lambda: true_outcomes(
            GroundTruth.from_world(world), held_out, settings, world.tables["messages"]
        ),
    )
    policies = policy_distributions(bandit, held_out)
    policies["oracle"] = baselines.oracle(truth.expected_reward, held_out.mask)
    table = compare_policies(policies, held_out, truth)
    pd.set_option("display.width", 200)
    print(f"\nsimulated A/B on {len(held_out):,} held-out decisions (95% intervals)")
    for metric in METRICS:
        print(f"\n{metric}")
        print(table[[metric, f"{metric}_low", f"{metric}_high"]].round(4).to_string())
    gap = gap_closed(table)
    learned, ladder = table.loc["learned"], table.loc["ladder"]
    print(
        f"\nladder-to-oracle gap closed by the learned policy: {gap:.1%} (goal >= {GAP_GOAL:.0%})"
    )
    print(
        f"on-time rate learned {learned['on_time_rate']:.4f} vs ladder "
        f"{ladder['on_time_rate']:.4f}; "
        f"contact cost per invoice learned {learned['contact_cost_per_invoice']:.3f} vs ladder "
        f"{ladder['contact_cost_per_invoice']:.3f}"
    )

    q_hat = timed("cross-fitted reward model", lambda: estimated_rewards(held_out, settings))
    logged = held_out.logged
    for name in ("ladder", "learned"):
        true_value = ope.policy_value(policies[name], truth.expected_reward)
        estimate = ope.bootstrap_interval(
            "dr", n_bootstrap=300, reward=logged.reward, action=logged.action,
            pscore=logged.pscore, action_dist=policies[name], estimated_rewards=q_hat,
        )  # fmt: skip
        error = (estimate.value - true_value) / abs(true_value)
        print(
            f"DR {name}: {estimate.value:.4f} [{estimate.low:.4f}, {estimate.high:.4f}] vs true "
            f"{true_value:.4f}: {error:+.1%} (goal within {DR_GOAL:.0%})"
        )

    contexts = held_out.contexts.to_numpy()[:10_000]
    mask = held_out.mask[:10_000]
    bandit.action_distribution(contexts, mask)
    runs = []
    for _ in range(20):
        start = time.perf_counter()
        bandit.action_distribution(contexts, mask)
        runs.append(time.perf_counter() - start)
    print(
        f"action_distribution on {len(contexts):,} contexts x {contexts.shape[1]} features x "
        f"{mask.shape[1]} actions: median {1e3 * np.median(runs):.1f} ms, "
        f"max {1e3 * max(runs):.1f} ms (goal < {SCORING_GOAL_MS:.0f} ms)"
    )


if __name__ == "__main__":
    main()
