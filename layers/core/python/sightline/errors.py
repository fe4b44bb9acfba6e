"""Domain exceptions. Step Functions matches Retry/Catch on the class name."""


class SightlineError(Exception):
    """Base of every domain error."""


class InvalidVideo(SightlineError):
    """The input is not a usable video (corrupt, empty, non-video, unsupported, over limit).

    Not retried: the same bytes fail the same way.
    """


class EmptyWindow(InvalidVideo):
    """A chunk window holds no frame (a sparse recording, one frame a minute): nothing to
    process there, which is not a fault of the video as a whole."""


class TransientError(SightlineError):
    """A dependency failed in a way that may pass on retry (throttling, timeouts)."""


class NotFound(SightlineError):
    """No such object for this tenant (another tenant's object is also "not found")."""


class CodecError(SightlineError):
    """The codec endpoint reported a failure for a request."""


class CorruptData(SightlineError):
    """Stored data failed its integrity check and was not served."""


class InvalidRequest(SightlineError):
    """A well-formed request that asks for something impossible (an empty region, a time
    outside the chunk)."""


class Conflict(SightlineError):
    """A conditional write lost: the record changed since it was read (a watermark moved,
    a lease is held by another execution)."""


class TenantThrottled(SightlineError):
    """The tenant is at its concurrency limit for a step. Retried with backoff by the state
    machine (its own Retry entry), so one tenant's backlog waits instead of starving others."""
