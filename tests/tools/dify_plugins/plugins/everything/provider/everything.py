# mypy: ignore-errors
# A Dify plugin (Python >= 3.12, the dify_plugin SDK): it runs in its own venv, never in Openify's interpreter.
from dify_plugin import ToolProvider


class EverythingProvider(ToolProvider):
    def _validate_credentials(self, credentials: dict) -> None:
        pass
