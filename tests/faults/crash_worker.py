"""A process that ingests a clip with the heavy models faked and hangs at the encode of
chunk 1, so that the test can SIGKILL it mid-ingest (``test_crash_resume``).

    python -m tests.faults.crash_worker HOME CLIP
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sightline_local import faults
from tests.faults.stack import TENANT, fake_stack


def main(home: str, clip: str) -> None:
    with fake_stack(Path(home)) as service:
        faults.PLAN.arm(
            "encode",
            "hang",
            chunk=1,
            seconds=600,
            on_hit=lambda _: print("HANGING", flush=True),
        )
        sub = service.submit_file(TENANT, Path(clip))
        print(f"STARTED {sub.video.video_id} {sub.execution_id}", flush=True)
        time.sleep(600)  # killed long before this


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
