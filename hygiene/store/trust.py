"""The deployed trust policy, pinned by the scheduled runs (see hygiene.authz.policy)."""

from __future__ import annotations

import logging
import socket
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from hygiene.authz.policy import PinnedTrust, TrustPolicy
from hygiene.store.base import StoreBase, utcnow
from hygiene.store.models import AuditRow, TrustPinRow

log = logging.getLogger(__name__)


class StoreTrust(StoreBase):
    """``pin_trust`` (the scheduled job) and ``pinned_trust`` (everyone else)."""

    def pinned_trust(self) -> PinnedTrust | None:
        """The deployed trust policy: the newest pin, or None if nothing was pinned."""
        query = select(TrustPinRow).order_by(TrustPinRow.id.desc()).limit(1)
        with self.session() as session:
            row = session.scalars(query).first()
            if row is None:
                return None
            return PinnedTrust(
                TrustPolicy.from_document(row.document), row.digest, row.at, row.run_id, row.host
            )

    def pin_trust(
        self, policy: TrustPolicy, *, run_id: str | None = None, now: datetime | None = None
    ) -> list[str] | None:
        """Pin ``policy`` as the deployed one unless it already is.

        Returns what changed (``[]`` when the pin was already this policy, every line of
        the change otherwise, with an audit row ``trust-pinned``), or None when this
        database login may not pin (cron/postgres/grants.sql keeps that to the owner).
        """
        now = now or utcnow()
        previous = self.pinned_trust()
        if previous is not None and previous.digest == policy.digest:
            return []
        changes = (
            policy.differences(previous.policy)
            if previous is not None
            else ["first pin: admins " + (", ".join(policy.admins) or "(none)")]
        )
        try:
            with self.session() as session:
                session.add(
                    TrustPinRow(
                        at=now,
                        run_id=run_id,
                        digest=policy.digest,
                        document=policy.document(),
                        host=socket.gethostname(),
                    )
                )
                session.add(
                    AuditRow(
                        at=now,
                        run_id=run_id,
                        actor="",
                        action="pin-trust",
                        outcome="trust-pinned",
                        detail="; ".join(changes) or "policy pinned",
                        data={"digest": policy.digest, "previous": previous and previous.digest},
                    )
                )
        except DBAPIError as exc:
            if "permission denied" not in str(exc.orig):
                raise
            log.warning("this store login may not pin the trust policy: %s", exc.orig)
            return None
        log.warning("trust policy pinned (%s): %s", policy.digest[:12], "; ".join(changes))
        return changes
