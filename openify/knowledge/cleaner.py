"""Pre-processing of extracted text, as Dify's CleanProcessor: invalid symbols always, then the enabled rules."""

from __future__ import annotations

import regex as re  # type: ignore[import-untyped]  # no stubs; `regex` releases the GIL (concurrent=True)

from openify.knowledge.process_rule import ProcessRule

# Indexing runs in worker threads, but `re` holds the GIL for a whole scan: 1 MB took the event loop away for
# 100-400 ms. The `regex` module (same syntax) lets go of it while it matches (concurrent=True).

_INVALID = re.compile(r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F\uFFFE]")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_MANY_SPACES = re.compile(r"[\t\f\r\x20\u00a0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000]{2,}")
# Dify's patterns, made linear for 1 MB of hostile text (each was quadratic: a long run of letters with no `@`,
# or many `![` with no `]`, made every start position scan to the end). An address starts where its run of
# local-part characters starts (the lookbehind), so a run is scanned once; alt text and URLs stop at a
# bracket, so the scan from one `![` never runs into the next image.
_EMAIL = re.compile(r"(?<![a-zA-Z0-9_.+-])[a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+")
_MD_IMAGE = re.compile(r"!\[[^\[\]]*\]\((https?://[^\s()\[\]]+)\)")
_URL = re.compile(r"https?://[^\s)]+")


def clean(text: str, rule: ProcessRule) -> str:
    """Apply Dify's default clean-up and the rule's `remove_extra_spaces` / `remove_urls_emails`."""
    text = text.replace("<|", "<").replace("|>", ">")
    text = _INVALID.sub("", text, concurrent=True)
    if rule.remove_urls_emails:
        text = _EMAIL.sub("", text, concurrent=True)
        # Markdown image links survive, as in Dify: the image is content, a bare link is noise.
        images: list[str] = []

        def keep(m: re.Match) -> str:
            images.append(m.group(0))
            return f"\x00IMG{len(images) - 1}\x00"

        text = _MD_IMAGE.sub(keep, text, concurrent=True)
        text = _URL.sub("", text, concurrent=True)
        for i, image in enumerate(images):
            text = text.replace(f"\x00IMG{i}\x00", image)
    # Spaces last (Dify follows the list order), so removed links leave no double spaces behind.
    if rule.remove_extra_spaces:
        text = _MANY_NEWLINES.sub("\n\n", text, concurrent=True)
        text = _MANY_SPACES.sub(" ", text, concurrent=True)
    return text
