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
    _resume_own(app, [Path(p) for p in args.paths], args.tenant)
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


def _resume_own(app: Any, paths: list[Path], tenant_id: str | None) -> None:
    """An earlier `sightline ingest` of these files that was killed left them unfinished:
    resume them here (only them: this process exits once its own files are done)."""
    from sightline.services.ingest import video_id_for
    from sightline.services.media import file_hash
    from sightline_local.runtime import resume_unfinished

    tenant = app.tenant(tenant_id)
    ids = {video_id_for(tenant, file_hash(p)) for p in paths if p.is_file()}
    if ids:
        resume_unfinished(ids)


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
    if (args.text is None) == (args.like is None):
        print("sightline search: give TEXT or --like VIDEO_ID@SECONDS", file=sys.stderr)
        return EXIT_USAGE
    if args.like is not None:
        try:
            hits = _search_like(args)
        except ValueError as exc:
            print(f"sightline search: {exc}", file=sys.stderr)
            return EXIT_USAGE
    else:
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


def _search_like(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The chunks most like the one covering VIDEO_ID@SECONDS (latent similarity), itself
    left out; the hits shaped as ``search`` prints them."""
    from sightline import factory
    from sightline.config import get_settings
    from sightline.ports import SearchFilters
    from sightline.services.queries import SimilarityService, chunk_at, parse_video_at
    from sightline.services.repository import Repository

    video_id, seconds = parse_video_at(args.like)
    tenant = args.tenant or get_settings().default_tenant
    row = chunk_at(Repository(factory.tables()).list_manifests(tenant, video_id), video_id, seconds)
    filters = SearchFilters(video_ids=(args.video,) if args.video else ())
    hits = SimilarityService(factory.index()).similar_to_chunk(
        tenant, row.manifest_id, k=args.k, filters=filters
    )
    return [
        {
            "video_id": h.video_id,
            "manifest_id": h.manifest_id,
            "start_s": h.t0,
            "end_s": h.t1,
            "score": round(h.score, 4),
            "description": h.description,
        }
        for h in hits
    ]


def cmd_events(args: argparse.Namespace) -> int:
    from sightline.errors import NotFound

    try:
        events = _app().events(
            tenant_id=args.tenant, video_id=args.video, event_type=args.type, camera=args.camera
        )
    except NotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        _print_json({"events": events})
    else:
        for e in events:
            when = (
                f"{e['start']} – {e['end']}"
                if e.get("start")
                else f"{e['start_s']:7.1f}s – {e['end_s']:7.1f}s"
            )
            print(
                f"{e['video_id'] or e['camera_id']}  {when}  {e['type']:<8} "
                f"{e['confidence']:.2f}  {e['description']}"
            )
    return 0


def cmd_cameras(args: argparse.Namespace) -> int:
    """Cameras live in the local store; ``sightline up`` (its scheduler) processes them."""
    from sightline import handlers
    from sightline.adapters.local_live import file_source_path, is_stream_url
    from sightline.errors import InvalidRequest, NotFound
    from sightline.models import CameraState
    from sightline_local.live import scheduler_alive

    tenant = args.tenant or _app().settings.default_tenant
    service = handlers.cameras()
    try:
        if args.action == "add":
            source = args.source
            if not is_stream_url(source):
                path = file_source_path(source).resolve()
                if not path.is_file():
                    print(f"error: {source} is not a file or a stream URL", file=sys.stderr)
                    return EXIT_USAGE
                source = str(path)
            cams = [
                service.create(tenant, args.name, source_url=source, clip_seconds=args.clip_seconds)
            ]
        elif args.action == "list":
            cams = service.cameras.list(tenant)
        elif args.action in ("pause", "resume"):
            cam = service.resolve(tenant, args.name)
            state = CameraState.PAUSED if args.action == "pause" else CameraState.ACTIVE
            cams = [service.update(tenant, cam.camera_id, state=state)]
        else:  # remove
            cam = service.resolve(tenant, args.name)
            service.delete(tenant, cam.camera_id)
            cams = []
            if args.json:
                _print_json({"removed": cam.camera_id})
            else:
                print(f"removed {cam.name} ({cam.camera_id})")
            return 0
    except (InvalidRequest, NotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    views = [c.model_dump(mode="json", exclude={"lease_owner", "lease_until"}) for c in cams]
    if args.json:
        _print_json({"cameras": views} if args.action == "list" else views[0])
    else:
        for c in views:
            print(
                f"{c['camera_id']}  {c['name']:<16} {c['state']:<7} clip {c['clip_seconds']:g}s"
                f"  windows {c['windows_done']} gaps {c['gaps']} failed {c['failed']}"
                f"  watermark {c['watermark']}  {c['source_url'] or c['kvs_stream_arn']}"
            )
    if args.action in ("add", "resume") and not scheduler_alive():
        print(
            "note: no `sightline up` is running over this SIGHTLINE_HOME; the camera is "
            "processed while one runs",
            file=sys.stderr,
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

    if args.what == "load":
        return cmd_bench_load(args)
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
        if args.roi:
            from sightline_local.bench_codec import roi_benchmark, roi_table

            roi_rows = roi_benchmark(clips)
            for r in roi_rows if args.json else []:
                _print_json(r)
            if not args.json:
                print(roi_table(roi_rows))
            return 0
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
    if args.what == "live":
        from sightline_local.bench_live import run as live_benchmark
        from sightline_local.samples import vtest_clip

        report = live_benchmark(
            Path(args.clip[0]) if args.clip else vtest_clip(get_settings().home / "samples"),
            clip_seconds=args.clip_seconds,
            windows=args.windows,
        )
        if not args.json:
            for key, value in report.items():
                print(f"{key}: {value}")
    elif args.what == "search":
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


def cmd_bench_load(args: argparse.Namespace) -> int:
    from sightline_local.loadtest import format_load_report, run_load

    report = run_load(
        clients=args.clients,
        seconds=args.seconds,
        url=args.url,
        clips=[Path(c) for c in args.clip] if args.clip else None,
    )
    if args.json:
        _print_json(report)
    else:
        print(format_load_report(report))
    return 0 if report["ingests_ok"] and not report["errors"] else EXIT_FAILED


def cmd_doctor(args: argparse.Namespace) -> int:
    from sightline_local import doctor

    report = doctor.run(repair=args.repair)
    if args.json:
        _print_json(report.as_dict())
    else:
        print(doctor.format_report(report))
    return EXIT_FAILED if report.unrepaired else 0


def cmd_up(args: argparse.Namespace) -> int:
    from sightline.config import reset_settings

    os.environ.setdefault("SIGHTLINE_WEBHOOK_ALLOW_LOOPBACK", "true")
    if "SIGHTLINE_SOURCE_ROOTS" not in os.environ:
        # POST /v1/videos {source} may read files under the directory the server runs in.
        os.environ["SIGHTLINE_SOURCE_ROOTS"] = json.dumps([str(Path.cwd())])
    reset_settings()
    from sightline_local.server import serve

    serve(args.port, rate=args.rate, burst=args.burst)
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
    from sightline.services.cost import (
        Assumptions,
        Deployment,
        Workload,
        estimate,
        format_cost_table,
        load_figures,
        with_overrides,
    )

    try:
        deployment = _cdk_deployment(args.config) if args.config else Deployment()
    except (KeyError, ValueError, ImportError) as exc:
        print(f"error: --config {args.config}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    deployment = with_overrides(
        deployment,
        chunk_seconds=args.chunk_seconds,
        frames_per_chunk=args.frames_per_chunk,
        describe_model_id=args.describe_model,
    )
    assumptions = Assumptions()
    if args.gpu_ms_per_frame is not None:
        assumptions = Assumptions(gpu_ms_per_720p_frame=args.gpu_ms_per_frame)
    workload = Workload(
        hours=args.hours,
        searches=args.searches,
        live_fraction=args.live_fraction,
        storage_months=args.storage_months,
        video_hours_per_month=args.video_hours_per_month,
    )
    result = estimate(
        workload,
        deployment=deployment,
        figures=load_figures(get_settings().home),
        assumptions=assumptions,
    )
    if not args.json:
        print(format_cost_table(result))
        return 0
    _print_json(
        {
            "hours": result["hours"],
            "searches": result["searches"],
            "total_usd": round(result["total_usd"], 4),
            "per_video_hour_usd": round(result["per_video_hour_usd"], 4),
            "search_usd": round(result["search_usd"], 4),
            "items": {k: round(v, 4) for k, v in result["items"].items()},
            "chunks": result["chunks"],
            "deployment": result["deployment"]["name"],
            "figures": result["figures"],
            "prices": result["prices"],
            "details": result["details"],
        }
    )
    return 0


def _cdk_deployment(env: str) -> Any:
    """The deployment ``cdk.json`` describes for ``env`` (the CDK's own typed config)."""
    root = str(Path(__file__).resolve().parent.parent)  # the repository (cdk/ is not installed)
    if root not in sys.path:
        sys.path.append(root)
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    from cdk import constants as c
    from cdk.config import load_environments
    from sightline.services.cost import Deployment

    context = json.loads((c.REPO_ROOT / "cdk.json").read_text())["context"]
    envs = load_environments(context[c.CONTEXT_ENVIRONMENTS], context.get(c.CONTEXT_DEFAULTS))
    if env not in envs:
        raise KeyError(f"no environment {env!r} in cdk.json (have {', '.join(sorted(envs))})")
    return Deployment.from_cdk(envs[env])


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
    s.add_argument("text", nargs="?")
    s.add_argument(
        "--like",
        metavar="VIDEO_ID@SECONDS",
        help="instead of TEXT: the chunks most like the one covering that second (latent)",
    )
    s.add_argument("-k", "--k", type=int, default=10)
    s.add_argument("--video", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("events", help="list detected events")
    s.add_argument("--video", default=None)
    s.add_argument("--camera", default=None, help="a camera's name or id (wall-clock times)")
    s.add_argument("--type", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_events)

    s = sub.add_parser(
        "cameras", help="live cameras (processed while `sightline up` runs over the same home)"
    )
    cam = s.add_subparsers(dest="action", required=True)
    c = cam.add_parser("add", help="add a camera: a video file played in a loop, or a URL")
    c.add_argument("name")
    c.add_argument("--source", required=True, help="a file path, or rtsp:// http:// udp:// URL")
    c.add_argument("--clip-seconds", type=float, default=10.0)
    c.add_argument("--json", action="store_true")
    c = cam.add_parser("list", help="cameras with state, windows, gaps and watermark")
    c.add_argument("--json", action="store_true")
    for action in ("pause", "resume", "remove"):
        c = cam.add_parser(action, help=f"{action} a camera (by name or id)")
        c.add_argument("name")
        c.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_cameras)

    s = sub.add_parser("videos", help="list videos and their status")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_videos)

    s = sub.add_parser("demo", help="ingest vtest.avi, print its events and a few searches")
    s.add_argument("--timeout", type=float, default=3600.0)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("up", help="serve the API on 127.0.0.1 over the local data")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--rate", type=float, default=50.0, help="requests/s per caller (limiter)")
    s.add_argument("--burst", type=int, default=100, help="burst per caller (limiter)")
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

    s = sub.add_parser(
        "cost", help="estimate the AWS cost of indexing H video-hours and N searches"
    )
    s.add_argument("--hours", type=float, default=1.0, help="video-hours indexed")
    s.add_argument("--searches", type=int, default=0, help="search requests")
    s.add_argument("--config", default=None, metavar="ENV", help="a cdk.json environment")
    s.add_argument(
        "--live-fraction",
        type=float,
        default=1.0,
        help="share of the video from cameras through KVS (0: uploaded files)",
    )
    s.add_argument("--video-hours-per-month", type=float, default=500.0)
    s.add_argument("--storage-months", type=float, default=1.0)
    s.add_argument("--chunk-seconds", type=float)
    s.add_argument("--frames-per-chunk", type=int)
    s.add_argument("--describe-model")
    s.add_argument("--gpu-ms-per-frame", type=float, help="codec GPU ms per 720p frame")
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
    s.add_argument(
        "what",
        nargs="?",
        choices=["pipeline", "search", "codec", "live", "load"],
        default="pipeline",
    )
    s.add_argument(
        "--clip",
        action="append",
        default=None,
        help="pipeline: the video to ingest (default vtest.avi); codec: clips "
        "(repeatable; default every clip in ../shared/data)",
    )
    s.add_argument("--frames", type=int, default=300, help="codec: frames per clip")
    s.add_argument(
        "--roi", action="store_true", help="codec: quarter-frame ROI decode (ms, bytes read)"
    )
    s.add_argument("--out", default=None, help="codec: report folder")
    s.add_argument("--n", type=int, default=100_000, help="search: documents in the index")
    s.add_argument("--dim", type=int, default=384, help="search: vector dimension")
    s.add_argument("--queries", type=int, default=200, help="search: timed queries")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--clip-seconds", type=float, default=5.0, help="live: camera clip length")
    s.add_argument("--windows", type=int, default=4, help="live: windows to wait for")
    s.add_argument("--clients", type=int, default=50, help="load: concurrent clients")
    s.add_argument("--seconds", type=float, default=20.0, help="load: how long to measure")
    s.add_argument("--url", default=None, help="load: a running server (default: start one)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("doctor", help="check the local store; --repair rebuilds what it can")
    s.add_argument("--repair", action="store_true", help="rebuild from the source of truth")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_doctor)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure(args)
    for stream in (sys.stdout, sys.stderr):
        # A file name that is not UTF-8 (surrogate escapes) prints escaped, never crashes.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    from sightline.errors import CorruptData, SightlineError

    try:
        code = int(args.func(args))
    except CorruptData as exc:
        print(f"sightline: integrity error: {exc} (the damaged data was not used)", file=sys.stderr)
        code = EXIT_FAILED
    except SightlineError as exc:
        print(f"sightline: {exc}", file=sys.stderr)
        code = EXIT_FAILED
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
