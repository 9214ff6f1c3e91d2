"""All HTTP: routes, request/response schemas, the error envelope and SSE framing."""
