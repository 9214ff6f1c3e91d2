"""Built-in agent tools. Each is registered in `r.tools` by `openify.tools.plugins`."""
