"""Tools for model-written code and tool calls: the sandbox, the tool registry, exact arithmetic."""
