"""Write the deployments' provider sections from the provider registry, and check them.

    python deployment/render.py --check   # exit 1, with a diff, if a committed file differs
    python deployment/render.py --write   # rewrite the sections in place

Each section sits between two comment lines in its file, `# BEGIN render.py: <name>` and
`# END render.py: <name>`; everything outside them is written by hand. The sections:

- docker/.env.example    `providers`: MARKET_DATA_PROVIDER / POSTS_PROVIDER and every
                         provider's variables, commented out with their defaults
- docker/compose.yaml    `provider-environment`: the same variables passed to the code server
- docker/dagster.yaml    `provider-run-limits`: the run coordinator's tag limit per provider
- aws/dagster.yaml       `provider-run-limits`: the same, for the AWS instance
- aws/platform.yaml      `provider-parameters` (the allowed values: the providers, and per
                         market its routes, universe, reference and the vendor tolerances),
                         `provider-environment` (each code container's variables from them),
                         `provider-conditions` (one per keyed provider, true when any route
                         or reference chooses it, and which tasks read the app secret),
                         `app-secret` (its JSON keys), `provider-secrets` (each code
                         container's keys), `instance` (aws/dagster.yaml, the one source of
                         the webserver's and daemon's Dagster instance)

`finance_assets_tests/test_deployment/test_render.py` fails when a committed file is not what
this script writes, so adding a provider (a folder and a registry line) cannot leave a
deployment behind.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

DEPLOYMENT = Path(__file__).resolve().parent
REPO = DEPLOYMENT.parent
if str(REPO) not in sys.path:  # run as a script: the repository's package, not an installed one
    sys.path.insert(0, str(REPO))

from finance_assets.lib.markets import (  # noqa: E402
    configured_market_keys,
    index_names,
    universe_variable,
)
from finance_assets.providers import corporate_actions, reference, registry, routing  # noqa: E402
from finance_assets.providers.spec import KINDS, ProviderSpec, Setting, calls_tag  # noqa: E402

ENV_EXAMPLE = DEPLOYMENT / "docker" / ".env.example"
COMPOSE = DEPLOYMENT / "docker" / "compose.yaml"
DOCKER_INSTANCE = DEPLOYMENT / "docker" / "dagster.yaml"
AWS_INSTANCE = DEPLOYMENT / "aws" / "dagster.yaml"
PLATFORM = DEPLOYMENT / "aws" / "platform.yaml"

# Not a provider's, but in the same app secret: the notification sensors' Slack token.
SLACK_TOKEN = "SLACK_BOT_TOKEN"
# CloudFormation takes at most 10 conditions in one Fn::Or: longer ones are nested.
MAX_OR = 10

_SECTION = re.compile(
    r"^(?P<indent>[ \t]*)# BEGIN render\.py: (?P<name>[\w-]+)[^\n]*\n"
    r"(?P<body>.*?)"
    r"^(?P=indent)# END render\.py: (?P=name)[^\n]*\n",
    re.MULTILINE | re.DOTALL,
)


class RenderError(ValueError):
    """A file's sections do not match what the script knows how to write."""


# --- the sections ---------------------------------------------------------------------------


def _keyed() -> list[ProviderSpec]:
    """The providers that need a secret from the deployment (an API key, a token)."""
    return [spec for spec in registry.all_specs() if spec.required_secrets]


def _limited() -> list[ProviderSpec]:
    return [spec for spec in registry.all_specs() if spec.run_limit is not None]


def _condition(spec: ProviderSpec) -> str:
    """`twelve_data` -> `UsesTwelveData`: the condition that passes the provider's keys."""
    return "Uses" + "".join(part[:1].upper() + part[1:] for part in spec.name.split("_"))


def _env_default(setting: Setting) -> str:
    if setting.is_secret or setting.default is None:
        return ""
    return str(setting.default)


def _route_variables() -> list[str]:
    """`MARKET_DATA_PROVIDER_<MARKET>` and `..._<MARKET>_<INTERVAL>` of the shipped markets
    (finance_assets/providers/routing.py): each overrides MARKET_DATA_PROVIDER where set."""
    found: list[str] = []
    for market in configured_market_keys({}):  # every shipped market
        for interval in routing.INTERVAL_NAMES:
            found += [v for v in routing.route_variables(market, interval)[:2] if v not in found]
    return found


def _reference_variables() -> list[str]:
    """`MARKET_DATA_REFERENCE_<MARKET>` and its `_SYMBOLS` of the shipped markets
    (finance_assets/providers/reference.py): a second opinion on the market's daily bars."""
    return [v for market in configured_market_keys({}) for v in reference.variables(market)]


class MarketSetting(NamedTuple):
    """A per-market setting the AWS stack takes as a parameter and passes to every code
    container: its variable, the parameter's allowed values (None: free text matching
    `pattern`) and what it means. Empty is unset: the code reads an empty variable so."""

    variable: str
    allowed: tuple[str, ...] | None
    description: str
    pattern: str | None = None

    @property
    def parameter(self) -> str:
        return parameter_name(self.variable)


def parameter_name(variable: str) -> str:
    """`MARKET_DATA_PROVIDER_US_5MIN` -> `MarketDataProviderUs5min` (CloudFormation's names are
    alphanumeric)."""
    return "".join(part[:1].upper() + part[1:].lower() for part in variable.split("_"))


def market_settings() -> list[MarketSetting]:
    """What both deployments pass besides the providers' own variables, from the same
    declarations the code reads: the routes (providers/routing.py), the universes
    (lib/markets.py), the references and the vendor tolerances (providers/reference.py)."""
    bars = tuple(registry.names("bars"))
    number = r"^([0-9]+(\.[0-9]+)?)?$"
    found = [
        MarketSetting(variable, ("", *bars), f"{variable}: overrides MARKET_DATA_PROVIDER")
        for variable in _route_variables()
    ]
    for market, variable in zip(configured_market_keys({}), _universe_variables(), strict=True):
        indices = index_names(market)
        found.append(
            MarketSetting(
                variable,
                ("", *indices),
                f"{variable}: a shipped index ({', '.join(indices) or 'none'}); empty: the "
                "demo universe",
            )
        )
    for market in configured_market_keys({}):
        provider, symbols = reference.variables(market)
        found.append(MarketSetting(provider, ("", *bars), f"{provider}: a second opinion"))
        found.append(MarketSetting(symbols, None, f"{symbols}: how many symbols", r"^([0-9]+)?$"))
    for variable in VENDOR_VARIABLES:
        found.append(MarketSetting(variable, None, f"{variable}: vendor tolerance", number))
    actions = corporate_actions.VARIABLE
    found.append(
        MarketSetting(
            actions,
            ("", *corporate_actions.CHOICES),
            f"{actions}: Twelve Data's /splits and /dividends (Grow plan or above)",
        )
    )
    return found


def provider_tunings() -> list[MarketSetting]:
    """Every provider's settings that are not secrets (base URLs, budgets, pages, caches): the
    container stack passes them all, so the AWS stack does too (an S&P 500 pipeline on Alpha
    Vantage needs ALPHAVANTAGE_CALLS_PER_DAY at its plan's figure). Secrets come from the app
    secret instead (`provider-secrets`); an optional secret (YFINANCE_PROXY) is not passed."""
    patterns = {"whole": r"^([0-9]+)?$", "number": r"^([0-9]+(\.[0-9]+)?)?$"}
    found = []
    for spec in registry.all_specs():
        for setting in spec.settings:
            if setting.is_secret:
                continue
            default = "" if setting.default is None else f" (empty: {setting.default})"
            found.append(
                MarketSetting(
                    setting.variable,
                    None,
                    f"{setting.variable}, with {spec.slot.variable}={spec.name}{default}",
                    patterns.get(setting.type),
                )
            )
    return found


def deployment_settings() -> list[MarketSetting]:
    """What the AWS stack takes as parameters besides the provider choices."""
    return market_settings() + provider_tunings()


def _universe_variables() -> list[str]:
    """`FINANCE_UNIVERSE_<MARKET>` of the shipped markets (lib/markets.py)."""
    return [universe_variable(market) for market in configured_market_keys({})]


# How far a reference's bar may differ from the primary's and still agree.
VENDOR_VARIABLES = (reference.CLOSE_BP_VARIABLE, reference.VOLUME_SHARE_VARIABLE)


def env_example() -> list[str]:
    lines = ["# Providers: written by deployment/render.py from finance_assets/providers/."]
    for kind, slot in KINDS.items():
        specs = registry.specs(kind)  # type: ignore[arg-type]
        lines.append(f"# {slot.variable}: {', '.join(s.name for s in specs)}")
        lines.append(f"{slot.variable}={specs[0].name}")
    lines.append(
        "# A provider per market and interval (DAILY, 5MIN), overriding MARKET_DATA_PROVIDER, "
        "e.g. MARKET_DATA_PROVIDER_US_DAILY=alpha_vantage:"
    )
    lines += [f"# {variable}=" for variable in _route_variables()]
    lines.append(
        "# A market's universe: a shipped index (us: sp500, uk: ftse100) or a universe CSV's path:"
    )
    lines += [f"# {variable}=" for variable in _universe_variables()]
    lines.append("# A second opinion on a market's daily bars (docs/vendor-agreement.md):")
    lines += [f"# {variable}=" for variable in _reference_variables()]
    lines += [f"# {variable}=" for variable in VENDOR_VARIABLES]
    lines.append("# Twelve Data's /splits, /dividends (docs/corporate-actions.md): true or false")
    lines.append(f"# {corporate_actions.VARIABLE}=")
    for spec in registry.all_specs():
        if not spec.settings:
            continue
        required = [s.variable for s in spec.required_secrets]
        needs = f"; required: {', '.join(required)}" if required else ""
        lines += textwrap.wrap(
            f"With {spec.slot.variable}={spec.name}: {spec.description}{needs}.",
            96,
            initial_indent="# ",
            subsequent_indent="#   ",
        )
        # Values only after `=`: a note there would become part of the value when uncommented.
        lines += [f"# {s.variable}={_env_default(s)}" for s in spec.settings]
    return lines


def compose_environment() -> list[str]:
    lines = [
        f"{slot.variable}: ${{{slot.variable}:-{registry.specs(kind)[0].name}}}"  # type: ignore[arg-type]
        for kind, slot in KINDS.items()
    ]
    # Unset in the env file means unset here: the provider's defaults apply.
    lines += [f"{setting.variable}:" for setting in market_settings()]
    lines += [f"{s.variable}:" for spec in registry.all_specs() for s in spec.settings]
    return lines


def run_limits() -> list[str]:
    """One limit per keyed provider on its `finance/calls.<provider>` tag, which every run that
    calls it carries whatever the role (bars, reference, posts): one queue per provider."""
    return [f"- {{key: {calls_tag(spec.name)}, limit: {spec.run_limit}}}" for spec in _limited()]


def cfn_parameters() -> list[str]:
    lines = []
    for kind, slot in KINDS.items():
        specs = registry.specs(kind)  # type: ignore[arg-type]
        keyed = [s.name for s in specs if s.required_secrets]
        needs = f" (the app secret holds the keys of {', '.join(keyed)})" if keyed else ""
        lines += [
            f"{slot.parameter}:",
            "  Type: String",
            f"  Default: {specs[0].name}",
            f"  AllowedValues: [{', '.join(s.name for s in specs)}]",
            f"  Description: {slot.variable}{needs}.",
        ]
    for setting in deployment_settings():
        lines += [f"{setting.parameter}:", "  Type: String", '  Default: ""']
        if setting.allowed is not None:
            lines.append(f"  AllowedValues: [{', '.join(map(_yaml_scalar, setting.allowed))}]")
        if setting.pattern is not None:
            lines.append(f"  AllowedPattern: {json.dumps(setting.pattern)}")
        lines.append(f"  Description: {json.dumps(setting.description + '.')}")
    return lines


def _yaml_scalar(value: str) -> str:
    return value if value else '""'


def cfn_environment() -> list[str]:
    """Every code container's provider variables, from the parameters above."""
    variables = [(slot.variable, slot.parameter) for slot in KINDS.values()]
    variables += [(s.variable, s.parameter) for s in deployment_settings()]
    return [f"- {{Name: {variable}, Value: !Ref {parameter}}}" for variable, parameter in variables]


def _choosers(spec: ProviderSpec) -> list[str]:
    """The parameters that can choose `spec`: its kind's default, and for a bars provider every
    market's routes and reference."""
    parameters = [spec.slot.parameter]
    if spec.kind == "bars":
        parameters += [
            s.parameter
            for s in market_settings()
            if s.allowed is not None and spec.name in s.allowed
        ]
    return parameters


def _chosen_terms(spec: ProviderSpec) -> list[str]:
    return [f"!Equals [!Ref {parameter}, {spec.name}]" for parameter in _choosers(spec)]


def _any(terms: Sequence[str]) -> list[str]:
    """`terms` joined by `!Or` as YAML lines (the first follows `Name: `), nested where one
    `!Or` would hold more than CloudFormation's 10."""
    if len(terms) == 1:
        return [terms[0]]
    if len(terms) > MAX_OR:
        size = math.ceil(len(terms) / MAX_OR)
        items = [_any(terms[i : i + size]) for i in range(0, len(terms), size)]
    else:
        items = [[term] for term in terms]
    return _or_lines(items)


def _or_lines(items: Sequence[Sequence[str]]) -> list[str]:
    lines = ["!Or"]
    for item in items:
        lines.append(f"  - {item[0]}")
        lines += [f"  {line}" for line in item[1:]]
    return lines


def _any_of(groups: Sequence[Sequence[str]]) -> list[str]:
    """Any of `groups`' terms: one `!Or` when they fit, else an `!Or` of each group's."""
    flat = [term for group in groups for term in group]
    if len(flat) <= MAX_OR:
        return _any(flat) if flat else ['!Equals ["", "-"]']  # no term at all: never
    return _or_lines([_any(group) for group in groups if group])


def _condition_lines(name: str, terms: Sequence[str]) -> list[str]:
    first, *rest = _any(terms)
    return [f"{name}: {first}", *rest]


def cfn_conditions() -> list[str]:
    keyed = _keyed()
    lines = [
        line for spec in keyed for line in _condition_lines(_condition(spec), _chosen_terms(spec))
    ]
    # Spelled out, not !Condition: moto's CloudFormation misreads conditions inside !And/!Or.
    slack = '!Not [!Equals [!Ref SlackChannel, ""]]'
    every = [_chosen_terms(spec) for spec in keyed]  # grouped by provider
    for name, groups in (("UsesAppKeys", every), ("DaemonUsesAppKeys", [*every, [slack]])):
        first, *rest = _any_of(groups)
        lines += [f"{name}: {first}", *rest]
    return lines


def _app_secret_keys() -> list[str]:
    return [s.variable for spec in _keyed() for s in spec.required_secrets] + [SLACK_TOKEN]


def app_secret() -> list[str]:
    keys = _app_secret_keys()
    placeholder = json.dumps(dict.fromkeys(keys, "unset"))
    description = textwrap.wrap(
        f"Provider keys and the Slack token (JSON keys {', '.join(keys)}); fill with "
        "`aws secretsmanager put-secret-value` before choosing a provider or a channel.",
        88,
    )
    return [
        "Description: >-",
        *(f"  {line}" for line in description),
        f"SecretString: '{placeholder}'",
    ]


def cfn_provider_secrets() -> list[str]:
    return [
        f"- !If [{_condition(spec)}, {{Name: {s.variable}, ValueFrom: "
        f'!Sub "${{AppSecret}}:{s.variable}::"}}, !Ref AWS::NoValue]'
        for spec in _keyed()
        for s in spec.required_secrets
    ]


def instance_text(aws_instance: str) -> list[str]:
    """aws/dagster.yaml (its sections rendered) as the template's DAGSTER_INSTANCE_YAML: an
    `Fn::Sub` of its lines without comments, the subnets joined from the parameter."""
    body = [
        line
        for line in aws_instance.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return [
        "- Name: DAGSTER_INSTANCE_YAML",
        "  Value: !Sub",
        "    - |",
        *(f"      {line}" for line in body),
        '    - Subnets: !Join [", ", !Ref SubnetIds]',
    ]


# --- files ----------------------------------------------------------------------------------


def render_sections(text: str, sections: dict[str, Callable[[], Sequence[str]]], where: str) -> str:
    """`text` with each section's body replaced by what its function writes, indented as its
    BEGIN line is. Every section named must be there, and no other."""
    found: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, indent = match["name"], match["indent"]
        if name not in sections:
            raise RenderError(f"{where}: unknown section {name!r}; known: {sorted(sections)}")
        found.append(name)
        body = "".join(f"{indent}{line}".rstrip() + "\n" for line in sections[name]())
        begin, end = (
            match.group(0).splitlines(keepends=True)[0],
            f"{indent}# END render.py: {name}\n",
        )
        return begin + body + end

    out = _SECTION.sub(replace, text)
    missing = set(sections) - set(found)
    if missing:
        raise RenderError(f"{where}: no section {sorted(missing)} (BEGIN/END lines) to write")
    return out


def rendered(read: Callable[[Path], str] = lambda p: p.read_text()) -> dict[Path, str]:
    """Every file as this script writes it, from `read`'s current text of each."""
    aws_instance = render_sections(
        read(AWS_INSTANCE), {"provider-run-limits": run_limits}, "aws/dagster.yaml"
    )
    return {
        ENV_EXAMPLE: render_sections(read(ENV_EXAMPLE), {"providers": env_example}, ".env.example"),
        COMPOSE: render_sections(
            read(COMPOSE), {"provider-environment": compose_environment}, "compose.yaml"
        ),
        DOCKER_INSTANCE: render_sections(
            read(DOCKER_INSTANCE), {"provider-run-limits": run_limits}, "docker/dagster.yaml"
        ),
        AWS_INSTANCE: aws_instance,
        PLATFORM: render_sections(
            read(PLATFORM),
            {
                "provider-parameters": cfn_parameters,
                "provider-environment": cfn_environment,
                "provider-conditions": cfn_conditions,
                "app-secret": app_secret,
                "provider-secrets": cfn_provider_secrets,
                "instance": lambda: instance_text(aws_instance),
            },
            "aws/platform.yaml",
        ),
    }


def differences(files: dict[Path, str]) -> list[str]:
    """A unified diff per file whose committed text differs from `files`'."""
    diffs = []
    for path, text in files.items():
        current = path.read_text()
        if current != text:
            name = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        f"{name} (committed)",
                        f"{name} (rendered)",
                    )
                )
            )
    return diffs


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if a file differs")
    mode.add_argument("--write", action="store_true", help="rewrite the sections in place")
    args = parser.parse_args(list(argv) if argv is not None else None)
    files = rendered()
    diffs = differences(files)
    if args.check:
        if diffs:
            sys.stdout.write("".join(diffs))
            fix = "python deployment/render.py --write"
            print(f"{len(diffs)} file(s) differ from the registry: {fix}", file=sys.stderr)
            return 1
        return 0
    for path, text in files.items():
        if path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
