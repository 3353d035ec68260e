"""One settings object for every path and URL PayNudge uses.

Values come, highest priority first, from keyword arguments, environment variables prefixed
``PAYNUDGE_`` (``PAYNUDGE_HOME``, ``PAYNUDGE_DATABASE_URL``, ...), an optional TOML file
(``paynudge.toml`` in the working directory, or the file named by ``PAYNUDGE_CONFIG``), and the
embedded defaults below. Building a :class:`Settings` has no side effects: folders are created by
the code that writes into them, never on import.
"""

from __future__ import annotations

import os
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "PAYNUDGE_CONFIG"
DEFAULT_CONFIG_FILE = "paynudge.toml"


class GuardrailSettings(BaseModel):
    """Hard contact rules the reminder policy and the dispatcher apply (see reminder_policy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quiet_hours: tuple[int, int] = Field(
        default=(21, 8),
        description="Local [start, end) hours with no contact: none from 21:00 until 08:00.",
    )
    max_calls_per_invoice_7d: int = Field(
        default=7, ge=0, description="Call attempts per invoice in any 7 days."
    )
    max_messages_per_invoice_week: int = Field(
        default=3, ge=0, description="Messages (any channel) per invoice in the trailing 7 days."
    )
    max_messages_per_customer_day: int = Field(
        default=1, ge=0, description="Messages (any channel) per customer in the trailing 24 hours."
    )
    offers_from_due: bool = Field(
        default=True, description="Offer an extension or instalment plan only from the due date on."
    )

    @model_validator(mode="after")
    def _check_hours(self) -> GuardrailSettings:
        start, end = self.quiet_hours
        if not (0 <= start <= 23 and 0 <= end <= 23 and start != end):
            raise ValueError(f"quiet_hours: expected two different hours 0-23, found {start, end}")
        return self


class RewardSettings(BaseModel):
    """Weights of the policy's reward (see reminder_policy.reward), in currency units."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paid_value: float = Field(
        default=10.0,
        ge=0.0,
        description="Worth of an invoice paid within its stage window (financing and "
        "collection effort saved).",
    )
    opt_out_penalty: float = Field(
        default=3.0, ge=0.0, description="Cost of a customer opting out of a channel."
    )
    churn_penalty: float = Field(
        default=10.0, ge=0.0, description="Cost of a customer leaving (lost margin)."
    )
    stage_window_days: dict[str, float] = Field(
        default={
            "pre_due": 5.0,
            "due": 3.0,
            "overdue_3": 7.0,
            "overdue_10": 20.0,
            "overdue_30": 30.0,
        },
        description="Days after a decision, per dunning stage, in which a payment counts for it "
        "(until the next stage's decision).",
    )
    default_window_days: float = Field(
        default=7.0, gt=0.0, description="Payment window of stages not in stage_window_days."
    )
    churn_window_days: float = Field(
        default=30.0, gt=0.0, description="Days after a decision in which a churn counts for it."
    )


class PolicySettings(BaseModel):
    """Action costs, guardrails, reward weights and exploration of the reminder policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel_costs: dict[str, float] = Field(
        default={"email": 0.005, "sms": 0.06, "push": 0.002, "call": 4.00, "letter": 2.50},
        description="Cost of one contact per channel (e-mail cheapest, call and letter dearest).",
    )
    offer_costs: dict[str, float] = Field(
        default={"none": 0.0, "extension": 0.10, "instalment_plan": 0.30},
        description="Administrative cost of making an offer.",
    )
    epsilon: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="Exploration share of the learned policy (uniform over allowed actions): "
        "what keeps it learning online, at a cost.",
    )
    registered_name: str = Field(
        default="reminder_policy", description="Registered model name of the policy."
    )
    guardrails: GuardrailSettings = GuardrailSettings()
    reward: RewardSettings = RewardSettings()

    @model_validator(mode="after")
    def _check_costs(self) -> PolicySettings:
        from paynudge.vocabulary import CHANNELS, OFFERS

        for field, names, costs in (
            ("channel_costs", CHANNELS, self.channel_costs),
            ("offer_costs", OFFERS, self.offer_costs),
        ):
            if set(costs) != set(names):
                raise ValueError(
                    f"{field}: expected a cost for each of {names}, found {sorted(costs)}"
                )
            negative = [name for name, cost in costs.items() if cost < 0]
            if negative:
                raise ValueError(f"{field}: costs must be >= 0, found negative for {negative}")
        return self


class ServingSettings(BaseModel):
    """The decision service's own knobs (see serving/)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile_cache_seconds: float = Field(
        default=300.0,
        ge=0.0,
        description="How long a customer profile read from the online store is reused (0: read "
        "every time). Profiles are materialised snapshots; a reload clears the cache.",
    )
    profile_cache_customers: int = Field(
        default=1_000_000, ge=1, description="Most profiles the cache holds (~1 KB each)."
    )


class KpiSettings(BaseModel):
    """Definitions behind the collection KPIs (see dispatcher.kpis)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    overdue_bucket_days: tuple[int, ...] = Field(
        default=(30, 60, 90),
        description="Upper edges (days past due) of the overdue buckets; a last bucket holds "
        "everything beyond the final edge.",
    )
    dso_period_days: int = Field(
        default=90, gt=0, description="Trailing period of the days-sales-outstanding ratio."
    )
    pay_window_days: float = Field(
        default=7.0,
        gt=0.0,
        description="Days after a message in which settling its invoice counts as paid for it.",
    )

    @model_validator(mode="after")
    def _check_buckets(self) -> KpiSettings:
        edges = self.overdue_bucket_days
        if not edges or any(b <= a for a, b in pairwise(edges)) or edges[0] < 1:
            raise ValueError(f"overdue_bucket_days: expected increasing days >= 1, found {edges}")
        return self


class MonitoringSettings(BaseModel):
    """Drift and performance thresholds that trigger retraining, and how reports are drawn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column_drift_threshold: float = Field(
        default=0.1,
        gt=0.0,
        description="Drift score above which a column counts as drifted (Wasserstein distance "
        "normed by the reference's std for numbers, Jensen-Shannon distance for categories).",
    )
    drifted_share_threshold: float = Field(
        default=0.2,
        gt=0.0,
        le=1.0,
        description="Share of drifted feature columns that raises the data-drift alarm.",
    )
    prediction_drift_threshold: float = Field(
        default=0.1,
        gt=0.0,
        description="Drift score of the late-payment probability that raises the alarm.",
    )
    auc_drop_threshold: float = Field(
        default=0.05,
        ge=0.0,
        description="ROC-AUC lost on labelled current rows, against the champion's test AUC, "
        "that raises the performance alarm.",
    )
    min_labelled_rows: int = Field(
        default=200, ge=1, description="Labelled current rows needed before performance counts."
    )
    min_current_rows: int = Field(
        default=100, ge=1, description="Logged decisions a drift report needs in its window."
    )
    max_rows: int = Field(
        default=200_000,
        ge=1_000,
        description="Rows of the reference and of the current window a report uses; larger "
        "windows are sampled (the loss of sensitivity is measured in the tests).",
    )
    shap_rows: int = Field(
        default=2_000, ge=100, description="Rows whose SHAP values the global reports draw."
    )
    top_features: int = Field(
        default=4, ge=1, description="Top features (by mean |SHAP|) given dependence plots."
    )
    new_customer_days: float = Field(
        default=365.0, gt=0.0, description="Tenure below which a customer counts as new."
    )
    seed: int = Field(default=0, description="Seed of every sample the reports draw.")


class SmtpSettings(BaseModel):
    """The SMTP server e-mail reminders go to (a local server by default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", description="SMTP server host.")
    port: int = Field(default=25, ge=1, le=65535, description="SMTP server port.")
    starttls: bool = Field(
        default=False,
        description="Upgrade the connection with STARTTLS, verifying the server's certificate and "
        "host name; a server not offering it is an error (never a fall back to clear text).",
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM bundle of certificate authorities to verify the server with; the "
        "system's when unset (needs starttls).",
    )
    username: str | None = Field(
        default=None,
        description="Login name (no login when absent); only with starttls, or to a loopback host.",
    )
    password: SecretStr | None = Field(default=None, description="Login password.")
    sender: str = Field(
        default="PayNudge <billing@example.com>", description="From address of reminders."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per-connection timeout.")


class WebhookSettings(BaseModel):
    """The signed HTTP webhook SMS, push and voice reminders go to (any provider behind it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str | None = Field(default=None, description="Provider endpoint receiving a POST.")
    secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of the X-PayNudge-Signature header."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per-request timeout.")


TRANSPORTS: dict[str, tuple[str, ...]] = {
    "email": ("dry_run", "smtp"),
    "sms": ("dry_run", "webhook"),
    "push": ("dry_run", "webhook"),
    "call": ("dry_run", "webhook"),
    "letter": ("dry_run", "pdf"),
}
"""The transports each channel can go through; dry_run writes files into the outbox folder."""


class DispatcherSettings(BaseModel):
    """The reminder dispatcher: workflow file, templates, channels, batches, retries, leases."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workflow_file: Path | None = Field(
        default=None, description="Stages YAML; defaults to dispatcher/workflow.yaml."
    )
    templates_dir: Path | None = Field(
        default=None,
        description="Folder of your own templates, looked up before the packaged ones.",
    )
    outbox_dir: Path | None = Field(
        default=None, description="Dry-run files and letter PDFs; defaults to HOME/outbox."
    )
    transports: dict[str, str] = Field(
        default={
            "email": "dry_run",
            "sms": "dry_run",
            "push": "dry_run",
            "call": "dry_run",
            "letter": "dry_run",
        },
        description="Transport of each channel: dry_run (files), smtp (e-mail), webhook "
        "(sms, push, call) or pdf (letter); channels not named keep dry_run.",
    )

    @field_validator("transports", mode="before")
    @classmethod
    def _fill_transports(cls, value: object) -> object:
        if isinstance(value, dict):
            return {channel: "dry_run" for channel in TRANSPORTS} | value
        return value

    smtp: SmtpSettings = SmtpSettings()
    webhook: WebhookSettings = WebhookSettings()
    link_base_url: str = Field(
        default="https://pay.example.com", description="Base URL of payment and unsubscribe links."
    )
    link_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key signing payment and unsubscribe links; a key file under HOME "
        "when absent.",
    )
    link_ttl_days: float = Field(default=90.0, gt=0, description="Lifetime of a signed link.")
    previous_link_secrets: tuple[SecretStr, ...] = Field(
        default=(),
        description="Retired link keys whose open, click and unsubscribe tokens still verify "
        "(key rotation); new tokens use link_secret.",
    )
    token_ttl_days: dict[str, float] = Field(
        default={"open": 60.0, "click": 60.0, "unsubscribe": 365.0},
        description="Lifetime of the open-pixel, click and unsubscribe tokens "
        "(dispatcher.tokens); unsubscribe links must keep working long after the message.",
    )
    reply_min_confidence: float = Field(
        default=0.45,
        ge=0.0,
        le=1.0,
        description="A reply the text classifier rates below this is classified as 'other' "
        "(left for a person).",
    )
    decide_batch_size: int = Field(
        default=2000, ge=1, le=5000, description="Invoices per /decide call."
    )
    send_batch_size: int = Field(
        default=1000, ge=1, description="Messages claimed, re-checked and recorded at once."
    )
    retry_pauses_seconds: tuple[float, ...] = Field(
        default=(60.0, 300.0, 1800.0, 7200.0),
        description="Pause before each retry of a failed send; parked with the error after "
        "the last.",
    )
    lease_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a claimed message belongs to its process; afterwards another "
        "process recovers it (longer than any channel timeout).",
    )
    poll_seconds: float = Field(
        default=30.0, gt=0, description="Pause between passes of `paynudge dispatch run`."
    )
    sms_max_segments: int = Field(
        default=2, ge=1, description="SMS segments a rendered text message may take."
    )
    decision_seed: int | None = Field(
        default=None, ge=0, description="Seed of the service's draws (reproducible runs)."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key providers sign inbound webhooks with (payments, delivery "
        "receipts, replies); derived from the key file under HOME when absent.",
    )
    webhook_tolerance_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A signed webhook older or newer than this is refused (replay window).",
    )
    no_response_reminders: int = Field(
        default=3,
        ge=1,
        description="Reminders sent about an invoice without any open, click, reply or payment "
        "before a case task is opened.",
    )
    hardship_days: float = Field(
        default=90.0,
        gt=0,
        description="Days a declared hardship keeps switching reminders to offers.",
    )
    paid_already_pause_days: float = Field(
        default=3.0,
        gt=0,
        description="Days reminders pause after a 'paid already' reply, for the payment to arrive.",
    )
    feedback_batch_size: int = Field(
        default=1000, ge=1, le=5000, description="Decisions per /feedback call."
    )

    @model_validator(mode="after")
    def _check_transports(self) -> DispatcherSettings:
        from paynudge.vocabulary import CHANNELS

        if set(self.transports) != set(CHANNELS):
            raise ValueError(
                f"transports: expected channels among {CHANNELS}, found {sorted(self.transports)}"
            )
        for channel, transport in self.transports.items():
            allowed = TRANSPORTS[channel]
            if transport not in allowed:
                raise ValueError(
                    f"transports.{channel}: expected one of {allowed}, found {transport!r}"
                )
        slowest = max(self.smtp.timeout_seconds, self.webhook.timeout_seconds)
        if self.lease_seconds <= slowest:
            raise ValueError(
                f"lease_seconds: expected more than the slowest channel timeout ({slowest} s), "
                f"found {self.lease_seconds}"
            )
        return self


class Settings(BaseSettings):
    """Every path and URL, with embedded defaults that need nothing installed."""

    model_config = SettingsConfigDict(
        env_prefix="PAYNUDGE_", env_nested_delimiter="__", extra="forbid"
    )

    home: Path = Field(
        default=Path(".paynudge"),
        description="Root of all local state (data, MLflow store, dispatcher database).",
    )
    data_dir: Path | None = Field(
        default=None, description="Raw tables of the default data set; defaults to HOME/data."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; defaults to SQLite under HOME."
    )
    optuna_storage: str | None = Field(
        default=None,
        description="Optuna study storage URL; defaults to SQLite under HOME. A PostgreSQL URL "
        "(postgresql+psycopg://user@host:5432/db) lets several tuning processes share a study.",
    )
    serving_url: str = Field(
        default="http://127.0.0.1:3000", description="Base URL of the decision service."
    )
    database_url: str | None = Field(
        default=None, description="Dispatcher state; defaults to SQLite under HOME."
    )
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token the service requires on non-health endpoints."
    )
    dev_mode: bool = Field(
        default=False,
        description="Let the decision service start without an API token (own machine only; "
        "`paynudge serve --dev` sets it and refuses any address but loopback).",
    )
    features_dir: Path | None = Field(
        default=None, description="Built datasets and customer profiles; defaults to HOME/features."
    )
    feature_backend: str = Field(
        default="duckdb://",
        description="Ibis connection URL the feature pipelines run on (DuckDB in memory).",
    )
    online_store_url: str | None = Field(
        default=None,
        description="Feast online store: None for SQLite under HOME, or redis://host:port/db.",
    )
    late_grace_days: float = Field(
        default=0.0, ge=0.0, description="Days after the due date before a bill counts as late."
    )
    mlflow_artifact_root: Path | None = Field(
        default=None,
        description="Artifact store of new MLflow experiments on a local tracking store; "
        "defaults to HOME/mlartifacts (a tracking server keeps its own).",
    )
    model_names: dict[str, str] = Field(
        default={"late_payment": "late_payment", "churn": "churn", "send_time": "send_time"},
        description="Registered model (and experiment) name of each model spec.",
    )
    promotion_ece_tolerance: float = Field(
        default=0.005,
        ge=0.0,
        description="How much worse a challenger's expected calibration error may be than the "
        "champion's (on the same test data) and still be promoted.",
    )
    send_hours: tuple[int, int] = Field(
        default=(8, 20),
        description="First and last local hour (inclusive) a reminder may be sent at.",
    )

    policy: PolicySettings = Field(
        default=PolicySettings(),
        description="Reminder policy: costs, guardrails, reward weights "
        "(PAYNUDGE_POLICY__EPSILON=0.1, [policy.guardrails] in paynudge.toml, ...).",
    )
    dispatcher: DispatcherSettings = Field(
        default=DispatcherSettings(),
        description="Reminder dispatcher: channels, templates, batches, retries "
        "(PAYNUDGE_DISPATCHER__SMTP__HOST, [dispatcher.webhook] in paynudge.toml, ...).",
    )
    monitoring: MonitoringSettings = Field(
        default=MonitoringSettings(),
        description="Drift and performance thresholds of `paynudge monitor check`, report "
        "sizes (PAYNUDGE_MONITORING__DRIFTED_SHARE_THRESHOLD=0.3, [monitoring] in paynudge.toml).",
    )
    kpis: KpiSettings = Field(
        default=KpiSettings(), description="Collection KPI definitions ([kpis] in paynudge.toml)."
    )
    serving: ServingSettings = Field(
        default=ServingSettings(),
        description="Decision service: profile cache (PAYNUDGE_SERVING__PROFILE_CACHE_SECONDS=0).",
    )

    @model_validator(mode="after")
    def _fill_derived_defaults(self) -> Settings:
        first, last = self.send_hours
        if not 0 <= first <= last <= 23:
            raise ValueError(f"send_hours: expected 0 <= first <= last <= 23, found {first, last}")
        home = self.home.expanduser()
        self.home = home
        if self.data_dir is None:
            self.data_dir = home / "data"
        if self.mlflow_tracking_uri is None:
            self.mlflow_tracking_uri = f"sqlite:///{(home / 'mlflow.db').absolute()}"
        if self.optuna_storage is None:
            self.optuna_storage = f"sqlite:///{(home / 'optuna.db').absolute()}"
        if self.features_dir is None:
            self.features_dir = home / "features"
        if self.mlflow_artifact_root is None:
            self.mlflow_artifact_root = home / "mlartifacts"
        if self.database_url is None:
            self.database_url = f"sqlite:///{(home / 'dispatcher.db').absolute()}"
        return self

    @property
    def default_data_dir(self) -> Path:
        """Where ``paynudge simulate`` writes when no ``--out`` is given."""
        assert self.data_dir is not None  # filled by the validator
        return self.data_dir

    @property
    def reports_directory(self) -> Path:
        """Where drift, SHAP and policy reports and their ``index.html`` are written."""
        return self.home / "reports"

    @property
    def features_directory(self) -> Path:
        """Where ``paynudge features build`` writes datasets and profiles."""
        assert self.features_dir is not None  # filled by the validator
        return self.features_dir

    def registered_model_name(self, model: str) -> str:
        """The registry name of ``model`` (a spec or tabular name), by ``model_names``."""
        return self.model_names.get(model, model)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return Settings()
