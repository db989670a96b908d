"""The deployment artefacts in cron/ parse, agree with each other and with the config."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
import yaml
from apscheduler.triggers.cron import CronTrigger

from hygiene.config import ScheduleSettings, load_config
from tests.builders import REPO_ROOT

CRON = REPO_ROOT / "cron"
K8S = CRON / "k8s"
DEFAULTS = ScheduleSettings()


@pytest.fixture(scope="module")
def documents() -> dict[str, dict]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            name = document.get("metadata", {}).get("name", path.stem)
            docs[f"{document['kind']}/{name}"] = document
    return docs


def test_kubernetes_manifests_have_the_expected_kinds(documents):
    assert set(documents) == {
        "Kustomization/kustomization",
        "Namespace/registry-hygiene",
        "ServiceAccount/registry-hygiene",
        "ConfigMap/registry-hygiene-rules",
        "Secret/registry-hygiene-secrets",
        "CronJob/registry-hygiene-nightly",
        "CronJob/registry-hygiene-weekly",
    }


def test_kustomization_lists_every_manifest_but_the_secret_example(documents):
    kustomization = documents["Kustomization/kustomization"]
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files - {"secret.example.yaml"}


def test_service_account_is_annotated_for_an_iam_role(documents):
    account = documents["ServiceAccount/registry-hygiene"]
    arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", arn)


@pytest.mark.parametrize(
    ("kind", "expression"), [("nightly", DEFAULTS.nightly), ("weekly", DEFAULTS.weekly)]
)
def test_cronjobs(documents, kind, expression):
    job = documents[f"CronJob/registry-hygiene-{kind}"]
    spec = job["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["schedule"] == expression and spec["timeZone"] == DEFAULTS.timezone
    CronTrigger.from_crontab(spec["schedule"])
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "registry-hygiene"
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] >= 60
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["args"][:2] == ["run", kind]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e for e in container["env"]}
    rules_mount = next(m for m in container["volumeMounts"] if m["name"] == "rules")
    assert env["HYGIENE_RULES_DIR"]["value"] == rules_mount["mountPath"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["rules"]["configMap"]["name"] == "registry-hygiene-rules"
    secret = documents["Secret/registry-hygiene-secrets"]
    for name in ("HYGIENE_SMTP_USER", "HYGIENE_SMTP_PASSWORD", "HYGIENE_SLACK_TOKEN", "PGPASSWORD"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "registry-hygiene-secrets" and ref["key"] in secret["stringData"]
        assert "value" not in env[name]  # secrets only by reference


def test_the_configmap_rules_are_a_valid_configuration(documents, tmp_path):
    data = documents["ConfigMap/registry-hygiene-rules"]["data"]
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    config = load_config(tmp_path)
    assert config.policy.store.url.startswith("postgresql+psycopg://")
    assert ":" not in config.policy.store.url.split("//")[1].split("@")[0]  # no password
    assert config.namespaces == load_config(REPO_ROOT / "rules").namespaces


def systemd_unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((CRON / "systemd" / name).read_text())
    return parser


@pytest.mark.parametrize("kind", ["nightly", "weekly"])
def test_systemd_timers_start_the_template_service(kind):
    timer = systemd_unit(f"registry-hygiene-{kind}.timer")
    assert timer["Timer"]["Unit"] == f"registry-hygiene@{kind}.service"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["OnCalendar"].endswith(DEFAULTS.timezone)
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.parametrize(
    ("unit", "command"),
    [("registry-hygiene@.service", "run %i"), ("registry-hygiene.service", "schedule")],
)
def test_systemd_services_are_hardened(unit, command):
    service = systemd_unit(unit)["Service"]
    assert re.search(rf"/bin/hygiene {re.escape(command)}\b", service["ExecStart"])
    assert service["DynamicUser"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 60
    assert service["StateDirectory"] == "registry-hygiene"


def test_crontab_entries_are_valid_and_match_the_defaults():
    entries = {}
    for line in (CRON / "crontab.example").read_text().splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 6)
        expression, user, command = " ".join(fields[:5]), fields[5], fields[6]
        CronTrigger.from_crontab(expression)
        kind = re.search(r"hygiene run (nightly|weekly)", command).group(1)  # type: ignore[union-attr]
        entries[kind] = expression
        assert user == "hygiene"
    assert entries == {"nightly": DEFAULTS.nightly, "weekly": DEFAULTS.weekly}


def test_containerfile_installs_from_the_lock_file_first():
    lines = [line.strip() for line in (CRON / "Containerfile").read_text().splitlines()]
    text = "\n".join(lines)
    lock = text.index("pip install --require-hashes --no-deps -r /src/requirements-runtime.lock")
    project = text.index("pip install --no-deps /src")
    assert lock < project
    assert re.search(r"^USER (?!0\b|root\b)\d+", text, re.M)
    assert 'ENTRYPOINT ["hygiene"]' in text
    assert Path(REPO_ROOT / "requirements-runtime.lock").is_file()
