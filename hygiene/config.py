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
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hygiene.errors import ConfigError

DEFAULT_RULES_DIR = Path("rules")
POLICY_FILE = "default.yaml"
PROJECTS_FILE = "projects.yaml"


class Section(BaseModel):
    """A config section: unknown keys are errors, values are immutable after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistrySettings(Section):
    """Which registry to scan. Region/profile may be overridden on the command line."""

    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    regions: list[str] = Field(default_factory=lambda: ["us-east-1"], min_length=1)
    profile: str | None = None
    endpoint_url: str | None = None


class CollectSettings(Section):
    max_workers: int = Field(default=8, ge=1, le=64)
    retry_mode: Literal["adaptive", "standard", "legacy"] = "adaptive"
    max_attempts: int = Field(default=8, ge=1, le=20)
    page_size: int = Field(default=1000, ge=1, le=1000)
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)


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


class LifecycleOverride(Section):
    """Lifecycle settings for matching namespaces/repositories (``fnmatch`` patterns).

    Later entries win; a repository match is applied after a namespace match.
    """

    namespaces: list[str] = Field(default_factory=list)
    repositories: list[str] = Field(default_factory=list)
    expire_untagged_days: int | None = Field(default=None, ge=1, le=3650)
    keep_tagged: list[KeepTagged] | None = None
    archive: LifecycleArchive | None = None
    expire_archived_after_days: int | None = Field(default=None, ge=90, le=36500)


class LifecycleSettings(Section):
    """Inputs for generated lifecycle policies (see hygiene.lifecycle, docs/lifecycle.md)."""

    # Expire untagged images (never index children: ECR keeps those with their index).
    expire_untagged_days: int | None = Field(default=14, ge=1, le=3650)
    keep_tagged: list[KeepTagged] = Field(
        default_factory=lambda: [KeepTagged(patterns=["*"], keep=50)]
    )
    # Optional transition to the archive storage class (not understood by moto 5.2).
    archive: LifecycleArchive | None = None
    # Expire images archived for N days (ECR: archived images cannot be expired by a
    # lifecycle policy before 90 days in archive).
    expire_archived_after_days: int | None = Field(default=None, ge=90, le=36500)
    # countNumber of the shield rules that match protected tags first: far above any
    # repository's image count, so the shield itself never expires anything.
    protected_count_number: int = Field(default=1_000_000, ge=100_000, le=2_147_483_647)
    # sinceImagePulled + expire is UNCONFIRMED in ECR (ECR_FACTS.md): off unless enabled.
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


def _node_line(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line."""
    node = root
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, _ in node.value if k.value == part), None)
            if match is None:
                break
            line = (key or match).start_mark.line + 1
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping at the top level")
    return data, node


def _format_validation_error(path: Path, exc: ValidationError, node: yaml.Node | None) -> str:
    first = exc.errors()[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function")))
    key_path = ".".join(str(p) for p in loc) or "(top level)"
    line = _node_line(node, loc)
    where = f"{path}:{line}" if line else str(path)
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
    data, node = _read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, exc, node)) from exc


def load_config(rules_dir: Path | str | None = None) -> Config:
    """Load and validate ``<rules_dir>/default.yaml`` and ``<rules_dir>/projects.yaml``.

    ``rules_dir`` defaults to ``$HYGIENE_RULES_DIR`` or ``./rules``. Raises
    :class:`ConfigError` (exit code 2) with file, key path and line on any problem.
    """
    directory = Path(rules_dir or os.environ.get("HYGIENE_RULES_DIR") or DEFAULT_RULES_DIR)
    return load_config_files(directory / POLICY_FILE, directory / PROJECTS_FILE)


def load_config_files(policy_path: Path, projects_path: Path) -> Config:
    policy = _validate(Policy, policy_path)
    projects = _validate(ProjectsRegistry, projects_path)
    config = Config(
        policy=policy, projects=projects, policy_path=policy_path, projects_path=projects_path
    )
    # Rule codes, option names and ranges, selectors and regexes are known only to the
    # rules engine; imported here because the engine imports this module.
    from hygiene.rules.settings import validate_config

    validate_config(config)
    return config


def effective_config_dict(config: Config) -> dict[str, Any]:
    """The fully defaulted configuration as plain data (for ``hygiene config check``)."""
    return {
        "policy": config.policy.model_dump(mode="json"),
        "projects": config.projects.model_dump(mode="json")["projects"],
    }
