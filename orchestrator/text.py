"""What text every database the app runs on can store, checked once for every input that is kept."""


def unstorable_reason(text: str) -> str | None:
    """Why `text` cannot be stored (or sent on as UTF-8), in words for the user; None when it can."""
    if "\x00" in text:
        return "a NUL character, which cannot be stored"
    try:
        text.encode()
    except UnicodeEncodeError:
        return "characters that are not valid Unicode (lone surrogates)"
    return None
