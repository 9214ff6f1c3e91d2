"""Security leaf: the code-node sandbox and the SSRF-guarded HTTP client. Imports nothing above settings/errors."""
