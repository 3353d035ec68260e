"""Simulate a whole billing world and write it out.

``simulate_world`` returns the raw tables (what a biller's export would hold) and the ground truth
(latent traits, per-invoice context, world parameters) in one :class:`World`, the way obp's
synthetic dataset returns logged data with its expected rewards. ``write_world`` stores the raw
tables as Parquet in a folder and the ground truth in its ``truth/`` subfolder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from paynudge.errors import ConfigError, DataError
from paynudge.vocabulary import CHANNELS
from simulation.billing import draw_invoices, month_start_days
from simulation.clock import epoch_of, to_timestamps
from simulation.dunning import Engine
from simulation.parameters import WorldConfig, check_vocabulary
from simulation.population import customer_ids, draw_population, format_ids
from simulation.schedule import build_schedule
from simulation.tables import build_tables, invoice_ids, invoice_numbers

TRUTH_FOLDER = "truth"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class World:
    """Raw tables plus the ground truth behind them."""

    config: WorldConfig
    tables: dict[str, pd.DataFrame]
    customer_traits: pd.DataFrame
    invoice_context: pd.DataFrame
    message_opens: pd.DataFrame
    """Every message with the true moment it was opened (letters too; NaT if never)."""


def make_config(**values: object) -> WorldConfig:
    """A :class:`WorldConfig`, with pydantic's errors turned into one :class:`ConfigError`."""
    try:
        config = WorldConfig(**values)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"invalid simulation settings: {problems}") from None
    check_vocabulary(config.parameters)
    return config


def simulate_world(
    config: WorldConfig, progress: Callable[[int, int], None] | None = None
) -> World:
    """Simulate ``config.n_customers`` customers over ``config.n_months`` billing months."""
    parameters = config.parameters
    check_vocabulary(parameters)
    rng = np.random.default_rng(config.seed)
    first_days, _ = month_start_days(config.start, config.n_months + 1)
    horizon_day = int(first_days[-1])
    population = draw_population(
        config.n_customers, horizon_day, rng, parameters.population, parameters.traits
    )
    invoices = draw_invoices(
        population,
        config.start,
        config.n_months,
        rng,
        parameters.billing,
        parameters.payment,
        parameters.traits,
        parameters.shift,
    )
    epoch = epoch_of(config.start)
    schedule = build_schedule(
        population, invoices, parameters.payment, parameters.logging_policy, epoch
    )
    engine = Engine(population, invoices, schedule, parameters, rng, horizon_day)
    engine.run(progress)
    tables = build_tables(engine, epoch, rng)
    return World(
        config=config,
        tables=tables,
        customer_traits=customer_traits(engine),
        invoice_context=invoice_context(engine, epoch),
        message_opens=message_opens(engine, epoch),
    )


def customer_traits(engine: Engine) -> pd.DataFrame:
    """The latent traits of every customer (see :mod:`simulation.population`)."""
    people = engine.people
    table = pd.DataFrame(
        {
            "customer_id": customer_ids(np.arange(people.size)),
            "ability": people.ability,
            "forgetfulness": people.forgetfulness,
            "firm_response": people.firm_response,
            "offer_sensitivity": people.offer_sensitivity,
            "preferred_hour": people.preferred_hour,
            "hour_spread": people.hour_spread,
            "bill_shock_sensitivity": people.bill_shock_sensitivity,
            "churn_monthly": people.churn_monthly,
            "shock_start_probability": people.shock_start_probability,
            "autopay": people.autopay,
            "timezone": np.array(people.zones, dtype=object)[people.zone_index],
        }
    )
    for index, channel in enumerate(CHANNELS):
        table[f"affinity_{channel}"] = people.channel_affinity[:, index]
    return table


def message_opens(engine: Engine, epoch: pd.Timestamp) -> pd.DataFrame:
    """True open times of the logged messages (the export hides letters' reading)."""
    decisions = engine.log.columns("decisions")
    opened = decisions.get("opened_at", np.zeros(0))
    return pd.DataFrame(
        {
            "message_id": format_ids("M", np.arange(1, len(opened) + 1), 10),
            "opened_at": to_timestamps(opened, epoch),
        }
    )


def invoice_context(engine: Engine, epoch: pd.Timestamp) -> pd.DataFrame:
    """Per issued invoice: what the world knew when it was issued, and how it ended."""
    rows, number = invoice_numbers(engine)
    bills, when, inv = engine.bills, engine.when, engine.inv
    return pd.DataFrame(
        {
            "invoice_id": invoice_ids(number[rows]),
            "customer_id": customer_ids(bills.customer[rows]),
            "capacity": bills.capacity[rows],
            "bill_ratio": bills.bill_ratio[rows],
            "income_shock": bills.income_shock[rows],
            "issued_at": to_timestamps(when.issue_at[rows], epoch),
            "due_at": to_timestamps(when.due_at[rows], epoch),
            "debit_at": to_timestamps(when.debit_at[rows], epoch),
            "resolved_at": to_timestamps(
                np.where(inv.paid_at[rows] < engine.horizon_at, inv.paid_at[rows], np.inf), epoch
            ),
            "disputed": np.isfinite(inv.dispute_start[rows]),
        }
    )


def write_world(world: World, directory: Path) -> Path:
    """Write raw tables to ``directory`` and the ground truth to ``directory/truth``."""
    try:
        truth = directory / TRUTH_FOLDER
        truth.mkdir(parents=True, exist_ok=True)
        for name, table in world.tables.items():
            table.to_parquet(directory / f"{name}.parquet", index=False)
        world.customer_traits.to_parquet(truth / "customer_traits.parquet", index=False)
        world.invoice_context.to_parquet(truth / "invoice_context.parquet", index=False)
        world.message_opens.to_parquet(truth / "message_opens.parquet", index=False)
        (truth / "world_config.json").write_text(world.config.model_dump_json(indent=2))
        manifest = {
            "generator": "paynudge simulation",
            "seed": world.config.seed,
            "start": world.config.start.isoformat(),
            "months": world.config.n_months,
            "rows": {name: len(table) for name, table in world.tables.items()},
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    except OSError as error:
        raise DataError(f"cannot write the simulated world to {directory}: {error}") from None
    return directory
