"""The lifecycle plan remembers each repository's effective settings by the namespace and
the repository overrides that match it (round 9 of issue 14): every repository still gets
exactly :func:`generate_policy`'s policy, as without the memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hygiene.config import NamespaceOverride
from hygiene.configlifecycle import KeepTagged, LifecycleOverride, LifecycleSettings
from hygiene.lifecycle.generate import GeneratedPolicy, generate_policy
from hygiene.lifecycle.propose import _generated
from tests.conftest import examples
from tests.lifecycle.test_generate import make_config

LIFECYCLE = LifecycleSettings(
    overrides=[
        LifecycleOverride(namespaces=["web"], expire_untagged_days=3),
        LifecycleOverride(
            repositories=["web/legacy-*"], keep_tagged=[KeepTagged(patterns=["v*"], keep=2)]
        ),
        LifecycleOverride(repositories=["*-old", "ml/a?"], expire_untagged_days=9),
        LifecycleOverride(namespaces=["ml", "data*"], expire_untagged_days=20),
        LifecycleOverride(repositories=["ml/*"], expire_untagged_days=None),
    ]
)
CONFIG = make_config(
    LIFECYCLE,
    protected=["latest"],
    overrides=[NamespaceOverride(namespaces=["ml"], protected_tags=["gold"])],
)
names = st.sampled_from(
    [
        "web/site",
        "web/legacy-app",
        "web/legacy-old",
        "ml/ab",
        "ml/abc",
        "ml/a",
        "app",
        "app-old",
        "data1/x",
        "data/y-old",
        "ml",
        "weblegacy-1",
    ]
)
namespaces = st.sampled_from([None, "web", "ml", "data1", "other"])


def _same(got: GeneratedPolicy, expected: GeneratedPolicy) -> None:
    assert got.scope == expected.scope
    assert got.text == expected.text
    assert got.settings == expected.settings
    assert got.notes == expected.notes


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.tuples(namespaces, names), min_size=1, max_size=12))
def test_each_repository_gets_its_own_generated_policy(
    repositories: list[tuple[str | None, str]],
) -> None:
    cache: dict[str, GeneratedPolicy] = {}
    keys: dict[tuple[str | None, tuple[int, ...]], str] = {}
    for namespace, name in repositories:
        expected = generate_policy(CONFIG, namespace=namespace, repository=name)
        _same(_generated(CONFIG, namespace, name, cache, keys), expected)
    assert len(keys) <= len(set(repositories))


def test_a_repository_override_sets_its_repositories_apart() -> None:
    """Two repositories of one namespace, one matched by a repository override: two
    policies (a key of the namespace alone would give the first one's to both)."""
    cache: dict[str, GeneratedPolicy] = {}
    keys: dict[tuple[str | None, tuple[int, ...]], str] = {}
    site = _generated(CONFIG, "web", "web/site", cache, keys)
    legacy = _generated(CONFIG, "web", "web/legacy-app", cache, keys)
    assert site.text != legacy.text
    assert legacy.text == generate_policy(CONFIG, namespace="web", repository="web/legacy-app").text
    assert len(keys) == 2
    # no namespace given: the repository's own (web), as effective_settings takes it
    assert _generated(CONFIG, None, "web/site", cache, keys).text == site.text
    assert len(keys) == 2


def test_the_plan_makes_the_settings_once_per_key(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """plan_lifecycle passes its memory: 8 repositories of two namespaces, two settings."""
    import sys

    from hygiene.lifecycle import plan_lifecycle

    propose = sys.modules["hygiene.lifecycle.propose"]  # the package's propose is a function
    from tests.builders import NOW, digest_of, image_row, inventory, repository_row

    made: list[str | None] = []
    effective = propose.effective_settings

    def counted(config, *, namespace=None, repository=None):  # type: ignore[no-untyped-def]
        made.append(repository)
        return effective(config, namespace=namespace, repository=repository)

    monkeypatch.setattr(propose, "effective_settings", counted)
    names = [f"{ns}/app{i}" for ns in ("web", "data1") for i in range(4)]
    found = inventory(
        [image_row(digest_of(n), n, tags=["v1"], now=NOW) for n in names],
        [repository_row(n, now=NOW) for n in names],
    )
    plan = plan_lifecycle(found, CONFIG, NOW)
    assert len(plan.proposals) + len(plan.kept_existing) + len(plan.unchanged) == len(names)
    assert len(made) == 2
