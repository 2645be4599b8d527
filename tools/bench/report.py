"""How the bench prints: a table of stages, and a verdict on each target."""

from tools.bench.settings import MIB


def fmt_rate(rows: int | None, seconds: float) -> str:
    return f"{rows / seconds:>10,.0f}" if rows and seconds > 0 else f"{'':>10}"


def print_stages(title: str, stages: list[dict], total: float, peak: int) -> None:
    print(f"\n{title}")
    print(f"  {'stage':<44} {'seconds':>8} {'rows/s':>10} {'peak RSS':>10}")
    for row in stages:
        rate = fmt_rate(row.get("rows"), row["seconds"])
        print(
            f"  {row['stage']:<44} {row['seconds']:>8.2f} {rate} {row['peak_rss'] / MIB:>7.0f} MiB"
        )
    print(f"  {'total (process peak RSS)':<44} {total:>8.2f} {'':>10} {peak / MIB:>7.0f} MiB")


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"
