"""Generate docs/cli.md from the click commands, so the reference never drifts.

``python -m hygiene.cli.docgen > docs/cli.md``; a test fails when the committed file
differs from the generated one.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

INTRO = """# Command reference

Generated from the commands' own help (`python -m hygiene.cli.docgen > docs/cli.md`);
a test keeps it in sync.

Exit codes, the same for every command:

| code | meaning |
|---|---|
| 0 | success; no finding at or above `--fail-on` |
| 1 | findings at or above `--fail-on` (`scan`, `run nightly`) |
| 2 | usage or configuration error: nothing was called, nothing changed; or `approve`/`reject \
--namespace … --expect N` matched another number of proposals: nothing was decided |
| 3 | the scan is incomplete (a repository or region could not be read); nothing is applied |
| 4 | not authorised: not a deployed admin (or owner, to object), not verifiable, or \
rules that are not the deployed ones (apply) |
| 5 | another run holds the registry lock |
| 6 | registry unreachable, or no/expired credentials (STS cannot say who you are) |
| 7 | apply finished with failed actions, or kept a proposal because a read its re-check \
needs was refused (AccessDenied: the role lacks a permission; on the in-use re-check \
also a Kubernetes 403, or a 401 that stays with the kubeconfig loaded afresh) |
| 8 | the run did its work, but a report reached no one (`degraded`; the admins were alerted) |
"""


def _walk(ctx: click.Context) -> Iterator[click.Context]:
    group = ctx.command
    assert isinstance(group, click.Group)
    for name, command in sorted(group.commands.items()):
        child = command.make_context(name, [], parent=ctx, resilient_parsing=True)
        yield child
        if isinstance(command, click.Group):
            yield from _walk(child)


def render(root: click.Group) -> str:
    parts = [INTRO]
    base = root.make_context(
        "hygiene", [], resilient_parsing=True, terminal_width=88, max_content_width=88
    )
    for ctx in _walk(base):
        title = ctx.command_path
        usage = ctx.command.get_usage(ctx).replace("Usage: ", "")
        body = ctx.command.get_help(ctx).split("\n", 1)[1].strip("\n")
        parts.append(f"## {title}\n\n```\n{usage}\n\n{body}\n```\n")
    return "\n".join(parts)


def main() -> None:
    from hygiene.cli import cli

    click.echo(render(cli), nl=False)


if __name__ == "__main__":
    main()
