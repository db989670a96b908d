"""A kubeconfig whose user is an exec credential plugin, as ``aws eks get-token`` is.

The plugin is a real process the official client runs each time it loads the kubeconfig
(``ExecProvider``): it prints an ``ExecCredential`` with the next of the tokens it was
given (the last one again once they run out) and counts its runs in a file. The first
token can be one the API server no longer accepts (an expired EKS token), the next a
good one: what the client meets when a token expired after it was loaded.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from hygiene_demo.kubernetes_api import KubernetesApi

API_VERSION = "client.authentication.k8s.io/v1beta1"

PLUGIN = f"""\
import json, pathlib, sys
runs = pathlib.Path(sys.argv[1])
tokens = sys.argv[2:]
done = int(runs.read_text()) if runs.exists() else 0
runs.write_text(str(done + 1))
credential = {{"token": tokens[min(done, len(tokens) - 1)]}}
print(json.dumps({{"apiVersion": "{API_VERSION}", "kind": "ExecCredential", "status": credential}}))
"""


def write_kubeconfig(path: Path, api: KubernetesApi, user: dict[str, Any]) -> None:
    """A kubeconfig at ``path`` with one context, ``lab``, on ``api`` as ``user``."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "lab",
        "clusters": [{"name": "local", "cluster": {"server": api.url}}],
        "users": [{"name": "user-lab", "user": user}],
        "contexts": [{"name": "lab", "context": {"cluster": "local", "user": "user-lab"}}],
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")


class ExecKubeconfig:
    """``path``: the kubeconfig of context ``lab``; :attr:`runs`: the plugin's runs."""

    def __init__(self, api: KubernetesApi, directory: Path, tokens: list[str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        plugin = directory / "get-token.py"
        plugin.write_text(PLUGIN, encoding="utf-8")
        self._runs = directory / "plugin-runs"
        self.path = directory / "kubeconfig"
        user = {
            "exec": {
                "apiVersion": API_VERSION,
                "command": sys.executable,
                "args": [str(plugin), str(self._runs), *tokens],
            }
        }
        write_kubeconfig(self.path, api, user)

    @property
    def runs(self) -> int:
        return int(self._runs.read_text()) if self._runs.exists() else 0


SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY0123"  # an AWS secret key's shape

FAILING = f"""\
#!{sys.executable}
import os, sys
sys.stderr.write(
    "An error occurred (ExpiredTokenException) when calling the AssumeRole operation: "
    "the SSO session for profile lab has expired; key {SECRET}, "
    + os.environ["AWS_SECRET_ACCESS_KEY"] + "\\n"
    "Traceback (most recent call last): more lines the admins need not read\\n"
)
sys.exit(255)
"""


def failing_exec_kubeconfig(api: KubernetesApi, path: Path) -> Path:
    """A kubeconfig at ``path`` (context ``lab``) whose exec plugin, ``aws-fake eks
    get-token --cluster-name lab``, fails as ``aws eks get-token`` does when the SSO session
    expired: exit status 255, the reason on stderr (with a secret in it, never to echo)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plugin = path.parent / "aws-fake"
    plugin.write_text(FAILING, encoding="utf-8")
    plugin.chmod(0o755)
    user = {
        "exec": {
            "apiVersion": API_VERSION,
            "command": str(plugin),
            "args": ["eks", "get-token", "--cluster-name", "lab"],
            "env": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "plugin-env-secret-value"}],
        }
    }
    write_kubeconfig(path, api, user)
    return path
