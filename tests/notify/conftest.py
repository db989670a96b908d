from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hygiene.config import Config, NotifySettings, SlackSettings, SmtpSettings
from hygiene.report import RenderedReport, render_nightly, render_weekly, write_report
from tests.report import sample


def with_notify(config: Config, **notify: Any) -> Config:
    smtp = notify.pop("smtp", {})
    slack = notify.pop("slack_settings", {})
    settings = NotifySettings(
        smtp=SmtpSettings(**smtp), slack_settings=SlackSettings(**slack), **notify
    )
    policy = config.policy.model_copy(update={"notify": settings})
    return config.model_copy(update={"policy": policy})


@pytest.fixture
def weekly_ml(config: Config, tmp_path: Path) -> RenderedReport:
    report = render_weekly(sample.report_data(), config, "ml")
    return write_report(report, tmp_path / "out")


@pytest.fixture
def weekly_suporte(config: Config, tmp_path: Path) -> RenderedReport:
    report = render_weekly(sample.report_data(), config, "suporte")
    return write_report(report, tmp_path / "out")


@pytest.fixture
def nightly(config: Config, tmp_path: Path) -> RenderedReport:
    return write_report(render_nightly(sample.report_data(incomplete=True), config), tmp_path / "out")
