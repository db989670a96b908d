from __future__ import annotations

import pytest

from hygiene.config import Config
from hygiene.report import RenderedReport, ReportData, render_nightly, render_weekly
from tests.report import sample


@pytest.fixture(scope="session")
def data() -> ReportData:
    return sample.report_data(incomplete=True)


@pytest.fixture(scope="session")
def nightly(data: ReportData, config: Config) -> RenderedReport:
    return render_nightly(data, config)


@pytest.fixture(scope="session")
def weekly(data: ReportData, config: Config) -> dict[str, RenderedReport]:
    return {ns: render_weekly(data, config, ns) for ns in ("suporte", "ml", "eureca")}
