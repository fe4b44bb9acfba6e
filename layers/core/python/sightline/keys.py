"""Blob keys. Every key starts with the tenant; derived objects sit under one prefix."""


def source(tenant_id: str, video_id: str, filename: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[-100:] or "video"
    return f"{tenant_id}/videos/{video_id}/source/{safe}"


def derived_prefix(tenant_id: str, video_id: str) -> str:
    return f"{tenant_id}/videos/{video_id}/derived/"


def chunk_prefix(tenant_id: str, video_id: str) -> str:
    return f"{derived_prefix(tenant_id, video_id)}chunks/"


def chunk(tenant_id: str, video_id: str, index: int) -> str:
    return f"{chunk_prefix(tenant_id, video_id)}{index:05d}.mp4"


def tokens(tenant_id: str, video_id: str, index: int) -> str:
    return f"{derived_prefix(tenant_id, video_id)}tokens/{index:05d}.sltb"


def sideinfo(tenant_id: str, video_id: str, index: int) -> str:
    return f"{derived_prefix(tenant_id, video_id)}tokens/{index:05d}.side"


def analysis(tenant_id: str, video_id: str, index: int) -> str:
    return f"{derived_prefix(tenant_id, video_id)}analysis/{index:05d}.json"


def latent(tenant_id: str, video_id: str, index: int) -> str:
    return f"{derived_prefix(tenant_id, video_id)}latent/{index:05d}.json"
