"""The builtin tools: ``http_request``, ``file_read``, ``file_write`` and ``web_search``."""
