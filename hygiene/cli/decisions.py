"""What ``hygiene approve`` and ``hygiene reject`` decide on, and what they tell the admin.

- :func:`select_ids`: the proposals a command names (ids, or ``--namespace`` with
  ``--rule``/``--account``), held to ``--expect N[:DIGEST]`` so an approval never reaches
  proposals that appeared after the admin read the report, nor (with the digest) one that
  replaced a proposal the admin read;
- :func:`approved_line`: when an approved proposal will actually be carried out, in the
  admins' language (``report.locale``, the nightly admin report's).

Apply's rules (:mod:`hygiene.apply.eligibility`, docs/approvals.md §4 and §6): an
approved unsafe fix runs once its grace date has passed; an approved safe fix needs no
grace period for a hand-run ``hygiene apply``, but the nightly job's apply
(``apply.apply_approved``) takes approved proposals only past their grace date, safe
ones too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import combinations
from typing import TYPE_CHECKING

from hygiene.cli.expect import Expectation
from hygiene.errors import ConfigError
from hygiene.messages import N_, Gettext, message
from hygiene.model import FixSafety, selection_digest

if TYPE_CHECKING:
    from hygiene.config import Config
    from hygiene.store import Store, StoredProposal

APPROVED = N_("approved %(id)s (%(summary)s); %(when)s")
# unsafe fixes: the grace period decides, for every apply
UNSAFE_NOT_NOTIFIED = N_(
    "applies once a notice has reached its owners and its grace period has passed"
)
UNSAFE_WAITING = N_("applies not before %(date)s UTC (its grace date)")
UNSAFE_DUE = N_("applies at the next apply (its grace date, %(date)s UTC, has passed)")
# safe fixes: a hand-run apply takes them now; the nightly job's only past the grace date
SAFE_WAITING = N_(
    "applies at the next hand-run `hygiene apply`; the nightly job's apply waits for its "
    "grace date (%(date)s UTC)"
)
SAFE_NOT_NOTIFIED = N_(
    "applies at the next hand-run `hygiene apply`; the nightly job's apply waits for its "
    "grace date, which starts once a notice has reached its owners"
)
SAFE_DUE = N_("applies at the next apply (a hand-run `hygiene apply`, or the nightly job's)")
SAFE_BY_HAND = N_(
    "applies at the next hand-run `hygiene apply` (apply.apply_approved is off: the nightly "
    "job applies no approved proposal)"
)
BY_HAND_ONLY = N_(
    "then by a hand-run `hygiene apply` only (apply.apply_approved is off: the nightly job "
    "applies no approved proposal)"
)


def when_text(value: datetime | None) -> str:
    """A time as the CLI prints it: ``2026-12-05 03:00`` (UTC; callers say so), or ``-``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


def admin_gettext(config: Config) -> Gettext:
    """The catalog of the admins' language: ``report.locale`` (the admin report's)."""
    from hygiene.report.i18n import translations

    return translations(config.policy.report.locale).gettext


def approved_line(
    stored: StoredProposal, config: Config, now: datetime, gettext: Gettext | None = None
) -> str:
    """``approved <id> (<summary>); <when it will be carried out>``.

    ``config`` says whether the nightly job applies approved proposals at all
    (``apply.apply_approved``); ``now`` whether the grace date has passed."""
    proposal = stored.proposal
    grace = proposal.grace_until
    nightly = config.policy.apply.apply_approved
    date = when_text(grace)
    if stored.safety is FixSafety.SAFE:  # as apply will take it (hygiene.fixsafety)
        if not nightly:
            when = message(SAFE_BY_HAND)
        elif grace is None:
            when = message(SAFE_NOT_NOTIFIED)
        elif grace > now:
            when = message(SAFE_WAITING, date=date)
        else:
            when = message(SAFE_DUE)
        text = when.render(gettext)
    else:
        if grace is None:
            when = message(UNSAFE_NOT_NOTIFIED)
        elif grace > now:
            when = message(UNSAFE_WAITING, date=date)
        else:
            when = message(UNSAFE_DUE, date=date)
        text = when.render(gettext)
        if not nightly:
            text += "; " + message(BY_HAND_ONLY).render(gettext)
    return message(APPROVED, id=stored.id, summary=proposal.summary, when=text).render(gettext)


# how many ids a search for what changed tries at most (all pairs of a large selection
# would take long; beyond it the error lists the selection's size only)
CHANGE_SEARCH_LIMIT = 20_000


def what_changed(
    chosen: list[str], others: list[str], expect: Expectation
) -> tuple[list[str], list[str]] | None:
    """``(new, gone)``: up to two ids of ``chosen`` that were not reviewed and up to two
    of ``others`` (the scope's proposals in other states) that were, such that the
    reviewed selection had ``expect``'s digest; None when no such small change explains
    it (or the digest is unknown)."""
    if expect.digest is None:
        return None
    live = set(chosen)
    tried = 0
    for new_count in range(3):
        for gone_count in range(3):
            if len(live) - new_count + gone_count != expect.count:
                continue
            for new in combinations(sorted(live), new_count):
                for gone in combinations(others, gone_count):
                    tried += 1
                    if tried > CHANGE_SEARCH_LIMIT:
                        return None
                    if selection_digest((live - set(new)) | set(gone)) == expect.digest:
                        return list(new), list(gone)
    return None


def select_ids(
    store: Store,
    ids: tuple[str, ...],
    namespace: str | None,
    rule: str | None,
    states: list[str],
    account: str | None = None,
    expect: Expectation | None = None,
) -> list[str]:
    """The proposal ids a decision names: ``ids``, or every proposal in ``states`` of
    ``namespace`` (narrowed by ``rule`` and ``account``).

    ``expect`` is how many (and, with a digest, which) the caller reviewed: a selection
    of any other size, or other proposals, decides nothing (a :class:`ConfigError`, exit
    code 2), so proposals that appeared since the report was read are never approved
    unseen, nor one that replaced a reviewed one."""
    if ids and (namespace or rule or account):
        raise ConfigError("give proposal ids, or --namespace [--rule] [--account], not both")
    if account and not namespace:
        raise ConfigError("--account needs --namespace (approve one namespace at a time)")
    if ids:
        if expect is not None:
            raise ConfigError("--expect goes with --namespace (ids are decided all or nothing)")
        return list(ids)
    if rule and not namespace:
        raise ConfigError("--rule needs --namespace (approve one namespace at a time)")
    if not namespace:
        raise ConfigError("give proposal ids, or --namespace NS [--rule CODE]")
    found = store.proposals(state=states, namespace=namespace, rule=rule, account=account)
    chosen = [s.id for s in found]
    scope = (
        f"namespace {namespace!r}"
        + (f" for rule {rule}" if rule else "")
        + (f" in account {account}" if account else "")
    )
    if expect is not None:
        _hold_to(expect, store, chosen, namespace, rule, states, account, scope)
    if not chosen:
        raise ConfigError(f"no {'/'.join(states)} proposals in {scope}")
    return chosen


def _hold_to(
    expect: Expectation,
    store: Store,
    chosen: list[str],
    namespace: str,
    rule: str | None,
    states: list[str],
    account: str | None,
    scope: str,
) -> None:
    """Raise unless ``chosen`` is what ``expect`` says the admin reviewed."""
    same_count = len(chosen) == expect.count
    if same_count and (expect.digest is None or selection_digest(chosen) == expect.digest):
        return
    listing = ["hygiene proposals", *(f"--state {s}" for s in states)]
    listing += [f"--namespace {namespace}", *([f"--rule {rule}"] if rule else [])]
    listing += [f"--account {account}"] if account else []
    kinds = "/".join(states)
    if same_count:
        found = (
            f"the {len(chosen)} {kinds} proposal(s) that match in {scope} are not the ones reviewed"
        )
    else:
        found = f"{len(chosen)} {kinds} proposal(s) match in {scope}"
    changed = ""
    if expect.digest is not None:
        # the scope's proposals in other states: a reviewed one may have expired since
        # (replaced by a new id), or been decided by someone else
        everyone = store.proposals(namespace=namespace, rule=rule, account=account)
        others = sorted(
            (s for s in everyone if s.id not in set(chosen)),
            key=lambda s: s.last_seen,
            reverse=True,
        )[:40]
        states_of = {s.id: s.state.value for s in others}
        diff = what_changed(chosen, [s.id for s in others], expect)
        if diff is not None:
            new, gone = diff
            parts = [f"new since: {', '.join(new)}"] if new else []
            parts += (
                [f"no longer {kinds}: {', '.join(f'{i} ({states_of[i]})' for i in gone)}"]
                if gone
                else []
            )
            changed = f" ({'; '.join(parts)})"
    raise ConfigError(
        f"--expect {expect}, but {found}{changed}; nothing was decided. The proposals "
        f"changed since they were reviewed: list them ({' '.join(listing)}), review the "
        "difference, and run again with what you reviewed (or approve the reviewed ones by "
        "id)"
    )
