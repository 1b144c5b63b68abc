"""Whether the Hugging Face hub answers: checked once, fast, before a library that would retry for half a minute."""
from __future__ import annotations


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """One TCP connect to the hub's endpoint: `datasets` itself retries for half a minute before it gives up."""
    import os
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout_s):
            return True
    except OSError:
        return False
