"""Data at scale: WebDataset shards, the decoded cache."""

from __future__ import annotations

import argparse
import time

from vaekit.data.cache import cache_root
from vaekit.data.cache_items import cache_items, remove_items
from vaekit.data.images import ImageFiles
from vaekit.data.progress import JobProgress
from vaekit.data.shards import iter_folder, write_shards
from vaekit.schema import ConfigError


def shard(args: argparse.Namespace) -> None:
    if args.output.resolve() == args.folder.resolve() or args.output.resolve().is_relative_to(args.folder.resolve()):
        raise ConfigError("shard -o: write the shards outside the folder being converted")
    files = ImageFiles.scan(args.folder)
    with JobProgress(f"sharding {args.folder.name}", len(files.members)) as progress:

        def counted(items):
            for item in items:
                yield item
                progress.advance(1)

        written = write_shards(counted(iter_folder(files)), args.output, args.per_shard)
    print(f"wrote {len(written)} shard(s) to {args.output}/ (train with --data {args.output})")


def cache(args: argparse.Namespace) -> None:

    root = cache_root(args.dir)
    items = cache_items(root)
    if args.clear or args.prune is not None:
        cutoff = time.time() - (args.prune or 0) * 86400
        chosen = [i for i in items if i.kind != "kept" and (args.clear or i.kind in ("entry", "partial"))]
        chosen = [i for i in chosen if args.clear or i.last_used < cutoff]
        freed = remove_items(chosen)
        print(f"removed {len(chosen)} item(s) from {root}, {freed / 2**30:.2f} GiB freed")
        return
    if not items:
        print(f"{root}: nothing cached")
        return
    for item in items:
        used = time.strftime("%Y-%m-%d", time.localtime(item.last_used))
        details = ["x".join(map(str, item.shape)) if item.shape else ""]
        details += [f"{item.done:.0%} decoded" if item.done is not None else "", item.source]
        shown = "  ".join(d for d in details if d)
        print(f"{item.kind:8s} {item.bytes / 2**30:8.2f} GiB  {used}  {item.path.name}  {shown}".rstrip())
    total = sum(item.bytes for item in items)
    print(f"{len(items)} item(s) in {root}, {total / 2**30:.2f} GiB (--prune DAYS removes entries unused that long)")
