"""Pure parsers for the text a node prints when it is probed: `npu-smi`, `hccn_tool`, Linux files.

Nothing here runs a command. Each parser takes text and returns a frozen record; text it cannot
read never raises out of it but comes back as UNKNOWN with a reason that quotes the first line seen,
because that line is usually what a person needs (an error message, a prompt, a wrong tool).
"""

from __future__ import annotations

UNKNOWN = "UNKNOWN"

# A reason quotes at most this much of a line: enough to recognise it, not a screenful.
QUOTE_LIMIT = 160


def first_line(text: str) -> str:
    """The first non-blank line, stripped, made safe to show and cut to QUOTE_LIMIT characters."""
    for line in text.splitlines():
        if line.strip():
            return printable(line.strip())[:QUOTE_LIMIT]
    return ""


def printable(line: str) -> str:
    """Control characters become spaces or '?': a mangled output must not drive the terminal."""
    return "".join(c if c.isprintable() else " " if c.isspace() else "?" for c in line)


def unknown_reason(what: str, text: str) -> str:
    """`what` plus the first line seen, so a person can tell a wrong tool from a broken one."""
    line = first_line(text)
    return f'{what}; first line: "{line}"' if line else f"{what}; the output was empty"
