"""Tables, one module per aggregate. Importing this package registers every table on Base.metadata."""

from openify.storage.tables.apps import ApiKey, App, EndUser
from openify.storage.tables.base import Base

__all__ = ["ApiKey", "App", "Base", "EndUser"]
