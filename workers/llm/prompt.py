"""What the LLM is asked: the task's instruction and input as one user turn."""

from __future__ import annotations

import json

from workers.llm.base import TaskRequest


def user_turn(request: TaskRequest) -> str:
    body = request.input if isinstance(request.input, str) else json.dumps(request.input, indent=2,
                                                                            ensure_ascii=False)
    if not request.instruction:
        return body or "(the task has an empty input)"
    if not body:
        return request.instruction
    return f"{request.instruction}\n\n<input>\n{body}\n</input>"
