"""What ``assign`` and ``update`` may change in a saved model's config, in one place: the CLI checks it
before any session starts, and run_assign and run_update apply it to the model's config."""

from __future__ import annotations

import dataclasses

from n2d_spark.core.config import JobConfig, OutputConfig, apply_override, config_from_dict
from n2d_spark.core.errors import ConfigError

# Where rows come from and go, and how they are batched; everything else is the model.
ASSIGN_SETTABLE = ("input.", "embed.", "evaluate.", "output.", "similar.", "spark.", "manifold.batch_rows")
# update may also set its own keys: how new rows are told and when to advise a retrain.
UPDATE_SETTABLE = (*ASSIGN_SETTABLE, "update.")
# Of those, what the session is built from before the model is read.
_SESSION_KEYS = ("spark.", "output.")


def check_assign_overrides(overrides: list[str], command: str = "assign") -> None:
    """Refuse an assign (or update) override that would change the saved model (checked before any session starts)."""
    settable = UPDATE_SETTABLE if command == "update" else ASSIGN_SETTABLE
    for override in overrides:
        key = override.partition("=")[0].strip()
        if not key.startswith(settable):
            names = [f"{k}*" if k.endswith(".") else k for k in settable]
            raise ConfigError(f"--set {key}: fixed by the saved model; {command} can set {', '.join(names[:-1])} and {names[-1]}")


def session_overrides(overrides: list[str]) -> list[str]:
    """The assign overrides the session needs (``spark.*``, ``output.*``); the model decides the rest."""
    return [o for o in overrides if o.startswith(_SESSION_KEYS)]


def assign_config(model_config: JobConfig, overrides: list[str], command: str = "assign") -> JobConfig:
    """The model's config with ``overrides`` applied, refusing any that would change the model."""
    check_assign_overrides(overrides, command)
    # The training run's evaluation options describe its fit; assign scores against a label
    # column only when one is given to assign: new data rarely has the training data's labels.
    # Assign writes no topics over time, so new rows need not have the training data's time column;
    # nor its user column: users/ comes from an assign run only when input.user_col is set for it.
    # Nor does its output: what an existing output or table may lose, and whether texts are copied,
    # is the command line's to say (a training run's table_mode overwrite would replace the table
    # every earlier assign appended to).
    raw = model_config.to_dict()
    defaults = OutputConfig()
    for key in ("mode", "table", "table_mode", "include_text"):
        raw["output"][key] = getattr(defaults, key)
    raw["evaluate"]["label_col"] = None
    raw["input"]["time_col"] = None
    raw["input"]["user_col"] = None
    for override in overrides:
        apply_override(raw, override)
    return config_from_dict(raw)


def updated_model_config(parent: JobConfig, update_run: JobConfig) -> JobConfig:
    """What an updated model saves as its config: its parent's, with the ``update.*`` settings the update
    ran with (which the next update starts from); the run's input, output and evaluation settings are
    the run's, not the model's. ``N2DModel.update`` builds its model's config by the same rule."""
    return dataclasses.replace(parent, update=update_run.update)
