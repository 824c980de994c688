"""Source-level checks beside the AST: encoding cookies, bidirectional controls, non-ASCII names."""

from __future__ import annotations

import io
import tokenize
import unicodedata

from codegen.screening.policy import BIDI_CONTROLS, CODING_COOKIE
from codegen.screening.scoring import Finding


def source_findings(code: str) -> list[Finding]:
    findings: list[Finding] = []
    for number, line in enumerate(code.splitlines()[:2], start=1):
        match = CODING_COOKIE.match(line)
        if match and match.group(1).lower().replace("_", "-") not in {"utf-8", "utf8", "ascii", "us-ascii"}:
            # The text screened here is what the caller decoded; a file with this cookie would be
            # re-decoded by Python (utf-7 hides whole lines inside "+...-" runs).
            findings.append(
                Finding("encoding-declaration", f"source declares the encoding {match.group(1)!r}", number, True)
            )
    for number, line in enumerate(code.splitlines(), start=1):
        if any(char in BIDI_CONTROLS for char in line):
            findings.append(
                Finding(
                    "bidi-control-character",
                    "bidirectional control character: the code reads differently from how it runs",
                    number,
                    True,
                )
            )
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.NAME and not token.string.isascii():
                normal = unicodedata.normalize("NFKC", token.string)
                findings.append(
                    Finding(
                        "non-ascii-identifier",
                        f"identifier {token.string!r} is not ASCII (Python reads it as {normal!r})",
                        token.start[0],
                        True,
                    )
                )
    except (tokenize.TokenError, SyntaxError):
        pass  # ast.parse has already accepted the code; the tokenizer disagreeing adds nothing
    return findings
