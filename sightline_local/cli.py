"""``sightline``: the embedded default from the command line.

State is shared between invocations through SIGHTLINE_HOME (default ``.sightline/``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

EXIT_FAILED = 1
EXIT_USAGE = 2


def _configure(args: argparse.Namespace) -> None:
    if args.home:
        os.environ["SIGHTLINE_HOME"] = str(args.home)
    # Library logs go to stderr and stay quiet unless asked; stdout is for results.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "DEBUG" if args.verbose else "WARNING")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "sightline")
    from sightline.config import reset_settings

    reset_settings()


def _app() -> Any:
    from sightline_local.app import LocalApp

    return LocalApp.create()


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, default=str), flush=True)


def cmd_ingest(args: argparse.Namespace) -> int:
    app = _app()
    worst = 0
    for raw in args.paths:
        path = Path(raw)
        if not path.is_file():
            result = {
                "video_id": None,
                "path": str(path),
                "status": "failed",
                "chunks": 0,
                "events": [],
                "reason": "no such file",
            }
            worst = EXIT_FAILED
        else:
            result = app.ingest_and_wait(
                path,
                tenant_id=args.tenant,
                timeout_s=args.timeout,
                progress=not args.json and sys.stderr.isatty(),
            )
            if result["status"] != "completed":
                worst = EXIT_FAILED
        if args.json:
            _print_json(result)
        else:
            _print_ingest(path, result)
    return worst


def _print_ingest(path: Path, r: dict[str, Any]) -> None:
    print(
        f"{path.name}: {r['status']}  video_id={r['video_id']}  chunks={r['chunks']}"
        + (f"  reason: {r['reason']}" if r.get("reason") else "")
    )
    for e in r["events"]:
        print(
            f"  {e['start_s']:7.1f}s – {e['end_s']:7.1f}s  {e['type']:<8} "
            f"{e['confidence']:.2f}  {e['description']}"
        )


def cmd_search(args: argparse.Namespace) -> int:
    hits = _app().search(args.text, tenant_id=args.tenant, k=args.k, video_id=args.video)
    if args.json:
        _print_json({"hits": hits})
    else:
        for h in hits:
            print(
                f"{h['score']:.3f}  {h['video_id']}  {h['start_s']:6.1f}-{h['end_s']:6.1f}s  "
                f"{h['description']}"
            )
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    events = _app().events(tenant_id=args.tenant, video_id=args.video, event_type=args.type)
    if args.json:
        _print_json({"events": events})
    else:
        for e in events:
            print(
                f"{e['video_id']}  {e['start_s']:7.1f}s – {e['end_s']:7.1f}s  {e['type']:<8} "
                f"{e['confidence']:.2f}  {e['description']}"
            )
    return 0


def cmd_videos(args: argparse.Namespace) -> int:
    videos = _app().videos(tenant_id=args.tenant)
    if args.json:
        _print_json({"videos": videos})
    else:
        for v in videos:
            print(
                f"{v['video_id']}  {v['status']:<10} chunks {v['chunks_done']}/{v['chunks_total']}"
                f"  events {v['events_count']}  {v['filename']}"
                + (f"  reason: {v['failure_reason']}" if v.get("failure_reason") else "")
            )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from sightline_local.samples import vtest_clip

    app = _app()
    clip = vtest_clip(app.settings.home / "samples")
    print(f"Ingesting {clip} through the batch pipeline (embedded default) ...", flush=True)
    result = app.ingest_and_wait(
        clip, tenant_id=args.tenant, timeout_s=args.timeout, progress=sys.stderr.isatty()
    )
    _print_ingest(clip, result)
    if result["status"] != "completed":
        return EXIT_FAILED
    for query in ("people walking", "a parked car", "a crowd of people", "an empty scene"):
        print(f'\nsearch "{query}":')
        for h in app.search(query, tenant_id=args.tenant, k=3):
            print(f"  {h['score']:.3f}  {h['start_s']:6.1f}-{h['end_s']:6.1f}s  {h['description']}")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    import cv2

    from sightline import factory, keys
    from sightline.config import get_settings
    from sightline.errors import NotFound
    from sightline.services.repository import Repository
    from sightline_local.roi import decode_region

    tenant = args.tenant or get_settings().default_tenant
    rows = Repository(factory.tables()).list_manifests(tenant, args.video_id)
    row = next((r for r in rows if r.t0 <= args.at < r.t1), None)
    if row is None:
        raise NotFound(f"no chunk of {args.video_id} holds {args.at} s")
    x, y, w, h = (float(v) for v in args.roi.split(",")) if args.roi else (None,) * 4
    rel = args.at - row.t0
    out = decode_region(
        factory.blobs(),
        keys.tokens(tenant, row.video_id, row.chunk_index),
        roi=(x, y, w, h) if args.roi else None,
        t0=rel,
        t1=rel + 1e-3,  # one frame
    )
    frame = out.frames[0]
    cv2.imwrite(str(args.out), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    report = {
        "manifest_id": row.manifest_id,
        "bytes_read": out.bytes_read,
        "blob_bytes": out.blob_bytes,
        "ms": round(out.ms, 1),
        "tiles_read": out.tiles_read,
        "tiles_total": out.tiles_total,
        "width": int(frame.shape[1]),
        "height": int(frame.shape[0]),
    }
    if args.json:
        _print_json(report)
    else:
        print(
            f"{args.out}: {report['width']}x{report['height']} from {row.manifest_id}, read "
            f"{out.bytes_read} of {out.blob_bytes} bytes in {report['ms']} ms"
        )
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from sightline.config import get_settings
    from sightline_local.backup import backup

    _print_json(backup(get_settings().home, Path(args.out)))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from sightline.config import get_settings
    from sightline_local.backup import BackupError, restore

    try:
        _print_json(restore(Path(args.archive), get_settings().home, force=args.force))
    except BackupError as exc:
        print(f"sightline: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from sightline import factory
    from sightline.config import get_settings
    from sightline.services.reindex import reindex
    from sightline.services.repository import Repository

    report = reindex(
        args.tenant or get_settings().default_tenant,
        repo=Repository(factory.tables()),
        blobs=factory.blobs(),
        index=factory.index(),
        embedder=factory.embedder(),
        video_ids=args.video or None,
        batch_size=args.batch,
    )
    if args.json:
        _print_json(report.as_dict())
    else:
        print(
            f"reindexed {report.reindexed} of {report.chunks} chunks in {report.videos} videos "
            f"with {report.embedding_model} ({report.rebuilt} rebuilt, "
            f"{len(report.skipped)} without analysis)"
        )
    return EXIT_FAILED if report.skipped else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from sightline.config import get_settings

    if args.what == "codec":
        from sightline_local.bench_codec import run
        from sightline_local.samples import shared_data_dir

        clips = (
            [Path(c) for c in args.clip]
            if args.clip
            else [
                p
                for p in sorted((shared_data_dir() or Path(".")).glob("*"))
                if p.suffix in (".avi", ".mp4")
            ]
        )
        out_dir = Path(args.out) if args.out else Path(get_settings().home) / "bench-codec"
        rows = run(clips, frames=args.frames, out_dir=out_dir)
        for r in rows:
            if args.json:
                _print_json(
                    {
                        k: r[k]
                        for k in ("clip", "codec", "bpp", "psnr_y", "ms_ssim", "enc_fps", "dec_fps")
                    }
                )
        if not args.json:
            print((out_dir / "rd.md").read_text())
            print(f"written: {out_dir}/rd.md, rd.json, rd.png")
        return 0
    if args.what == "search":
        from sightline_local.bench_search import search_benchmark

        report = search_benchmark(args.n, dim=args.dim, queries=args.queries, seed=args.seed)
        if not args.json:
            for key, value in report.items():
                print(f"{key}: {value}")
    else:
        from sightline_local.bench import pipeline_benchmark

        report = pipeline_benchmark(Path(args.clip[0]) if args.clip else None)
    if args.json:
        _print_json(report)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from sightline.config import reset_settings

    os.environ.setdefault("SIGHTLINE_WEBHOOK_ALLOW_LOOPBACK", "true")
    if "SIGHTLINE_SOURCE_ROOTS" not in os.environ:
        # POST /v1/videos {source} may read files under the directory the server runs in.
        os.environ["SIGHTLINE_SOURCE_ROOTS"] = json.dumps([str(Path.cwd())])
    reset_settings()
    from sightline_local.server import serve

    serve(args.port)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from sightline.api.security import DevSigner, Role
    from sightline.config import get_settings

    signer = DevSigner(get_settings().key_dir)
    print(
        signer.mint(
            org=args.org,
            project=args.project,
            role=Role(args.role),
            ttl_s=args.ttl,
            subject=args.subject,
        )
    )
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from sightline.api.app import build_app, openapi_json

    text = json.dumps(json.loads(openapi_json(build_app())), indent=2) + "\n"
    if args.write:
        Path(args.write).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from sightline.config import get_settings
    from sightline.services.cost import CostParams, cost_per_video_hour, format_cost_table

    over = {
        k: v
        for k, v in {
            "video_seconds": args.hours * 3600,
            "chunk_seconds": args.chunk_seconds,
            "frames_per_chunk": args.frames_per_chunk,
            "describe_model_id": args.describe_model,
            "encode_seconds_per_video_second": args.encode_s_per_video_s,
            "video_hours_per_month": args.video_hours_per_month,
        }.items()
        if v is not None
    }
    result = cost_per_video_hour(CostParams.from_settings(get_settings(), **over))
    if not args.json:
        print(format_cost_table(result))
        return 0
    # The costs above are per video-hour; the JSON answers for --hours as well.
    items: dict[str, float] = {}
    for name, part in result["components"].items():
        group = {
            "step_functions": "stepfunctions",
            "bedrock_describe": "bedrock",
            "bedrock_embed": "bedrock",
        }.get(name, name)
        items[group] = items.get(group, 0.0) + float(part["usd"]) * args.hours
    _print_json(
        {
            "hours": args.hours,
            "total_usd": round(float(result["total_usd"]) * args.hours, 4),
            "per_video_hour_usd": round(float(result["total_usd"]), 4),
            "items": {k: round(v, 4) for k, v in items.items()},
            "prices_note": result["prices_note"],
        }
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sightline", description=__doc__)
    p.add_argument(
        "--home", type=Path, help="data directory (default $SIGHTLINE_HOME or .sightline)"
    )
    p.add_argument("--tenant", default=None, help="org/project (default: the local tenant)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="run the batch pipeline on local files and wait")
    s.add_argument("paths", nargs="+")
    s.add_argument("--json", action="store_true", help="one JSON object per video")
    s.add_argument("--timeout", type=float, default=3600.0)
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("search", help="semantic search over chunk descriptions")
    s.add_argument("text")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--video", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("events", help="list detected events")
    s.add_argument("--video", default=None)
    s.add_argument("--type", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_events)

    s = sub.add_parser("videos", help="list videos and their status")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_videos)

    s = sub.add_parser("demo", help="ingest vtest.avi, print its events and a few searches")
    s.add_argument("--timeout", type=float, default=3600.0)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("up", help="serve the API on 127.0.0.1 over the local data")
    s.add_argument("--port", type=int, default=8080)
    s.set_defaults(func=cmd_up)

    s = sub.add_parser("token", help="mint a development JWT (local signing key)")
    s.add_argument("--org", required=True)
    s.add_argument("--project", required=True)
    s.add_argument("--role", choices=["viewer", "editor", "admin"], default="editor")
    s.add_argument("--ttl", type=int, default=3600, help="seconds")
    s.add_argument("--subject", default="dev-user")
    s.set_defaults(func=cmd_token)

    s = sub.add_parser("openapi", help="print (or --write) the OpenAPI document")
    s.add_argument("--write", default=None, metavar="PATH")
    s.set_defaults(func=cmd_openapi)

    s = sub.add_parser("cost", help="estimate USD per video-hour on AWS (list prices; check)")
    s.add_argument("--hours", type=float, default=1.0, help="video length in hours")
    s.add_argument("--chunk-seconds", type=float)
    s.add_argument("--frames-per-chunk", type=int)
    s.add_argument("--describe-model")
    s.add_argument("--encode-s-per-video-s", type=float)
    s.add_argument("--video-hours-per-month", type=float)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_cost)

    s = sub.add_parser("decode", help="decode a region of one frame, reading only its tiles")
    s.add_argument("video_id")
    s.add_argument("--at", type=float, required=True, help="seconds from the video start")
    s.add_argument("--roi", default=None, help="X,Y,W,H in source pixels (default: all)")
    s.add_argument("--out", type=Path, required=True, help="PNG file to write")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_decode)

    s = sub.add_parser("backup", help="the whole local store as one tar, with BLAKE3 hashes")
    s.add_argument("out")
    s.set_defaults(func=cmd_backup)

    s = sub.add_parser("restore", help="verify a backup, then make it the local store")
    s.add_argument("archive")
    s.add_argument("--force", action="store_true", help="replace a non-empty data directory")
    s.set_defaults(func=cmd_restore)

    s = sub.add_parser("reindex", help="re-embed every stored chunk with the configured embedder")
    s.add_argument("--video", action="append", default=[], help="only this video (repeatable)")
    s.add_argument("--batch", type=int, default=64, help="descriptions per embedding call")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_reindex)

    s = sub.add_parser("bench", help="pipeline real-time factor, or k-NN search figures")
    s.add_argument("what", nargs="?", choices=["pipeline", "search", "codec"], default="pipeline")
    s.add_argument(
        "--clip",
        action="append",
        default=None,
        help="pipeline: the video to ingest (default vtest.avi); codec: clips "
        "(repeatable; default every clip in ../shared/data)",
    )
    s.add_argument("--frames", type=int, default=300, help="codec: frames per clip")
    s.add_argument("--out", default=None, help="codec: report folder")
    s.add_argument("--n", type=int, default=100_000, help="search: documents in the index")
    s.add_argument("--dim", type=int, default=384, help="search: vector dimension")
    s.add_argument("--queries", type=int, default=200, help="search: timed queries")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure(args)
    from sightline.errors import SightlineError

    try:
        code = int(args.func(args))
    except SightlineError as exc:
        print(f"sightline: {exc}", file=sys.stderr)
        code = EXIT_FAILED
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
