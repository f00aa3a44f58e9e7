"""An MCP ``tools/call`` result as the text the LLM reads: text as it is, everything else described."""

from __future__ import annotations

import json

from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)


def result_text(result: CallToolResult, limit: int | None = None) -> str:
    """Every content block, in order; cut at ``limit`` characters if given (the executor caps results)."""
    parts = [_block_text(block) for block in result.content]
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, default=str, ensure_ascii=False))
    text = "\n".join(parts)
    if limit is not None and len(text) > limit:
        return text[:limit] + f"\n[truncated: the result had {len(text)} characters]"
    return text


def _block_text(block: ContentBlock) -> str:
    if isinstance(block, TextContent):
        return block.text
    if isinstance(block, ImageContent | AudioContent):
        kind = "image" if isinstance(block, ImageContent) else "audio"
        return f"[{kind} ({block.mime_type}, about {_decoded_bytes(block.data)} bytes) not shown to the model]"
    if isinstance(block, ResourceLink):
        title = f" {block.name!r}" if block.name else ""
        mime = f", {block.mime_type}" if block.mime_type else ""
        return f"[resource link{title}: {block.uri}{mime}]"
    if isinstance(block, EmbeddedResource):
        resource = block.resource
        if isinstance(resource, TextResourceContents):
            return f"[resource {resource.uri}]\n{resource.text}"
        if isinstance(resource, BlobResourceContents):
            mime = resource.mime_type or "binary"
            return f"[resource {resource.uri} ({mime}, about {_decoded_bytes(resource.blob)} bytes) not shown]"
    return f"[{getattr(block, 'type', 'unknown')} content not shown to the model]"


def _decoded_bytes(base64_data: str) -> int:
    return len(base64_data) * 3 // 4
