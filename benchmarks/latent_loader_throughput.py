"""Training-loader throughput: loose .npy files, local shards, and shards in S3 (moto), as the dataset grows.

    PYTHONPATH=. python3 benchmarks/latent_loader_throughput.py [--counts 100 1000 10000] [--workers 2]

Writes ``count`` small latents (``[64, 32]`` float16, the padding mask and metadata of an encode run) as the
encoder does: loose files (``--output-format npy``) and shards of 1000 (``wds``), uploads the shards to a moto
S3 server started on 127.0.0.1, then reads one epoch through each training loader (batch 32, ``--workers``
DataLoader workers) and prints the start-up time (listing or indexing, no cache) and the samples per second
of the epoch. A last row reads the S3 shards with one ranged GET per member instead of streaming them, to
show why the stream reads shards front to back. moto serves from this very process, so the S3 rows measure
the client path against a local server, not a real bucket's latency or bandwidth.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from preencode.data.latent_sample import LatentSource
from preencode.data.latent_shards import LatentShardDataset, LatentStreamLoader
from preencode.data.loaders import make_loader
from preencode.data.pre_encoded import PreEncodedDataset
from preencode.store.details import build_details, write_details
from preencode.store.meta import LatentMeta
from preencode.store.objects import ObjectPath, s3_filesystem
from preencode.store.reader import read_shard
from preencode.store.sample import EncodedSample
from preencode.store.writer import open_writer

LATENT_DIM, FRAMES, BATCH = 64, 32, 32


def write_output(root: Path, count: int, output_format: str) -> None:
    rng = np.random.default_rng(0)
    latent = {"latent_dim": LATENT_DIM, "downsampling_ratio": 2048, "sample_rate": 44100, "dtype": "float16",
              "is_discrete": False, "num_quantizers": None, "posterior": "sample"}
    root.mkdir(parents=True)
    write_details(root, build_details(model_config={}, dataset_config={}, sample_size=65536, args={},
                                      checkpoint_sha256="0" * 64, latent=latent, mode={}))
    writer = open_writer(output_format, root / "0", shard_size=1000)
    for i in range(count):
        meta = LatentMeta(path=f"/audio/{i}.flac", relpath=f"{i}.flac", timestamps=[0.0, 1.0], seconds_start=0,
                          seconds_total=1.5, padding_mask=[1] * FRAMES, sample_rate=44100, dataset_id="audio")
        writer.write(EncodedSample(i, rng.standard_normal((LATENT_DIM, FRAMES)).astype(np.float16), meta))
    writer.close()


def start_moto() -> str:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    return os.environ["AWS_ENDPOINT_URL"]


def upload(local: Path, url: str) -> None:
    root = ObjectPath(url)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        target = root / path.relative_to(local).as_posix()
        (target.upload(path) if path.suffix == ".tar" else target.write_bytes(path.read_bytes()))


def timed(build: Callable[[], object], epoch: Callable[[object], int]) -> tuple[float, float, int]:
    """(start-up seconds, samples per second over one epoch, samples)."""
    t0 = time.perf_counter()
    loader = build()
    t1 = time.perf_counter()
    samples = epoch(loader)
    t2 = time.perf_counter()
    return t1 - t0, samples / (t2 - t1), samples


def count_batches(loader: object) -> int:
    return sum(batch.data.shape[0] for batch in loader)  # type: ignore[attr-defined]


def ranged_gets(url: str, limit: int) -> tuple[float, float, int]:
    """Read up to ``limit`` samples of the S3 shards with one ranged GET per member (.npy and .json)."""
    t0 = time.perf_counter()
    shards = [info.path for info in ObjectPath(url).list_all() if info.path.name.endswith(".tar")]
    records = [r for shard in shards for r in read_shard(shard)][:limit]  # listing members reads each shard once
    t1 = time.perf_counter()
    for record in records:
        record.load_latent()
        record.load_meta()
    return t1 - t0, len(records) / (time.perf_counter() - t1), len(records)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--counts", type=int, nargs="+", default=[100, 1000, 10000])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--ranged-limit", type=int, default=2000, help="samples read by ranged GETs (the slow row)")
    args = p.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    os.environ["PREENCODE_CACHE_DIR"] = tempfile.mkdtemp(prefix="preencode-bench-cache-")
    start_moto()
    s3_filesystem(client_retries=False).call_s3("create_bucket", Bucket="bench")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.counts:
            loose, shards = Path(tmp) / f"npy{count}", Path(tmp) / f"wds{count}"
            write_output(loose, count, "npy")
            write_output(shards, count, "wds")
            url = f"s3://bench/wds{count}"
            upload(shards, url)

            def loose_loader(root: Path = loose) -> object:
                ds = PreEncodedDataset([LatentSource("d", str(root))], use_index_cache=False)
                return make_loader(ds, batch_size=BATCH, num_workers=args.workers, shuffle=True, drop_last=False)

            def stream_loader(root: str) -> object:
                ds = LatentShardDataset([LatentSource("d", root)], shuffle_buffer=1000)
                return LatentStreamLoader(ds, batch_size=BATCH, num_workers=args.workers)

            rows.append((count, "loose .npy files", *timed(loose_loader, count_batches)))
            rows.append((count, "local shards", *timed(lambda s=shards: stream_loader(str(s)), count_batches)))
            rows.append((count, "S3 shards (moto), streamed", *timed(lambda u=url: stream_loader(u), count_batches)))
            rows.append((count, "S3 shards (moto), ranged GET per member", *ranged_gets(url, args.ranged_limit)))
    print(f"\nlatents [{LATENT_DIM}, {FRAMES}] float16, batch {BATCH}, {args.workers} DataLoader workers, "
          f"{os.cpu_count()} CPUs\n")
    print("| latents | loader | start-up s | samples/s | samples read |\n|---:|---|---:|---:|---:|")
    for count, name, startup, rate, samples in rows:
        print(f"| {count:,} | {name} | {startup:.2f} | {rate:,.0f} | {samples:,} |")


if __name__ == "__main__":
    main()
