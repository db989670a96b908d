"""Slack against a local HTTP server implementing the Web API methods notify calls."""

from __future__ import annotations

import json
import time

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from hygiene.config import Config
from hygiene.notify import SlackChannel, Target, deliver_all, deliver_report, slack_blocks
from hygiene.report import RenderedReport
from tests.notify.conftest import with_notify
from tests.notify.servers import SlackState


def slack(state: SlackState, config: Config, **settings: object) -> SlackChannel:
    """The Slack channel as from_settings builds it, with the stand-in's Web API."""
    chosen = config.policy.notify.slack_settings.model_copy(update=settings)
    return SlackChannel(web_client(state), settings=chosen)


def web_client(state: SlackState) -> WebClient:
    client = WebClient(token="xoxb-test-token", base_url=state.base + "api/")
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return client


def test_summary_to_project_channel_with_html_upload(
    config: Config, weekly_suporte: RenderedReport, slack_server
) -> None:
    cfg = with_notify(config, slack=True)
    with slack_server() as state:
        results = deliver_report(weekly_suporte, cfg, [slack(state, cfg)])
    assert [(r.ok, r.channel, r.target) for r in results] == [(True, "slack", "#suporte-infra")]
    assert results[0].reached == ("slack:CSUPORTE-INFRA",)
    assert results[0].people == []  # a channel, not a person
    posts = state.called("chat.postMessage")
    assert len(posts) == 1
    payload = posts[0].params
    assert payload["channel"] == "#suporte-infra"
    assert posts[0].headers["Authorization"] == "Bearer xoxb-test-token"
    blocks = payload["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": weekly_suporte.subject},
    }
    fields = [f["text"] for f in blocks[1]["fields"]]
    # pt_BR project: labels and numbers in Portuguese
    assert "*Repositórios*\n2" in fields
    assert any(f.startswith("*Armazenamento*\n2,1\u00a0GiB") for f in fields)
    assert "*Propostas aguardando aprovação*\n2" in fields
    top = next(b for b in blocks if b["type"] == "section" and "text" in b)
    assert "`IM001` untagged-image: 1" in top["text"]["text"]
    assert "`NS003` fragmented-namespace: 1" in top["text"]["text"]
    # the HTML report went up with files_upload_v2 into the posted channel, in the thread
    get_url = state.called("files.getUploadURLExternal")[0].params
    assert get_url["filename"] == "weekly-suporte.html"
    assert state.uploads["F0001"] == weekly_suporte.files["html"].read_bytes()
    complete = state.called("files.completeUploadExternal")[0].params
    assert complete["channel_id"] == "CSUPORTE-INFRA"
    assert complete["thread_ts"] == "1764331200.000100"
    assert json.loads(complete["files"])[0]["title"] == weekly_suporte.subject


# Waits 1 s: Retry-After is whole seconds, and the wait is what this test checks.
def test_rate_limit_retry_after_is_honoured(
    config: Config, nightly: RenderedReport, slack_server
) -> None:
    cfg = with_notify(config, slack=True, slack_settings={"admin_channel": "#registry-admins"})
    state = SlackState(rate_limit_first={"chat.postMessage": 1})
    with slack_server(state):
        started = time.monotonic()
        results = deliver_report(nightly, cfg, [slack(state, cfg, upload_html=False)])
        elapsed = time.monotonic() - started
    assert results[0].ok and results[0].attempts == 1  # slack-sdk retried inside one attempt
    assert len(state.called("chat.postMessage")) == 2
    assert elapsed >= 1.0
    assert state.called("files.getUploadURLExternal") == []
    context = [
        b for b in state.called("chat.postMessage")[1].params["blocks"] if b["type"] == "context"
    ]
    assert any("This scan is incomplete." in e["text"] for b in context for e in b["elements"])


def test_dm_to_owner_found_by_email_when_project_has_no_channel(
    config: Config, weekly_ml: RenderedReport, slack_server
) -> None:
    projects = config.projects.model_copy(
        update={
            "projects": {
                **config.projects.projects,
                "ml": config.projects.projects["ml"].model_copy(update={"slack_channel": None}),
            }
        }
    )
    cfg = with_notify(config.model_copy(update={"projects": projects}), slack=True)
    with slack_server() as state:
        results = deliver_report(weekly_ml, cfg, [slack(state, cfg)])
    assert [(r.ok, r.target) for r in results] == [(True, "dm:ana.costa@lsd.ufcg.edu.br")]
    assert results[0].people == ["ana.costa@lsd.ufcg.edu.br"]
    assert state.called("users.lookupByEmail")[0].params["email"] == "ana.costa@lsd.ufcg.edu.br"
    assert state.called("conversations.open")[0].params["users"] == "U0ANA"
    assert state.called("chat.postMessage")[0].params["channel"] == "DU0ANA"


def test_unknown_slack_user_is_a_recorded_failure(
    config: Config, weekly_suporte: RenderedReport, slack_server
) -> None:
    projects = config.projects.model_copy(
        update={
            "projects": {
                **config.projects.projects,
                "suporte": config.projects.projects["suporte"].model_copy(
                    update={"slack_channel": None}
                ),
            }
        }
    )
    cfg = with_notify(config.model_copy(update={"projects": projects}), slack=True, retries=1)
    with slack_server() as state:
        results = deliver_report(weekly_suporte, cfg, [slack(state, cfg)], sleep=lambda _: None)
    assert [(r.ok, r.attempts) for r in results] == [(False, 2)]
    assert "users_not_found" in (results[0].error or "")
    assert "xoxb" not in (results[0].error or "")
    assert state.called("chat.postMessage") == []


def test_incoming_webhook_mode(config: Config, weekly_ml: RenderedReport, slack_server) -> None:
    cfg = with_notify(config, slack=True)
    with slack_server() as state:
        env = {"HYGIENE_SLACK_WEBHOOK_URL": state.base + "hooks/T000/B000/XXXX"}
        results = deliver_all([weekly_ml], cfg, environ=env)
    assert [(r.ok, r.channel, r.target) for r in results] == [(True, "slack", "webhook")]
    assert results[0].reached == ("slack:webhook",)
    hook = state.called("webhook")[0]
    payload = json.loads(hook.body)
    assert payload["blocks"][0]["text"]["text"] == weekly_ml.subject
    assert payload["text"].startswith(weekly_ml.subject)
    assert state.called("chat.postMessage") == []


def test_bot_token_from_environment_and_base_url(
    config: Config, weekly_ml: RenderedReport, slack_server
) -> None:
    with slack_server() as state:
        cfg = with_notify(config, slack=True, slack_settings={"base_url": state.base + "api/"})
        results = deliver_all([weekly_ml], cfg, environ={"HYGIENE_SLACK_TOKEN": "xoxb-env"})
    assert results[0].ok, results[0].error
    assert state.called("chat.postMessage")[0].headers["Authorization"] == "Bearer xoxb-env"


def test_no_token_and_no_webhook_is_reported(config: Config, weekly_ml: RenderedReport) -> None:
    results = deliver_all([weekly_ml], with_notify(config, slack=True), environ={})
    assert [(r.ok, r.channel) for r in results] == [(False, "slack")]
    assert "HYGIENE_SLACK_TOKEN" in (results[0].error or "")


def test_webhook_client_is_usable_directly(weekly_ml: RenderedReport, slack_server) -> None:
    with slack_server() as state:
        channel = SlackChannel(webhook=WebhookClient(state.base + "hooks/x"))
        assert channel.send(weekly_ml, Target("webhook")).reached == ("slack:webhook",)
    assert len(state.called("webhook")) == 1


def test_hostile_text_is_escaped_in_mrkdwn(weekly_ml: RenderedReport) -> None:
    weekly_ml.summary["by_rule"] = [
        {"code": "TG002", "rule": "<!channel> & <script>", "count": 1, "severity": "info"}
    ]
    _, blocks = slack_blocks(weekly_ml)
    text = json.dumps(blocks)
    assert "<!channel>" not in text and "<script>" not in text
    assert "&lt;!channel&gt; &amp; &lt;script&gt;" in text
