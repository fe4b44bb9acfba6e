"""HTTP-only errors (the domain's own errors are mapped in sightline.api.app)."""


class PayloadTooLarge(Exception):
    """413."""


class UnsupportedMediaType(Exception):
    """415."""


class TooManyRequests(Exception):
    """429."""
