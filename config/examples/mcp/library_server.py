"""A small MCP server for the mcp example: a library catalogue, over stdio, with no network and no state.

Written with the official mcp SDK, as any MCP server would be; agent2389 starts it (library.toml) and
offers its tools to the LLM as library__search_books and library__book_details. Try it by hand with
``python3 config/examples/mcp/library_server.py`` (it then waits for MCP messages on stdin).
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

BOOKS = {
    "978-0-13-110362-7": ("The C Programming Language", "Brian Kernighan, Dennis Ritchie", 1988,
                          "The classic introduction to C by its authors."),
    "978-0-201-63361-0": ("Design Patterns", "Gamma, Helm, Johnson, Vlissides", 1994,
                          "Twenty-three patterns of object-oriented design."),
    "978-1-59327-584-6": ("The Linux Command Line", "William Shotts", 2019,
                          "From the first shell prompt to writing shell scripts."),
    "978-0-262-51087-5": ("Structure and Interpretation of Computer Programs", "Abelson, Sussman", 1996,
                          "Programs as a way to think about processes, in Scheme."),
}

server = MCPServer("library", log_level="WARNING")


@server.tool()
def search_books(query: str) -> list[dict[str, str | int]]:
    """Books whose title or author contains the query (case-insensitive), with their ISBNs."""
    needle = query.casefold()
    return [{"isbn": isbn, "title": title, "author": author, "year": year}
            for isbn, (title, author, year, _) in BOOKS.items()
            if needle in title.casefold() or needle in author.casefold()]


@server.tool()
def book_details(isbn: str) -> str:
    """Title, author, year and a one-line summary of the book with this ISBN."""
    if isbn not in BOOKS:
        raise ToolError(f"no book with ISBN {isbn} in the catalogue")
    title, author, year, summary = BOOKS[isbn]
    return f"{title} by {author} ({year}): {summary}"


if __name__ == "__main__":
    server.run()
