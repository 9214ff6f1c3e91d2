"""The workflow engine: runs the graph of a Dify DSL file. No storage: its needs come through ports."""
