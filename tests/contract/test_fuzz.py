"""THREATS D5: schemathesis against a real gateway; every answer must match `openapi.yaml`.

Bounded and deterministic: a fixed seed, a few examples per operation, no example database.
"""

from __future__ import annotations

from typing import Any, Final

import hypothesis
import schemathesis
from schemathesis import Case, HookContext
from schemathesis.config import SchemathesisConfig
from schemathesis.openapi import from_path
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gateway.connectors.models import RESERVED_FIELDS
from tests.contract.conftest import GatewayThread, Served
from tests.openapi_check import SPEC_PATH

EXAMPLES_PER_OPERATION: Final = 25
CHECKS: Final = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
)


# Operations whose answer to a well-formed request depends on what is stored, which no
# schema can say: the connector's declared fields and parameters (also the discovery ones a
# script path names), whether it uses OAuth, whether a PNG is whole, whether a draft has the
# scripts publishing needs. There a 422 is a right answer to schema-valid data too. An app's
# manifest names connector keys, and its zip must be a real archive. Deleting a user who owns
# connectors names the user who takes them over (`connectors_to`), who must exist; an app
# alias takes only an account of its data provider. A dataset file must be one DuckDB can
# read, and a query must be a SELECT the sandbox runs: no schema says either.
STATEFUL_422: Final = (
    "createAccount",
    "updateAccount",
    "createRun",
    "authorizeOAuth",
    "createOAuthLink",
    "putIcon",
    "putDiscoveryScript",
    "publishConnector",
    "createApp",
    "deleteUser",
    "setAccountMapping",
    "createDataset",
    "putDatasetData",
    "queryDataset",
    "createJob",
    "createSchedule",
)
ACCEPTED: Final = ["2xx", "3xx", "401", "403", "404", "409", "429"]


def fuzz_config() -> SchemathesisConfig:
    """The run's settings: which checks, how many examples, which phases."""
    return SchemathesisConfig.from_dict(
        {
            "seed": 20261201,
            "generation": {
                "mode": "all",
                "max-examples": EXAMPLES_PER_OPERATION,
                "deterministic": True,
                "database": "none",
                # The token is the test's (sent with every call), and unknown query
                # parameters are ignored, as HTTP APIs do: neither is a negative case.
                "with-security-parameters": False,
                "allow-extra-parameters": False,
            },
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "positive_data_acceptance": {"enabled": True, "expected-statuses": ACCEPTED},
            },
            "operations": [
                {
                    "include-operation-id": list(STATEFUL_422),
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}
                    },
                },
                {
                    # The coverage phase fills `maxItems` with copies of one item, ignoring
                    # `uniqueItems` and the body filter below (schemathesis 4.32).
                    "include-operation-id": ["createConnector", "updateConnector"],
                    "phases": {"coverage": {"enabled": False}},
                },
                {
                    # `state` is a one-time secret of a pending authorisation: no generated
                    # value is one, so every callback is refused (400), as it must be.
                    "include-operation-id": "oauthCallback",
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                },
            ],
        }
    )


# Loaded from the file, not from a fixture: schemathesis' lazy fixture loader does not work
# with pytest 9.2 (it sets the removed `Node._nodeid`). The served address is given per call.
schema = from_path(SPEC_PATH, config=fuzz_config())
# Scripts are text; schemathesis knows text/plain only by that name.
schemathesis.serializer.alias("application/javascript", "text/plain")
# App zips are bytes; what the fuzzer sends is no archive, which is refused (422).
schemathesis.serializer.alias("application/zip", "application/octet-stream")
# Dataset files are bytes too; what the fuzzer sends is rarely a readable file (422).
for _media in ("text/csv", "application/x-ndjson", "application/vnd.apache.parquet"):
    schemathesis.serializer.alias(_media, "application/octet-stream")


def _names(items: object, *, fold: bool) -> list[str]:
    if not isinstance(items, list):
        return []
    names = [i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)]
    return [name.lower() for name in names] if fold else names


# The globals through which a script reaches the network (SPEC 3.2). Connectors the fuzzer
# stores may allow hosts, so no script it uploads may name one: no run can reach anything.
NETWORK_GLOBALS: Final = ("httprequest", "resources", "aws", "fetch", "XMLHttpRequest")


@schema.hook
def filter_body(context: HookContext, body: object) -> bool:
    """Keep bodies to the rules that JSON Schema cannot state, and scripts off the network.

    Parameter names are distinct, account field names distinct ignoring case and none a
    standard field's (decision 0012): a body that breaks them is a 422, not a finding.
    """
    if isinstance(body, str | bytes):
        text = body if isinstance(body, str) else body.decode("utf-8", "replace")
        return not any(name in text for name in NETWORK_GLOBALS)
    if not isinstance(body, dict):
        return True
    parameters = _names(body.get("parameters"), fold=False)
    fields = _names(body.get("account_fields"), fold=True)
    return (
        len(set(parameters)) == len(parameters)
        and len(set(fields)) == len(fields)
        and not RESERVED_FIELDS.intersection(fields)
    )


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Case[Any], served: Served) -> None:
    case.call_and_validate(base_url=served.url, headers=served.headers)


STATEFUL_RUNS: Final = 25
STATEFUL_STEPS: Final = 8


def test_linked_workflows_answer_as_documented(own_gateway: GatewayThread) -> None:
    """Create, then follow the document's links (create a connector, then read it, ...).

    Each scenario starts on an empty store: which steps can follow which depends on what
    the answers hold, and hypothesis requires the same choices to meet the same answers.
    """
    workflow = schema.as_state_machine()
    current = [own_gateway.reset()]

    class Workflow(workflow):  # type: ignore[valid-type,misc]
        def setup(self) -> None:
            current[0] = own_gateway.reset()

        def get_call_kwargs(self, case: Case[Any]) -> dict[str, object]:
            return {"base_url": current[0].url, "headers": current[0].headers}

        def validate_response(
            self,
            response: Any,
            case: Case[Any],
            additional_checks: list[Any] | None = None,
            **kwargs: Any,
        ) -> None:
            # In a workflow what earlier steps stored decides many answers (an heir deleted
            # a step ago, an alias's provider), so a 422 to schema-valid data is no finding
            # here: that check runs per operation above. Every other check still applies.
            case.validate_response(
                response,
                additional_checks=additional_checks,
                excluded_checks=[positive_data_acceptance],
                transport_kwargs=kwargs or None,
            )

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_RUNS,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
