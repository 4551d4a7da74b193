"""``probe-collector report``: config -> InfluxDB -> figures -> one file. Usage::

code = run(collector_cfg, settings_path, start, end, fmt="html", lang="vi", out=path)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from probefleet.collector.config import CollectorConfig
from probefleet.collector.inventory import InventoryFile, load_inventory, load_targets
from probefleet.collector.report.areas import AreaRegistry, load_areas, match_communes
from probefleet.collector.report.errors import ReportError
from probefleet.collector.report.fetch import Fetcher, HttpInfluxQL, InfluxQL
from probefleet.collector.report.ftth import load_declared
from probefleet.collector.report.gather import gather
from probefleet.collector.report.hamlet_coverage import apply_coverage
from probefleet.collector.report.html import render_html
from probefleet.collector.report.i18n import Lang, Strings
from probefleet.collector.report.model import MapInfo, Report
from probefleet.collector.report.settings import ReportSettings, load_settings
from probefleet.collector.report.tables import render_csv, render_json
from probefleet.core import configkit

log = logging.getLogger(__name__)
FORMATS: Final[dict[str, Callable[[Report, Strings], str]]] = {
    "html": render_html,
    "csv": render_csv,
    "json": render_json,
}


def parse_when(text: str, tz: str, *, end: bool) -> dt.datetime:
    """A date (midnight on the province's clock; as ``--to`` the *next* midnight, so the
    day is included) or an ISO date-time (naive = province time; exclusive as ``--to``)."""
    zone = ZoneInfo(tz)
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            when = dt.datetime.combine(day, dt.time(), tzinfo=zone)
            return when + dt.timedelta(days=1) if end else when
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"not a date (YYYY-MM-DD) or ISO date-time: {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def latency_targets_known(client: InfluxQL) -> list[str]:
    """Latency targets in the database (for leaving the data network's out)."""
    result = client.run('SHOW TAG VALUES FROM "latency" WITH KEY = "target"')[0]
    values: list[str] = []
    for series in result.get("series", []):
        values.extend(str(v[1]) for v in series.get("values", []))
    return sorted(set(values))


def build_report(
    client: InfluxQL,
    *,
    start: dt.datetime,
    end: dt.datetime,
    settings: ReportSettings,
    inventory: InventoryFile,
    targets_path: Path | None,
    state_dir: str | None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    if end <= start:
        raise ReportError(f"the period is empty: --from {start} is not before --to {end}")
    targets = load_targets(targets_path) if targets_path else None
    known = latency_targets_known(client) if settings.data_network_targets else None
    return gather(
        Fetcher(client, progress=progress),
        start=start.astimezone(dt.UTC),
        end=end.astimezone(dt.UTC),
        settings=settings,
        inventory=inventory,
        targets=targets,
        state_dir=state_dir,
        latency_targets_known=known,
        source=settings.source,
    )


def attach_map(report: Report, registry: AreaRegistry | None) -> list[str]:
    """Find every commune of the report in the area file; the lines to warn about (an
    inventory commune without a polygon: the map names it, the report still renders)."""
    if registry is None:
        return []
    found = match_communes(registry, [(c.district, c.commune) for c in report.communes])
    report.map = MapInfo(
        areas_file=registry.path,
        registry=registry,
        codes={key: f.code for key, f in found.features.items()},
        missing=sorted(found.missing, key=lambda m: (m.district, m.commune)),
    )
    return [
        f"{registry.path}: no polygon for commune {m.commune!r}"
        + (f" (district {m.district!r})" if m.district else "")
        + f": {m.text}"
        for m in report.map.missing
    ]


def write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: an interrupted run never leaves half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        # mkstemp makes 0600; a report is a document to share: the usual umask applies.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(
    cfg: CollectorConfig,
    *,
    settings_path: Path | None,
    start_text: str,
    end_text: str,
    fmt: str,
    lang: Lang,
    out: Path,
    quiet: bool = False,
) -> int:
    def say(message: str) -> None:
        if not quiet:
            print(f"report: {message}", file=sys.stderr, flush=True)

    try:
        settings = load_settings(settings_path)
        inventory = load_inventory(Path(cfg.files.inventory))
        # Before any query: a broken area file is a config problem (exit 2), said at once.
        registry = load_areas(Path(settings.areas_file)) if settings.areas_file else None
        declared = (
            load_declared([Path(f) for f in settings.ftth_declared_files], registry)
            if registry is not None and settings.ftth_declared_files
            else None
        )
        start = parse_when(start_text, settings.timezone, end=False)
        end = parse_when(end_text, settings.timezone, end=True)
        client = HttpInfluxQL(
            cfg.influxdb.url,
            database=cfg.influxdb.bucket,
            token=cfg.influxdb.token,
            timeout_s=max(60.0, cfg.influxdb.timeout_s),
        )
        started = time.perf_counter()
        report = build_report(
            client,
            start=start,
            end=end,
            settings=settings,
            inventory=inventory,
            targets_path=Path(cfg.files.targets),
            state_dir=cfg.files.state_dir,
            progress=say,
        )
        for warning in attach_map(report, registry):
            # Not progress: said even with --quiet (the map names them too).
            print(f"report: warning: {warning}", file=sys.stderr)
        targets = load_targets(Path(cfg.files.targets))
        apply_coverage(report, registry, declared, targets, inventory)
        text = FORMATS[fmt](report, Strings(lang))
        write_atomically(out, text)
    except configkit.ConfigError as exc:
        print(f"probe-collector report: {exc}", file=sys.stderr)
        return 2
    except ReportError as exc:
        print(f"probe-collector report: {exc}", file=sys.stderr)
        return 1
    with_data = sum(1 for c in report.communes if c.has_data)
    say(
        f"{out}: {fmt}, {len(report.communes)} communes ({with_data} with data), "
        f"{report.statements} queries in {report.query_seconds:.1f} s, "
        f"total {time.perf_counter() - started:.1f} s"
        + (" — no measurements in this period" if report.empty else "")
    )
    return 0
