"""A small MCP server over stdio (the `mcp` SDK's FastMCP), which the stdio tool provider test runs confined."""

from mcp.server.fastmcp import FastMCP

server = FastMCP("stdio-demo")


@server.tool(description="Shout a text")
def shout(text: str) -> str:
    return text.upper() + "!"


if __name__ == "__main__":
    server.run("stdio")
