import json
import re

import dagster as dg
import pytest

from finance_assets.resources import build_resources, current_env


def test_code_location_loads_with_both_markets(monkeypatch, tmp_path):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    import finance_assets.definitions as definitions

    defs = definitions.build_defs()
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    for market in ("us", "uk"):
        assert {
            f"{market}/raw_intraday_quotes",
            f"{market}/bars_5min",
            f"{market}/raw_daily_quotes",
            f"{market}/daily_bars",
            f"{market}/daily_summary",
        } <= keys
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, key  # every asset explains itself in the UI
        if not node.is_external:  # the feeds are never materialised, let alone backfilled
            assert node.backfill_policy == dg.BackfillPolicy.single_run(), key
    check_names = {
        c.name for c in graph.asset_check_keys if c.asset_key.to_user_string() == "us/bars_5min"
    }
    assert check_names == {
        "prices_not_null",
        "timestamps_strictly_increasing",
        "ohlc_consistent",
        "volume_non_negative",
        "quarantine_rate",
        "universe_complete",
        "raw_payloads_readable",
        "stores_agree",
    }


def test_no_selection_of_the_bars_can_include_a_freshness_check(monkeypatch, tmp_path):
    """Dagster runs every check of the assets a run materialises (a UI backfill, the
    Materialize button, a job): the freshness checks belong to the feeds, which none of them
    can select."""
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    import finance_assets.definitions as definitions

    defs = definitions.build_defs()
    graph = defs.resolve_asset_graph()
    fresh = {c for c in graph.asset_check_keys if c.name == "fresh"}
    assert {c.asset_key.to_user_string() for c in fresh} == {
        f"{m}/{a}_feed" for m in ("us", "uk") for a in ("bars_5min", "daily_bars")
    }
    for key in fresh:
        assert graph.get(key.asset_key).is_external  # nothing materialises a feed
    materialisable = dg.AssetSelection.all()  # what "Materialize all" / a backfill can pick
    assert not fresh & materialisable.resolve_checks(graph)
    for job in ("us_bars_5min_job", "us_daily_job", "us_landing_job"):
        job_graph = defs.resolve_job_def(job).asset_layer.asset_graph
        checks = {c.name for c in job_graph.asset_check_keys}
        assert "fresh" not in checks, job
        assert {"prices_not_null", "quarantine_rate"} <= checks, job


def test_every_asset_tells_a_dagster_user_what_they_expect(monkeypatch, tmp_path):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    import finance_assets.definitions as definitions

    graph = definitions.build_defs().resolve_asset_graph()
    tables = 0
    for key in graph.get_all_asset_keys():
        node, name = graph.get(key), key.to_user_string()
        assert node.owners, name
        if node.is_external:
            continue
        metadata = node.metadata
        assert "dagster/code_references" in metadata, name
        assert "table" not in metadata, name  # dagster/table_name says it
        if node.kinds & {"postgres"}:
            tables += 1
            assert metadata["dagster/table_name"].startswith(f"{key.path[0]}."), name
            schema = metadata["dagster/column_schema"]
            assert schema.columns, name
            assert all(c.description for c in schema.columns), name
    # bars_5min, daily_bars, daily_summary, price_moves, three social, price_forecast,
    # corporate_actions, adjusted_daily_bars
    assert tables == 2 * 10
    price_moves = graph.get(dg.AssetKey(["us", "price_moves"])).metadata
    assert price_moves["dagster/table_name"] == "us.price_alerts"
    checks = {c.to_user_string() for c in graph.asset_check_keys}
    assert {
        "us/daily_summary:one_row_per_symbol_and_session",
        "us/daily_summary:vwap_within_range",
        "us/price_moves:unique_keys",
        "us/stock_sentiment_daily:unique_keys",
        "us/corporate_actions:providers_agree_on_actions",
        "us/corporate_actions:actions_reported",
        "us/adjusted_daily_bars:adj_close_matches_provider",
    } <= checks


@pytest.mark.parametrize("value", ["staging", "PRODUCTION", "dev"])
def test_unknown_environment_is_an_error(value):
    with pytest.raises(
        ValueError, match=r"FINANCE_ENV='.*' is not an environment; valid: local, prod"
    ):
        current_env({"FINANCE_ENV": value})


def test_environments_have_the_same_resource_keys(tmp_path):
    local = build_resources({"FINANCE_DATA_DIR": str(tmp_path)})
    prod = build_resources(
        {
            "FINANCE_ENV": "prod",
            "FINANCE_PG_URL": "postgresql://u@db/x",
            "FINANCE_RAW_URI": "s3://finance-raw/raw",
            "FINANCE_LAKE_URI": "s3://finance-lake/lake",
        }
    )
    assert set(local) == set(prod)
    with pytest.raises(ValueError, match="FINANCE_PG_URL"):
        build_resources({"FINANCE_ENV": "prod"})


def test_unknown_provider_lists_the_valid_ones():
    with pytest.raises(ValueError, match="MARKET_DATA_PROVIDER='yahoo' is not a provider; valid"):
        build_resources({"MARKET_DATA_PROVIDER": "yahoo"})
    with pytest.raises(ValueError, match="FINANCE_SIM_FAULT_RATE='lots' is not a number"):
        build_resources({"FINANCE_SIM_FAULT_RATE": "lots"})


def test_secrets_are_envvars_whichever_mapping_the_settings_come_from(monkeypatch):
    """Never the value in the resource (and so in the UI): Dagster resolves the variable from
    the process environment when a run starts."""
    explicit = build_resources(
        {"FINANCE_PG_URL": "postgresql://u:p@h/db", "MONGODB_URI": "mongodb://u:p@m:27017/"}
    )
    assert isinstance(explicit["warehouse"].url, dg.EnvVar)
    assert explicit["warehouse"].url == dg.EnvVar("FINANCE_PG_URL")
    assert isinstance(explicit["raw_zone_io_manager"].mongodb_uri, dg.EnvVar)
    monkeypatch.setenv("FINANCE_PG_URL", "postgresql://u:secret@h/db")
    monkeypatch.setenv("MARKET_DATA_PROVIDER", "twelve_data")
    monkeypatch.setenv("TWELVEDATA_API_KEY", "td-secret")
    from_env = build_resources()
    assert isinstance(from_env["warehouse"].url, dg.EnvVar)  # never shown in the UI
    assert from_env["market_data"].api_key == dg.EnvVar("TWELVEDATA_API_KEY")
    with dg.build_resources({"market_data": from_env["market_data"]}) as built:
        assert built.market_data.api_key == "td-secret"  # what a run gets


def test_aws_instance_config_runs_on_postgresql(pg_server_url, tmp_path, monkeypatch):
    """The AWS stack's Dagster instance (deployment/aws/dagster.yaml, what platform.yaml's
    webserver and daemon write), against a real server (catches driver mismatches): the
    pooled storage, the run queue, the logs left to CloudWatch. Its run launcher is ECS's,
    which needs AWS: runs here execute in process."""
    import re
    import uuid
    from pathlib import Path

    import psycopg
    import yaml

    info = psycopg.conninfo.conninfo_to_dict(pg_server_url)
    if str(info.get("host", "")).startswith("/"):
        pytest.skip("dagster-postgres needs a TCP host; the test server is a socket")
    name = f"dagster_instance_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        source = Path(__file__).resolve().parents[2] / "deployment" / "aws" / "dagster.yaml"
        # An Fn::Sub template: its `${Name}`s stand in for the stack's resources.
        config = yaml.safe_load(re.sub(r"\$\{(\w+)\}", r"\1", source.read_text()))
        assert config.pop("run_launcher")["class"] == "EcsRunLauncher"
        (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
        for key, value in {
            "DAGSTER_HOME": str(tmp_path),
            "DAGSTER_PG_HOST": str(info.get("host", "127.0.0.1")),
            "DAGSTER_PG_PORT": str(info.get("port", 5432)),
            "DAGSTER_PG_DB": name,
            "DAGSTER_PG_USERNAME": str(info.get("user", "postgres")),
            "DAGSTER_PG_PASSWORD": str(info.get("password", "unused")),
        }.items():
            monkeypatch.setenv(key, value)

        @dg.asset
        def ping() -> int:
            return 1

        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PooledPostgresRunStorage"
            assert type(instance.compute_log_manager).__name__ == "NoOpComputeLogManager"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            assert dg.materialize([ping], instance=instance).success
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_posts_sources_and_scorers_are_chosen_by_name():
    from finance_assets.lib import social
    from finance_assets.providers.x_api.client import XSearchClient
    from finance_assets.resources import SimulatedPostsResource, XApiResource

    assert SimulatedPostsResource().get_scorer() is social.vader_scores
    x = XApiResource(bearer_token="t0k").get_source()
    assert isinstance(x, XSearchClient) and "t0k" not in repr(x)
    with pytest.raises(ValueError, match="X_BEARER_TOKEN is not set"):
        XApiResource().get_source()
    assert isinstance(build_resources({})["posts"], SimulatedPostsResource)
    chosen = build_resources({"POSTS_PROVIDER": "x_api", "X_BEARER_TOKEN": "t0k"})["posts"]
    assert isinstance(chosen, XApiResource) and chosen.bearer_token == dg.EnvVar("X_BEARER_TOKEN")
    with pytest.raises(ValueError, match="POSTS_SCORER='bert' is not a scorer"):
        build_resources({"POSTS_SCORER": "bert"})
    with pytest.raises(ValueError, match="POSTS_PROVIDER='reddit' is not a provider"):
        build_resources({"POSTS_PROVIDER": "reddit"})


INGEST_ARN = "arn:aws:iam::123456789012:role/finance-assets-ingest"
TRANSFORM_ARN = "arn:aws:iam::123456789012:role/finance-assets-transform"
PROD = {
    "FINANCE_ENV": "prod",
    "FINANCE_PG_URL": "postgresql://u@db/x",
    "FINANCE_RAW_URI": "s3://finance-raw/raw",
    "FINANCE_LAKE_URI": "s3://finance-lake/lake",
}
ECS = {
    **PROD,
    "FINANCE_STEP_EXECUTOR": "ecs",
    "FINANCE_INGEST_ROLE_ARN": INGEST_ARN,
    "FINANCE_TRANSFORM_ROLE_ARN": TRANSFORM_ARN,
}
INGEST_ASSETS = {"raw_intraday_quotes", "raw_daily_quotes", "raw_posts"}


def _defs_with(monkeypatch, tmp_path, environ):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    for name in ("FINANCE_STEP_EXECUTOR", "FINANCE_INGEST_ROLE_ARN", "FINANCE_TRANSFORM_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    import finance_assets.definitions as definitions

    return definitions.build_defs()


def _step_roles(defs) -> dict[str, str | None]:
    """Each executable asset's `ecs/task_overrides` tag, by asset key."""
    out = {}
    for asset in defs.assets:
        if isinstance(asset, dg.AssetsDefinition) and asset.is_executable:
            for key in asset.keys:
                out[key.to_user_string()] = asset.op.tags.get("ecs/task_overrides")
    return out


def test_ecs_steps_run_under_their_components_role(monkeypatch, tmp_path):
    from dagster_aws.ecs import ecs_executor

    defs = _defs_with(monkeypatch, tmp_path, ECS)
    jobs = list(defs.resolve_all_job_defs())
    assert {j.name for j in jobs} >= {"us_bars_5min_job", "uk_daily_job", "retention_job"}
    for job in jobs:
        assert job.executor_def is ecs_executor, job.name
    roles = _step_roles(defs)
    assert len(roles) >= 2 * 11  # both markets' assets
    for key, tag in roles.items():
        role = INGEST_ARN if key.split("/")[-1] in INGEST_ASSETS else TRANSFORM_ARN
        assert tag is not None and json.loads(tag) == {"taskRoleArn": role}, key
    # Retention deletes raw payloads: an ingest step.
    (purge,) = defs.resolve_job_def("retention_job").nodes
    assert json.loads(purge.tags["ecs/task_overrides"]) == {"taskRoleArn": INGEST_ARN}
    # What ECS receives for the step: the executor's own reading of the tag (a private
    # method of dagster_aws's step handler, on a handler built without an ECS task).
    from dagster_aws.ecs.executor import EcsStepHandler

    handler = object.__new__(EcsStepHandler)
    handler._task_overrides, handler._cpu, handler._memory = {}, None, None
    handler._ephemeral_storage = None
    step = {"ecs/task_overrides": roles["us/raw_daily_quotes"]}
    assert handler._get_task_overrides(step) == {"taskRoleArn": INGEST_ARN}


def test_without_ecs_no_step_tag_and_the_steps_run_in_the_runs_process(monkeypatch, tmp_path):
    """By default a run's steps run in its own process (none reloads the code location);
    `multiprocess` is Dagster's own default, a process per step."""
    for environ in ({}, PROD):
        defs = _defs_with(monkeypatch, tmp_path, environ)
        assert set(_step_roles(defs).values()) == {None}
        for job in defs.resolve_all_job_defs():
            assert job.executor_def is dg.in_process_executor, job.name
    defs = _defs_with(monkeypatch, tmp_path, {"FINANCE_STEP_EXECUTOR": "multiprocess"})
    for job in defs.resolve_all_job_defs():
        assert job.executor_def is dg.multiprocess_executor, job.name


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {**ECS, "FINANCE_INGEST_ROLE_ARN": "finance-assets-ingest"},
            "FINANCE_INGEST_ROLE_ARN='finance-assets-ingest' is not an IAM role ARN",
        ),
        (
            {**ECS, "FINANCE_TRANSFORM_ROLE_ARN": "arn:aws:iam::123456789012:user/transform"},
            "FINANCE_TRANSFORM_ROLE_ARN='arn:aws:iam::123456789012:user/transform' is not an IAM",
        ),
        (
            {**PROD, "FINANCE_INGEST_ROLE_ARN": "arn:aws:s3:::bucket"},
            "FINANCE_INGEST_ROLE_ARN='arn:aws:s3:::bucket' is not an IAM role ARN",
        ),
        (
            {k: v for k, v in ECS.items() if k != "FINANCE_TRANSFORM_ROLE_ARN"},
            "FINANCE_TRANSFORM_ROLE_ARN is not set: FINANCE_STEP_EXECUTOR=ecs",
        ),
        ({**PROD, "FINANCE_STEP_EXECUTOR": "ecs"}, "2 settings are invalid"),
        ({**ECS, "FINANCE_ENV": "local"}, "FINANCE_STEP_EXECUTOR=ecs needs FINANCE_ENV=prod"),
        ({**PROD, "FINANCE_STEP_EXECUTOR": "fargate"}, "FINANCE_STEP_EXECUTOR='fargate' is not"),
    ],
)
def test_bad_step_settings_fail_at_load_naming_the_variable(
    monkeypatch, tmp_path, environ, expected
):
    with pytest.raises(ValueError, match=re.escape(expected)):
        _defs_with(monkeypatch, tmp_path, environ)
