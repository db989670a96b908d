"""Configuration: ``rules/default.yaml`` (policy) and ``rules/projects.yaml`` (projects registry).

Both files are validated with pydantic models that forbid unknown keys, so a typo is an
error rather than a silently ignored setting. Every error is reported as one readable
message naming the file, the key path and the line (taken from the YAML node marks), and
maps to exit code 2 before any AWS call is made.

Each subsystem owns one section model below (``CollectSettings``, ``ApplySettings`` …);
rule options are free-form here and validated by the rules engine, which knows each
rule's option names and ranges.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from hygiene.errors import ConfigError
from hygiene.yamlfile import YamlMapping, read_mapping

DEFAULT_RULES_DIR = Path("rules")
POLICY_FILE = "default.yaml"
PROJECTS_FILE = "projects.yaml"


class Section(BaseModel):
    """A config section: unknown keys are errors, values are immutable after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(?P<account>\d{12}):role/[\w+=,.@/-]+$")


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

    id: str = Field(pattern=r"^\d{12}$")
    regions: list[str] | None = Field(default=None, min_length=1)
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
    external_id_env: str | None = None  # the external id from this environment variable
    session_name: str = Field(default="registry-hygiene", pattern=r"^[\w+=,.@-]{2,64}$")
    duration_seconds: int = Field(default=3600, ge=900, le=43200)

    _templates = field_validator("scanner_role", "cleaner_role")(_role_template)

    @field_validator("exclude")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"\d{12}", value):
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

    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    regions: list[str] = Field(default_factory=lambda: ["us-east-1"], min_length=1)
    profile: str | None = None
    endpoint_url: str | None = None
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
    max_age_seconds: int = Field(default=43200, ge=1)
    poll_seconds: float = Field(default=30.0, gt=0, le=3600)


class CollectSettings(Section):
    max_workers: int = Field(default=8, ge=1, le=64)
    retry_mode: Literal["adaptive", "standard", "legacy"] = "adaptive"
    max_attempts: int = Field(default=8, ge=1, le=20)
    page_size: int = Field(default=1000, ge=1, le=1000)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    # A repository whose read failed is read again after the pool drains, up to this many
    # passes in all, waiting pass_backoff_seconds × 2^(pass - 2) (jittered) before each.
    read_passes: int = Field(default=3, ge=1, le=10)
    pass_backoff_seconds: float = Field(default=2.0, ge=0, le=300)
    # the nightly and weekly jobs merge a sharded scan's parts instead of scanning
    parts: PartsSettings | None = None


class SelectionSettings(Section):
    """Rule selection like ruff: codes (IM002), prefixes (IM) or families (images)."""

    select: list[str] = Field(default_factory=lambda: ["ALL"])
    ignore: list[str] = Field(default_factory=list)


class NamespaceOverride(Section):
    """Per-namespace rule options and selection (``fnmatch`` patterns on the namespace)."""

    namespaces: list[str] = Field(min_length=1)
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)
    protected_tags: list[str] | None = None


class MuteEntry(Section):
    """An accepted exception: matching findings are muted until ``expires``."""

    repository: str = "*"
    digest: str | None = None
    rules: list[str] = Field(default_factory=lambda: ["ALL"], min_length=1)
    reason: str = Field(min_length=3)
    expires: date | None = None


class ProtectionSettings(Section):
    protected_tags: list[str] = Field(
        default_factory=lambda: ["latest", "main", "master", "stable", "prod*", "release*"]
    )
    keep_newest: int = Field(default=3, ge=0, le=1000)
    pulled_within_days: int = Field(default=30, ge=0, le=3650)
    opt_out_tag_key: str = "hygiene:keep"
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
    regions: list[str] = Field(default_factory=list)  # none: registry.regions
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
    storage_usd_per_gb_month: float = Field(default=0.10, ge=0)
    archive_usd_per_gb_month: float = Field(default=0.10, ge=0)
    currency: str = "USD"


class ApplySettings(Section):
    auto_safe: bool = False
    apply_approved: bool = False
    grace_days: int = Field(default=7, ge=0, le=365)
    batch_size: int = Field(default=100, ge=1, le=100)
    proposal_ttl_days: int = Field(default=30, ge=1, le=365)


class StoreSettings(Section):
    url: str = "sqlite:///hygiene.db"


def _lifecycle_patterns(values: list[str]) -> list[str]:
    """ECR tag patterns: ``*`` is the only wildcard, at most four per pattern."""
    for value in values:
        if not value:
            raise ValueError("empty tag pattern")
        if value.count("*") > 4:
            raise ValueError(f"tag pattern {value!r} has more than 4 '*' wildcards (ECR limit)")
        if any(c in value for c in "?[]"):
            raise ValueError(f"tag pattern {value!r}: ECR patterns only support the '*' wildcard")
    return values


class KeepTagged(Section):
    """Keep the newest ``keep`` images carrying tags matching ALL ``patterns``."""

    patterns: list[str] = Field(min_length=1, max_length=20)
    keep: int = Field(ge=1, le=100_000)

    _check_patterns = field_validator("patterns")(_lifecycle_patterns)


class LifecycleArchive(Section):
    """Transition images matching ``patterns`` to the archive storage class."""

    patterns: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=20)
    after_days: int = Field(ge=1, le=3650)
    count_type: Literal["sinceImagePushed", "sinceImagePulled"] = "sinceImagePulled"

    _check_patterns = field_validator("patterns")(_lifecycle_patterns)


class LifecyclePolicySettings(Section):
    """What a generated lifecycle policy expires, keeps and archives.

    The defaults are in ``lifecycle:``; an entry of ``lifecycle.overrides`` may change any
    of these for some namespaces or repositories, and nothing else.
    """

    # Expire untagged images (never index children: ECR keeps those with their index).
    expire_untagged_days: int | None = Field(default=14, ge=1, le=3650)
    keep_tagged: list[KeepTagged] = Field(
        default_factory=lambda: [KeepTagged(patterns=["*"], keep=50)]
    )
    # Optional transition to the archive storage class (not understood by moto 5.2).
    archive: LifecycleArchive | None = None
    # Expire images archived for N days. At least 90, as the policy validator requires
    # (lifecycle.policy.MIN_ARCHIVE_DAYS): archived images are billed for 90 days anyway
    # (docs/ecr-facts.md, "Deleting").
    expire_archived_after_days: int | None = Field(default=None, ge=90, le=36500)

    def policy_settings(self) -> dict[str, Any]:
        """The :class:`LifecyclePolicySettings` fields of this model, by name."""
        return {name: getattr(self, name) for name in LifecyclePolicySettings.model_fields}


def _inherited(schema: dict[str, Any]) -> None:
    """An override's policy settings default to the ``lifecycle:`` values, not to their own."""
    for name in LifecyclePolicySettings.model_fields:
        schema["properties"][name].pop("default", None)


class LifecycleOverride(LifecyclePolicySettings):
    """Lifecycle settings for matching namespaces/repositories (``fnmatch`` patterns).

    Only the keys an entry sets apply; an explicit ``null`` sets too (it turns that rule
    off). Later entries win; a repository match is applied after a namespace match.
    """

    model_config = ConfigDict(json_schema_extra=_inherited)

    namespaces: list[str] = Field(default_factory=list)
    repositories: list[str] = Field(default_factory=list)

    def policy_settings(self) -> dict[str, Any]:
        """The policy settings this entry sets (not the defaults of those it leaves out)."""
        return {k: v for k, v in super().policy_settings().items() if k in self.model_fields_set}

    @model_serializer(mode="wrap")
    def _only_what_is_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        keep = {"namespaces", "repositories", *self.policy_settings()}
        return {k: data[k] for k in ("namespaces", "repositories", *data) if k in keep}


class LifecycleSettings(LifecyclePolicySettings):
    """Inputs for generated lifecycle policies (see hygiene.lifecycle, docs/lifecycle.md)."""

    # countNumber of the shield rules that match protected tags first: far above any
    # repository's image count, so the shield itself never expires anything.
    protected_count_number: int = Field(default=1_000_000, ge=100_000, le=2_147_483_647)
    # Whether ECR accepts sinceImagePulled with expire is unconfirmed (docs/ecr-facts.md,
    # "Lifecycle policies"): off unless enabled.
    allow_since_image_pulled_expire: bool = False
    # Preview: an image never pulled counts its age from its push ("pushed") or is never
    # selected by a sinceImagePulled rule ("keep").
    preview_never_pulled: Literal["pushed", "keep"] = "pushed"
    # Propose replacing a repository's existing (different) policy too, not only adding
    # one where there is none (RP002).
    replace_existing: bool = False
    overrides: list[LifecycleOverride] = Field(default_factory=list)


class SmtpSettings(Section):
    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: str | None = "HYGIENE_SMTP_USER"
    password_env: str | None = "HYGIENE_SMTP_PASSWORD"
    password_file: Path | None = None
    sender: str = "registry-hygiene@localhost"
    timeout: float = Field(default=30.0, gt=0)
    # security: none sends the password in clear text: refused unless the host is a
    # loopback address, or this says the network in between is trusted.
    allow_plaintext_auth: bool = False


class SlackSettings(Section):
    token_env: str = "HYGIENE_SLACK_TOKEN"
    webhook_url_env: str = "HYGIENE_SLACK_WEBHOOK_URL"
    base_url: str | None = None
    admin_channel: str | None = None
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
    admin_emails: list[str] = Field(default_factory=list)  # recipients of the nightly report
    weekly_cc_members: bool = False  # copy the project's members on its weekly report
    subject_prefix: str = "[registry-hygiene]"


class ReportSettings(Section):
    out_dir: Path = Path("reports/out")
    timezone: str = "America/Fortaleza"
    locale: Literal["en", "pt_BR"] = "en"
    largest_repositories: int = Field(default=10, ge=1, le=100)
    trend_runs: int = Field(default=12, ge=2, le=365)
    max_rows: int = Field(default=100, ge=5, le=10000)  # rows per table; the rest in exports
    templates_dir: Path | None = None  # default: the package's templates (from reports/)
    exports: tuple[Literal["csv", "json"], ...] = ("csv", "json")  # written next to the HTML

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)


class ScheduleSettings(Section):
    timezone: str = "America/Fortaleza"
    nightly: str = "0 3 * * *"
    weekly: str = "0 8 * * mon"
    misfire_grace_seconds: int = Field(default=3600, ge=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("nightly", "weekly")
    @classmethod
    def _crontab(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"not a 5-field crontab expression: {exc}") from exc
        return value


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
    admins: list[str] = Field(default_factory=list)
    apply: ApplySettings = ApplySettings()
    store: StoreSettings = StoreSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    notify: NotifySettings = NotifySettings()
    report: ReportSettings = ReportSettings()
    schedule: ScheduleSettings = ScheduleSettings()


class Project(Section):
    """One registered project: the owner of a namespace."""

    description: str = ""
    owners: list[str] = Field(min_length=1)
    members: list[str] = Field(default_factory=list)
    slack_channel: str | None = None
    language: Literal["en", "pt_BR"] = "en"
    timezone: str | None = None

    @field_validator("owners", "members")
    @classmethod
    def _emails(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
                raise ValueError(f"not an email address: {value!r}")
        return values

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)


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


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


# --------------------------------------------------------------------------- loading


def _format_validation_error(source: YamlMapping, exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function")))
    key_path = ".".join(str(p) for p in loc) or "(top level)"
    where = source.where(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    else:
        message = first["msg"]
        if first.get("input") is not None and kind not in ("missing",):
            message += f" (got {first['input']!r})"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {key_path}: {message}{suffix}"


def _validate(model: type[BaseModel], path: Path) -> Any:
    source = read_mapping(path)
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from exc


ConfigCheck = Callable[[Config], None]
"""A further check of a loaded configuration; raises :class:`ConfigError` when it fails."""


def load_config(
    rules_dir: Path | str | None = None, *, checks: Sequence[ConfigCheck] = ()
) -> Config:
    """Load and validate ``<rules_dir>/default.yaml`` and ``<rules_dir>/projects.yaml``.

    ``rules_dir`` defaults to ``$HYGIENE_RULES_DIR`` or ``./rules``. Raises
    :class:`ConfigError` (exit code 2) with file, key path and line on any problem.
    ``checks`` run after the models validate (see :func:`load_config_files`).
    """
    directory = Path(rules_dir or os.environ.get("HYGIENE_RULES_DIR") or DEFAULT_RULES_DIR)
    return load_config_files(directory / POLICY_FILE, directory / PROJECTS_FILE, checks=checks)


def load_config_files(
    policy_path: Path, projects_path: Path, *, checks: Sequence[ConfigCheck] = ()
) -> Config:
    """Load both files, then run ``checks`` on the result.

    The models here leave rule codes, option names and ranges, selectors and regexes
    free-form: they are known to the rules engine, which depends on this module, so its
    check is passed in (``checks=[hygiene.rules.validate_config]``, as the CLI and the
    scheduler do). Without it a bad rule option is still refused, but only when the rules
    are evaluated, after the registry has been read.
    """
    policy = _validate(Policy, policy_path)
    projects = _validate(ProjectsRegistry, projects_path)
    config = Config(
        policy=policy, projects=projects, policy_path=policy_path, projects_path=projects_path
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
