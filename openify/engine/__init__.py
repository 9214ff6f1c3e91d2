"""The workflow engine: runs the graph of a Dify DSL file. No storage: its needs come through ports.

Public surface (import from the modules; importing registers nothing):

- `graph.parse_graph(dsl) -> Graph`, `graph.unsupported_nodes(dsl, registries)`, `graph.validate_dsl(dsl,
  registries)` and `graph.GraphValidationError` (a DSLError, 400 invalid_param).
- `runner.WorkflowRunner(graph, registries, ports, limits)`: built once per graph version;
  `runner.start(inputs, SystemInputs(...), conversation_variables=None, run_id=None) -> WorkflowRun`;
  `async for ev in run.events()` yields `events.WorkflowEvent`s, the last one a `WorkflowFinished`;
  `run.stop()` ends the run with status `stopped`.
- `ports.Ports`: model resolver, knowledge, conversation variables, history, sandbox, HTTP client, files.
- Node types are plugins: `plugins.register(r)` registers `nodes/*` under their DSL type names.
"""
