"""Token blobs (format v1 and v2): round trips, header validation, ranged tile reads,
corruption detection, and that blobs written by the v1 writer stay readable."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest
from pydantic import ValidationError

from sightline.errors import CorruptData
from sightline.tokenblob import (
    CorruptBlobError,
    TokenBlobHeader,
    TokenBlobHeaderV2,
    assemble_region,
    blob_hash,
    decode_tile,
    decode_tiles,
    pack_sideinfo,
    pack_tokens,
    read_header,
    read_index,
    read_tiles,
    required_prefix_length,
    tile_byte_range,
    tiles_for_region,
    unpack_region,
    unpack_sideinfo,
    unpack_tokens,
    verify_blob,
)

META = {
    "codebook_id": "cb-v1-k1024-test",
    "model_id": "vqvae3d-v1",
    "time_stride": 4,
    "spatial_stride": 8,
    "fps": 10.0,
}
VERSIONS = [1, 2]

# Written by the version-1 writer (before version 2 existed): tokens
# default_rng(7).integers(0, 1024, (3, 5, 18)), temporal window 2, zlib.
V1_BLOB = base64.b64decode(
    "U0xUQgEAZQEAAHsidmVyc2lvbiI6MSwiY29kZWJvb2tfaWQiOiJjYi12MS1rMTAyNC05YTI5NGZhOTJhIiwi"
    "bW9kZWxfaWQiOiJ2cXZhZTNkLXYxIiwibGF5b3V0IjoidGlsZXMtMTZ4MTYtdHciLCJkaW1zIjpbMyw1LDE4"
    "XSwidGltZV9zdHJpZGUiOjQsInNwYXRpYWxfc3RyaWRlIjo4LCJ0aWxlX3NpemUiOlsxNiwxNl0sInRpbGVf"
    "Z3JpZCI6WzEsMl0sInRlbXBvcmFsX3dpbmRvdyI6Miwibl93aW5kb3dzIjoyLCJmcmFtZV9zaXplIjpbNDAs"
    "MTQwXSwiZnBzIjoxMC4wLCJuX2ZyYW1lcyI6MTAsImR0eXBlIjoidWludDE2IiwiY29tcHJlc3Npb24iOiJ6"
    "bGliIiwiY29kZWJvb2tfc2l6ZSI6MTAyNCwidGlsZV9kaWdlc3QiOiJibGFrZTMtNjQifd8BAAAAAAAAJwEA"
    "AJxOo6CNof2zBgMAAAAAAAAwAAAAactRlRbptfo2AwAAAAAAAKEAAACLIKxmCEHaStcDAAAAAAAAHAAAANR/"
    "XKhHWmgg8n7UepvkPc5U7nycQ5V8mzdYsbWa0l4WyUTDGAT2eN942g2PSSjlAQCHf4vdNJbiQA7DnDTlgHdx"
    "fQcNirJkippejkQTocjBdnnl8JKM5SJT4+QiIQdLRMphbsj6xHVysMb/+Dt8X9+vmHtO4pD+ckMhTzruWjUz"
    "z7No8ApucaBSzqCIhxj0shYdRiLy8c48VLoNo7hBH5p0zi6H/UUhfmcLp13AF1xoHAnM0R5Pfc9qJKhQ9RJC"
    "iiJV7XhxOSq8iaNgDygecI988JjPeMVTxPTT81pAjL/U6W4U+huOA1crv6IHE7AzlMFLN7LCyVpynFW+9rD2"
    "uc0TfFYuMxnBK6N4w389ed2f0KEIsriLGl04Czt65phnfKU197MMD7yTcY9epaDOJfqjdM8hymz+Dh4ccMRT"
    "Qe200tSqLf9wxKv8pw9XWVC+eNpzZbRg+M5kwCzG/I15ArM2sy5zHrMM411GE+YWxpvMZxl4GJWYWJj6mQCx"
    "sAhHeNoFwSEPAQEYBuD3fb+NzS/QmAl2BIFmbqb5C1yi2W67Igk2ZgSB5oiKYIosSIokK2Zj+s1InudreVz0"
    "0R4Pxuihrh9WdHTXSwHjaqNvTRxVsoBpW8hTRynz0UMFSWw0QEcJNZjlExGX2HLMjOpWtZBTjnjH2xzMeVZL"
    "B5x4s67eduZXM+1QVE5XKyCES1cTntiSzxoiHKyMIdb8A9QBKPB42sthKGaKZO5hvMHoyxTPvIXpIIMvMwA2"
    "XQUcU64bfuYEhYLPVy6YcZvPEmKkZEwnVd9dQCSRQAXnCsE="
)


def scene(shape=(9, 37, 21), seed=0, k=1024) -> np.ndarray:
    """Tokens of a fixed camera: a static background, flicker, and a moving block."""
    rng = np.random.default_rng(seed)
    tt, ht, wt = shape
    tokens = np.broadcast_to(rng.integers(0, k, (ht, wt)), shape).copy()
    flicker = rng.random(shape) < 0.08
    tokens[flicker] = rng.integers(0, k, int(flicker.sum()))
    for t in range(tt):
        x = (2 * t) % max(1, wt - 3)
        block = tokens[t, 1:5, x : x + 3]
        block[...] = rng.integers(0, k, block.shape)
    return tokens.astype(np.uint16)


def make(shape=(7, 37, 21), window=3, compression="zlib", seed=0, k=1024, version=1, **kw):
    """Tokens of a grid that is not a multiple of the tile size, and their blob."""
    rng = np.random.default_rng(seed)
    tokens = kw.pop("tokens", None)
    if tokens is None:
        tokens = rng.integers(0, k, shape, dtype=np.uint16)
    tt, ht, wt = tokens.shape
    blob = pack_tokens(
        tokens,
        **META,
        frame_size=(ht * 8 - 3, wt * 8 - 5),
        n_frames=tt * 4 - 1,
        temporal_window=window,
        compression=compression,
        codebook_size=k,
        version=version,
        **kw,
    )
    return tokens, blob


@pytest.mark.parametrize("compression", ["zlib", "none"])
@pytest.mark.parametrize(
    "shape,window", [((7, 37, 21), 3), ((1, 1, 1), 8), ((25, 72, 96), 8), ((9, 16, 33), 9)]
)
def test_round_trip_v1(shape, window, compression):
    # Given random tokens on an odd-sized grid
    tokens, blob = make(shape, window, compression)
    # When the blob is read back with its external hash
    header, out = unpack_tokens(blob, expected_hash=blob_hash(blob))
    # Then tokens and metadata survive exactly
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, tokens)
    assert header.dims == shape
    assert header.tile_grid == (-(-shape[1] // 16), -(-shape[2] // 16))
    assert header.n_windows == -(-shape[0] // window)
    assert header.layout == "tiles-16x16-tw" and header.tile_size == (16, 16)
    assert header.codebook_id == META["codebook_id"]
    assert read_header(blob) == header


@pytest.mark.parametrize("kind", ["random", "scene"])
@pytest.mark.parametrize(
    "shape,window,tile",
    [
        ((7, 37, 21), 3, (8, 8)),
        ((1, 1, 1), 2, (8, 8)),
        ((25, 72, 96), 2, (8, 8)),
        ((9, 16, 33), 9, (16, 16)),
        ((10, 13, 11), 1, (5, 3)),
    ],
)
def test_round_trip_v2(shape, window, tile, kind):
    tokens = scene(shape) if kind == "scene" else None
    tokens, blob = make(shape, window, version=2, tile_size=tile, tokens=tokens)
    header, out = unpack_tokens(blob, expected_hash=blob_hash(blob))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, tokens)
    assert isinstance(header, TokenBlobHeaderV2) and header.layout == "ref-tiles-v2"
    assert header.tile_size == tile and header.temporal_window == window
    assert header.tile_grid == (-(-shape[1] // tile[0]), -(-shape[2] // tile[1]))
    assert header.n_tiles == header.tile_grid[0] * header.tile_grid[1] * (header.n_windows + 1)
    assert read_header(blob) == header


@pytest.mark.parametrize("k", [2, 64, 1000, 65536])
def test_v2_any_codebook_size(k):
    tokens = scene((5, 9, 10), k=k)
    _, blob = make(version=2, k=k, tokens=tokens, window=2)
    np.testing.assert_array_equal(unpack_tokens(blob)[1], tokens)


def test_static_tokens_compress():
    tokens = np.full((8, 72, 96), 17, np.uint16)
    blob = pack_tokens(tokens, **META, frame_size=(576, 768), n_frames=32, version=1)
    assert len(blob) < tokens.nbytes / 20
    blob2 = pack_tokens(tokens, **META, frame_size=(576, 768), n_frames=32, codebook_size=1024)
    index = read_index(blob2)
    # Every window tile equals the reference plane: empty payloads, only the plane is stored.
    assert (index.entries["length"][index.header.n_reference :] == 0).all()
    assert len(blob2) < len(blob)
    np.testing.assert_array_equal(unpack_tokens(blob2)[1], tokens)


def test_v2_is_smaller_than_v1_on_fixed_camera_tokens():
    tokens = scene((25, 72, 96))
    _, v1 = make(tokens=tokens, window=8, version=1)
    _, v2 = make(tokens=tokens, window=2, version=2)
    assert len(v2) < 0.8 * len(v1), (len(v2), len(v1))


def test_blob_hash_format():
    _, blob = make()
    h = blob_hash(blob)
    assert h.startswith("blake3:") and len(h) == 71
    assert h == blob_hash(bytearray(blob))


def _ranged_index(blob: bytes):
    """What a ranged reader does: the prefix, then every section table it needs."""
    prefix_len = required_prefix_length(blob)
    index = read_index(blob[:prefix_len])  # only the prefix, like a ranged GET would
    return index


@pytest.mark.parametrize("version", VERSIONS)
def test_each_tile_byte_range_reads_alone(version):
    tokens, blob = make((10, 40, 35), window=4, version=version, tokens=scene((10, 40, 35)))
    index = _ranged_index(blob)
    header = index.header
    for section in index.sections_for(tiles_for_region(header)):
        off, length = index.section_table_range(section)
        index.load_section(section, blob[off : off + length])
    for key in tiles_for_region(header):
        if key[0] < 0:
            continue
        off, length = tile_byte_range(index, *key)
        piece = bytes(blob[off : off + length])  # one ranged GET
        ref = None
        if version == 2:
            r_off, r_len = tile_byte_range(index, -1, key[1], key[2])
            ref = blob[r_off : r_off + r_len]
        tile = decode_tile(index, key, piece, ref)
        (t0, t1), (y0, y1), (x0, x1) = header.tile_slices(key)
        np.testing.assert_array_equal(tile, tokens[t0:t1, y0:y1, x0:x1])


def test_v2_ranged_reader_needs_section_tables_and_reference():
    _, blob = make((6, 20, 20), window=2, version=2, tokens=scene((6, 20, 20)))
    index = _ranged_index(blob)
    with pytest.raises(KeyError, match="section"):
        index.byte_range((1, 0, 0))
    assert index.sections_for([(-1, 0, 0), (1, 0, 0), (1, 1, 1)]) == [0, 2]
    for section in (0, 2):
        off, length = index.section_table_range(section)
        index.load_section(section, blob[off : off + length])
    off, length = index.byte_range((1, 1, 1))
    with pytest.raises(ValueError, match="reference"):
        decode_tile(index, (1, 1, 1), blob[off : off + length])
    with pytest.raises(KeyError, match="reference"):
        decode_tiles(index, {(1, 1, 1): blob[off : off + length]})
    bad_table = bytearray(blob[slice(*(lambda o, n: (o, o + n))(*index.section_table_range(1)))])
    bad_table[-1] ^= 1
    with pytest.raises(CorruptBlobError, match="digest"):
        index.load_section(1, bytes(bad_table))


@pytest.mark.parametrize("version", VERSIONS)
def test_ranged_prefix_protocol(version):
    _, blob = make(version=version)
    need = required_prefix_length(b"")
    assert need == 10
    need = required_prefix_length(blob[:need])
    assert need > 10
    need2 = required_prefix_length(blob[:need])
    assert need2 > need
    assert required_prefix_length(blob[:need2]) == need2
    with pytest.raises(CorruptBlobError):
        read_index(blob[: need2 - 1])


@pytest.mark.parametrize("version", VERSIONS)
def test_read_tiles_and_region(version):
    tokens, blob = make((7, 37, 21), window=3, version=version, tokens=scene((7, 37, 21)))
    header = read_header(blob)
    keys = tiles_for_region(header, (2, 5), (10, 30), (3, 20))
    window_keys = [k for k in keys if k[0] >= 0]
    th, tw = header.tile_shape
    n_spatial = (29 // th - 10 // th + 1) * (19 // tw - 3 // tw + 1)
    assert len(window_keys) == 2 * n_spatial
    assert len(keys) - len(window_keys) == (n_spatial if version == 2 else 0)
    tiles = read_tiles(blob, keys)
    assert set(tiles) == set(keys)
    sub = assemble_region(header, tiles, (2, 5), (10, 30), (3, 20))
    np.testing.assert_array_equal(sub, tokens[2:5, 10:30, 3:20])
    _, sub2 = unpack_region(blob, (2, 5), (10, 30), (3, 20), expected_hash=blob_hash(blob))
    np.testing.assert_array_equal(sub2, sub)
    with pytest.raises(KeyError):
        assemble_region(header, {window_keys[0]: tiles[window_keys[0]]}, (2, 5), (10, 30), (3, 20))


@pytest.mark.parametrize("version", VERSIONS)
def test_single_flipped_byte_anywhere_is_detected(version):
    _, blob = make((5, 20, 18), window=2, version=version, tokens=scene((5, 20, 18)))
    rng = np.random.default_rng(1)
    positions = sorted(
        {0, 3, 5, 8, 12, len(blob) - 1, len(blob) - 33, *rng.integers(0, len(blob), 60).tolist()}
    )
    for pos in positions:
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(CorruptBlobError):
            unpack_tokens(bytes(bad))
        with pytest.raises(CorruptBlobError):
            read_tiles(bytes(bad), [(0, 0, 0)])


@pytest.mark.parametrize("version", VERSIONS)
def test_every_byte_flip_detected_small_blob(version):
    _, blob = make((2, 3, 4), window=1, version=version)
    for pos in range(len(blob)):
        bad = bytearray(blob)
        bad[pos] ^= 0x80
        with pytest.raises(CorruptBlobError):
            unpack_tokens(bytes(bad))


@pytest.mark.parametrize("version", VERSIONS)
def test_truncation_and_extension_detected(version):
    _, blob = make(version=version)
    for cut in (0, 1, 4, 9, 10, 50, len(blob) // 2, len(blob) - 32, len(blob) - 1):
        with pytest.raises(CorruptBlobError):
            unpack_tokens(blob[:cut])
    with pytest.raises(CorruptBlobError):
        unpack_tokens(blob + b"\0")


@pytest.mark.parametrize("version", VERSIONS)
def test_bad_magic_and_version(version):
    _, blob = make(version=version)
    with pytest.raises(CorruptBlobError, match="magic"):
        read_header(b"XXXX" + blob[4:])
    with pytest.raises(CorruptBlobError, match="magic"):
        unpack_tokens(b"XXXX" + blob[4:])
    for other in (0, 3, 3 - version):
        bad_version = blob[:4] + struct.pack("<H", other) + blob[6:]
        with pytest.raises(CorruptBlobError):
            read_header(bad_version)


def test_blob_of_the_v1_writer_still_reads():
    tokens = np.random.default_rng(7).integers(0, 1024, (3, 5, 18), dtype=np.uint16)
    header, out = unpack_tokens(V1_BLOB, expected_hash=blob_hash(V1_BLOB))
    assert header.version == 1 and header.codebook_id == "cb-v1-k1024-9a294fa92a"
    np.testing.assert_array_equal(out, tokens)
    tiles = read_tiles(V1_BLOB, [(1, 0, 1)])
    np.testing.assert_array_equal(tiles[(1, 0, 1)], tokens[2:3, :, 16:18])


def test_wrong_expected_hash():
    _, blob = make()
    _, other = make(seed=1)
    with pytest.raises(CorruptBlobError, match="hash"):
        unpack_tokens(blob, expected_hash=blob_hash(other))
    with pytest.raises(ValueError):
        unpack_tokens(blob, expected_hash="sha256:abc")


def test_corrupt_error_is_domain_error():
    assert issubclass(CorruptBlobError, CorruptData)
    assert issubclass(CorruptBlobError, ValueError)


@pytest.mark.parametrize("version", VERSIONS)
def test_tile_digest_catches_ranged_corruption(version):
    _, blob = make((4, 20, 20), window=2, version=version)
    index = read_index(blob)
    off, length = tile_byte_range(index, 1, 1, 0)
    ref = None
    if version == 2:
        r_off, r_len = tile_byte_range(index, -1, 1, 0)
        ref = blob[r_off : r_off + r_len]
    piece = bytearray(blob[off : off + length])
    piece[-1] ^= 0xFF
    with pytest.raises(CorruptBlobError, match="digest"):
        decode_tile(index, (1, 1, 0), bytes(piece), ref)
    with pytest.raises(CorruptBlobError):
        decode_tile(index, (1, 1, 0), bytes(piece[:-1]), ref)
    with pytest.raises(KeyError):
        tile_byte_range(index, 5, 0, 0)


def test_v2_rans_end_state_catches_a_forged_tile():
    # A tile whose words were altered and whose inline digest was recomputed to match.
    from blake3 import blake3

    _, blob = make((4, 8, 8), window=4, version=2, tokens=scene((4, 8, 8)))
    index = read_index(blob)
    off, length = index.byte_range((0, 0, 0))
    r_off, r_len = index.byte_range((-1, 0, 0))
    body = bytearray(blob[off + 4 : off + length])
    body[2] ^= 0x55  # a renormalisation word, not the state
    forged = blake3(bytes(body)).digest()[:4] + bytes(body)
    with pytest.raises(CorruptBlobError, match="rANS"):
        decode_tile(index, (0, 0, 0), forged, blob[r_off : r_off + r_len])


def test_offsets_out_of_range_detected_even_with_valid_digests():
    # A forged blob whose digests are recomputed but whose index points outside the payloads.
    from blake3 import blake3

    _, blob = make((2, 20, 20), window=2)
    index = read_index(blob)
    hlen = struct.unpack_from("<I", blob, 6)[0]
    start = 10 + hlen
    forged = bytearray(blob)
    struct.pack_into("<Q", forged, start, len(blob) + 1000)  # first entry's offset
    p = index.prefix_length
    forged[p - 32 : p] = blake3(bytes(forged[: p - 32])).digest()
    forged[-32:] = blake3(bytes(forged[:-32])).digest()
    with pytest.raises(CorruptBlobError, match="offsets"):
        unpack_tokens(bytes(forged))


def test_header_validation():
    good = dict(
        codebook_id="cb",
        model_id="m",
        dims=(7, 37, 21),
        time_stride=4,
        spatial_stride=8,
        tile_grid=(3, 2),
        temporal_window=3,
        n_windows=3,
        frame_size=(290, 161),
        fps=10,
        n_frames=27,
    )
    TokenBlobHeader(**good)
    for bad in (
        {"tile_grid": (2, 2)},
        {"n_windows": 2},
        {"frame_size": (100, 161)},
        {"n_frames": 40},
        {"dims": (0, 37, 21)},
        {"layout": "raster"},
        {"tile_size": (8, 8)},
        {"dtype": "uint8"},
        {"fps": 0},
        {"unknown": 1},
        {"codebook_id": ""},
    ):
        with pytest.raises(ValidationError):
            TokenBlobHeader(**{**good, **bad})
    _, blob = make(version=2)
    v2 = read_header(blob).model_dump()
    TokenBlobHeaderV2(**v2)
    for bad in (
        {"tile_grid": (3, 2)},
        {"tile_size": (0, 8)},
        {"tile_size": (65, 8)},
        {"codebook_size": None},
        {"class_model": "AAAA"},
        {"class_model": base64.b64encode(b"\xff" * 192).decode()},
        {"temporal_window": 65, "n_windows": 1},
        {"version": 1},
    ):
        with pytest.raises(ValidationError):
            TokenBlobHeaderV2(**{**v2, **bad})


@pytest.mark.parametrize("version", VERSIONS)
def test_forged_header_is_rejected_as_corrupt(version):
    # Valid digests around a header that breaks the schema still fail as CorruptBlobError.
    from blake3 import blake3

    _, blob = make((2, 20, 20), window=2, version=version)
    hlen = struct.unpack_from("<I", blob, 6)[0]
    header = json.loads(blob[10 : 10 + hlen])
    header["tile_grid"] = [9, 9]
    hb = json.dumps(header, separators=(",", ":")).encode()
    forged = bytearray(blob[:6] + struct.pack("<I", len(hb)) + hb + blob[10 + hlen :])
    with pytest.raises(CorruptBlobError, match="header"):
        read_header(bytes(forged))
    forged[-32:] = blake3(bytes(forged[:-32])).digest()
    with pytest.raises(CorruptBlobError):
        unpack_tokens(bytes(forged))


def test_pack_rejects_bad_input():
    kw = {**META, "codebook_size": 1024}
    with pytest.raises(ValueError):
        pack_tokens(np.zeros((3, 4), np.uint16), **kw, frame_size=(32, 32), n_frames=12)
    with pytest.raises(ValueError):
        pack_tokens(np.full((1, 2, 2), 70000, np.int64), **kw, frame_size=(16, 16), n_frames=4)
    with pytest.raises(ValueError):
        pack_tokens(
            np.full((1, 2, 2), 600, np.uint16),
            **META,
            frame_size=(16, 16),
            n_frames=4,
            codebook_size=512,
        )
    with pytest.raises(ValidationError):  # frame size inconsistent with the grid
        pack_tokens(np.zeros((1, 2, 2), np.uint16), **kw, frame_size=(64, 64), n_frames=4)
    with pytest.raises(ValueError, match="codebook_size"):
        pack_tokens(np.zeros((1, 2, 2), np.uint16), **META, frame_size=(16, 16), n_frames=4)
    with pytest.raises(ValueError, match="version"):
        pack_tokens(
            np.zeros((1, 2, 2), np.uint16), **kw, frame_size=(16, 16), n_frames=4, version=3
        )


@pytest.mark.parametrize("version", VERSIONS)
def test_verify_blob_returns_index(version):
    _, blob = make(version=version)
    index = verify_blob(blob, blob_hash(blob))
    assert index.header.n_tiles == len(index.entries)
    offsets = index.entries["offset"].astype(np.int64)
    assert (np.diff(offsets) >= 0).all() and offsets[-1] < len(blob)


def test_sideinfo_round_trip_and_corruption():
    rng = np.random.default_rng(0)
    values = {"changed_frac": rng.random((5, 2, 3)), "pixel_motion": rng.random((5, 2, 3))}
    blob = pack_sideinfo(
        values,
        time_stride=4,
        spatial_stride=8,
        fps=10.0,
        token_hash="blake3:" + "0" * 64,
        descriptions={"changed_frac": "x"},
    )
    header, out = unpack_sideinfo(blob)
    assert header.fields == ("changed_frac", "pixel_motion")
    assert header.shape == (5, 2, 3)
    for k, v in values.items():
        np.testing.assert_allclose(out[k], v.astype(np.float32))
    for pos in (0, 7, 20, len(blob) - 1):
        bad = bytearray(blob)
        bad[pos] ^= 1
        with pytest.raises(CorruptBlobError):
            unpack_sideinfo(bytes(bad))
    with pytest.raises(ValueError):
        pack_sideinfo(
            {"a": np.zeros((2, 2, 2)), "b": np.zeros((2, 2, 3))},
            time_stride=4,
            spatial_stride=8,
            fps=10,
        )
