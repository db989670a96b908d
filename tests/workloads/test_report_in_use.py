"""The reports say where kept images run, and which in-use sources were read."""

from __future__ import annotations

from hygiene.config import Config
from hygiene.model import KeptImage
from hygiene.report import build_report_data, render_nightly, render_weekly
from tests.report import sample
from tests.report.test_render import visible

RUNNING = KeptImage(
    sample.ACCOUNT,
    sample.REGION,
    "ml/training",
    sample.digest(40),
    ("v0.9.0",),
    ("in-use:ecs:lab-prod/service/trainer",),
)
SOURCES = [
    {"name": "ecs us-east-1", "source": "ecs", "state": "ok", "detail": "", "references": 7},
    {
        "name": "lambda us-east-1",
        "source": "lambda",
        "state": "failed",
        "detail": "ListFunctions: AccessDeniedException: not authorized",
        "references": 0,
    },
    {
        "name": "kubernetes",
        "source": "kubernetes",
        "state": "not-configured",
        "detail": "in_use.kubernetes.contexts",
        "references": 0,
    },
]


def data():
    scan = sample.scan_json()
    scan["kept"].append(RUNNING.to_json())
    scan["run"]["in_use"] = SOURCES
    return build_report_data(scan, inventory=sample.inventory(), now=sample.NOW)


def test_the_nightly_report_shows_where_kept_images_run(config: Config) -> None:
    report = render_nightly(data(), config)
    html = visible(report.html)
    assert "Kept because they run" in html
    assert "runs in ecs:lab-prod/service/trainer" in html
    # protections other than in-use stay out of this section
    assert "protected tag" not in html.split("Kept because they run")[1].split("Incomplete")[0]
    assert "ecs us-east-1 read" in html
    assert "lambda us-east-1 could not be read: no image is deleted on this run" in html
    assert "ListFunctions: AccessDeniedException" in html
    assert "kubernetes not configured, not consulted" in html
    assert "runs in ecs:lab-prod/service/trainer" in report.text
    assert "- lambda us-east-1: could not be read" in report.text


def test_the_weekly_report_and_portuguese(config: Config) -> None:
    weekly = render_weekly(data(), config, "ml")
    assert "runs in ecs:lab-prod/service/trainer" in visible(weekly.html)
    nightly = render_nightly(data(), config, locale="pt_BR")
    html = visible(nightly.html)
    assert "Mantidas porque estão em execução" in html
    assert "executa em ecs:lab-prod/service/trainer" in html
    assert "não configurada, não consultada" in html


def test_more_running_images_than_a_table_shows_name_the_kept_export(config: Config) -> None:
    scan = sample.scan_json()
    for n in range(7):
        running = RUNNING.to_json()
        running["image_digest"] = sample.digest(60 + n)
        scan["kept"].append(running)
    report_settings = config.policy.report.model_copy(update={"max_rows": 5})
    limited = config.model_copy(
        update={"policy": config.policy.model_copy(update={"report": report_settings})}
    )
    built = build_report_data(scan, inventory=sample.inventory(), now=sample.NOW)
    report = render_nightly(built, limited)
    assert "… and 2 more in nightly-kept.csv." in visible(report.html)
    assert "… and 2 more in nightly-kept.csv." in report.text
    portuguese = render_nightly(built, limited, locale="pt_BR")
    assert "… e mais 2 em nightly-kept.csv." in visible(portuguese.html)
