"""WikiText's raw layout into documents, as the DeepSeek-V3 tutorial's `wikitext_to_bin.py` cuts it.

Raw `wiki.train.tokens` is tokenised text, one paragraph a line, every line with a leading space,
blank lines (` `) between paragraphs and `= Title =` / `= = Section = =` headings on lines of their own:

     = Valkyria Chronicles III =
     <blank>
     Senjō no Valkyria 3 : Unrecorded Chronicles ( Japanese : 戦場のヴァルキュリア3 ...

The tutorial undoes WikiText's tokenisation (`wikitext_clean` in MindFormers' data readers: ` @-@ ` is
`-`, ` , ` is `, ` and so on), splits the text at blank lines and keeps every paragraph that does not
start with `=`, each one document. Here the same rules run paragraph by paragraph, so that a file of
any size streams: the only difference is that the tutorial, cleaning the whole file at once, can pair
an unmatched quote or bracket with one paragraphs later (and then joins those paragraphs); here
pairs never cross a blank line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

# In order; each applies to the result of the ones before it, as in the tutorial.
_REPLACEMENTS: tuple[tuple[str, str] | tuple[re.Pattern[str], str], ...] = (
    ("s '", "s'"),  # plural possessive
    (re.compile(r"/' [0-9]/"), r"/'[0-9]/"),
    (" @-@ ", "-"),  # number and word separators
    (" @,@ ", ","),
    (" @.@ ", "."),
    (" : ", ": "),  # punctuation
    (" ; ", "; "),
    (" . ", ". "),
    (" .", "."),
    (" ! ", "! "),
    (" ? ", "? "),
    (" , ", ", "),
    (re.compile(r"\(\s*([^\)]*?)\s*\)"), r"(\1)"),  # no space inside brackets and quotes
    (re.compile(r"\[\s*([^\]]*?)\s*\]"), r"[\1]"),
    (re.compile(r"{\s*([^}]*?)\s*}"), r"{\1}"),
    (re.compile(r"\"\s*([^\"]*?)\s*\""), r'"\1"'),
    (re.compile(r"'\s*([^']*?)\s*'"), r"'\1'"),
    ("= = = =", "===="),  # heading marks
    ("= = =", "==="),
    ("= =", "=="),
    (" \N{DEGREE SIGN} ", "\N{DEGREE SIGN}"),
    (" \n", "\n"),  # line ends
    ("\n ", "\n"),
    (" N ", " 1 "),  # WikiText's number placeholder
    (" 's", "'s"),
)


def clean(text: str) -> str:
    """Undo WikiText's tokenisation: the tutorial's `wikitext_clean`, rule for rule."""
    for pattern, replacement in _REPLACEMENTS:
        if isinstance(pattern, str):
            text = text.replace(pattern, replacement)
        else:
            text = pattern.sub(replacement, text)
    return text


def raw_paragraphs(lines: Iterable[str]) -> Iterator[str]:
    """Runs of non-blank lines, joined by newlines; a blank line (only whitespace) ends a run."""
    run: list[str] = []
    for line in lines:
        if line.strip():
            run.append(line.rstrip("\r\n"))
        elif run:
            yield "\n".join(run)
            run = []
    if run:
        yield "\n".join(run)


def is_heading(paragraph: str) -> bool:
    """The tutorial drops every paragraph that starts with `=`: WikiText's headings."""
    return paragraph.lstrip().startswith("=")


def document(paragraph: str) -> str | None:
    """The document a raw paragraph becomes: cleaned text, or None for a heading or nothing."""
    if is_heading(paragraph):
        return None
    text = clean(paragraph).strip()
    return text or None


def documents(lines: Iterable[str]) -> Iterator[str]:
    """Every document of a WikiText file, in order."""
    for paragraph in raw_paragraphs(lines):
        text = document(paragraph)
        if text is not None:
            yield text
