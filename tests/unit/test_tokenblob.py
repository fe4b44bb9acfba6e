"""Token blob v1: round trips, header validation, ranged tile reads, corruption detection."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from pydantic import ValidationError

from sightline.errors import CorruptData
from sightline.tokenblob import (
    CorruptBlobError,
    TokenBlobHeader,
    assemble_region,
    blob_hash,
    decode_tile,
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


def make(shape=(7, 37, 21), window=3, compression="zlib", seed=0, k=1024):
    """Random tokens of a grid that is not a multiple of the tile size, and their blob."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, k, shape, dtype=np.uint16)
    tt, ht, wt = shape
    blob = pack_tokens(
        tokens,
        **META,
        frame_size=(ht * 8 - 3, wt * 8 - 5),
        n_frames=tt * 4 - 1,
        temporal_window=window,
        compression=compression,
        codebook_size=k,
    )
    return tokens, blob


@pytest.mark.parametrize("compression", ["zlib", "none"])
@pytest.mark.parametrize(
    "shape,window", [((7, 37, 21), 3), ((1, 1, 1), 8), ((25, 72, 96), 8), ((9, 16, 33), 9)]
)
def test_round_trip(shape, window, compression):
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


def test_static_tokens_compress():
    tokens = np.full((8, 72, 96), 17, np.uint16)
    blob = pack_tokens(tokens, **META, frame_size=(576, 768), n_frames=32)
    assert len(blob) < tokens.nbytes / 20


def test_blob_hash_format():
    _, blob = make()
    h = blob_hash(blob)
    assert h.startswith("blake3:") and len(h) == 71
    assert h == blob_hash(bytearray(blob))


def test_each_tile_byte_range_reads_alone():
    tokens, blob = make((10, 40, 35), window=4)
    prefix_len = required_prefix_length(blob)
    index = read_index(blob[:prefix_len])  # only the prefix, like a ranged GET would
    for key in tiles_for_region(index.header):
        off, length = tile_byte_range(index, *key)
        assert (off, length) == tile_byte_range(blob[:prefix_len], *key)
        piece = bytes(blob[off : off + length])  # one ranged GET
        tile = decode_tile(index, key, piece)
        (t0, t1), (y0, y1), (x0, x1) = index.header.tile_slices(key)
        np.testing.assert_array_equal(tile, tokens[t0:t1, y0:y1, x0:x1])


def test_ranged_prefix_protocol():
    _, blob = make()
    need = required_prefix_length(b"")
    assert need == 10
    need = required_prefix_length(blob[:need])
    assert need > 10
    need2 = required_prefix_length(blob[:need])
    assert need2 > need
    assert required_prefix_length(blob[:need2]) == need2
    with pytest.raises(CorruptBlobError):
        read_index(blob[: need2 - 1])


def test_read_tiles_and_region():
    tokens, blob = make((7, 37, 21), window=3)
    header = read_header(blob)
    keys = tiles_for_region(header, (2, 5), (10, 30), (3, 20))
    assert len(keys) == 2 * 2 * 2
    tiles = read_tiles(blob, keys)
    assert set(tiles) == set(keys)
    sub = assemble_region(header, tiles, (2, 5), (10, 30), (3, 20))
    np.testing.assert_array_equal(sub, tokens[2:5, 10:30, 3:20])
    _, sub2 = unpack_region(blob, (2, 5), (10, 30), (3, 20), expected_hash=blob_hash(blob))
    np.testing.assert_array_equal(sub2, sub)
    with pytest.raises(KeyError):
        assemble_region(header, {keys[0]: tiles[keys[0]]}, (2, 5), (10, 30), (3, 20))


def test_single_flipped_byte_anywhere_is_detected():
    _, blob = make((5, 20, 18), window=2)
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


def test_every_byte_flip_detected_small_blob():
    _, blob = make((2, 3, 4), window=1)
    for pos in range(len(blob)):
        bad = bytearray(blob)
        bad[pos] ^= 0x80
        with pytest.raises(CorruptBlobError):
            unpack_tokens(bytes(bad))


def test_truncation_and_extension_detected():
    _, blob = make()
    for cut in (0, 1, 4, 9, 10, 50, len(blob) // 2, len(blob) - 32, len(blob) - 1):
        with pytest.raises(CorruptBlobError):
            unpack_tokens(blob[:cut])
    with pytest.raises(CorruptBlobError):
        unpack_tokens(blob + b"\0")


def test_bad_magic_and_version():
    _, blob = make()
    with pytest.raises(CorruptBlobError, match="magic"):
        read_header(b"XXXX" + blob[4:])
    with pytest.raises(CorruptBlobError, match="magic"):
        unpack_tokens(b"XXXX" + blob[4:])
    bad_version = blob[:4] + struct.pack("<H", 2) + blob[6:]
    with pytest.raises(CorruptBlobError):
        read_header(bad_version)


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


def test_tile_digest_catches_ranged_corruption():
    _, blob = make((4, 20, 20), window=2)
    index = read_index(blob)
    off, length = tile_byte_range(index, 1, 1, 0)
    piece = bytearray(blob[off : off + length])
    piece[0] ^= 0xFF
    with pytest.raises(CorruptBlobError, match="digest"):
        decode_tile(index, (1, 1, 0), bytes(piece))
    with pytest.raises(CorruptBlobError):
        decode_tile(index, (1, 1, 0), bytes(piece[:-1]))
    with pytest.raises(KeyError):
        tile_byte_range(index, 5, 0, 0)


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


def test_forged_header_is_rejected_as_corrupt():
    # Valid digests around a header that breaks the schema still fail as CorruptBlobError.
    from blake3 import blake3

    _, blob = make((2, 20, 20), window=2)
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
    with pytest.raises(ValueError):
        pack_tokens(np.zeros((3, 4), np.uint16), **META, frame_size=(32, 32), n_frames=12)
    with pytest.raises(ValueError):
        pack_tokens(np.full((1, 2, 2), 70000, np.int64), **META, frame_size=(16, 16), n_frames=4)
    with pytest.raises(ValueError):
        pack_tokens(
            np.full((1, 2, 2), 600, np.uint16),
            **META,
            frame_size=(16, 16),
            n_frames=4,
            codebook_size=512,
        )
    with pytest.raises(ValidationError):  # frame size inconsistent with the grid
        pack_tokens(np.zeros((1, 2, 2), np.uint16), **META, frame_size=(64, 64), n_frames=4)


def test_verify_blob_returns_index():
    _, blob = make()
    index = verify_blob(blob, blob_hash(blob))
    assert index.header.n_tiles == len(index.entries)


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
