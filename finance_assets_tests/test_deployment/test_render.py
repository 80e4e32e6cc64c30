"""deployment/render.py: the deployments' provider sections are what the registry says (the
committed files equal the rendered ones), and a provider added to the registry (the tests'
fake exchange, registered in-process) appears in every one of them: the container stack's env
file, environment and run limits, and the CloudFormation template's allowed values,
conditions, secret keys, task secrets and run limits."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from finance_assets.lib.markets import configured_market_keys, index_names, universe_variable
from finance_assets.providers import reference, registry, routing
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
    # Chosen by the default, by any market's route or by its reference.
    choosers = [
        "MarketDataProvider",
        *(
            render.parameter_name(v)
            for m in ("us", "uk")
            for i in routing.INTERVAL_NAMES
            for v in routing.route_variables(m, i)[:2]
        ),
        "MarketDataReferenceUs",
        "MarketDataReferenceUk",
    ]
    (terms,) = template["Conditions"]["UsesFakeExchange"].values()
    assert {t["Fn::Equals"][0]["Ref"] for t in terms} == set(choosers)
    assert {t["Fn::Equals"][1] for t in terms} == {"fake_exchange"}
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


def _market_variables() -> dict[str, tuple[str, ...] | None]:
    """Every per-market setting, from the declarations the code reads (not from render.py), with
    the values the AWS stack must allow (None: free text)."""
    bars = ("", *registry.names("bars"))
    found: dict[str, tuple[str, ...] | None] = {}
    for market in configured_market_keys({}):
        for interval in routing.INTERVAL_NAMES:
            found.update(dict.fromkeys(routing.route_variables(market, interval)[:2], bars))
        found[universe_variable(market)] = ("", *index_names(market))
        provider, symbols = reference.variables(market)
        found.update({provider: bars, symbols: None})
    found.update(dict.fromkeys((reference.CLOSE_BP_VARIABLE, reference.VOLUME_SHARE_VARIABLE)))
    return found


def test_every_market_setting_reaches_both_stacks_from_one_declaration():
    """The routes, universes, references and vendor tolerances: in the container stack's env
    file and environment, and in every code container of the AWS stack from a parameter that
    allows exactly the registry's providers (or the market's shipped indices)."""
    wanted = _market_variables()
    assert "MARKET_DATA_PROVIDER_US_DAILY" in wanted and "FINANCE_UNIVERSE_UK" in wanted
    env_file = render.ENV_EXAMPLE.read_text()
    environment = yaml.safe_load(render.COMPOSE.read_text())["services"]["code"]["environment"]
    template = _cfn(render.PLATFORM.read_text())
    from finance_assets_tests.test_deployment.test_aws_stack import code_containers

    containers = code_containers(template)
    assert len(containers) == 3
    for variable, allowed in wanted.items():
        assert f"# {variable}=\n" in env_file, variable
        assert variable in environment and environment[variable] is None, variable
        for name, container in containers.items():
            (value,) = [e["Value"] for e in container["Environment"] if e["Name"] == variable]
            parameter = template["Parameters"][value["Ref"]]
            assert parameter["Default"] == "", (variable, name)  # unset unless chosen
            if allowed is None:
                assert "AllowedValues" not in parameter and parameter["AllowedPattern"], variable
            else:
                assert tuple(parameter["AllowedValues"]) == allowed, variable


def test_a_route_alone_passes_its_providers_key(with_fake):
    """A provider chosen only by a market's route (or reference) gets its key into every code
    container, and its route parameters allow it."""
    from finance_assets_tests.test_deployment.test_aws_stack import code_containers, with_conditions

    template = _cfn(with_fake[render.PLATFORM])
    for parameter in (
        "MarketDataProviderUsDaily",
        "MarketDataProviderUk5min",
        "MarketDataReferenceUk",
    ):
        assert "fake_exchange" in template["Parameters"][parameter]["AllowedValues"], parameter
        chosen = with_conditions(template, {parameter: "fake_exchange"})
        for name, container in code_containers(chosen).items():
            secrets = {s["Name"] for s in container["Secrets"]}
            assert "FAKE_EXCHANGE_API_KEY" in secrets, (parameter, name)
            assert not secrets & {"TWELVEDATA_API_KEY", "ALPHAVANTAGE_API_KEY"}, (parameter, name)
    routed = with_conditions(
        template,
        {"MarketDataProviderUsDaily": "alpha_vantage", "MarketDataProviderUs5min": "twelve_data"},
    )
    for name, container in code_containers(routed).items():
        secrets = {s["Name"] for s in container["Secrets"]}
        assert {"TWELVEDATA_API_KEY", "ALPHAVANTAGE_API_KEY"} <= secrets, name
        assert "FAKE_EXCHANGE_API_KEY" not in secrets, name


def test_long_conditions_are_nested_within_cloudformations_limit():
    """At most 10 conditions in one Fn::Or (CloudFormation refuses more), however many markets
    and providers choose a key."""

    def widest(expr):
        if isinstance(expr, dict):
            ((fn, arg),) = expr.items()
            here = len(arg) if fn == "Fn::Or" else 0
            return max([here, *(widest(a) for a in arg)] if isinstance(arg, list) else [here])
        return 0

    conditions = _cfn(render.PLATFORM.read_text())["Conditions"]
    assert max(widest(c) for c in conditions.values()) <= render.MAX_OR
    terms = [f"!Equals [!Ref P{i}, x]" for i in range(23)]
    lines = render._any(terms)
    parsed = yaml.load("C: " + "\n".join(lines), Loader=_loader())
    assert widest(parsed["C"]) <= render.MAX_OR
    assert json.dumps(parsed).count("Fn::Equals") == 23


def _loader():
    from finance_assets_tests.test_deployment.test_aws_stack import _CfnLoader

    return _CfnLoader


def _aws_variables(template: dict) -> dict[str, dict[str, dict]]:
    """Each code container's plain variables that come from a parameter: variable -> the
    parameter, per task definition."""
    from finance_assets_tests.test_deployment.test_aws_stack import code_containers

    return {
        name: {
            e["Name"]: template["Parameters"][e["Value"]["Ref"]]
            for e in container["Environment"]
            if isinstance(e["Value"], dict) and e["Value"].get("Ref") in template["Parameters"]
        }
        for name, container in code_containers(template).items()
    }


def test_every_providers_own_settings_reach_the_aws_stack_as_the_container_stack(with_fake):
    """A provider's settings that are not secrets (budgets, base URLs, pages) reach every AWS
    code container from a parameter, as they reach the container stack: the fake exchange's
    too, once registered."""
    template = _cfn(with_fake[render.PLATFORM])
    environment = yaml.safe_load(with_fake[render.COMPOSE])["services"]["code"]["environment"]
    wanted = [
        setting.variable
        for spec in registry.all_specs()
        for setting in spec.settings
        if not setting.is_secret
    ]
    assert {"ALPHAVANTAGE_CALLS_PER_DAY", "FAKE_EXCHANGE_CALLS_PER_MINUTE"} <= set(wanted)
    for name, passed in _aws_variables(template).items():
        for variable in wanted:
            assert variable in environment, variable
            assert passed[variable]["Default"] == "", (name, variable)
        # No secret as a plain parameter: keys come from the app secret only.
        assert not [v for v in passed if re.search("KEY|TOKEN|PASSWORD|SECRET|PROXY", v)], name
