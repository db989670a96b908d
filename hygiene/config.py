"""Configuration: ``rules/default.yaml`` (policy) and ``rules/projects.yaml`` (projects registry).

Both files are read strictly (:mod:`hygiene.yamlfile`: no duplicate keys, no tags, no
alias bombs, UTF-8 only…) and validated with pydantic models that forbid unknown keys, so
a typo is an error rather than a silently ignored setting. Every problem is reported as
one line naming the file, the line and the key path, all problems of both files at once,
and maps to exit code 2 before any AWS call is made.

Each subsystem owns one section model below (``CollectSettings``, ``ApplySettings`` …).
Fields are declared with the value types of :mod:`hygiene.configtypes` (``EmailAddress``,
``Region``, ``HttpUrl``…) and :class:`Section` gives every field the checks all values
need (finite, bounded numbers; no boolean for a number; one line unless free text), so a
new field gets them by construction. Rule options are free-form here and validated by the
rules engine, which knows each rule's option names and ranges.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from hygiene.configbase import Section
from hygiene.configlifecycle import LifecycleSettings
from hygiene.configtypes import (
    Crontab,
    Digest,
    EmailAddress,
    HttpUrl,
    Region,
    SenderAddress,
    SessionName,
    StoreUrl,
    TimeZone,
)
from hygiene.errors import ConfigError
from hygiene.yamlfile import YamlMapping, dotted, read_mapping

DEFAULT_RULES_DIR = Path("rules")
POLICY_FILE = "default.yaml"
PROJECTS_FILE = "projects.yaml"


RULES_DIR_HINT = (
    "hygiene reads default.yaml and projects.yaml from ./rules unless --rules-dir DIR or "
    "the environment variable HYGIENE_RULES_DIR names another directory"
)


# Names of environment variables (never their values: secrets stay out of the files).
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
# A Slack channel: #name (lowercase, digits, - _ .) or a channel id (C…, G…, D…).
SlackChannel = Annotated[
    str, StringConstraints(pattern=r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{8,20})$")
]
# A host name or an IP address (no scheme, no port, no path).
HostName = Annotated[
    str,
    StringConstraints(
        pattern=r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$|^[0-9A-Fa-f:.]+$",
        max_length=253,
    ),
]
# A glob or name used to match registry names, tags or identities.
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=256)]


# ASCII: IAM's \w and \d are; Python's take letters and digits of every script
ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(?P<account>\d{12}):role/[\w+=,.@/-]+$", re.ASCII)


def role_arn(template: str, account: str) -> str:
    """``arn:aws:iam::{account}:role/x`` with the account filled in, checked to be a role
    ARN in that very account (raises ``ValueError`` otherwise)."""
    arn = template.replace("{account}", account)
    match = ROLE_ARN.match(arn)
    if match is None:
        raise ValueError(f"{template!r} does not give an IAM role ARN for account {account}")
    if match["account"] != account:
        raise ValueError(
            f"{template!r} names account {match['account']}, not {account}: "
            "write {account} where the account id goes"
        )
    return arn


def _role_template(value: str | None) -> str | None:
    if value is None:
        return None
    if "{account}" not in value:
        raise ValueError(f"{value!r}: write {{account}} where the account id goes")
    role_arn(value, "123456789012")
    return value


class AccountEntry(Section):
    """One account listed by hand: its id, and optionally its own regions and roles."""

    id: str = Field(pattern=r"^[0-9]{12}$")
    regions: list[Region] | None = Field(default=None, min_length=1)
    scanner_role: str | None = None
    cleaner_role: str | None = None
    assume: bool = True  # False: read it with the tool's own credentials (its own account)

    _templates = field_validator("scanner_role", "cleaner_role")(_role_template)


class AccountsSettings(Section):
    """``registry.accounts``: several accounts, each read through a role assumed in it
    (docs/accounts.md)."""

    organization: bool = False  # every ACTIVE account of the AWS Organization
    include: list[AccountEntry] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    scanner_role: str = "arn:aws:iam::{account}:role/registry-hygiene-scanner"
    cleaner_role: str = "arn:aws:iam::{account}:role/registry-hygiene-cleaner"
    external_id: str | None = Field(default=None, min_length=2, max_length=1224)
    external_id_env: EnvName | None = None  # the external id from this environment variable
    session_name: SessionName = "registry-hygiene"
    duration_seconds: int = Field(default=3600, ge=900, le=43200)

    _templates = field_validator("scanner_role", "cleaner_role")(_role_template)

    @field_validator("exclude")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"[0-9]{12}", value):
                raise ValueError(f"{value!r} is not a 12-digit account id")
        return values

    @model_validator(mode="after")
    def _some_account(self) -> AccountsSettings:
        if not self.organization and not self.include:
            raise ValueError("list accounts in include, or set organization: true")
        ids = [e.id for e in self.include]
        doubles = sorted({i for i in ids if ids.count(i) > 1})
        if doubles:
            raise ValueError(f"account(s) listed twice in include: {', '.join(doubles)}")
        both = sorted(set(ids) & set(self.exclude))
        if both:
            raise ValueError(f"account(s) both included and excluded: {', '.join(both)}")
        return self


class RegistrySettings(Section):
    """Which registry to scan. Region/profile may be overridden on the command line.

    ``account`` is the one account of the tool's own credentials; ``accounts`` lists
    several, read through assumed roles (docs/accounts.md). Not both.
    """

    account: str | None = Field(default=None, pattern=r"^[0-9]{12}$")
    regions: list[Region] = Field(
        default_factory=lambda: ["us-east-1"], min_length=1, max_length=40
    )
    profile: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.@+-]{1,128}$")
    endpoint_url: HttpUrl | None = None
    accounts: AccountsSettings | None = None

    @model_validator(mode="after")
    def _one_way(self) -> RegistrySettings:
        if self.account is not None and self.accounts is not None:
            raise ValueError(
                "give account (one account, own credentials) or accounts (several, "
                "assumed roles), not both"
            )
        return self


class PartsSettings(Section):
    """Where a sharded scan's parts are, for the job that merges them (docs/accounts.md)."""

    location: str = Field(min_length=1)  # a directory, or s3://bucket/prefix
    run_id: str | None = None  # None: the newest run within max_age_seconds
    wait_seconds: int = Field(default=0, ge=0, le=86400)
    max_age_seconds: int = Field(default=43200, ge=1, le=7 * 86400)
    poll_seconds: float = Field(default=30.0, gt=0, le=3600)


class CollectSettings(Section):
    max_workers: int = Field(default=8, ge=1, le=64)
    retry_mode: Literal["adaptive", "standard", "legacy"] = "adaptive"
    max_attempts: int = Field(default=8, ge=1, le=20)
    page_size: int = Field(default=1000, ge=1, le=1000)
    connect_timeout: float = Field(default=5.0, gt=0, le=300)
    read_timeout: float = Field(default=30.0, gt=0, le=3600)
    # A repository whose read failed is read again after the pool drains, up to this many
    # passes in all, waiting pass_backoff_seconds × 2^(pass - 2) (jittered) before each.
    read_passes: int = Field(default=3, ge=1, le=10)
    pass_backoff_seconds: float = Field(default=2.0, ge=0, le=300)
    # the nightly and weekly jobs merge a sharded scan's parts instead of scanning
    parts: PartsSettings | None = None


class SelectionSettings(Section):
    """Rule selection like ruff: codes (IM002), prefixes (IM) or families (images)."""

    select: list[str] = Field(default_factory=lambda: ["ALL"], min_length=1)
    ignore: list[str] = Field(default_factory=list)


class NamespaceOverride(Section):
    """Per-namespace rule options and selection (``fnmatch`` patterns on the namespace)."""

    namespaces: list[Pattern] = Field(min_length=1)
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)
    protected_tags: list[Pattern] | None = None


class MuteEntry(Section):
    """An accepted exception: matching findings are muted until ``expires``."""

    free_text = frozenset({"reason"})

    repository: Pattern = "*"
    digest: Digest | None = None
    rules: list[str] = Field(default_factory=lambda: ["ALL"], min_length=1)
    reason: str = Field(min_length=3, max_length=2000)
    expires: date | None = None


class ProtectionSettings(Section):
    protected_tags: list[Pattern] = Field(
        default_factory=lambda: ["latest", "main", "master", "stable", "prod*", "release*"]
    )
    keep_newest: int = Field(default=3, ge=0, le=1000)
    pulled_within_days: int = Field(default=30, ge=0, le=3650)
    opt_out_tag_key: str = Field(default="hygiene:keep", min_length=1, max_length=128)
    in_use_images_file: Path | None = None


class KubernetesSettings(Section):
    """Kubernetes contexts whose pods and pod templates count as in use (docs/in-use.md)."""

    kubeconfig: Path | None = None  # default: $KUBECONFIG, else ~/.kube/config
    contexts: list[str] = Field(default_factory=list)  # none: Kubernetes is not read
    namespaces: list[str] = Field(default_factory=list)  # none: all namespaces
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    read_timeout: float = Field(default=30.0, gt=0, le=600)
    page_size: int = Field(default=500, ge=1, le=5000)

    @field_validator("kubeconfig")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("contexts", "namespaces")
    @classmethod
    def _distinct(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError(
                "listed twice: " + ", ".join(sorted({v for v in values if values.count(v) > 1}))
            )
        if any(not v.strip() for v in values):
            raise ValueError("empty name")
        return values


AwsSource = Literal["ecs", "lambda", "batch"]
AWS_SOURCES: tuple[AwsSource, ...] = ("ecs", "lambda", "batch")


class InUseSettings(Section):
    """In-use discovery: the workloads whose images are never deleted (docs/in-use.md).

    On by default for this account's ECS, Lambda and Batch; Kubernetes is read for the
    contexts listed; ``protections.in_use_images_file`` is the file source.
    """

    aws_sources: list[AwsSource] = Field(default_factory=lambda: list(AWS_SOURCES))
    regions: list[Region] = Field(default_factory=list)  # none: registry.regions
    # roles to assume for workloads in other accounts (until registry.accounts exists)
    assume_roles: list[str] = Field(default_factory=list)
    # apply re-reads running tasks and pods before a deletion when older than this
    recheck_seconds: int = Field(default=60, ge=0, le=3600)
    kubernetes: KubernetesSettings = KubernetesSettings()

    @field_validator("assume_roles")
    @classmethod
    def _role_arns(cls, values: list[str]) -> list[str]:
        for value in values:
            if not ROLE_ARN.match(value):
                raise ValueError(
                    f"not an IAM role ARN (arn:aws:iam::<account>:role/<name>): {value!r}"
                )
        return values


class PriceSettings(Section):
    storage_usd_per_gb_month: float = Field(default=0.10, ge=0, le=1000)
    archive_usd_per_gb_month: float = Field(default=0.10, ge=0, le=1000)
    currency: str = Field(default="USD", min_length=1, max_length=8)


class ApplySettings(Section):
    auto_safe: bool = False
    apply_approved: bool = False
    grace_days: int = Field(default=7, ge=0, le=365)
    batch_size: int = Field(default=100, ge=1, le=100)
    proposal_ttl_days: int = Field(default=30, ge=1, le=365)
    # applies in a row that keep the same proposal for a retry (nothing deleted, no
    # progress) before the admins are told, once (hygiene.apply.retries; three nights)
    kept_alert_after: int = Field(default=3, ge=1, le=365)


class StoreSettings(Section):
    url: StoreUrl = "sqlite:///hygiene.db"
    # each nightly run stores its image findings as totals per rule and repository and
    # every other finding as a row (docs/store.md); the findings of runs older than
    # this many days are deleted after each nightly run
    findings_retention_days: int = Field(default=90, ge=1, le=3650)


class SmtpSettings(Section):
    host: HostName = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: EnvName | None = "HYGIENE_SMTP_USER"
    password_env: EnvName | None = "HYGIENE_SMTP_PASSWORD"
    password_file: Path | None = None
    sender: SenderAddress = "registry-hygiene@localhost"
    timeout: float = Field(default=30.0, gt=0, le=600)
    # security: none sends the password in clear text: refused unless the host is a
    # loopback address, or this says the network in between is trusted.
    allow_plaintext_auth: bool = False


class SlackSettings(Section):
    token_env: EnvName = "HYGIENE_SLACK_TOKEN"
    webhook_url_env: EnvName = "HYGIENE_SLACK_WEBHOOK_URL"
    base_url: HttpUrl | None = None
    admin_channel: SlackChannel | None = None
    dm_owners_without_channel: bool = True  # DM owners (users.lookupByEmail) if no channel
    upload_html: bool = True  # attach the HTML report with files_upload_v2


class NotifySettings(Section):
    email: bool = False
    email_transport: Literal["smtp", "ses"] = "smtp"
    slack: bool = False
    smtp: SmtpSettings = SmtpSettings()
    slack_settings: SlackSettings = SlackSettings()
    retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=2.0, ge=0, le=600)
    admin_emails: list[EmailAddress] = Field(default_factory=list)  # of the nightly report
    weekly_cc_members: bool = False  # copy the project's members on its weekly report
    subject_prefix: str = Field(default="[registry-hygiene]", max_length=100)
    # E-mail carries the full tables as attachments up to this size (zipped above 1 MiB);
    # above it, the mail says where the files are.
    attachment_max_bytes: int = Field(default=10_000_000, ge=0, le=50_000_000)
    # Settings of the other channels (hygiene/notify/channels/<name>.py), by channel name;
    # each channel checks its own section (``hygiene config check`` reports errors).
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def enabled_channels(self) -> list[str]:
        """The delivery channels switched on: e-mail, Slack and the other channels
        configured under ``channels`` (empty: reports stay on disk, nobody is told, and
        no grace period ever starts)."""
        on = [name for name, enabled in (("email", self.email), ("slack", self.slack)) if enabled]
        return on + sorted(self.channels)


class ReportSettings(Section):
    out_dir: Path = Path("reports/out")
    timezone: TimeZone = "America/Fortaleza"
    locale: Literal["en", "pt_BR"] = "en"
    largest_repositories: int = Field(default=10, ge=1, le=100)
    trend_runs: int = Field(default=12, ge=2, le=365)
    max_rows: int = Field(default=100, ge=5, le=10000)  # rows per table; the rest in exports
    templates_dir: Path | None = None  # default: the package's templates (from reports/)
    # written next to the HTML; CSV alone by default: the JSON exports repeat the same
    # tables (about 2 GiB a night at a million images) and the scan document is the
    # machine-readable whole
    exports: tuple[Literal["csv", "json"], ...] = ("csv",)
    # the findings CSV: image findings counted per rule and repository (one row each),
    # or one row per image finding; the JSON export and the scan document keep each one
    image_findings_csv: Literal["per_repository", "per_image"] = "per_repository"


class ScheduleSettings(Section):
    timezone: TimeZone = "America/Fortaleza"
    # 5-field crontabs; day-of-week by name (see configtypes.check_crontab)
    nightly: Crontab = "0 3 * * *"
    weekly: Crontab = "0 8 * * mon"
    misfire_grace_seconds: int = Field(default=3600, ge=1, le=7 * 86400)


class Policy(Section):
    """``rules/default.yaml``: everything but the projects registry."""

    registry: RegistrySettings = RegistrySettings()
    collect: CollectSettings = CollectSettings()
    selection: SelectionSettings = SelectionSettings()
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    overrides: list[NamespaceOverride] = Field(default_factory=list)
    mutelist: list[MuteEntry] = Field(default_factory=list)
    protections: ProtectionSettings = ProtectionSettings()
    in_use: InUseSettings = InUseSettings()
    prices: PriceSettings = PriceSettings()
    admins: list[Pattern] = Field(default_factory=list)
    apply: ApplySettings = ApplySettings()
    store: StoreSettings = StoreSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    notify: NotifySettings = NotifySettings()
    report: ReportSettings = ReportSettings()
    schedule: ScheduleSettings = ScheduleSettings()


class Project(Section):
    """One registered project: the owner of a namespace."""

    free_text = frozenset({"description"})

    description: str = Field(default="", max_length=2000)
    owners: list[EmailAddress] = Field(min_length=1)
    members: list[EmailAddress] = Field(default_factory=list)
    slack_channel: SlackChannel | None = None
    language: Literal["en", "pt_BR"] = "en"
    timezone: TimeZone | None = None


NAMESPACE_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"


class ProjectsRegistry(Section):
    """``rules/projects.yaml``: namespace → project."""

    projects: dict[str, Project] = Field(default_factory=dict)

    @field_validator("projects")
    @classmethod
    def _namespace_names(cls, value: dict[str, Project]) -> dict[str, Project]:
        for name in value:
            if not re.match(NAMESPACE_PATTERN, name):
                raise ValueError(f"namespace {name!r} is not a valid ECR path segment")
        return value


class Config(BaseModel):
    """The effective configuration: policy + projects, and where they came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    policy: Policy
    projects: ProjectsRegistry
    policy_path: Path | None = None
    projects_path: Path | None = None

    @property
    def namespaces(self) -> list[str]:
        return sorted(self.projects.projects)


# --------------------------------------------------------------------------- loading

# What YAML 1.1 reads as something else than text when it is not quoted.
_YAML_READS = {bool: "a boolean", int: "a number", float: "a number", date: "a date"}


def _format_validation_errors(source: YamlMapping, exc: ValidationError) -> list[str]:
    """One line per pydantic error: ``file:line: key.path: message (got value)``."""
    lines = []
    for error in exc.errors():
        raw = list(error["loc"])
        if raw and raw[-1] == "[key]" and len(raw) >= 2:
            raw[-2] = error.get("input")  # pydantic gives a bad key's position, not the key
        loc = tuple(
            p
            for p in raw
            if not (isinstance(p, str) and (p.startswith("function") or p == "[key]"))
        )
        kind = error["type"]
        if kind == "extra_forbidden":
            message = "unknown key"
        else:
            message = error["msg"].removeprefix("Value error, ")
            value = error.get("input")
            if kind not in ("missing", "value_error") and value is not None:
                message += f" (got {_short(value)})"
            reads_as = _YAML_READS.get(type(value))
            if kind.startswith(("string_", "literal_", "enum")) and reads_as:
                message += f"; unquoted, YAML reads this as {reads_as}: quote it"
        line = f"{source.where(loc)}: {dotted(loc)}: {message}"
        if line not in lines:
            lines.append(line)
    return lines


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validate(model: type[BaseModel], path: Path) -> Any:
    source = read_mapping(path)
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        problems = _format_validation_errors(source, exc)
        raise ConfigError(problems[0], problems) from None
    except RecursionError:  # cannot happen below the nesting limit; never a traceback
        raise ConfigError(f"{path}: nested too deeply") from None


ConfigCheck = Callable[["Config"], None]
"""A further check of a loaded configuration; raises :class:`ConfigError` when it fails."""


def load_config(
    rules_dir: Path | str | None = None, *, checks: Sequence[ConfigCheck] = ()
) -> Config:
    """Load and validate ``<rules_dir>/default.yaml`` and ``<rules_dir>/projects.yaml``.

    ``rules_dir`` defaults to ``$HYGIENE_RULES_DIR`` or ``./rules``. Raises
    :class:`ConfigError` (exit code 2) listing every problem, each with file, line and
    key path. ``checks`` run after the models validate (see :func:`load_config_files`).
    """
    directory = Path(rules_dir or os.environ.get("HYGIENE_RULES_DIR") or DEFAULT_RULES_DIR)
    if not directory.is_dir():
        problem = "not a directory" if directory.exists() else "rules directory not found"
        raise ConfigError(f"{directory}: {problem}; {RULES_DIR_HINT}")
    return load_config_files(directory / POLICY_FILE, directory / PROJECTS_FILE, checks=checks)


def load_config_files(
    policy_path: Path, projects_path: Path, *, checks: Sequence[ConfigCheck] = ()
) -> Config:
    """Load both files, then run ``checks`` on the result.

    Both files are read and validated before anything is reported, so one run shows the
    problems of both. The models here leave rule codes, option names and ranges,
    selectors and regexes free-form: they are known to the rules engine, which depends on
    this module, so its check is passed in (``checks=[hygiene.rules.validate_config]``,
    as the CLI and the scheduler do). Without it a bad rule option is still refused, but
    only when the rules are evaluated, after the registry has been read.
    """
    problems: list[str] = []
    loaded: dict[type[BaseModel], Any] = {}
    for model, path in ((Policy, policy_path), (ProjectsRegistry, projects_path)):
        if not path.exists() and not path.is_symlink():
            problems.append(f"{path}: file not found; {RULES_DIR_HINT}")
            continue
        try:
            loaded[model] = _validate(model, path)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems[0], problems)
    config = Config(
        policy=loaded[Policy],
        projects=loaded[ProjectsRegistry],
        policy_path=policy_path,
        projects_path=projects_path,
    )
    for check in checks:
        check(config)
    return config


def effective_config_dict(config: Config) -> dict[str, Any]:
    """The fully defaulted configuration as plain data (for ``hygiene config check``)."""
    return {
        "policy": config.policy.model_dump(mode="json"),
        "projects": config.projects.model_dump(mode="json")["projects"],
    }
