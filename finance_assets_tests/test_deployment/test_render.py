"""deployment/render.py: the deployments' provider sections are what the registry says (the
committed files equal the rendered ones), and a provider added to the registry (the tests'
fake exchange, registered in-process) appears in every one of them: the container stack's env
file, environment and run limits, and the CloudFormation template's allowed values,
conditions, secret keys, task secrets and run limits."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from finance_assets.providers import registry
from finance_assets_tests.test_providers import fake_provider

REPO = Path(__file__).resolve().parents[2]


def _load_render() -> Any:
    spec = importlib.util.spec_from_file_location(
        "deployment_render", REPO / "deployment" / "render.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_render()


def _cfn(text: str) -> dict:
    from finance_assets_tests.test_deployment.test_aws_stack import _CfnLoader

    return yaml.load(text, Loader=_CfnLoader)  # a SafeLoader subclass


def _instance(template: dict, task: str) -> dict:
    (container,) = [
        c
        for c in template["Resources"][task]["Properties"]["ContainerDefinitions"]
        if c["Image"] == {"Ref": "DagsterImageUri"}
    ]
    (entry,) = [e for e in container["Environment"] if e["Name"] == "DAGSTER_INSTANCE_YAML"]
    text, _ = entry["Value"]["Fn::Sub"]
    return yaml.safe_load(re.sub(r"\$\{(\w+)\}", r"\1", text))


def _limits(instance: dict) -> dict[tuple[str, str | None], int]:
    coordinator = instance["run_coordinator"]["config"]
    return {(x["key"], x.get("value")): x["limit"] for x in coordinator["tag_concurrency_limits"]}


def test_the_committed_deployments_are_what_the_registry_renders():
    assert render.differences(render.rendered()) == [], "run: python deployment/render.py --write"
    done = subprocess.run(
        [sys.executable, str(REPO / "deployment" / "render.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_fails_with_a_diff_when_a_section_was_edited_by_hand(tmp_path, monkeypatch):
    edited = render.DOCKER_INSTANCE.read_text().replace(
        "finance/calls.yfinance, limit: 1", "finance/calls.yfinance, limit: 3"
    )
    copy = tmp_path / "dagster.yaml"
    copy.write_text(edited)
    monkeypatch.setattr(render, "DOCKER_INSTANCE", copy)
    (diff,) = render.differences(
        {copy: render.render_sections(edited, {"provider-run-limits": render.run_limits}, "x")}
    )
    assert "-      - {key: finance/calls.yfinance, limit: 3}" in diff
    assert "+      - {key: finance/calls.yfinance, limit: 1}" in diff


def test_a_file_without_its_sections_or_with_an_unknown_one_is_refused():
    with pytest.raises(render.RenderError, match="no section"):
        render.render_sections("a: 1\n", {"providers": render.env_example}, "x.env")
    text = "# BEGIN render.py: nonsense\n# END render.py: nonsense\n"
    with pytest.raises(render.RenderError, match="unknown section 'nonsense'"):
        render.render_sections(text, {}, "x.env")


def test_the_aws_instance_is_one_source_on_the_pooled_storage():
    template = _cfn(render.PLATFORM.read_text())
    web = _instance(template, "WebserverTaskDefinition")
    daemon = _instance(template, "DaemonTaskDefinition")
    assert web == daemon
    source = yaml.safe_load(re.sub(r"\$\{(\w+)\}", r"\1", render.AWS_INSTANCE.read_text()))
    assert web == source
    storage = web["storage"]["custom"]
    assert (storage["module"], storage["class"]) == (
        "finance_assets.dagster_instance.pooled_storage",
        "PooledPostgresStorage",
    )
    # The containers' instance keeps the same per-provider queues.
    docker = yaml.safe_load(render.DOCKER_INSTANCE.read_text())
    assert _limits(web) == _limits(docker)
    assert not (REPO / "dagster.yaml").exists(), "one instance configuration per target"


@pytest.fixture
def with_fake():
    with registry.registered(fake_provider.SPEC):
        yield render.rendered()


def test_a_registered_provider_reaches_the_container_stack(with_fake):
    env_file = with_fake[render.ENV_EXAMPLE]
    assert (
        "# MARKET_DATA_PROVIDER: simulated, twelve_data, alpha_vantage, yfinance, fake_exchange"
        in env_file
    )
    assert "# FAKE_EXCHANGE_API_KEY=\n" in env_file
    assert "required: FAKE_EXCHANGE_API_KEY." in env_file
    assert "# FAKE_EXCHANGE_CALLS_PER_MINUTE=30" in env_file
    compose = yaml.safe_load(with_fake[render.COMPOSE])
    environment = compose["services"]["code"]["environment"]
    assert {"FAKE_EXCHANGE_API_KEY", "FAKE_EXCHANGE_CALLS_PER_MINUTE"} <= set(environment)
    assert environment["FAKE_EXCHANGE_API_KEY"] is None  # unset in the env file: unset here
    # What test_containers checks of the committed pair holds for the rendered pair too.
    passed = set(re.findall(r"^\s+([A-Z][A-Z0-9_]*):\s*$", with_fake[render.COMPOSE], re.M))
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", env_file, re.M))
    assert passed <= listed
    docker = yaml.safe_load(with_fake[render.DOCKER_INSTANCE])
    assert _limits(docker)[("finance/calls.fake_exchange", None)] == 1


def test_a_registered_provider_reaches_the_cloudformation_template(with_fake):
    from finance_assets_tests.test_deployment.test_aws_stack import (
        code_containers,
        role_statements,
        with_conditions,
    )

    template = _cfn(with_fake[render.PLATFORM])
    allowed = template["Parameters"]["MarketDataProvider"]["AllowedValues"]
    assert allowed == ["simulated", "twelve_data", "alpha_vantage", "yfinance", "fake_exchange"]
    assert template["Conditions"]["UsesFakeExchange"] == {
        "Fn::Equals": [{"Ref": "MarketDataProvider"}, "fake_exchange"]
    }
    secret = template["Resources"]["AppSecret"]["Properties"]
    assert "FAKE_EXCHANGE_API_KEY" in yaml.safe_load(secret["SecretString"])
    for task in ("WebserverTaskDefinition", "DaemonTaskDefinition"):
        limits = _limits(_instance(template, task))
        assert limits[("finance/calls.fake_exchange", None)] == 1

    chosen = with_conditions(template, {"MarketDataProvider": "fake_exchange"})
    for name, container in code_containers(chosen).items():
        secrets = {s["Name"] for s in container["Secrets"]}
        assert "FAKE_EXCHANGE_API_KEY" in secrets, name
        assert not secrets & {"TWELVEDATA_API_KEY", "ALPHAVANTAGE_API_KEY"}, name
        # Its execution role may read the app secret, which ECS puts the key from.
        task = chosen["Resources"][name]["Properties"]
        (role,) = task["ExecutionRoleArn"]["Fn::GetAtt"][:1]
        (read,) = [s for s in role_statements(chosen, role) if s["Sid"] == "Secrets"]
        assert {"Ref": "AppSecret"} in read["Resource"], (name, role)
    # Not chosen: no container gets its key.
    default = with_conditions(template, {})
    for name, container in code_containers(default).items():
        assert "FAKE_EXCHANGE_API_KEY" not in {s["Name"] for s in container["Secrets"]}, name


def test_a_daily_run_asking_the_reference_queues_behind_that_providers_other_runs(monkeypatch):
    """us's daily bars from Alpha Vantage, its 5-minute bars and its second opinion from Twelve
    Data: the daily run names both providers, so under either instance's limits it waits for
    a running 5-minute run (one Twelve Data budget at a time), and the other way round. Judged
    by Dagster's own counter of the QueuedRunCoordinator."""
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._utils.tags import TagConcurrencyLimitsCounter

    from finance_assets.defs.market.schedules import daily_job, intraday_job
    from finance_assets.lib.markets import markets_from_env

    for name in ("MARKET_DATA_PROVIDER", "MARKET_DATA_PROVIDER_US", "MARKET_DATA_REFERENCE_UK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MARKET_DATA_PROVIDER_US_DAILY", "alpha_vantage")
    monkeypatch.setenv("MARKET_DATA_PROVIDER_US_5MIN", "twelve_data")
    monkeypatch.setenv("MARKET_DATA_REFERENCE_US", "twelve_data")
    us, uk = (markets_from_env({})[m] for m in ("us", "uk"))

    def run(job) -> DagsterRun:
        return DagsterRun(job_name=job.name, tags=job.tags)

    daily, five = run(daily_job(us)), run(intraday_job(us))
    assert daily.tags["finance/market_data_provider"] == "alpha_vantage"
    assert {k for k in daily.tags if k.startswith("finance/calls.")} == {
        "finance/calls.alpha_vantage",
        "finance/calls.twelve_data",
    }
    for path in (render.DOCKER_INSTANCE, render.AWS_INSTANCE):
        instance = yaml.safe_load(re.sub(r"\$\{(\w+)\}", r"\1", path.read_text()))
        limits = instance["run_coordinator"]["config"]["tag_concurrency_limits"]
        assert TagConcurrencyLimitsCounter(limits, [five]).is_blocked(daily), path
        assert TagConcurrencyLimitsCounter(limits, [daily]).is_blocked(five), path
        # uk's jobs call the simulated market only: never held by us's runs.
        for job in (daily_job(uk), intraday_job(uk)):
            assert not TagConcurrencyLimitsCounter(limits, [daily, five]).is_blocked(run(job))

    # Without the reference the daily run calls Alpha Vantage alone, beside Twelve Data's run.
    monkeypatch.delenv("MARKET_DATA_REFERENCE_US")
    alone = run(daily_job(us))
    assert "finance/calls.twelve_data" not in alone.tags
    limits = yaml.safe_load(render.DOCKER_INSTANCE.read_text())["run_coordinator"]["config"][
        "tag_concurrency_limits"
    ]
    assert not TagConcurrencyLimitsCounter(limits, [five]).is_blocked(alone)
