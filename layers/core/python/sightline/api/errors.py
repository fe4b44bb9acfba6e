"""HTTP-only errors (the domain's own errors are mapped in sightline.api.app)."""


class PayloadTooLarge(Exception):
    """413."""


class UnsupportedMediaType(Exception):
    """415."""


class TooManyRequests(Exception):
    """429."""


class BadRequest(Exception):
    """400: a request the schema cannot describe (e.g. a malformed header)."""
