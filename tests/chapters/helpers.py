"""What the chapter tests share: the glue keys a chapter's Markdown references."""
from __future__ import annotations

import re


def referenced_keys(text: str) -> set[str]:
    """Every glue key a MyST chapter references, inline ({glue:text}`key`) or as a directive."""
    return set(re.findall(r"\{glue(?::\w+)?\}`([^`:]+)", text)) | set(
        re.findall(r"```\{glue:(?:figure|md|table)\} ([\w-]+)", text))
