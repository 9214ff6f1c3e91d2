"""Built-in node types, one module per DSL type."""
