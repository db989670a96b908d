"""What a failing exec credential plugin's refusal says (hygiene.collect.workloads.execplugin)."""

from __future__ import annotations

from pathlib import Path

import yaml

from hygiene.collect.workloads.execplugin import MAX_LINE, exec_failure


def kubeconfig(path: Path, command: str, args: list[str]) -> Path:
    user = {"exec": {"apiVersion": "v1beta1", "command": command, "args": args}}
    document = {
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u"}}],
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_the_first_line_of_stderr_is_bounded(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "k", "/usr/local/bin/aws", ["eks", "get-token", "--x", "y"])
    long = "could not refresh: " + "word " * 200
    said = exec_failure(config, "lab", [f"exec: process returned 1. {long}\nmore"])
    assert said is not None and said.startswith(
        "the kubeconfig's exec plugin `aws eks get-token` failed (exit status 1: could not"
    )
    line = said.split("(exit status 1: ", 1)[1][:-1]
    assert len(line) == MAX_LINE and line.endswith("…") and "more" not in said


def test_a_plugin_that_says_nothing_or_prints_no_credential(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "k", "gke-gcloud-auth-plugin", [])
    assert exec_failure(config, "lab", ["exec: process returned 2"]) == (
        "the kubeconfig's exec plugin `gke-gcloud-auth-plugin` failed (exit status 2, "
        "nothing on stderr)"
    )
    decoded = "exec: failed to decode process output: Expecting value: line 1 column 1"
    assert exec_failure(config, "lab", [decoded]) == (
        f"the kubeconfig's exec plugin `gke-gcloud-auth-plugin` failed ({decoded})"
    )
    assert exec_failure(config, "lab", []) is None
    assert exec_failure(tmp_path / "missing", "lab", ["exec: process returned 2"]) == (
        "the kubeconfig's exec plugin `?` failed (exit status 2, nothing on stderr)"
    )
