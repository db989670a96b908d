from __future__ import annotations

import copy
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


@pytest.fixture(scope="session")
def rendered(config: Config) -> dict[str, RenderedReport]:
    """Rendered once per session; tests get deep copies written to their tmp_path."""
    data = sample.report_data()
    return {
        "ml": render_weekly(data, config, "ml"),
        "suporte": render_weekly(data, config, "suporte"),
        "nightly": render_nightly(sample.report_data(incomplete=True), config),
    }


def _written(rendered: dict[str, RenderedReport], key: str, tmp_path: Path) -> RenderedReport:
    return write_report(copy.deepcopy(rendered[key]), tmp_path / "out")


@pytest.fixture
def weekly_ml(rendered: dict[str, RenderedReport], tmp_path: Path) -> RenderedReport:
    return _written(rendered, "ml", tmp_path)


@pytest.fixture
def weekly_suporte(rendered: dict[str, RenderedReport], tmp_path: Path) -> RenderedReport:
    return _written(rendered, "suporte", tmp_path)


@pytest.fixture
def nightly(rendered: dict[str, RenderedReport], tmp_path: Path) -> RenderedReport:
    return _written(rendered, "nightly", tmp_path)
