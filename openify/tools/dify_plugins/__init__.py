"""Dify plugins: install them (`installer`), run them (`runtime`, `protocol`), serve their calls into the host
(`backwards`), and offer their tools and agent strategies (`source`) as the `plugin` tool source."""

from __future__ import annotations

import weakref

from openify.registry import Registries
from openify.storage.db import Database
from openify.tools.base import ToolHost, ToolSourceContext
from openify.tools.dify_plugins.backwards import BackwardsInvocations
from openify.tools.dify_plugins.runtime import PluginRuntime
from openify.tools.dify_plugins.source import DifyPluginSource
from openify.tools.dify_plugins.spawn import confined_spawner
from openify.tools.dify_plugins.store import DifyPluginStore

# One source per server (per host object), whichever registry asks first: its tools and its agent strategies share
# the plugin processes. A cache keyed weakly by the server's host, not a global setting.
_BUILT: weakref.WeakKeyDictionary[ToolHost, DifyPluginSource] = weakref.WeakKeyDictionary()


def plugin_source(context: ToolSourceContext) -> DifyPluginSource:
    """The `plugin` tool source (and agent strategies) of the server `context` belongs to."""
    built = _BUILT.get(context.host)
    if built is not None:
        return built
    config = context.settings.dify_plugins
    db = context.db if context.db is not None else Database(context.settings.sqlalchemy_url)
    store = DifyPluginStore(db, context.settings.data_dir)
    runtime = PluginRuntime(
        BackwardsInvocations(context.host, store),
        confined_spawner(context.settings),
        start_timeout_s=config.start_timeout_s,
        invoke_timeout_s=config.invoke_timeout_s,
        idle_stop_s=config.idle_stop_s,
        env=config.passed_env(),
    )
    built = _BUILT[context.host] = DifyPluginSource(store, runtime)
    return built


def register(r: Registries) -> None:
    r.tool_sources.register("plugin", plugin_source)
    r.agent_strategy_sources.register("plugin", plugin_source)
