# mypy: ignore-errors
# A Dify plugin (Python >= 3.12, the dify_plugin SDK): it runs in its own venv, never in Openify's interpreter.
from dify_plugin import DifyPluginEnv, Plugin

plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=60, MAX_INVOCATION_TIMEOUT=30))

if __name__ == "__main__":
    plugin.run()
