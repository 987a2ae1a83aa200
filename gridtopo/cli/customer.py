"""``gridtopo customer find …``: find the customer a caller is (:mod:`gridtopo.outages.callers`).

    gridtopo customer find --phone 13110545518
    gridtopo customer find --meter 0310000000008000000003 --json
    gridtopo customer find --address 东莞市小河大道19号
    gridtopo customer find --near 113.6929,23.1536 --crs gcj02 --radius 100
"""

from __future__ import annotations

from typing import Any

import click

from gridtopo.cli.output import emit, json_option
from gridtopo.cli.settings import Settings, pass_settings
from gridtopo.outages.callers import CallerQuery, find_customers, parse_near
from gridtopo.topology.index import load_index


@click.group()
def customer() -> None:
    """Customers as callers give them: id, phone, meter, address, location."""


@customer.command("find")
@click.option("--id", "customer_id", help="Customer id (户号).")
@click.option("--phone", help="Phone number the caller gives or calls from.")
@click.option("--meter", help="Meter id (电能表资产号).")
@click.option("--address", "q", help="Address text, matched fuzzily.")
@click.option("--near", help="lon,lat of the caller's location.")
@click.option("--crs", type=click.Choice(["wgs84", "gcj02"]), default="wgs84", show_default=True,
              help="Coordinate system of --near (phone map apps give gcj02).")
@click.option("--radius", "radius_m", type=float, default=200.0, show_default=True,
              help="Search radius around --near, metres.")
@click.option("--limit", type=int, default=10, show_default=True)
@click.option("--personal", is_flag=True, help="Names, phones and addresses unmasked.")
@json_option
@pass_settings
def customer_find(settings: Settings, customer_id: str | None, phone: str | None,
                  meter: str | None, q: str | None, near: str | None, crs: str,
                  radius_m: float, limit: int, personal: bool, as_json: bool) -> None:
    """Customers matching exactly one of --id, --phone, --meter, --address or --near."""
    engine = settings.model_engine()
    query = CallerQuery(customer_id, phone, meter, q, parse_near(near) if near else None, crs,
                        radius_m, limit)
    result = find_customers(engine, load_index(engine), query, reveal=personal)

    def human(r: dict[str, Any]) -> None:
        click.echo(f"{r['total']} customer(s) by {r['matched_by']}")
        if "transformer" in r:
            click.echo(f"  nearest transformer: {r['transformer']}; in territory: "
                       f"{r['in_territory']}")
        for i in r["items"]:
            how = f" score {i['score']}" if "score" in i else \
                f" {i['distance_m']} m" if "distance_m" in i else ""
            click.echo(f"  {i['customer_id']} {i['status']}{how} transformer "
                       f"{i['transformer_id']} feeder {i['feeder_id']} {i.get('name')} "
                       f"{i.get('phone')} {i.get('address')}")

    emit(result, as_json, human)
