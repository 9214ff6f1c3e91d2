"""An Openify plugin module for API tests (named in OPENIFY_PLUGINS): the test agent strategies, under their
own source name so that it never clashes with the Dify plugin host's `plugin` source."""

from __future__ import annotations

from openify.registry import Registries
from tests.tools.kit import EchoStrategies


def register(r: Registries) -> None:
    r.agent_strategy_sources.register("test-echo", EchoStrategies)
