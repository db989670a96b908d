"""What a reader has to act on, grouped so each distinct action appears once (pure).

- :func:`image_rows`: every image of a deletion proposal with its tags (or none:
  "untagged"), age, last pull and size: what an owner needs to object meaningfully.
- :func:`deletion_groups`: open deletion proposals of one report grouped by the rule
  that proposed them, with the images, the totals and the grace dates.
- :func:`approval_groups`: the admins' open proposals grouped by namespace and rule,
  each with the one command that approves the whole group.
- :func:`finding_groups`: findings by rule, findings with the same message merged into
  one line that lists every place it applies to.
- :func:`daily_trend`: the storage trend as one point per day (the day's last run).

Nothing here formats or translates: templates do.
"""

from __future__ import annotations

import itertools
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, overload
from zoneinfo import ZoneInfo

from hygiene.findingtable import finding_index
from hygiene.inventory import namespace_of
from hygiene.model import selection_digest
from hygiene.report.format import to_datetime
from hygiene.report.places import PLAIN

# with the number of proposals the command selects and the digest of their ids (all of
# them are in the report): run later, when others were proposed, or one was replaced by a
# new id, it approves nothing (docs/approvals.md §4)
APPROVE_GROUP_COMMAND = (
    "hygiene approve --namespace {namespace} --rule {rule} --expect {count}:{digest}"
)
APPROVE_IDS_COMMAND = "hygiene approve {ids}"
# how an owner objects; the reports show it once, with the id column of their tables
REJECT_COMMAND = 'hygiene reject PROPOSAL_ID --reason "…"'
OUTSIDE_NAMESPACE = "-"  # --namespace value of repositories outside any namespace
DELETE_ACTIONS = frozenset({"delete-images", "delete-repository"})
OPEN_STATES = frozenset({"proposed", "approved"})


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageRow:
    """One image a proposal deletes."""

    proposal_id: str
    repository: str
    digest: str
    tags: tuple[str, ...]  # empty: untagged
    pushed_at: datetime | None
    age_days: int | None
    last_pull: datetime | None  # None: never pulled (as far as ECR recorded)
    bytes: int
    is_index: bool = False
    rule_codes: tuple[str, ...] = ()
    account: str = ""
    region: str = ""

    @property
    def untagged(self) -> bool:
        return not self.tags

    def to_json(self) -> dict[str, Any]:
        return {
            "proposal": self.proposal_id,
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
            "untagged": self.untagged,
            "pushed_at": self.pushed_at.isoformat() if self.pushed_at else None,
            "age_days": self.age_days,
            "last_pull": self.last_pull.isoformat() if self.last_pull else None,
            "bytes": self.bytes,
            "rule_codes": list(self.rule_codes),
        }


def image_rows(proposal: Mapping[str, Any], now: datetime) -> list[ImageRow]:
    """The images of a ``delete-images`` proposal, oldest push first (none for other
    actions). Tags, push and pull times and sizes come from the proposal's evidence: what
    the proposal was decided on, which apply re-checks before deleting."""
    evidence = proposal.get("evidence") or {}
    codes_by_digest = evidence.get("rule_codes") or {}
    rows = []
    for image in evidence.get("images") or []:
        pushed = to_datetime(image.get("pushed_at"))
        digest = str(image.get("digest", ""))
        codes = codes_by_digest.get(digest) if isinstance(codes_by_digest, Mapping) else None
        rows.append(
            ImageRow(
                proposal_id=str(proposal.get("id", "")),
                repository=str(proposal.get("repository", "")),
                digest=digest,
                tags=tuple(str(t) for t in image.get("tags") or ()),
                pushed_at=pushed,
                age_days=(now - pushed).days if pushed else None,
                last_pull=to_datetime(image.get("last_pull")),
                bytes=int(image.get("bytes") or 0),
                is_index=bool(image.get("is_index")),
                rule_codes=tuple(codes or proposal.get("rule_codes") or ()),
                account=str(proposal.get("account") or ""),
                region=str(proposal.get("region") or ""),
            )
        )
    rows.sort(key=lambda r: (r.pushed_at is None, r.pushed_at or now, r.digest))
    return rows


def images_by_proposal(proposals: Iterable[Mapping[str, Any]], now: datetime) -> ProposalImages:
    """:func:`image_rows` of every ``delete-images`` proposal, by proposal id."""
    return ProposalImages(proposals, now)


class ProposalImages(Mapping[str, list[ImageRow]]):
    """:func:`image_rows` of every ``delete-images`` proposal, by proposal id, made when
    asked and not kept: a first scan's deletions hold most of the registry's images
    (800,000 rows at a million images), which the report shows a few of per group and
    exports one proposal at a time."""

    def __init__(self, proposals: Iterable[Mapping[str, Any]], now: datetime) -> None:
        self.now = now
        self._proposals = {
            str(p.get("id")): p for p in proposals if p.get("action") == "delete-images"
        }

    def __getitem__(self, key: str) -> list[ImageRow]:
        return image_rows(self._proposals[key], self.now)

    def __iter__(self) -> Iterator[str]:
        return iter(self._proposals)

    def __len__(self) -> int:
        return len(self._proposals)

    def proposal(self, key: str) -> Mapping[str, Any] | None:
        """The ``delete-images`` proposal whose images ``self[key]`` lists."""
        return self._proposals.get(key)

    def count(self, key: str) -> int:
        """``len(self[key])`` without making the rows (0 for an unknown id)."""
        proposal = self._proposals.get(key)
        if proposal is None:
            return 0
        return len((proposal.get("evidence") or {}).get("images") or [])

    def tags(self, key: str) -> list[str]:
        """Every tag of ``self[key]``'s images, sorted, without making the rows."""
        proposal = self._proposals.get(key)
        images = ((proposal or {}).get("evidence") or {}).get("images") or []
        try:  # every image a dict with its tags listed, every tag text: C loops
            found = set(itertools.chain.from_iterable(map(operator.itemgetter("tags"), images)))
        except (KeyError, TypeError):
            found = None
        if found is not None and set(map(type, found)) <= {str}:
            return sorted(found)
        return sorted({str(t) for image in images for t in image.get("tags") or ()})

    def rows_of(self, keys: Sequence[str]) -> ImageRowList:
        return ImageRowList(self, list(keys))


class ImageRowList(Sequence[ImageRow]):
    """The image rows of several proposals, one after the other, made when read (a
    report table shows the first few; ``len`` counts them all)."""

    def __init__(self, images: ProposalImages, keys: list[str]) -> None:
        self._images = images
        self._keys = keys
        self._length = sum(images.count(k) for k in keys)

    def __len__(self) -> int:
        return self._length

    def _rows(self, stop: int | None = None) -> Iterator[ImageRow]:
        made = 0
        for key in self._keys:
            if stop is not None and made >= stop:
                return
            if key in self._images:
                rows = self._images[key]
                made += len(rows)
                yield from rows

    def __iter__(self) -> Iterator[ImageRow]:
        return self._rows()

    @overload
    def __getitem__(self, index: int) -> ImageRow: ...

    @overload
    def __getitem__(self, index: slice) -> list[ImageRow]: ...

    def __getitem__(self, index: int | slice) -> ImageRow | list[ImageRow]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return list(itertools.islice(self._rows(stop), start, stop, step))
        index = finding_index(index, len(self), "image row")
        return next(itertools.islice(self._rows(index + 1), index, None))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ImageRowList | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------- deletions


@dataclass
class DeletionGroup:
    """Open deletion proposals of one rule: what goes, how much, and when at the earliest."""

    code: str
    rule: str
    proposals: list[dict[str, Any]] = field(default_factory=list)
    images: list[ImageRow] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)  # deleted whole
    bytes: int = 0
    fix: str = ""  # the rule's fix, as the rule states it (translated where shown)

    @property
    def proposal_count(self) -> int:
        return len(self.proposals)

    @property
    def repository_count(self) -> int:
        return len({p.get("repository") for p in self.proposals})

    @property
    def grace_dates(self) -> list[datetime]:
        dates = (to_datetime(p.get("grace_until")) for p in self.proposals)
        return sorted(d for d in dates if d is not None)

    @property
    def earliest(self) -> datetime | None:
        dates = self.grace_dates
        return dates[0] if dates else None

    @property
    def latest(self) -> datetime | None:
        dates = self.grace_dates
        return dates[-1] if dates else None

    @property
    def without_grace(self) -> int:
        """Proposals whose owners were not told yet (no grace date)."""
        return sum(1 for p in self.proposals if not p.get("grace_until"))

    @property
    def approved(self) -> int:
        return sum(1 for p in self.proposals if p.get("state") == "approved")

    @property
    def safety(self) -> str:
        kinds = {p.get("fix_safety") for p in self.proposals}
        return "safe" if kinds == {"safe"} else "unsafe"


def primary_rule(proposal: Mapping[str, Any]) -> str:
    codes = list(proposal.get("rule_codes") or [])
    return str(sorted(codes)[0]) if codes else "—"


def deletion_groups(
    proposals: Iterable[Mapping[str, Any]],
    rule_names: Mapping[str, str],
    now: datetime,
    rows: Mapping[str, list[ImageRow]] | None = None,
    label: Callable[[Any], str] = PLAIN.of,
) -> list[DeletionGroup]:
    """Open deletion proposals by rule (a proposal found by two rules goes under its
    first code), each with its images; groups in rule-code order. ``label`` names a
    repository deleted whole (:mod:`hygiene.report.places`)."""
    groups: dict[str, DeletionGroup] = {}
    for proposal in proposals:
        if proposal.get("action") not in DELETE_ACTIONS or proposal.get("state") not in OPEN_STATES:
            continue
        code = primary_rule(proposal)
        group = groups.setdefault(code, DeletionGroup(code, rule_names.get(code, "")))
        group.proposals.append(dict(proposal))
        group.bytes += int(proposal.get("bytes") or 0)
        if proposal.get("action") == "delete-images":
            known = rows.get(str(proposal.get("id"))) if rows is not None else None
            group.images += known if known is not None else image_rows(proposal, now)
        else:
            group.repositories.append(label(proposal))
    for group in groups.values():
        group.images.sort(key=lambda r: (r.repository, r.pushed_at or now, r.digest))
        group.proposals.sort(key=lambda p: (str(p.get("repository", "")), str(p.get("id"))))
    return [groups[code] for code in sorted(groups)]


# --------------------------------------------------------------------------- approvals


@dataclass
class ApprovalGroup:
    """Proposals one command approves: every open proposal of ``namespace`` that ``rule``
    proposed (minus those an earlier group's command already approved)."""

    namespace: str | None
    rule: str
    proposals: list[dict[str, Any]] = field(default_factory=list)
    command: str = ""
    exact: bool = True  # the command selects exactly these proposals
    bytes: int = 0
    images: int = 0
    actions: list[str] = field(default_factory=list)
    image_rows: Sequence[ImageRow] = field(default_factory=list)  # of its delete-images proposals

    @property
    def count(self) -> int:
        return len(self.proposals)

    @property
    def safety(self) -> str:
        kinds = {p.get("fix_safety") for p in self.proposals}
        return "safe" if kinds == {"safe"} else "unsafe"

    @property
    def grace_dates(self) -> list[datetime]:
        dates = (to_datetime(p.get("grace_until")) for p in self.proposals)
        return sorted(d for d in dates if d is not None)

    @property
    def earliest_grace(self) -> datetime | None:
        dates = self.grace_dates
        return dates[0] if dates else None

    @property
    def latest_grace(self) -> datetime | None:
        dates = self.grace_dates
        return dates[-1] if dates else None

    @property
    def deletes(self) -> bool:
        """Every action of the group deletes (the weekly report's wording fits it)."""
        return bool(self.actions) and set(self.actions) <= DELETE_ACTIONS


def approval_groups(proposals: Iterable[Mapping[str, Any]]) -> list[ApprovalGroup]:
    """Proposals awaiting approval grouped by (namespace, rule), each with its command.

    ``hygiene approve --namespace NS --rule CODE --expect N:DIGEST`` approves every
    *proposed* proposal of NS whose rule codes include CODE, if they are the N the report
    shows (DIGEST: :func:`hygiene.model.selection_digest` of their ids). A group whose
    rule's command would also select proposals listed under another group (``exact``
    False: a proposal two rules flagged is listed once) is approved by its ids instead:
    once the other group's command has approved the shared proposal, the rule's
    selection would no longer be the one its ``--expect`` pins, and would approve
    nothing. So the commands select disjoint sets, and running them in any order
    approves each proposal once.
    """
    waiting = [dict(p) for p in proposals if p.get("state") == "proposed"]
    by_namespace: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for proposal in waiting:  # the repository's namespace, as `approve --namespace` selects
        repository = proposal.get("repository")
        owner = namespace_of(repository) if repository else proposal.get("namespace")
        by_namespace[owner].append(proposal)
    groups: list[ApprovalGroup] = []
    for namespace in sorted(by_namespace, key=lambda n: (n is None, n or "")):
        members = by_namespace[namespace]
        assigned: set[str] = set()
        codes = sorted({primary_rule(p) for p in members})
        for code in codes:
            selected = [p for p in members if code in (p.get("rule_codes") or [])]
            fresh = [p for p in selected if p["id"] not in assigned and primary_rule(p) == code]
            if not fresh:
                continue
            assigned.update(p["id"] for p in fresh)
            flag = OUTSIDE_NAMESPACE if namespace is None else namespace
            listed = sorted(fresh, key=lambda p: (str(p.get("repository")), p["id"]))
            exact = len(selected) == len(fresh)
            command = (
                APPROVE_GROUP_COMMAND.format(
                    namespace=flag,
                    rule=code,
                    count=len(selected),
                    digest=selection_digest(p["id"] for p in selected),
                )
                if exact
                else APPROVE_IDS_COMMAND.format(ids=" ".join(p["id"] for p in listed))
            )
            group = ApprovalGroup(
                namespace=namespace,
                rule=code,
                proposals=listed,
                command=command,
                exact=exact,
                bytes=sum(int(p.get("bytes") or 0) for p in fresh),
                images=sum(len((p.get("target") or {}).get("digests") or []) for p in fresh),
                actions=sorted({str(p.get("action")) for p in fresh}),
            )
            groups.append(group)
    return groups


# --------------------------------------------------------------------------- findings


@dataclass
class FindingLine:
    """One thing a rule says, and every place it says it about."""

    message: Any  # the finding's message (template + params) as the first finding had it
    places: list[str] = field(default_factory=list)
    findings: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def mentions_place(self) -> bool:
        """Whether the message itself names its one place (no need to list it again)."""
        if len(self.places) != 1 or not isinstance(self.message, Mapping):
            return False
        params = self.message.get("params") or {}
        return any(str(v) == self.places[0] for v in params.values())


@dataclass
class FindingGroup:
    code: str
    rule: str
    severity: str
    fix_safety: str
    fix: str
    count: int = 0
    bytes: int = 0
    lines: list[FindingLine] = field(default_factory=list)
    details: list[Mapping[str, Any]] = field(default_factory=list)  # rename maps, steps

    @property
    def places(self) -> int:
        return sum(len(line.places) for line in self.lines)


def _message_key(finding: Mapping[str, Any]) -> str:
    template = finding.get("message_template")
    if template:
        params = finding.get("message_params") or {}
        return repr((template, sorted((k, repr(v)) for k, v in params.items())))
    return str(finding.get("message", ""))


def finding_groups(
    findings: Iterable[Mapping[str, Any]],
    severity_order: Mapping[str, int],
    label: Callable[[Any], str] = PLAIN.of,
) -> list[FindingGroup]:
    """Findings by rule; within a rule, findings with the same message become one line
    listing every repository (or namespace) it applies to, named by ``label``."""
    groups: dict[str, FindingGroup] = {}
    lines: dict[tuple[str, str], FindingLine] = {}
    for finding in findings:
        code = str(finding["code"])
        group = groups.get(code)
        if group is None:
            group = groups[code] = FindingGroup(
                code=code,
                rule=str(finding.get("rule", "")),
                severity=str(finding.get("severity", "info")),
                fix_safety=str(finding.get("fix_safety", "manual")),
                fix=str(finding.get("fix", "")),
            )
        group.count += 1
        group.bytes += int(finding.get("bytes") or 0)
        key = (code, _message_key(finding))
        line = lines.get(key)
        if line is None:
            line = lines[key] = FindingLine(_message_of(finding))
            group.lines.append(line)
        place = label(finding)
        if place not in line.places:
            line.places.append(place)
        line.findings.append(finding)
        details = finding.get("details") or {}
        if details.get("rename_map") or details.get("steps"):
            group.details.append(details)
    return sorted(
        groups.values(),
        key=lambda g: (severity_order.get(g.severity, 3), -g.count, g.code),
    )


def _message_of(finding: Mapping[str, Any]) -> Any:
    template = finding.get("message_template")
    if template:
        return {"template": template, "params": finding.get("message_params") or {}}
    return finding.get("message", "")


# --------------------------------------------------------------------------- trend


@dataclass(frozen=True)
class TrendDay:
    day: date
    bytes: int
    delta: int | None  # change since the previous day shown; None for the first
    complete: bool
    pct: float = 0.0  # bar length relative to the largest day (0–100)


def daily_trend(
    points: Sequence[tuple[datetime | None, int, str]], zone: str, days: int
) -> list[TrendDay]:
    """One point per calendar day in ``zone``: that day's last run; the last ``days``."""
    tz = ZoneInfo(zone)
    by_day: dict[date, tuple[datetime, int, str]] = {}
    for when, value, status in points:
        if when is None:
            continue
        local = when.astimezone(tz)
        current = by_day.get(local.date())
        if current is None or local >= current[0]:
            by_day[local.date()] = (local, value, status)
    ordered = sorted(by_day.items())[-days:]
    top = max((value for _, (_, value, _) in ordered), default=0) or 1
    out: list[TrendDay] = []
    previous: int | None = None
    for day, (_, value, status) in ordered:
        out.append(
            TrendDay(
                day=day,
                bytes=value,
                delta=None if previous is None else value - previous,
                complete=status == "complete",
                pct=round(max(value, 0) / top * 100, 1),
            )
        )
        previous = value
    return out
