"""The alerts a hand-run ``hygiene apply`` sends the admins: a run that failed (an action
failed, or a read its re-check needs was refused), and proposals kept for a retry by the
third apply in a row (:mod:`hygiene.apply.retries`)."""

from __future__ import annotations

import click

from hygiene.config import Config
from hygiene.store import Store


def alert_failed_apply(config: Config, store: Store, earlier: set[str], why: str) -> None:
    """Alert the admins about the apply run this command recorded as failed (none when
    it was refused before recording one: nothing ran)."""
    from hygiene.notify.alert import send_alert

    mine = [r for r in store.runs(last=1, kind="apply") if r.id not in earlier]
    if not mine or mine[0].status != "failed":
        return
    run = mine[0]
    text = f"The apply run {run.id} failed: {why}\n\n" + "\n".join(f"- {e}" for e in run.errors)
    try:
        send_alert(
            config, run_id=run.id, subject=f"registry-hygiene: apply run {run.id} failed", text=text
        )
    except Exception as exc:  # the run record and the exit code still tell
        click.echo(f"warning: could not alert the admins: {exc}", err=True)


def alert_kept(config: Config, run_id: str, kept: dict[str, str]) -> None:
    """Alert the admins, once, about proposals apply has kept for a retry this many runs
    in a row (hygiene.apply.retries): the run itself is ok."""
    from hygiene.notify.alert import send_alert

    subject = f"registry-hygiene: apply run {run_id} kept {len(kept)} proposal(s) again"
    text = (
        f"The apply run {run_id} kept these proposals for a retry, as the runs before it "
        "did; nothing of them was deleted:\n\n" + "\n".join(f"- {i}: {w}" for i, w in kept.items())
    )
    try:
        send_alert(config, run_id=f"{run_id}-kept", subject=subject, text=text)
    except Exception as exc:  # the run record still tells
        click.echo(f"warning: could not alert the admins: {exc}", err=True)
