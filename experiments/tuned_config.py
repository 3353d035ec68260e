"""The tuned-parameters file ``paynudge train`` reads: ``experiments/configs/<model>.yaml``.

Format (agreed in the issue-4 contract; ``training.pipeline`` reads ``params`` and
``num_boost_round``, the other keys say where the values came from)::

    params: {objective: binary, learning_rate: 0.05, num_leaves: 31, ...}   # LightGBM parameters
    num_boost_round: 412          # rounds of the best trial (early-stopped on validation)
    study: late_payment-lightgbm  # Optuna study that found them
    objective: valid_log_loss     # what the study minimised
    best_value: 0.3812            # its value for these parameters
    trials: 40                    # finished + pruned trials in the study when written
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paynudge.errors import ConfigError

CONFIG_DIRECTORY = Path(__file__).resolve().parent / "configs"


class TunedConfig(BaseModel):
    """Best parameters of a study, as written to and read from YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: dict[str, Any] = Field(description="LightGBM parameters, fixed and tuned.")
    num_boost_round: int = Field(gt=0, description="Boosting rounds of the best trial.")
    study: str = Field(description="Name of the Optuna study.")
    objective: str = Field(description="Metric the study minimised.")
    best_value: float = Field(description="The objective's value for these parameters.")
    trials: int = Field(ge=0, description="Finished and pruned trials when written.")


def config_path(model_name: str, directory: Path | None = None) -> Path:
    """Where the tuned config of ``model_name`` lives (default: ``experiments/configs/``)."""
    return (directory if directory is not None else CONFIG_DIRECTORY) / f"{model_name}.yaml"


def write_config(config: TunedConfig, path: Path) -> Path:
    """Write ``config`` as YAML to ``path`` (creating its folder) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.model_dump(), sort_keys=False))
    return path


def read_config(path: Path) -> TunedConfig:
    """The tuned config stored at ``path``; :class:`ConfigError` naming the file if unusable."""
    try:
        return TunedConfig.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise ConfigError(f"{path}: not a tuned config ({error})") from None
