"""The ``lifecycle:`` section: what generated ECR lifecycle policies expire, keep and
archive, and the per-namespace or per-repository overrides (docs/lifecycle.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from hygiene.configbase import Section


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
